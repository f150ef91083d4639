"""zh / en strings for the app, with d2l-zh terminology (批量规范化, 稠密连接网络, 残差网络, 增长率, 宽度乘子, ...).

``t(key, lang, **fmt)`` returns the string in the chosen language (falling back to English, then to the
key itself, so a missing string never breaks a page). No streamlit here: the pages pass the language.
"""
from __future__ import annotations

from .units import format_value

LANGS = ("en", "zh")
LANG_NAMES = {"en": "English", "zh": "中文"}

# key: (english, chinese)
STRINGS: dict[str, tuple[str, str]] = {
    # app shell
    "app.title": ("CNN Lab", "CNN 实验室"),
    "app.language": ("Language / 语言", "语言 / Language"),
    "app.caption": ("Modern CNNs from *Dive into Deep Learning*, hands on.",
                    "动手学深度学习 · 现代卷积神经网络，动手实验。"),
    # runs key, where a browser keeps no cookie (#22 §1)
    "key.title": ("Your runs key", "你的训练钥匙"),
    "key.help": ("Your runs are yours by a cookie in this browser. On another browser or device, or where this "
                 "page keeps no cookie, type your runs key below and they are yours there too. Keep it to "
                 "yourself: whoever has it can stop your runs.",
                 "你的训练靠本浏览器中的一个 cookie 认出是你的。换一个浏览器或设备，或本页面保存不了 cookie 时，在下面输入你的"
                 "训练钥匙，那里的训练也会认出是你的。请勿告诉别人：拿到钥匙的人可以停止你的训练。"),
    "key.show": ("Show my runs key", "显示我的训练钥匙"),
    "key.type": ("Type a runs key", "输入训练钥匙"),
    "key.wrong": ("This key opens no runs here. (A browser may try {n} keys a minute.)",
                  "这个钥匙在这里打不开任何训练。（每个浏览器每分钟最多试 {n} 次。）"),
    "key.used": ("Key accepted: the runs of that key are yours in this browser now.",
                 "钥匙正确：这个钥匙的训练现在在本浏览器中是你的了。"),
    "key.no_cookies": ("This browser keeps no cookies inside this page, so after a reload the app no longer knows "
                       "which runs are yours. Open the app directly, or show your runs key (in the sidebar) and "
                       "type it again after a reload.",
                       "本浏览器在这个页面里不保存 cookie，所以重新加载后，应用就认不出哪些训练是你的了。请直接打开应用，"
                       "或者（在侧边栏）显示你的训练钥匙，重新加载后再输入一次。"),
    "key.direct": ("The app's own address: {url}", "应用自己的地址：{url}"),
    "key.got_it": ("Got it", "知道了"),
    "page.architecture": ("Architecture", "网络结构"),
    "page.train": ("Train", "训练"),
    "page.batchnorm": ("Batch normalization", "批量规范化"),
    "page.runs": ("Saved runs", "已保存的训练"),
    "page.teacher": ("Class", "班级"),
    "page.exercises": ("Exercises", "练习"),
    "ex.title": ("The book's exercises, as experiments", "书中的练习，做成实验"),
    "ex.intro": ("Each exercise sets up two models, A and B, in one click. Cost exercises compare their ledgers; "
                 "training exercises train both with the same seed and data order and overlay the curves. The "
                 "address keeps the exercise, so a teacher can hand it out as a link.",
                 "每个练习一键设置 A、B 两个模型。计算量练习比较两者的成本表；训练练习用相同的随机种子和数据顺序训练两者并叠加曲线。"
                 "地址栏记录当前练习，老师可以把链接发给学生。"),
    "ex.pick": ("Exercise", "练习"),
    "ex.bad_link": ("This exercise link is not valid: {msg}", "练习链接无效：{msg}"),
    "ex.question": ("Question:", "问题："),
    "ex.look": ("What to look at:", "观察什么："),
    "ex.reported": ("What the book or the paper reports:", "书或论文给出的结果："),
    "ex.col_side": ("model", "模型"),
    "ex.col_knobs": ("knobs", "参数"),
    "ex.col_input": ("input", "输入"),
    "ex.b_over_a": ("B ÷ A", "B ÷ A"),
    "ex.budget": ("The pair trains A, then B, on this machine's CPU: about {s} s for {epochs} epoch(s) on {n} "
                  "examples each. Same seed and data order; B starts from A's initial weights on {same} of its "
                  "{total} parameter tensors (the rest differ in shape or place).",
                  "这一对模型在本机 CPU 上先训练 A 再训练 B：各 {epochs} 轮、{n} 个样本，共约 {s} 秒。随机种子与数据顺序相同；"
                  "B 的 {total} 个参数张量中有 {same} 个与 A 的初始权重相同（其余形状或位置不同）。"),
    "ex.run": ("Run A and B", "运行 A 与 B"),
    "ex.running": ("This pair is training; its curves are below. Run it again once both have ended.",
                   "这一对模型正在训练，曲线见下方。两者都结束后可以再次运行。"),
    "ex.refused": ("The pair was not started: {msg}", "未能开始这一对训练：{msg}"),
    "ex.gone": ("These runs are no longer on this server (it restarted); run the pair again.",
                "这些训练已不在服务器上（服务器已重启）；请重新运行。"),
    "ex.incomplete": ("One of the two runs did not finish, so there is no reading.", "两个训练中有一个未完成，因此没有结论。"),
    "runs.grid_legend": ("Each image: ✓ prediction when right; ✗ prediction (truth) when wrong.",
                         "每张图：预测正确显示 ✓ 预测；预测错误显示 ✗ 预测（真实类别）。"),
    # uploads and loading runs, bounded before the work (#23: cnnlab.ui.analysis, cnnlab.ui.runs_view)
    "msg.img_side": ("the image is {w}×{h} pixels; neither side may be over {most} pixels",
                     "图像有 {w}×{h} 像素；每条边最多 {most} 像素"),
    "msg.img_bomb": ("the image has far more than {most} pixels", "图像远远超过 {most} 像素"),
    "msg.img_decode_big": ("the image ({w}×{h} pixels) needs {need} MB to decode and {most} MB is the most allowed "
                           "here; save it smaller (the model only sees a small square)",
                           "这张图像（{w}×{h} 像素）解码需要 {need} MB，这里最多允许 {most} MB；请把它保存得更小（模型只看一个小方块）"),
    "msg.img_memory": ("the server has no memory left for this image right now; try a smaller one",
                       "服务器现在没有足够的内存处理这张图像；请换一张更小的"),
    "msg.load_big": ("this run's weights need {amount} to load and this server loads at most {allowed} of saved "
                     "runs at a time",
                     "这次训练的权重加载需要 {amount}，而本服务器同时最多加载 {allowed} 的已保存训练"),
    "msg.load_busy": ("the server is busy with other saved runs ({used} of {allowed} in use); try again in a moment",
                      "服务器正忙于其他已保存的训练（已用 {used}，共 {allowed}）；请稍后再试"),
    # costs explained (cnnlab.costs)
    "cost.by_kind": ("Where the parameters and multiply-adds live, by layer kind.", "参数与乘加运算按层的类型分布。"),
    "cost.share": ("share of the total (%)", "占总量的比例（%）"),
    "cost.kind_conv": ("convolution", "卷积层"),
    "cost.kind_linear": ("dense (linear)", "全连接层"),
    "cost.kind_norm": ("normalization", "规范化层"),
    "cost.kind_other": ("other", "其他"),
    "cost.blocks_title": ("Block arithmetic", "块的计算量"),
    "cost.separable_note": ("A depthwise-separable block against the standard convolution it replaces (Howard et al. "
                            "2017, §3.1), with the block's own numbers; D_F² is the output map's size.",
                            "深度可分离块与它所替代的标准卷积的计算量对比（Howard 等 2017，§3.1），使用该块自己的数值；"
                            "D_F² 为输出特征图的大小。"),
    "cost.inverted_note": ("An inverted residual block: 1×1 expansion, k×k depthwise, squeeze-and-excite (V3) and the "
                           "1×1 linear projection, each with the block's own numbers.",
                           "倒残差块：1×1 扩展、k×k 深度卷积、挤压激励（V3）与 1×1 线性投影，均使用该块自己的数值。"),
    "cost.pick_block": ("Block", "块"),
    "arch.diagram": ("Structure", "结构图"),
    "arch.diagram_pick": ("Pick a block to outline it and filter the layer table", "选择一个块：在图中标出并筛选层表"),
    # structure diagrams (cnnlab.diagram): the book's block names and the layers' words, d2l-zh's terms in Chinese
    "dg.conv": ("{k} conv, {c}", "{k} 卷积, {c}"),
    "dg.depthwise": ("{k} depthwise, {c}", "{k} 深度卷积, {c}"),
    "dg.stride": ("stride {s}", "步幅 {s}"),
    "dg.maxpool": ("{k} max pool", "{k} 最大汇聚"),
    "dg.avgpool": ("{k} avg pool", "{k} 平均汇聚"),
    "dg.gap": ("global avg pool", "全局平均汇聚"),
    "dg.flatten": ("flatten", "展平"),
    "dg.dense": ("dense, {n}", "全连接, {n}"),
    "dg.dropout": ("dropout {p}", "暂退法 {p}"),
    "dg.bn": ("BN", "批量规范化"),
    "dg.input": ("input, {c}", "输入, {c}"),
    "dg.concat": ("concat, {total}\n{parts}", "连结, {total}\n{parts}"),
    "dg.add": ("+ → ReLU", "相加 → ReLU"),
    "dg.no_shortcut": ("ReLU (no shortcut)", "ReLU（无残差连接）"),
    "dg.dense_conv": ("conv block {j}: {a} + {k} = {b}", "卷积块 {j}: {a} + {k} = {b}"),
    "dg.dense_more": ("⋮ {n} more conv blocks", "⋮ 另有 {n} 个卷积块"),
    "dg.transition_conv": ("1×1 conv {a} → {b} (θ = {t})", "1×1 卷积 {a} → {b}（θ = {t}）"),
    "dg.mlp": ("1×1 conv, {c} (MLP)", "1×1 卷积, {c}（MLP）"),
    "dg.pointwise": ("1×1 pointwise {a} → {b}", "1×1 逐点卷积 {a} → {b}"),
    "dg.expand": ("1×1 expand {a} → {b}", "1×1 扩展 {a} → {b}"),
    "dg.project": ("1×1 project {a} → {b}, linear", "1×1 投影 {a} → {b}, 线性"),
    "dg.plus_input": ("+ input", "+ 输入"),
    "dg.t_conv": ("conv", "卷积层"),
    "dg.t_maxpool": ("max pool", "最大汇聚层"),
    "dg.t_avgpool": ("avg pool", "平均汇聚层"),
    "dg.t_gap": ("global avg pool", "全局平均汇聚层"),
    "dg.t_flatten": ("flatten", "展平层"),
    "dg.t_dense": ("dense", "全连接层"),
    "dg.t_dropout": ("dropout", "暂退法"),
    "dg.t_bn": ("batch norm", "批量规范化层"),
    "dg.t_act": ("activation", "激活函数"),
    "dg.t_vgg": ("VGG block {i}", "VGG块 {i}"),
    "dg.t_nin": ("NiN block {i}", "NiN块 {i}"),
    "dg.t_inception": ("Inception ({i})", "Inception块 ({i})"),
    "dg.t_residual": ("Residual {i}", "残差块 {i}"),
    "dg.t_denseblock": ("DenseBlock {i}", "稠密块 {i}"),
    "dg.t_transition": ("transition_block {i}", "过渡层 {i}"),
    "dg.t_separable": ("depthwise separable {i}", "深度可分离卷积 {i}"),
    "dg.t_bottleneck": ("bottleneck {i}", "瓶颈块 {i}"),
    "arch.table_block": ("Rows of block {block} only ({n} rows; numbers as in the whole table). Pick it again to "
                         "see every row.", "仅显示块 {block} 的行（{n} 行；编号与完整层表一致）。再次点击该块可显示全部行。"),
    "cost.compare": ("Compare with another setting", "与另一种设置比较"),
    "cost.compare_help": ("Pick a second architecture or other knobs (B): ledgers, shape traces and layer tables "
                          "side by side, with B's change against A.",
                          "选择第二个网络或另一组参数（B）：并排显示成本表、形状变化与层表，并给出 B 相对 A 的变化。"),
    "cost.compare_title": ("Compare: A (above) and B", "比较：A（上方）与 B"),
    "cost.compare_b": ("B: architecture and knobs", "B：网络与参数"),
    "cost.against_a": ("change against A", "相对 A 的变化"),
    "cost.vs_a": ("× A", "× A"),
    "cost.standard": ("standard convolution", "标准卷积"),
    "cost.depthwise": ("depthwise", "深度卷积"),
    "cost.pointwise": ("pointwise (1×1)", "逐点卷积（1×1）"),
    "cost.separable": ("depthwise + pointwise", "深度 + 逐点"),
    "cost.ratio": ("ratio", "比值"),
    "cost.ledger": ("the ledger counts {n} multiply-adds for these two layers ({ok} depthwise + pointwise)",
                    "成本表中这两层共 {n} 次乘加（{ok} 深度 + 逐点）"),
    "cost.ledger_part": ("ledger: {macs} MACs, {params} params", "成本表：{macs} 次乘加，{params} 个参数"),
    "cost.col_block": ("block", "块"),
    "cost.role_expand": ("1×1 expansion", "1×1 扩展"),
    "cost.role_depthwise": ("k×k depthwise", "k×k 深度卷积"),
    "cost.role_se": ("squeeze-and-excite (parameters)", "挤压激励（参数量）"),
    "cost.role_project": ("1×1 linear projection", "1×1 线性投影"),

    # architecture page
    "arch.title": ("Architecture explorer", "网络结构浏览器"),
    "arch.intro": ("Pick a network and turn its knobs: the layer table, the shape trace and the cost update at once. "
                   "The address bar keeps your choice, so a copied link opens the same view.",
                   "选择一个网络并调节它的超参数：层表、形状变化和计算代价会立即更新。"
                   "地址栏会记录当前选择，复制链接即可打开相同的视图。"),
    "arch.pick": ("Architecture", "网络"),
    "arch.knobs": ("Knobs", "超参数"),
    "arch.input": ("Input", "输入"),
    "arch.in_channels": ("input channels", "输入通道数"),
    "arch.num_classes": ("classes", "类别数"),
    "arch.resolution": ("resolution (height = width)", "分辨率（高 = 宽）"),
    "arch.reset": ("Reset to the book's defaults", "恢复书中的默认值"),
    "arch.range": ("range", "范围"),
    "arch.presets": ("presets", "预设"),
    "arch.cost": ("Cost ledger", "计算代价"),
    "arch.params": ("parameters", "参数量"),
    "arch.macs": ("multiply-adds (MACs)", "乘加运算（MACs）"),
    "arch.act_mem": ("activation memory / sample", "每个样本的激活内存"),
    "arch.vs_default": ("× the default", "× 默认值"),
    "arch.cost_note": ("For one {c}×{h}×{w} input; the change is against the default knobs at the same input size.",
                       "针对一个 {c}×{h}×{w} 的输入；变化量相对于同一输入尺寸下的默认超参数。"),
    "arch.trace": ("Shape trace", "形状变化"),
    "arch.trace_note": ("Top: the feature map's height × width after each layer; bottom: its channels. "
                        "Watch the spatial size shrink while the channels grow.",
                        "上：每层输出特征图的高 × 宽；下：通道数。空间尺寸在缩小，通道数在增加。"),
    "arch.trace_detail": ("detail", "粒度"),
    "arch.detail_blocks": ("blocks", "块"),
    "arch.detail_layers": ("every layer", "每一层"),
    "arch.table": ("Layer table", "层表"),
    "arch.book": ("Book training recipe: lr {lr}, batch size {bs}, {epochs} epochs at {res}×{res}{acc}.",
                  "书中的训练设置：学习率 {lr}，批量大小 {bs}，{epochs} 轮，输入 {res}×{res}{acc}。"),
    "arch.book_acc": (", test accuracy ≈ {acc:.0%}", "，测试精度约 {acc:.0%}"),
    "arch.source": ("Source", "出处"),
    "msg.url_unknown": ("the link names settings this page does not have, so they are ignored: {names}",
                        "链接中包含本页没有的设置，已忽略：{names}"),
    "arch.url_bad": ("The link had a value that cannot be used, so the default is shown: {msg}",
                     "链接中的取值无法使用，已显示默认值：{msg}"),
    "arch.invalid": ("These knobs cannot be built: {msg}", "无法用这些超参数构建网络：{msg}"),
    "col.layer": ("layer", "层"),
    "col.type": ("type", "类型"),
    "col.shape": ("output shape", "输出形状"),
    "col.params": ("params", "参数量"),
    "col.macs": ("MACs", "乘加运算"),
    "fig.layer": ("layer", "层"),
    "fig.hw": ("height × width", "高 × 宽"),
    "fig.channels": ("channels", "通道数"),

    # train page
    "train.title": ("Train on Fashion-MNIST", "在 Fashion-MNIST 上训练"),
    "train.preset": ("Preset", "预设"),
    "train.preset_custom": ("(custom)", "（自定义）"),
    "train.assignment": ("Assignment {title}. Fixed by your teacher: {fixed}. Yours to change: {free}.",
                         "作业 {title}。老师已固定：{fixed}。可以自行修改：{free}。"),
    "train.assignment_broken": ("Not started: {names} must stay as the assignment sets them (reload the assignment link).",
                                "未开始：{names} 必须保持作业中的设置（请重新打开作业链接）。"),
    "train.label_epochs": ("{n} ep", "{n} 轮"),
    "train.label_lr": ("lr {lr}", "学习率 {lr}"),
    "train.label_bs": ("bs {n}", "批量 {n}"),
    "train.preset_changed": ("Changed from this preset: {changes}. Start trains these settings.",
                             "已在此预设基础上修改：{changes}。开始训练将使用当前设置。"),
    "train.model": ("Model", "模型"),
    "train.hparams": ("Training", "训练设置"),
    "train.epochs": ("epochs", "迭代周期数"),
    "train.lr": ("learning rate", "学习率"),
    "train.lr_help": ("The book's learning rate for this model is {lr}.", "书中该模型的学习率为 {lr}。"),
    "train.batch_size": ("batch size", "批量大小"),
    "train.optimizer": ("optimizer", "优化器"),
    "train.weight_decay": ("weight decay", "权重衰减"),
    "train.train_size": ("training examples (60000 = all)", "训练样本数（60000 = 全部）"),
    "train.test_size": ("test examples (10000 = all)", "测试样本数（10000 = 全部）"),
    "train.resolution": ("resolution", "分辨率"),
    "train.device": ("device", "设备"),
    "train.seed": ("seed", "随机种子"),
    "train.cpu_note": ("No GPU here: training runs on the CPU. LeNet and BN-LeNet train on the full data set in "
                       "minutes; for the big networks pick a CPU preset (reduced resolution, a subset, fewer epochs).",
                       "这里没有 GPU，训练在 CPU 上进行。LeNet 和 BN-LeNet 可以在几分钟内用全部数据训练完；"
                       "较大的网络请选择 CPU 预设（降低分辨率、使用子集、减少迭代周期）。"),
    "train.gpu_note": ("A GPU is available: {name}.", "可以使用 GPU：{name}。"),
    "train.gpu_why_not": ("Why not the GPU: {reason}", "未使用 GPU 的原因：{reason}"),
    "train.start": ("Start", "开始训练"),
    "train.stop": ("Stop", "停止"),
    "train.started": ("Run {id} submitted.", "已提交训练 {id}。"),
    "train.no_engine": ("The training engine is not available: {msg}", "训练引擎不可用：{msg}"),
    "train.run": ("Run", "训练"),
    "train.no_runs": ("No run yet: choose the settings and press Start.", "还没有训练：设置好参数后点击“开始训练”。"),
    "train.state": ("state", "状态"),
    "state.queued": ("queued", "排队中"),
    "state.running": ("running", "训练中"),
    "state.done": ("done", "已完成"),
    "state.failed": ("failed", "失败"),
    "state.stopped": ("stopped", "已停止"),
    "state.cancelled": ("cancelled", "已取消"),
    "train.progress": ("epoch {epoch}/{epochs} · step {step}/{total}", "第 {epoch}/{epochs} 轮 · 第 {step}/{total} 步"),
    "train.speed": ("examples/s", "样本/秒"),
    "train.eta": ("ETA", "预计剩余"),
    "train.test_acc": ("test acc", "测试精度"),
    "train.train_acc": ("train acc", "训练精度"),
    "train.loss": ("train loss", "训练损失"),
    "train.done": ("Finished: test accuracy {acc:.3f} after {epochs} epochs in {wall}. Saved as {name} (Saved runs).",
                   "训练完成：{epochs} 轮后测试精度 {acc:.3f}，用时 {wall}。已保存为 {name}（见“已保存的训练”）。"),
    "train.done_1": ("Finished: test accuracy {acc:.3f} after 1 epoch in {wall}. Saved as {name} (Saved runs).",
                     "训练完成：1 轮后测试精度 {acc:.3f}，用时 {wall}。已保存为 {name}（见“已保存的训练”）。"),
    "train.stopped": ("Stopped: {msg}. The checkpoint is kept as {name} (Saved runs).",
                      "已停止：{msg}。检查点已保存为 {name}（见“已保存的训练”）。"),
    "train.cancelled": ("Cancelled while it waited in the queue: it never started, so nothing was saved.",
                        "在排队时已取消：训练没有开始，因此没有保存任何内容。"),
    "train.by_teacher": ("Your teacher stopped this run.", "老师停止了这个训练。"),
    "train.not_started": ("{name} ({what}) was waiting when the server restarted, so it never started: press Start "
                          "to queue it again.", "{name}（{what}）在服务器重启时仍在排队，因此没有开始：请按“开始”重新排队。"),
    "train.dismiss": ("Dismiss", "知道了"),
    "train.expected_wait": ("Expected wait: {time}.", "预计等待：{time}。"),
    "train.queued_next": ("Waiting in the queue: yours is next.", "正在排队：下一个就轮到你。"),
    "train.queued_one": ("Waiting in the queue: 1 run is ahead of yours.", "正在排队：前面还有 1 个训练。"),
    "train.queued_many": ("Waiting in the queue: {ahead} runs are ahead of yours.", "正在排队：前面还有 {ahead} 个训练。"),
    "train.failed": ("The run failed ({reason}): {msg}", "训练失败（{reason}）：{msg}"),
    "train.waiting_data": ("Preparing data and model…", "正在准备数据和模型……"),
    "train.invalid": ("These settings cannot be trained: {msg}", "无法用这些设置训练：{msg}"),
    "fig.epoch": ("epoch", "迭代周期"),
    "fig.acc": ("accuracy", "精度"),
    "fig.loss": ("loss", "损失"),
    "fig.test_acc": ("test acc", "测试精度"),
    "fig.train_acc": ("train acc", "训练精度"),
    "fig.train_acc_epoch": ("train acc (epoch)", "训练精度（每轮）"),
    "fig.train_loss": ("train loss", "训练损失"),

    # batchnorm page
    "bn.title": ("Batch normalization (批量规范化)", "批量规范化"),
    "bn.intro": ("The learned scale γ and shift β of every channel, and the running statistics against the "
                 "last batch's — the book's `net[1].gamma` moment, made visual.",
                 "每个通道学到的拉伸参数 γ 和偏移参数 β，以及移动平均统计量与最近一个小批量统计量的对比——"
                 "把书中查看 `net[1].gamma` 的那一刻画出来。"),
    "bn.source": ("Run", "训练"),
    "bn.no_runs": ("No run with batch normalization yet. Train BN-LeNet (LeNet with batchnorm = scratch or nn), "
                   "a ResNet or a DenseNet on the Train page.",
                   "还没有含批量规范化的训练。请在“训练”页训练 BN-LeNet（LeNet 的 batchnorm 设为 scratch 或 nn）、"
                   "ResNet 或 DenseNet。"),
    "bn.no_snapshots": ("This run has no batch-normalization snapshots yet.", "这次训练还没有批量规范化的快照。"),
    "bn.layer": ("BN layer", "批量规范化层"),
    "bn.gamma": ("γ (scale)", "γ（拉伸）"),
    "bn.beta": ("β (shift)", "β（偏移）"),
    "bn.heat": ("γ and β per channel over the snapshots", "各通道的 γ 和 β 随快照的变化"),
    "bn.latest": ("Latest values per channel", "各通道的最新值"),
    "bn.stats": ("Running statistics vs the last batch", "移动平均统计量与最近一个小批量的统计量"),
    "bn.snapshot": ("snapshot", "快照"),
    "bn.channel": ("channel", "通道"),
    "bn.running_mean": ("running mean", "移动平均均值"),
    "bn.batch_mean": ("batch mean", "小批量均值"),
    "bn.running_var": ("running var", "移动平均方差"),
    "bn.batch_var": ("batch var", "小批量方差"),
    "bn.demo": ("Scratch BatchNorm = nn.BatchNorm2d?", "从零实现的 BatchNorm 与 nn.BatchNorm2d 相同吗？"),
    "bn.demo_intro": ("The book's `BatchNorm` (cnnlab.layers.BatchNorm, state in buffers) and torch's "
                      "`nn.BatchNorm2d` on the same random batch, with the same γ, β and momentum "
                      "(the book's 0.9 is torch's 0.1).",
                      "书中的 `BatchNorm`（cnnlab.layers.BatchNorm，状态保存在 buffer 中）与框架的 "
                      "`nn.BatchNorm2d` 作用于同一个随机小批量，γ、β 和动量相同（书中的 0.9 即框架的 0.1）。"),
    "bn.demo_channels": ("channels", "通道数"),
    "bn.demo_batch": ("batch size", "批量大小"),
    "bn.demo_steps": ("training steps", "训练步数"),
    "bn.demo_seed": ("seed", "随机种子"),
    "bn.demo_mode": ("mode", "模式"),
    "bn.demo_quantity": ("quantity", "量"),
    "bn.demo_diff": ("max |scratch − nn|", "最大绝对差 |scratch − nn|"),
    "bn.demo_equal": ("Equal to within {tol:g} in train and eval mode.", "训练模式和预测模式下均在 {tol:g} 以内相等。"),
    "bn.demo_differ": ("They differ by more than {tol:g}.", "两者之差超过 {tol:g}。"),
    "bn.saved": ("saved", "已保存"),
    "bn.live": ("live", "进行中"),
    "bn.bad_history": ("The BN history of this run cannot be read: {msg}", "无法读取这次训练的批量规范化记录：{msg}"),
    "bn.unreadable": ("Runs that cannot be read ({n})", "无法读取的训练（{n} 个）"),

    # runs page
    "runs.title": ("Saved runs", "已保存的训练"),
    "runs.none": ("No saved runs in {root} yet: train one on the Train page (or `python -m cnnlab train`).",
                  "{root} 中还没有保存的训练：请在“训练”页训练一个（或运行 `python -m cnnlab train`）。"),
    "runs.table": ("Runs", "训练列表"),
    "runs.compare": ("Compare runs", "比较训练"),
    "runs.compare_pick": ("runs to compare", "要比较的训练"),
    "runs.compare_hint": ("Pick two or more runs to draw their curves on one chart.", "选择两个或更多训练，在同一张图中比较曲线。"),
    "runs.metric": ("curve", "曲线"),
    "runs.load": ("Load a run", "加载训练"),
    "runs.pick": ("run", "训练"),
    "runs.load_failed": ("This run cannot be loaded: {msg}", "无法加载这次训练：{msg}"),
    "runs.predict": ("Predictions on test images", "测试图像上的预测"),
    "runs.n_images": ("images", "图像数"),
    "runs.offset": ("first test image", "起始测试图像"),
    "runs.upload": ("Predict an uploaded image", "预测上传的图像"),
    "runs.upload_label": ("an image (PNG, JPEG, BMP, GIF or WebP, at most {mb} MB)",
                          "一张图像（PNG、JPEG、BMP、GIF 或 WebP，不超过 {mb} MB）"),
    "runs.invert": ("invert (Fashion-MNIST has light clothes on a dark background)",
                    "反色（Fashion-MNIST 是深色背景上的浅色衣物）"),
    "runs.bad_image": ("That file cannot be used: {msg}", "无法使用该文件：{msg}"),
    "runs.model_input": ("model input", "模型输入"),
    "runs.prediction": ("prediction", "预测"),
    "runs.probability": ("probability", "概率"),
    "runs.features": ("Feature maps", "特征图"),
    "runs.conv": ("conv layer", "卷积层"),
    "runs.image_index": ("test image", "测试图像"),
    "runs.no_conv": ("This model has no convolutional layer.", "该模型没有卷积层。"),
    "runs.confusion": ("Confusion matrix", "混淆矩阵"),
    "runs.conf_n": ("test images used", "使用的测试图像数"),
    "runs.true": ("true", "真实"),
    "runs.pred": ("predicted", "预测"),
    "runs.accuracy": ("accuracy on these images: {acc:.3f}", "在这些图像上的精度：{acc:.3f}"),
    "runs.col_run": ("run", "训练"),
    "runs.col_arch": ("architecture", "网络"),
    "runs.col_knobs": ("knobs", "超参数"),
    "runs.col_status": ("status", "状态"),
    "runs.col_epochs": ("epochs", "迭代周期"),
    "runs.col_created": ("created", "创建时间"),
    "runs.col_error": ("error", "错误"),
    "runs.unreadable": ("{n} run folder(s) cannot be read; the error column says why. The other runs are shown.",
                        "有 {n} 个训练文件夹无法读取，原因见“错误”一列；其他训练照常显示。"),

    # shared
    "common.error": ("Something went wrong: {msg}", "出错了：{msg}"),
    "common.choose": ("Choose", "请选择"),
    "common.no_options": ("Nothing to choose yet", "暂无可选项"),
    "common.details": ("Details (the full traceback, for a bug report)", "详细信息（完整的错误栈，用于报告问题）"),

    # architecture page: layer arithmetic (kernel / stride / padding, receptive field, input too small)
    "col.num": ("#", "#"),
    "col.kernel": ("kernel", "卷积核"),
    "col.stride": ("stride", "步幅"),
    "col.padding": ("padding", "填充"),
    "col.groups": ("groups", "分组数"),
    "col.dilation": ("dilation", "膨胀率"),
    "col.rf": ("receptive field (px)", "感受野（像素）"),
    "arch.table_note": ("kernel, stride, padding: the conv/pool window (one number when height and width agree); "
                        "receptive field: how many input pixels one output pixel sees, r_out = r_in + (k − 1)·j_in, "
                        "where j is the stride of the layer's grid in input pixels. Where branches meet "
                        "(Inception, residual, dense blocks) it is the largest over the branches.",
                        "卷积核、步幅、填充：卷积或汇聚窗口的参数（高宽相同时只写一个数）；"
                        "感受野：一个输出像素能看到的输入像素范围，r_out = r_in + (k − 1)·j_in，"
                        "其中 j 是该层网格在输入上的间距（像素）。多个分支汇合处（Inception、残差块、稠密块）取各分支的最大值。"),
    "arch.arith": ("Layer arithmetic", "逐层计算"),
    "arch.explain": ("explain a layer", "讲解一层"),
    "arch.explain_size": ("Output size, with this layer's own n (input), k (kernel), p (padding) and s (stride):",
                          "输出尺寸，用这一层自己的 n（输入）、k（卷积核）、p（填充）和 s（步幅）计算："),
    "arch.explain_rf": ("Receptive field step: r is how many input pixels one output pixel sees, j the distance in "
                        "input pixels between neighbouring outputs:",
                        "感受野的递推：r 是一个输出像素看到的输入像素数，j 是相邻输出在输入上相隔的像素数："),
    "arch.explain_none": ("This network has no convolution or pooling layer.", "这个网络没有卷积层或汇聚层。"),
    "arch.rf_note": ("Receptive field after each block or layer (as the shape trace's detail; numbers as in the "
                     "layer table), against the input size: above the dashed line part of the field lies on the "
                     "padding.",
                     "每个块或每一层之后的感受野（粒度同形状变化图，编号与层表一致），与输入尺寸对照："
                     "虚线以上的部分落在填充上。"),
    "arch.too_small": ("Input too small for this network: {msg}", "输入对这个网络来说太小：{msg}"),
    "arch.too_small_trace": ("The layers up to the one where the height or width reaches zero:",
                             "直到高或宽变为零的那一层为止的各层："),
    "fig.input": ("input", "输入"),
    "fig.rf": ("receptive field (px)", "感受野（像素）"),
    "fig.input_size": ("input size", "输入尺寸"),
    # runs: owned runs, the queue, admission (cnnlab.runs)
    "state.interrupted": ("interrupted", "已中断"),
    "state.finished": ("finished", "已完成"),
    # teacher mode and nicknames (cnnlab.teacher, cnnlab.classroom)
    "teacher.nickname": ("Nickname (shown to your teacher)", "昵称（老师可见）"),
    "teacher.nickname_help": ("No account: your runs are yours in this browser; the nickname tells your teacher "
                              "which runs are yours.", "无需账号：训练属于此浏览器；昵称让老师知道哪些训练是你的。"),
    "teacher.password": ("Teacher password", "教师密码"),
    "teacher.signed_in": ("Signed in as teacher: the Class page shows every run.", "已以教师身份登录：班级页面显示所有训练。"),
    "teacher.sign_out": ("Sign out", "退出登录"),
    "teacher.wrong": ("Wrong teacher password.", "教师密码错误。"),
    "teacher.wait": ("Too many wrong passwords: try again in {s} s.", "密码错误次数过多：请 {s} 秒后再试。"),
    "teacher.title": ("Class", "班级"),
    "teacher.off": ("Teacher mode is off on this server (set CNNLAB_TEACHER_PASSWORD to turn it on).",
                    "此服务器未开启教师模式（设置 CNNLAB_TEACHER_PASSWORD 即可开启）。"),
    "teacher.sign_in_first": ("Sign in as teacher in the sidebar to see the class.", "请在侧边栏以教师身份登录以查看班级。"),
    "teacher.view": ("View", "视图"),
    "teacher.tab_board": ("Class board", "班级看板"),
    "teacher.clear_queue": ("Clear the queue ({n} waiting)", "清空队列（{n} 个等待中）"),
    "teacher.cleared": ("{n} waiting runs cancelled.", "已取消 {n} 个等待中的训练。"),
    "teacher.stop_owner": ("Stop all of {who}'s runs ({n})", "停止 {who} 的全部训练（{n} 个）"),
    "teacher.stopped_owner": ("{n} runs of {who} stopped.", "已停止 {who} 的 {n} 个训练。"),
    "teacher.tab_runs": ("All runs", "所有训练"),
    "teacher.tab_assign": ("Assignments", "作业"),
    "teacher.runs_caption": ("{n} runs in the class, {active} training or waiting.", "班级共有 {n} 个训练，{active} 个正在训练或排队。"),
    "teacher.no_runs": ("No runs yet: the board fills as students start them.", "还没有训练：学生开始训练后看板会自动更新。"),
    "teacher.board_pick": ("Runs of", "显示"),
    "teacher.group_assignment": ("Assignment: {title}", "作业：{title}"),
    "teacher.group_preset": ("Preset: {title}", "预设：{title}"),
    "teacher.group_arch": ("Own settings: {title}", "自定义设置：{title}"),
    "teacher.col_who": ("student", "学生"),
    "teacher.col_run": ("run", "训练"),
    "teacher.col_state": ("state", "状态"),
    "teacher.col_model": ("model", "模型"),
    "teacher.col_knobs": ("knobs", "参数"),
    "teacher.col_epochs": ("epochs", "轮数"),
    "teacher.col_test_acc": ("test acc", "测试精度"),
    "teacher.col_pinned": ("pinned", "已固定"),
    "teacher.pick_run": ("Run", "训练"),
    "teacher.stop": ("Stop", "停止"),
    "teacher.stopped": ("Stopping {id}.", "正在停止 {id}。"),
    "teacher.pin": ("Pin (never pruned)", "固定（不会被清理）"),
    "teacher.unpin": ("Unpin", "取消固定"),
    "teacher.delete": ("Delete", "删除"),
    "teacher.deleted": ("Deleted {id}.", "已删除 {id}。"),
    "teacher.assign_preset": ("Preset", "预设"),
    "teacher.assign_title": ("Title", "标题"),
    "teacher.assign_locked": ("Fixed settings", "固定的设置"),
    "teacher.assign_locked_help": ("Students cannot change these; the others stay open. arch = model, res = input "
                                   "size, ep = epochs, bs = batch size, ntr / nte = training / test examples.",
                                   "学生不能修改这些设置，其余设置仍可修改。arch = 模型，res = 输入尺寸，ep = 轮数，"
                                   "bs = 批量大小，ntr / nte = 训练 / 测试样本数。"),
    "teacher.assign_make": ("Publish the assignment", "发布作业"),
    "teacher.assign_made": ("Assignment {title} published: give the class this link.", "作业 {title} 已发布：把这个链接发给全班。"),
    "teacher.assign_fixed": ("fixed", "固定"),
    "train.others": ("Other people: {running} training, {queued} waiting (their settings stay private).",
                     "其他人：{running} 个正在训练，{queued} 个在排队（他们的设置不公开）。"),
    "train.my_runs": ("Only your own runs are listed here; only you can stop them.",
                      "这里只列出你自己的训练，也只有你能停止它们。"),
    "train.estimate": ("Estimate before Start: {text}.", "开始前的估计：{text}。"),
    # -- time estimates (cnnlab.runs.admission: fmt_time, TimeEstimate.text; #21 §4) --
    "msg.about_s": ("≈ {n} s", "约 {n} 秒"),
    "msg.about_min": ("≈ {n} min", "约 {n} 分钟"),
    "msg.about_h": ("≈ {n} h", "约 {n} 小时"),
    "msg.n_s": ("{n} s", "{n} 秒"),
    "msg.n_min": ("{n} min", "{n} 分钟"),
    "msg.n_h": ("{n} h", "{n} 小时"),
    "msg.t_quiet": ("{time} on a quiet machine", "空闲机器上{time}"),
    "msg.t_now": ("{time} here now", "此刻在本机{time}"),
    "msg.t_wait": ("{time} here now, {wait} of it waiting behind {n} run(s)",
                   "此刻在本机{time}，其中{wait}排在前面 {n} 个训练之后"),
    "msg.t_busy": ("{text}; the machine is busy (≈ {x}× slower than when quiet)",
                   "{text}；机器正忙（约比空闲时慢 {x} 倍）"),
    "msg.est_mem": ("≈ {mem} of memory on this {dev}; time: {time}", "在这台 {dev} 上约需 {mem} 内存；时间：{time}"),
    "ex.budget_est": ("The pair trains A, then B, on this machine's CPU: {time} for {epochs} epoch(s) on {n} "
                      "examples each. Same seed and data order; B starts from A's initial weights on {same} of its "
                      "{total} parameter tensors (the rest differ in shape or place).",
                      "这一对模型在本机 CPU 上先训练 A 再训练 B：各 {epochs} 轮、{n} 个样本，{time}。随机种子与数据顺序相同；"
                      "B 的 {total} 个参数张量中有 {same} 个与 A 的初始权重相同（其余形状或位置不同）。"),
    # -- end of time estimates --
    "train.estimate_wall": ("Runs longer than {min} min are stopped (the checkpoint is kept).",
                            "超过 {min} 分钟的训练会被停止（检查点会保留）。"),
    "train.time_limit": ("Stopped at the time limit: {msg}. The checkpoint is kept as {name} (Saved runs).",
                         "达到时间上限而停止：{msg}。检查点已保存为 {name}（见“已保存的训练”）。"),
    "arch.train_this": ("Train this", "训练这个模型"),
    "runs.status.running": ("running", "训练中"),
    "runs.status.finished": ("finished", "已完成"),
    "runs.status.stopped": ("stopped", "已停止"),
    "runs.status.failed": ("failed", "失败"),
    "runs.status.interrupted": ("interrupted (server restarted)", "已中断（服务器重启）"),
    "runs.status.unreadable": ("unreadable", "无法读取"),
    # where runs are saved (Saved runs page; the hosted image picks /data or a temp folder)
    "runs.where": ("Runs are saved in `{root}`.", "训练记录保存在 `{root}`。"),
    "runs.where_server": ("Runs are kept on this server and listed here.", "训练记录保存在本服务器上，列在此页。"),
    "runs.where_server_persistent": ("Runs are kept on this server's persistent storage and listed here: they "
                                     "survive a restart.", "训练记录保存在本服务器的持久存储中，列在此页：重启后仍在。"),
    "runs.where_server_temp": ("Runs are kept on this server without persistent storage: they are lost when the app "
                               "restarts.", "训练记录保存在本服务器上，但没有持久存储：应用重启后会丢失。"),
    "runs.fm_source": ("image", "图像"),
    "runs.fm_test": ("a test image", "测试图像"),
    "runs.fm_upload": ("your uploaded image", "你上传的图像"),
    "runs.none_here": ("No saved runs yet: train one on the Train page.", "还没有保存的训练：请在“训练”页训练一个。"),
    "runs.where_persistent": ("Runs are saved in `{root}` (persistent storage: they survive a restart).",
                              "训练记录保存在 `{root}`（持久存储：重启后仍在）。"),
    "runs.where_temp": ("No persistent storage (/data): runs are saved in the temporary folder `{root}` and are "
                        "lost when the app restarts.",
                        "没有持久存储（/data）：训练记录保存在临时文件夹 `{root}`，应用重启后会丢失。"),
    # sentences the library says: msg(key, **fields) makes a Message, text_of(message, lang) renders it
    "msg.range_bool": ("on or off", "开或关"),
    "msg.range_choice": ("one of {choices}", "以下之一：{choices}"),
    "msg.range_ints": ("{min_len}..{max_len} comma-separated integers, each in {lo}..{hi}",
                       "{min_len}..{max_len} 个逗号分隔的整数，每个在 {lo}..{hi} 之间"),
    "msg.range_int": ("an integer in {lo}..{hi}", "{lo}..{hi} 之间的整数"),
    "msg.range_float": ("a number in {left}{lo}, {hi}]", "区间 {left}{lo}, {hi}] 中的数"),
    "msg.knob_bad": ("{knob} must be {range}, got {got}", "{knob} 必须是 {range}，收到的是 {got}"),
    "msg.knob_unknown": ("unknown knob {name} for {arch}; its knobs are: {names}",
                         "{arch} 没有参数 {name}；它的参数有：{names}"),
    "msg.arch_unknown": ("unknown architecture {name}; choose one of: {names}", "没有网络 {name}；可选：{names}"),
    "msg.too_small": ("input too small: layer {layer} ({type}) gets {h}×{w}, {formula}",
                      "输入太小：第 {layer} 层（{type}）的输入只有 {h}×{w}，{formula}"),
    "msg.too_small_out": ("input too small: layer {layer} ({type}) outputs {h}×{w}",
                          "输入太小：第 {layer} 层（{type}）的输出只有 {h}×{w}"),
    "msg.fits_never": ("{err}; {arch} cannot be built with these knobs at any resolution up to 1024",
                       "{err}；{arch} 在这组参数下，分辨率不超过 1024 时都无法构建"),
    "msg.fits_from": ("{err}; resolution must be at least {need} for {arch} with these knobs, got {got}",
                      "{err}；{arch} 在这组参数下分辨率至少为 {need}，当前为 {got}"),
    "msg.data_size": ("{name} must be at most {most} (the data set's size), got {got}",
                      "{name} 最多为 {most}（数据集的大小），收到的是 {got}"),
    "msg.cannot_write": ("cannot write the run folder under {dir} ({why})", "无法在 {dir} 下写入训练文件夹（{why}）"),
    "msg.checkpoint_write": ("could not write the checkpoint in {dir} ({why})", "无法在 {dir} 中写入检查点（{why}）"),
    "msg.data_res": ("the data are {size}×{size} but the model takes {model}×{model}",
                     "数据是 {size}×{size}，但模型的输入是 {model}×{model}"),
    "msg.data_classes": ("the data have {n} classes but the model has only {outputs} outputs",
                         "数据有 {n} 个类别，但模型只有 {outputs} 个输出"),
    "msg.stopped": ("stopped at step {step} (epoch {epoch}) on request", "应请求在第 {step} 步（第 {epoch} 轮）停止"),
    "msg.nan": ("the loss became NaN at step {step} (epoch {epoch}); try a smaller learning rate than {lr}",
                "损失在第 {step} 步（第 {epoch} 轮）变成了 NaN；请试用比 {lr} 更小的学习率"),
    "msg.oom": ("the device ran out of memory at step {step}; try a smaller batch size or resolution ({why})",
                "设备在第 {step} 步内存不足；请试用更小的批量大小或分辨率（{why}）"),
    "msg.wall_limit": ("stopped after the wall-time limit of {mins} min at step {step}; the checkpoint is kept",
                       "达到 {mins} 分钟的运行时间上限，在第 {step} 步停止；检查点已保留"),
    "msg.cancelled": ("cancelled before it started", "开始之前已取消"),
    "msg.cancelled_shutdown": ("cancelled: the server shut down", "已取消：服务器已关闭"),
    "msg.shutdown": ("the server shut down", "服务器已关闭"),
    "msg.wall_killed": ("stopped at the wall-time limit; its worker had to be ended",
                        "达到运行时间上限而停止；它的工作进程被强制结束"),
    "msg.no_stop": ("the run did not stop within {secs} s, so its worker was ended",
                    "训练在 {secs} 秒内没有停止，因此它的工作进程被强制结束"),
    "msg.worker_died": ("the worker process died", "工作进程已退出"),
    "msg.worker_signal": ("the worker process died ({sig}: {why})", "工作进程已退出（{sig}：{why}）"),
    "msg.worker_exit": ("the worker process exited with status {code}", "工作进程以状态 {code} 退出"),
    "msg.sig_killed": ("killed, e.g. by the out-of-memory killer", "被杀死，例如被内存不足处理程序"),
    "msg.sig_crash": ("a crash", "崩溃"),
    "msg.sig_aborted": ("aborted", "中止"),
    "msg.sig_terminated": ("terminated", "被终止"),
    "msg.sig_other": ("a signal", "收到信号"),
    "msg.ray_no_start": ("Ray could not start the run ({why})", "Ray 无法开始这次训练（{why}）"),
    "msg.ray_silent": ("the Ray worker training this run stopped answering", "训练这次运行的 Ray 工作进程不再响应"),
    "msg.ray_failed": ("the Ray worker failed ({type})", "Ray 工作进程出错（{type}）"),
    "msg.no_final": ("the run ended without a final event", "训练结束时没有最终事件"),
    "msg.ray_wall_killed": ("stopped at the wall-time limit; its Ray worker had to be ended",
                            "达到运行时间上限而停止；它的 Ray 工作进程被强制结束"),
    "msg.ray_no_stop": ("the run did not stop within {secs} s, so its Ray worker was ended",
                        "训练在 {secs} 秒内没有停止，因此它的 Ray 工作进程被强制结束"),
    "msg.ray_start_timeout": ("Ray did not start this run within {mins} min (the cluster has no room for it or "
                              "cannot set up its worker)",
                              "Ray 没有在 {mins} 分钟内开始这次训练（集群没有空间或无法准备工作进程）"),
    "msg.ray_no_gpu": ("this Ray cluster has no GPU: train on the CPU (device auto or cpu)",
                       "这个 Ray 集群没有 GPU：请在 CPU 上训练（设备选 auto 或 cpu）"),
    "reason.error": ("error", "错误"),
    "reason.nan_loss": ("loss became NaN", "损失为 NaN"),
    "reason.out_of_memory": ("out of memory", "内存不足"),
    "reason.worker_died": ("worker died", "工作进程退出"),
    "reason.stopped": ("stopped", "已停止"),
    "reason.time_limit": ("time limit", "时间上限"),
    "msg.gpu_hidden": ("CUDA_VISIBLE_DEVICES is set to {value}, which hides every GPU from this process",
                       "CUDA_VISIBLE_DEVICES 被设为 {value}，这个进程看不到任何 GPU"),
    "msg.gpu_no_cuda_build": ("this torch build ({torch}) has no CUDA support; install a CUDA build of torch",
                              "这个 torch 版本（{torch}）不支持 CUDA；请安装支持 CUDA 的 torch"),
    "msg.gpu_no_driver": ("no NVIDIA driver was found (no /proc/driver/nvidia/version, libcuda.so.1 does not load)",
                          "没有找到 NVIDIA 驱动（没有 /proc/driver/nvidia/version，libcuda.so.1 无法加载）"),
    "msg.gpu_old_driver": ("the NVIDIA driver {drv} supports CUDA up to {dcuda}, but torch {torch} is built for "
                           "CUDA {tcuda}; update the driver, or install a torch built for CUDA {major}.x "
                           "(PyTorch's {tag} wheels, as its install guide lists them)",
                           "NVIDIA 驱动 {drv} 最高支持 CUDA {dcuda}，但 torch {torch} 是为 CUDA {tcuda} 构建的；请更新驱动，"
                           "或安装为 CUDA {major}.x 构建的 torch（PyTorch 安装指南中的 {tag} 版本）"),
    "msg.gpu_old_driver_need": ("the NVIDIA driver {drv} supports CUDA up to {dcuda}, but torch {torch} is built for "
                                "CUDA {tcuda} and needs driver {need} or newer; update the driver, or install a torch "
                                "built for CUDA {major}.x (PyTorch's {tag} wheels, as its install guide lists them)",
                                "NVIDIA 驱动 {drv} 最高支持 CUDA {dcuda}，但 torch {torch} 是为 CUDA {tcuda} 构建的，需要 {need} "
                                "或更新的驱动；请更新驱动，或安装为 CUDA {major}.x 构建的 torch（PyTorch 安装指南中的 {tag} 版本）"),
    "msg.gpu_no_start": ("CUDA could not start: {why}", "CUDA 无法启动：{why}"),
    "msg.gpu_none_seen": ("torch sees no CUDA device (driver {drv}, CUDA {dcuda} by the driver, torch built for {tcuda})",
                          "torch 看不到 CUDA 设备（驱动 {drv}，驱动支持 CUDA {dcuda}，torch 为 CUDA {tcuda} 构建）"),
    "msg.gpu_no_list": ("CUDA is there but its devices cannot be listed ({why})", "CUDA 可用，但无法列出它的设备（{why}）"),
    "msg.gpu_index": ("{asked} was asked for but this machine has {count} GPUs (cuda:0..cuda:{last})",
                      "请求的是 {asked}，但这台机器只有 {count} 个 GPU（cuda:0..cuda:{last}）"),
    "msg.gpu_index_1": ("{asked} was asked for but this machine has {count} GPU (cuda:0..cuda:{last})",
                        "请求的是 {asked}，但这台机器只有 {count} 个 GPU（cuda:0..cuda:{last}）"),
    "msg.gpu_arch": ("{gpu} has compute capability {cap} ({sm}), but torch {torch} has kernels only for {archs}; "
                     "install a torch build that includes {sm}",
                     "{gpu} 的计算能力为 {cap}（{sm}），但 torch {torch} 只包含 {archs} 的内核；请安装包含 {sm} 的 torch"),
    "msg.gpu_smoke": ("a test allocation and convolution on {gpu} failed ({why})", "在 {gpu} 上的测试分配和卷积失败（{why}）"),
    "msg.gpu_check": ("the GPU check did not finish ({why})", "GPU 检查没有完成（{why}）"),
    "msg.estimate": ("≈ {mem}, ≈ {time} on this {dev}", "在这台 {dev} 上约需 {mem}、{time}"),
    "msg.all_images": ("all {n} images", "全部 {n} 张图像"),
    "msg.images": ("{n} images", "{n} 张图像"),
    "msg.limit_mem": ("{mem} of memory per run", "每次训练 {mem} 内存"),
    "msg.limit_time": ("{time} per run", "每次训练 {time}"),
    "msg.limits_both": ("{mem} of memory per run and {time} per run", "每次训练 {mem} 内存、{time}"),
    "msg.pick_preset": ("pick a {dev} preset such as “{preset}”", "请选择一个 {dev} 预设，例如“{preset}”"),
    "msg.pick_smaller": ("pick a smaller resolution, fewer images or a smaller batch", "请选择更小的分辨率、更少的图像或更小的批量"),
    "msg.refusal": ("{title} at {res}×{res} on {examples} needs about {mem} and {time} on this {dev} (this server "
                    "allows {allows}): {pick}.",
                    "{title} 在 {res}×{res}、{examples} 上训练，在这台 {dev} 上约需 {mem} 内存和 {time}（本服务器允许{allows}）：{pick}。"),
    "msg.owner_limit": ("you already have {n} runs training or waiting (at most {active} training and {queued} "
                        "waiting per person): stop one or wait for it to finish",
                        "你已有 {n} 个训练在进行或等待（每人最多 {active} 个训练、{queued} 个等待）：请停止一个或等它完成"),
    "msg.owner_limit_1": ("you already have {n} run training or waiting (at most {active} training and {queued} "
                          "waiting per person): stop one or wait for it to finish",
                          "你已有 {n} 个训练在进行或等待（每人最多 {active} 个训练、{queued} 个等待）：请停止一个或等它完成"),
    "msg.client_limit": ("{n} runs from your network are already training or waiting (at most {most} from one "
                         "address): wait for one to finish",
                         "来自你所在网络的 {n} 个训练已在进行或等待（每个地址最多 {most} 个）：请等其中一个完成"),
    "msg.new_owner_limit": ("too many new visitors came from your network in the last minute: reload the page in "
                            "a minute to train", "过去一分钟内来自你所在网络的新访客太多：请一分钟后重新加载页面再训练"),
    "msg.queue_full": ("{n} runs are already waiting (the queue holds {size}): try again in a few minutes",
                       "已有 {n} 个训练在等待（队列最多 {size} 个）：请几分钟后再试"),
    # disk cap (#23 §5)
    "msg.disk_run": ("{title} at {res}×{res} would save about {disk} per run (its weights and BN history), more "
                     "than the {per_run} this server keeps per run: {pick}.",
                     "{title} 在 {res}×{res} 下每次训练约保存 {disk}（权重和批量规范化记录），超过本服务器每次训练最多保存的 "
                     "{per_run}：{pick}。"),
    "msg.disk_pick_smaller": ("pick a smaller model (fewer or narrower layers) or a smaller resolution",
                              "请选择更小的模型（更少或更窄的层）或更小的分辨率"),
    "msg.disk_share": ("this run would save about {disk}, and your runs training or waiting will save {used}: "
                       "together more than the {share} each person may keep on this server; wait for one to finish "
                       "or pick a smaller model",
                       "这次训练约保存 {disk}，你正在进行或等待的训练还将保存 {used}：合计超过本服务器每人可保存的 {share}；"
                       "请等其中一个完成，或选择更小的模型"),
    "msg.disk_share_run": ("this run would save about {disk}, more than the {share} each person may keep on this "
                           "server: pick a smaller model",
                           "这次训练约保存 {disk}，超过本服务器每人可保存的 {share}：请选择更小的模型"),
    "msg.disk_full": ("the disk for saved runs on this server is full: pinned runs and runs training or waiting take "
                      "{used} of its {whole}, and this run would save about {disk} more; ask your teacher to unpin or "
                      "delete old runs",
                      "本服务器保存训练的磁盘已满：固定的训练和正在进行或等待的训练占用了 {whole} 中的 {used}，这次训练还需约 "
                      "{disk}；请让老师取消固定或删除旧的训练"),
    "msg.lim_layers": ("{arch} with these knobs has {n} layers; this instance explores models of at most {most} "
                       "layers (fewer blocks or layers per block)",
                       "{arch} 在这组参数下有 {n} 层；本实例最多展示 {most} 层的模型（请减少块数或每块的层数）"),
    "msg.lim_params": ("{arch} with these knobs has {params} parameters ({weights} of weights); the most this "
                       "instance shows is {most}",
                       "{arch} 在这组参数下有 {params} 个参数（权重 {weights}）；本实例最多展示 {most} 个参数"),
    "msg.lim_search": ("{arch} with these knobs does not run on a {res}×{res} input, and for a model of {n} layers "
                       "the smallest input is not searched for; try {book}×{book} or more",
                       "{arch} 在这组参数下无法处理 {res}×{res} 的输入；对 {n} 层的模型不再搜索最小输入，请试 {book}×{book} 或更大"),
    "msg.lim_weights": ("{arch} with these knobs at {res}×{res} has {params} parameters ({weights} of weights), "
                        "more than this instance's memory budget of {budget}",
                        "{arch} 在这组参数和 {res}×{res} 下有 {params} 个参数（权重 {weights}），超过本实例 {budget} 的内存预算"),
    "msg.lim_memory": ("{arch} with these knobs at {res}×{res} needs {needs} for {batch} samples (weights and "
                       "activations), more than this instance's memory budget of {budget}",
                       "{arch} 在这组参数和 {res}×{res} 下处理 {batch} 个样本需要 {needs}（权重和激活），超过本实例 {budget} 的内存预算"),
    "msg.lim_memory_1": ("{arch} with these knobs at {res}×{res} needs {needs} for {batch} sample (weights and "
                       "activations), more than this instance's memory budget of {budget}",
                       "{arch} 在这组参数和 {res}×{res} 下处理 {batch} 个样本需要 {needs}（权重和激活），超过本实例 {budget} 的内存预算"),
    "msg.data_missing": ("Fashion-MNIST was not found in {where}; install it with `{apt}` or set CNNLAB_DATA to a "
                         "folder with the four *-ubyte.gz files (nothing is downloaded unless you pass --download or "
                         "set CNNLAB_DOWNLOAD=1)",
                         "在 {where} 中没有找到 Fashion-MNIST；请用 `{apt}` 安装，或把 CNNLAB_DATA 设为含有四个 *-ubyte.gz "
                         "文件的文件夹（除非使用 --download 或设置 CNNLAB_DOWNLOAD=1，否则不会下载）"),
    "msg.data_download": ("Fashion-MNIST was not found in {where} and the download failed ({why}); install it with "
                          "`{apt}` or set CNNLAB_DATA to a folder with the four *-ubyte.gz files",
                          "在 {where} 中没有找到 Fashion-MNIST，下载也失败了（{why}）；请用 `{apt}` 安装，"
                          "或把 CNNLAB_DATA 设为含有四个 *-ubyte.gz 文件的文件夹"),
    "msg.data_unreadable": ("the Fashion-MNIST files under {root} cannot be read ({why}); reinstall them with `{apt}`",
                            "无法读取 {root} 下的 Fashion-MNIST 文件（{why}）；请用 `{apt}` 重新安装"),
    "msg.student": ("student {id}", "学生 {id}"),
    "msg.nick_text": ("a nickname is text", "昵称必须是文字"),
    "msg.nick_long": ("a nickname has at most {most} characters", "昵称最多 {most} 个字符"),
    "msg.nick_chars": ("a nickname may use letters, digits, spaces and . ' - _ only",
                       "昵称只能使用字母、数字、空格和 . ' - _"),
    "msg.nick_nobody": ("no browser to name", "没有可以命名的浏览器"),
    "msg.nick_full": ("this server keeps no more nicknames", "本服务器不能再保存更多昵称"),
    "msg.asg_many": ("an assignment holds at most {most} settings", "一个作业最多包含 {most} 项设置"),
    "msg.asg_name": ("{name} is not a setting name", "{name} 不是设置的名称"),
    "msg.asg_value": ("setting {name} must be written as text or a number", "设置 {name} 必须写成文字或数字"),
    "msg.asg_value_long": ("setting {name} is longer than {most} characters", "设置 {name} 超过 {most} 个字符"),
    "msg.asg_lock": ("cannot lock {name}: the assignment does not set it", "无法锁定 {name}：这个作业没有设置它"),
    "msg.asg_bad_link": ("this assignment link is not valid (ask your teacher for a new one)",
                         "这个作业链接无效（请向老师要一个新链接）"),
    "msg.asg_none": ("no such assignment on this server (ask your teacher for a new link)",
                     "本服务器上没有这个作业（请向老师要一个新链接）"),
    "msg.asg_unreadable": ("this assignment cannot be read (ask your teacher for a new link)",
                           "无法读取这个作业（请向老师要一个新链接）"),
    "msg.cls_off": ("teacher mode is off on this server", "本服务器没有开启教师模式"),
    "msg.cls_token": ("this server's executor does not accept the teacher's token (it was started before teacher "
                      "mode was turned on): restart the server",
                      "本服务器的执行器不接受教师令牌（它在开启教师模式之前就已启动）：请重启服务器"),
    "msg.cls_no_folder_yet": ("this run has no folder yet", "这次训练还没有文件夹"),
    "msg.cls_no_folder": ("this run has no folder", "这次训练没有文件夹"),
    "msg.cls_pin": ("could not pin {run}: {why}", "无法固定 {run}：{why}"),
    "msg.cls_unpin": ("could not unpin {run}: {why}", "无法取消固定 {run}：{why}"),
    "msg.cls_active": ("{run} is still {state}: stop it first", "{run} 仍处于 {state} 状态：请先停止它"),
    "msg.cls_foreign": ("{run} is not a folder of this server's runs", "{run} 不是本服务器的训练文件夹"),
    "msg.cls_delete": ("could not delete {run}: {why}", "无法删除 {run}：{why}"),
    "msg.ex_none": ("no exercise {name}: pick one of {names}", "没有练习 {name}：请从以下选择：{names}"),
    "msg.img_empty": ("the file is empty", "文件是空的"),
    "msg.img_big": ("the file is {mb} MB; the limit is {limit} MB", "文件有 {mb} MB；上限为 {limit} MB"),
    "msg.img_not": ("it is not an image (or it is damaged); use PNG, JPEG, BMP, GIF or WebP",
                    "这不是图像（或已损坏）；请使用 PNG、JPEG、BMP、GIF 或 WebP"),
    "msg.img_format": ("{fmt} images are not supported; use PNG, JPEG, BMP, GIF or WebP",
                       "不支持 {fmt} 图像；请使用 PNG、JPEG、BMP、GIF 或 WebP"),
    "msg.img_pixels": ("the image is {w}×{h} pixels; it must be at most {most} pixels",
                       "图像有 {w}×{h} 像素；最多只能有 {most} 像素"),
    "msg.img_decode": ("the image could not be decoded ({why})", "无法解码图像（{why}）"),
    # run folders and checkpoints (cnnlab.checkpoint)
    "msg.store_write_failed": ("could not write {path} ({why}); is the disk full?",
              "无法写入 {path}（{why}）；磁盘满了吗？"),
    "msg.store_no_new_folder": ("could not create a new run folder under {path}",
              "无法在 {path} 下新建训练文件夹"),
    "msg.store_missing": ("{path} is missing",
              "{path} 不存在"),
    "msg.store_symlink": ("{path} is a symbolic link; a run folder holds plain files only",
              "{path} 是符号链接；训练文件夹只包含普通文件"),
    "msg.store_unreadable_os": ("{path} cannot be read ({why})",
              "无法读取 {path}（{why}）"),
    "msg.store_not_regular_file": ("{path} is not a regular file; a run folder holds plain files only",
              "{path} 不是普通文件；训练文件夹只包含普通文件"),
    "msg.store_file_too_big": ("{path} is {amount}, more than the {allowed} this CNN Lab reads",
              "{path} 有 {amount}，超过本 CNN Lab 读取的上限 {allowed}"),
    "msg.store_file_over_cap": ("{path} is more than the {allowed} this CNN Lab reads",
              "{path} 超过本 CNN Lab 读取的上限 {allowed}"),
    "msg.store_corrupt_json": ("{path} is unreadable or corrupt ({why})",
              "{path} 无法读取或已损坏（{why}）"),
    "msg.store_not_a_run_config": ("{path} is not a CNN Lab run config (no \"format\": \"{fmt}\")",
              "{path} 不是 CNN Lab 的训练配置（没有 \"format\": \"{fmt}\"）"),
    "msg.store_newer_version": ("{path} has version {version}; this CNN Lab reads up to {most}",
              "{path} 的版本是 {version}；本 CNN Lab 最多读取版本 {most}"),
    "msg.store_no_model": ("{path} does not say which model it trained",
              "{path} 没有说明它训练的是哪个模型"),
    "msg.store_malformed_field": ("{path} is malformed: \"{field}\" must be {want}",
              "{path} 格式错误：\"{field}\" 必须是 {want}"),
    "msg.store_not_a_folder": ("{path} is not a folder",
              "{path} 不是文件夹"),
    "msg.store_not_a_run": ("{path} is not a CNN Lab run: it has no {file}",
              "{path} 不是 CNN Lab 的训练：没有 {file}"),
    "msg.store_truncated": ("{path} is corrupt or truncated ({why})",
              "{path} 已损坏或被截断（{why}）"),
    "msg.store_line_no_epoch": ("{path} is malformed: line {line} has no whole-number \"epoch\"",
              "{path} 格式错误：第 {line} 行没有整数 \"epoch\""),
    "msg.store_line_not_number": ("{path} is malformed: \"{field}\" on line {line} is not a number",
              "{path} 格式错误：第 {line} 行的 \"{field}\" 不是数字"),
    "msg.store_snapshot_malformed": ("{path} has a malformed snapshot (it needs whole-number epoch and step, and layers)",
              "{path} 中有格式错误的快照（需要整数的 epoch 和 step，以及 layers）"),
    "msg.store_snapshot_no_name": ("{path} has a malformed snapshot (a layer without a name)",
              "{path} 中有格式错误的快照（有一层没有名称）"),
    "msg.store_snapshot_not_numbers": ("{path} has a malformed snapshot (\"{field}\" of layer {layer} is not a list of numbers)",
              "{path} 中有格式错误的快照（层 {layer} 的 \"{field}\" 不是数字列表）"),
    "msg.store_snapshot_lengths": ("{path} has a malformed snapshot (the vectors of layer {layer} differ in length)",
              "{path} 中有格式错误的快照（层 {layer} 的向量长度不一致）"),
    "msg.store_not_plain_folder": ("{path} is not a plain folder; a run folder holds plain files only",
              "{path} 不是普通文件夹；训练文件夹只包含普通文件"),
    "msg.store_too_many_files": ("{path} has {count} files; a run has at most {most}",
              "{path} 有 {count} 个文件；一次训练最多 {most} 个"),
    "msg.store_line_too_long": ("{path} has a line over {allowed}",
              "{path} 有一行超过 {allowed}"),
    "msg.store_corrupt_line": ("{path} is unreadable or corrupt (line {line}: {why})",
              "{path} 无法读取或已损坏（第 {line} 行：{why}）"),
    "msg.store_line_not_object": ("{path} is unreadable or corrupt (line {line} is not a JSON object)",
              "{path} 无法读取或已损坏（第 {line} 行不是 JSON 对象）"),
    "msg.store_no_weights_yet": ("{path} is missing: the run has not saved weights yet",
              "{path} 不存在：这次训练还没有保存权重"),
    "msg.store_weights_too_big": ("{path} is {amount}, more than the {allowed} this model may use",
              "{path} 有 {amount}，超过这个模型可用的 {allowed}"),
    "msg.store_not_torch_archive": ("{path} is corrupt, truncated or not a CNN Lab checkpoint (not a torch archive: {why})",
              "{path} 已损坏、被截断或不是 CNN Lab 检查点（不是 torch 存档：{why}）"),
    "msg.store_unpacks_too_big": ("{path} would unpack to {amount}, more than the {allowed} its model may use",
              "{path} 解压后有 {amount}，超过它的模型可用的 {allowed}"),
    "msg.store_checkpoint_corrupt": ("{path} is corrupt, truncated or not a CNN Lab checkpoint ({why})",
              "{path} 已损坏、被截断或不是 CNN Lab 检查点（{why}）"),
    "msg.store_not_a_checkpoint": ("{path} is not a CNN Lab checkpoint (no \"format\": \"{fmt}\")",
              "{path} 不是 CNN Lab 检查点（没有 \"format\": \"{fmt}\"）"),
    "msg.store_non_tensors": ("{path} is not a CNN Lab checkpoint (its state_dict holds non-tensors)",
              "{path} 不是 CNN Lab 检查点（它的 state_dict 含有非张量）"),
    "msg.store_epoch_not_whole": ("{path} is not a CNN Lab checkpoint (its epoch is not a whole number)",
              "{path} 不是 CNN Lab 检查点（它的 epoch 不是整数）"),
    "msg.store_cannot_build": ("{path} describes a model this CNN Lab cannot build ({why})",
              "{path} 描述的模型本 CNN Lab 无法构建（{why}）"),
    "msg.store_too_large_to_load": ("{path} names a model too large to load here: {why}",
              "{path} 指定的模型太大，无法在这里加载：{why}"),
    "msg.store_weights_mismatch": ("the weights in {path} do not match the model in its {file} ({why})",
              "{path} 中的权重与其 {file} 中的模型不一致（{why}）"),
    "msg.store_run_symlink": ("{path} is a symbolic link; runs are plain folders",
              "{path} 是符号链接；训练文件夹必须是普通文件夹"),
    # export (#25): the model, a run and an exercise as d2l-style PyTorch, a .py and a .ipynb (cnnlab.export)
    "export.knobs": ("Knobs ({title}): change a value and run again", "超参数（{title}）：修改数值后重新运行"),
    "export.input": ("input channels, output classes, input height = width",
                     "输入通道数、输出类别数、输入图像的高和宽"),
    "export.trace": ("Shape trace: the output shape of every block, as the book prints it",
                     "形状变化：像书中一样打印每个块的输出形状"),
    "export.trace_eval": ("evaluation mode: batch normalization needs more than one example per channel to train",
                          "评估模式：批量规范化在训练模式下每个通道需要多于一个样本"),
    "export.out_size": ("output height (= width) of a conv or pooling window, d2l 7.3: ⌊(n − k + 2p)/s⌋ + 1",
                        "卷积或汇聚窗口输出的高（= 宽），d2l-zh 6.3：⌊(n − k + 2p)/s⌋ + 1"),
    "export.bn_scratch": ("Batch normalization from scratch (d2l 8.5); the moving statistics are registered buffers, "
                          "so they are saved and loaded like nn.BatchNorm's",
                          "从零实现批量规范化（d2l-zh 7.5）；移动平均的均值和方差是注册的缓冲区，可以像 nn.BatchNorm 一样保存和加载"),
    "export.bn_predict": ("prediction mode: the moving mean and variance", "预测模式：使用移动平均的均值和方差"),
    "export.bn_train": ("training mode: this minibatch's mean and variance (per channel after a convolution)",
                        "训练模式：使用当前小批量的均值和方差（卷积层之后按通道计算）"),
    "export.bn_update": ("update the moving averages (with the unbiased variance, as torch does)",
                         "更新移动平均（与 torch 一样使用无偏方差）"),
    "export.lenet_act": ("the activation; with batch normalization (BN-LeNet, d2l 8.5) before or after it",
                         "激活函数；使用批量规范化时（BN-LeNet，d2l-zh 7.5）放在它之前或之后"),
    "export.lenet_pad": ("BN-LeNet drops the first convolution's padding (16×4×4 = 256 features at 28×28)",
                         "BN-LeNet 去掉第一个卷积层的填充（28×28 时为 16×4×4 = 256 个特征）"),
    "export.lenet_h": ("height = width after the two convolution + pooling pairs",
                       "两组卷积层 + 汇聚层之后的高（= 宽）"),
    "export.alexnet_h": ("height = width after the first convolution, then after the three max-pooling layers (the "
                         "5×5 and 3×3 convolutions keep the size)",
                         "第一个卷积层之后的高（= 宽），再经过三个最大汇聚层（5×5 和 3×3 卷积层不改变尺寸）"),
    "export.vgg_arch": ("{name}: (number of convolutions, output channels) of each VGG block",
                        "{name}：每个 VGG 块的（卷积层数, 输出通道数）"),
    "export.vgg_block": ("a VGG block: num_convs 3×3 convolutions with ReLU, then 2×2 max-pooling halves height "
                         "and width",
                         "VGG 块：num_convs 个带 ReLU 的 3×3 卷积层，然后 2×2 最大汇聚层将高和宽减半"),
    "export.vgg_h": ("each block halves height and width", "每个块将高和宽减半"),
    "export.vgg_small": ("the book trains a narrower VGG: every convolution's channels divided by ratio",
                         "书中训练一个更窄的 VGG：每个卷积层的通道数除以 ratio"),
    "export.nin_block": ("a NiN block: a convolution, then two 1×1 convolutions that act as per-pixel dense layers",
                         "NiN 块：一个卷积层，然后两个 1×1 卷积层（相当于逐像素的全连接层）"),
    "export.nin_head": ("no dense layer: the last NiN block has one channel per class, then global average pooling",
                        "没有全连接层：最后一个 NiN 块的输出通道数等于类别数，然后做全局平均汇聚"),
    "export.inception": ("Inception block: four parallel paths concatenated on the channel dimension; c1–c4 are "
                         "the paths' output channels",
                         "Inception 块：四条并行路径在通道维上连结；c1–c4 是各路径的输出通道数"),
    "export.googlenet_d": ("channels divided by ratio (ratio = 1: the book's table)",
                           "通道数除以 ratio（ratio = 1 即书中的通道表）"),
    "export.googlenet_stage": ("Inception blocks with the book's channels (c1, (c2 reduce, c2), (c3 reduce, c3), c4)",
                               "使用书中通道数的 Inception 块（c1, (c2 降维, c2), (c3 降维, c3), c4）"),
    "export.residual": ("residual block: two 3×3 convolutions with batch normalization, a 1×1 convolution on the "
                        "shortcut when the shape changes",
                        "残差块：两个带批量规范化的 3×3 卷积层；形状改变时在捷径上使用 1×1 卷积层"),
    "export.resnet_block": ("a ResNet stage: its first block halves height and width and changes the channels "
                            "(not the stage right after b1)",
                            "ResNet 的一个模块：第一个残差块将高和宽减半并改变通道数（紧跟 b1 的模块除外）"),
    "export.resnet_depth": ("residual blocks per stage: ResNet-18 or ResNet-34",
                            "每个模块的残差块数：ResNet-18 或 ResNet-34"),
    "export.conv_block": ("BN, ReLU, 3×3 convolution (d2l 8.7); with the bottleneck a BN, ReLU, 1×1 convolution to "
                          "4k channels comes first (DenseNet-B)",
                          "批量规范化、ReLU、3×3 卷积（d2l-zh 7.7）；使用瓶颈层时先做批量规范化、ReLU、1×1 卷积到 4k 个通道"
                          "（DenseNet-B）"),
    "export.dense_block": ("dense block: each convolution block sees all earlier outputs concatenated on the channels",
                           "稠密块：每个卷积块的输入是之前所有输出在通道维上的连结"),
    "export.transition": ("transition layer: a 1×1 convolution reduces the channels, 2×2 average pooling halves "
                          "height and width",
                          "过渡层：1×1 卷积层减少通道数，2×2 平均汇聚层将高和宽减半"),
    "export.compression": ("keeps floor(θ·channels); the book halves them (θ = 0.5)",
                           "保留 floor(θ·通道数)；书中减半（θ = 0.5）"),
    "export.make_divisible": ("round channels to a multiple of 8, never below 90 % of v (the papers' code)",
                              "把通道数取整为 8 的倍数，且不低于 v 的 90%（论文的代码）"),
    "export.conv_bn": ("convolution (no bias), batch normalization, activation (act=None: linear)",
                       "卷积（无偏置）、批量规范化、激活函数（act=None 即线性）"),
    "export.dws": ("depthwise separable convolution: a 3×3 depthwise convolution (one filter per channel), then a "
                   "1×1 pointwise convolution",
                   "深度可分离卷积：3×3 深度卷积（每个通道一个卷积核），然后 1×1 逐点卷积"),
    "export.v1_table": ("(output channels, stride) of the 13 depthwise separable layers, paper Table 1",
                        "13 个深度可分离层的（输出通道数, 步幅），论文表 1"),
    "export.v1_input": ("the resolution multiplier ρ: the network sees round(ρ·resolution) pixels",
                        "分辨率乘子 ρ：网络的输入为 round(ρ·分辨率) 像素"),
    "export.inverted": ("inverted residual: 1×1 expansion, depthwise convolution, 1×1 linear projection; a shortcut "
                        "when the shapes match",
                        "倒残差块：1×1 扩展、深度卷积、1×1 线性投影；形状相同时加上捷径"),
    "export.v2_table": ("t (expansion), c (output channels), n (repeats), s (first stride): paper Table 2",
                        "t（扩展因子）、c（输出通道数）、n（重复次数）、s（第一个块的步幅）：论文表 2"),
    "export.se": ("squeeze-and-excitation: global pooling, 1×1 reduce, ReLU, 1×1 expand, a hard-sigmoid gate per "
                  "channel",
                  "挤压激励：全局汇聚、1×1 压缩、ReLU、1×1 扩展、每个通道一个 hard-sigmoid 门"),
    "export.v3_table": ("kernel, expanded channels, output channels, SE, activation (RE: ReLU, HS: h-swish), stride: "
                        "paper Tables 1 and 2",
                        "卷积核、扩展通道数、输出通道数、SE、激活函数（RE：ReLU，HS：h-swish）、步幅：论文表 1 和表 2"),
    "export.recipe": ("The recipe: learning rate, batch size, epochs", "训练配置：学习率、批量大小、迭代周期数"),
    "export.recipe_opt": ("sgd (train_ch6) or adam", "sgd（train_ch6）或 adam"),
    "export.recipe_init": ("xavier: train_ch6's Xavier initialization; keep: the weights as built",
                           "xavier：train_ch6 的 Xavier 初始化；keep：保留构建时的权重"),
    "export.recipe_sizes": ("training and test examples (None: all 60,000 and 10,000)",
                            "训练样本数和测试样本数（None 即全部 60,000 和 10,000 个）"),
    "export.recipe_seed": ("the seed first: the model below is built from it", "先设随机种子：下面的模型由它构建"),
    "export.data_root": ("where Fashion-MNIST is, looked up as CNN Lab does: $CNNLAB_DATA, ./data, Debian's "
                         "dataset-fashion-mnist (apt-get install dataset-fashion-mnist); None: torchvision downloads it",
                         "Fashion-MNIST 的位置，查找顺序与 CNN Lab 相同：$CNNLAB_DATA、./data、Debian 的 dataset-fashion-mnist"
                         "（apt-get install dataset-fashion-mnist）；None 即由 torchvision 下载"),
    "export.data_gz": ("the four .gz files are decompressed once into CNN Lab's cache folder",
                       "四个 .gz 文件只解压一次，放在 CNN Lab 的缓存文件夹中"),
    "export.data_subset": ("n examples, as equal per class as possible, by a seeded permutation (CNN Lab's subset)",
                           "按带种子的随机排列选出 n 个样本，各类别尽量相等（与 CNN Lab 选的子集相同）"),
    "export.data_load": ("d2l's load_data_fashion_mnist (d2l 4.2): torchvision's dataset, resized and scaled per "
                         "minibatch",
                         "d2l 的 load_data_fashion_mnist（d2l-zh 3.5）：torchvision 的数据集，按小批量调整大小并缩放"),
    "export.data_bytes": ("CNN Lab keeps a set over 1 GB as 8-bit pixels: the same rounding here",
                          "CNN Lab 把超过 1 GB 的数据集存为 8 位像素：这里做同样的取整"),
    "export.data_resize": ("transforms.Resize: bilinear, antialiased", "transforms.Resize：双线性插值，抗锯齿"),
    "export.data_scale": ("to [0, 1] as ToTensor does; grey copied to every input channel",
                          "像 ToTensor 一样缩放到 [0, 1]；灰度复制到每个输入通道"),
    "export.train_device": ("d2l's try_gpu: a GPU when there is one", "d2l 的 try_gpu：有 GPU 就用 GPU"),
    "export.train_init": ("train_ch6's initialization: Xavier-uniform for every Linear and Conv2d weight",
                          "train_ch6 的初始化：每个 Linear 和 Conv2d 的权重使用 Xavier 均匀初始化"),
    "export.train_loop": ("train_ch6 (d2l 7.6): cross-entropy loss, minibatch SGD, test accuracy after each epoch",
                          "train_ch6（d2l-zh 6.6）：交叉熵损失、小批量随机梯度下降、每个迭代周期后计算测试精度"),
    "export.train_plot": ("the curves train_ch6's animator draws: train loss, train and test accuracy per epoch",
                          "train_ch6 的动画绘制的曲线：每个迭代周期的训练损失、训练精度和测试精度"),
    "export.nb_section": ("Book section: {section}", "对应章节：{section}"),
    "export.nb_intro_model": ("Exported from CNN Lab: the model with your knob values and its shape trace, "
                              "Fashion-MNIST loaded as the book loads it, and a training loop with train_ch6's "
                              "semantics. It needs PyTorch, torchvision and matplotlib, nothing from CNN Lab.",
                              "从 CNN Lab 导出：使用你的超参数的模型及其形状变化、像书中一样加载的 Fashion-MNIST，以及与 "
                              "train_ch6 语义相同的训练循环。只需要 PyTorch、torchvision 和 matplotlib，不需要 CNN Lab。"),
    "export.nb_intro_run": ("Exported from CNN Lab: this run's model and recipe. Put the run's model.pt next to this "
                            "notebook: its weights are loaded into `net` and evaluated on the run's test data (a run "
                            "trained on the CPU gets, on the CPU, the accuracy it reported; a GPU run's mixed precision "
                            "may move it by a few examples); then you can train again from scratch.",
                            "从 CNN Lab 导出：这次训练的模型和训练配置。把这次训练的 model.pt 放在本笔记本旁边：权重会加载到 "
                            "`net` 中，并在这次训练的测试数据上评估（在 CPU 上训练的结果，在 CPU 上评估得到的精度与训练报告的相同；"
                            "GPU 上的混合精度可能使它相差几个样本）；之后可以从头再训练一次。"),
    "export.nb_intro_ab": ("Exported from CNN Lab: A and B are built one after the other from the same seed and "
                           "trained with the same data order, so only what the exercise changes differs.",
                           "从 CNN Lab 导出：A 和 B 依次用相同的随机种子构建，并用相同的数据顺序训练，因此只有练习改变的部分不同。"),
    "export.nb_recipe": ("## The recipe", "## 训练配置"),
    "export.nb_model": ("## The model", "## 模型"),
    "export.nb_trace": ("## Shape trace\n\nA random input through the network, one block at a time.",
                        "## 形状变化\n\n让一个随机输入依次通过网络的每个块。"),
    "export.nb_data": ("## Fashion-MNIST\n\nFound without a network when it is installed (the same places CNN Lab "
                       "looks), resized as `transforms.Resize` does and scaled to [0, 1] as `ToTensor` does.",
                       "## Fashion-MNIST\n\n已安装时无需联网即可找到（与 CNN Lab 查找的位置相同），像 `transforms.Resize` "
                       "一样调整大小，像 `ToTensor` 一样缩放到 [0, 1]。"),
    "export.nb_train": ("## Training\n\nA compact loop with `train_ch6`'s semantics, and its curves.",
                        "## 训练\n\n与 `train_ch6` 语义相同的简洁训练循环及其曲线。"),
    "export.nb_run_weights": ("## The run's weights", "## 这次训练的权重"),
    "export.nb_retrain": ("## Train again from scratch\n\n`train_ch6` initializes the weights again and trains with "
                          "the run's recipe.",
                          "## 从头再训练一次\n\n`train_ch6` 重新初始化权重，并按这次训练的配置训练。"),
    "export.run_weights": ("the run's model.pt (Saved runs: download it next to this notebook)",
                           "这次训练的 model.pt（在“已保存的训练”页面下载，放在本笔记本旁边）"),
    "export.run_safe": ("weights_only=True: only tensors are loaded, no code in the file can run",
                        "weights_only=True：只加载张量，文件中的代码不会运行"),
    "export.run_reported": ("the test accuracy the run reported", "这次训练报告的测试精度"),
    "export.run_unfinished": ("the run did not finish, so it reported no final accuracy",
                              "这次训练没有完成，因此没有报告最终精度"),
    "export.ab_seed": ("the same seed for A and B", "A 和 B 使用相同的随机种子"),
    "export.ab_order": ("the same data order for A and B", "A 和 B 使用相同的数据顺序"),
    "export.code_title": ("Code", "代码"),
    "export.code_note": ("This model with its knobs, as plain PyTorch in the book's idiom (torch only, no CNN Lab): "
                         "copy it with the button at the code's top right, or download it as a script or a notebook "
                         "with Fashion-MNIST and train_ch6's loop.",
                         "这个模型及其超参数，写成书中风格的纯 PyTorch 代码（只需要 torch，不需要 CNN Lab）：用代码右上角的按钮复制，"
                         "或下载为脚本或笔记本（含 Fashion-MNIST 和 train_ch6 的训练循环）。"),
    "export.dl_title": ("Export as code", "导出为代码"),
    "export.dl_py": ("Download .py", "下载 .py"),
    "export.dl_ipynb": ("Download notebook (.ipynb)", "下载笔记本（.ipynb）"),
    "export.dl_weights": ("Download model.pt", "下载 model.pt"),
    "export.train_note": ("The model with these settings as the recipe (optimizer, learning rate, batch size, epochs, "
                          "seed, resolution, data size, initialization), as a script or a notebook.",
                          "使用这些设置作为训练配置（优化器、学习率、批量大小、迭代周期数、随机种子、分辨率、数据量、初始化）的模型，"
                          "导出为脚本或笔记本。"),
    "export.run_note": ("The notebook loads model.pt (weights only) from its own folder and evaluates it on the run's "
                        "test data: download both into one folder.",
                        "笔记本从它所在的文件夹加载 model.pt（只加载权重），并在这次训练的测试数据上评估：请把两者下载到同一个文件夹。"),
    "export.ex_note": ("A and B side by side in one notebook, built from the same seed and trained with the same data "
                       "order.",
                       "A 和 B 并排放在一个笔记本中，用相同的随机种子构建，并用相同的数据顺序训练。"),
    "export.unavailable": ("This run cannot be exported: {msg}", "无法导出这次训练：{msg}"),
    "msg.export_recipe": ("{path} holds a training recipe that cannot be used ({why})",
                          "{path} 中的训练配置无法使用（{why}）"),
    "export.no_nbformat": ("The notebook needs nbformat, which this server lacks: the .py opens as a notebook too.",
                           "本服务器没有笔记本所需的 nbformat：.py 文件也可以作为笔记本打开。"),
}

# d2l-zh's Fashion-MNIST labels (d2l 3.5 get_fashion_mnist_labels)
FASHION_LABELS = {
    "en": ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"),
    "zh": ("T恤", "裤子", "套衫", "连衣裙", "外套", "凉鞋", "衬衫", "运动鞋", "包", "短靴"),
}


def t(key: str, lang: str = "en", **fmt) -> str:
    pair = STRINGS.get(key)
    if pair is None:
        return key
    s = pair[1] if lang == "zh" and pair[1] else pair[0]
    return s.format(**fmt) if fmt else s


# -- sentences the library says (errors, refusals, stop messages, GPU reasons) ---------------------------------
# The library (no streamlit, no language) makes them with msg("msg.…", **fields): a Message, which is data (its key
# and its fields) and reads as the English sentence (a str), so it travels wherever text does: an exception's
# argument, an event through a worker's pipe or Ray (it pickles as key + fields). A page renders it in its language
# with text_of(message, lang), from the key's own template; each field that is itself a message is rendered too (a
# reason inside a refusal). Text that is no Message (an OS error, a run folder written before) shows as it is.
MSG_PREFIX = "msg."
TITLES: dict[str, str] = {}  # English title → Chinese (architectures and presets register theirs)
KNOB_LABELS_ZH: dict[str, str] = {}  # knob name → its d2l-zh term (cnnlab.registry.register fills it)


class Message(str):
    """One library sentence as data: ``key`` (a "msg." key of STRINGS) and ``fields``; as a str, its English text."""

    key: str
    fields: dict

    def __new__(cls, key: str, fields: dict):
        if not (isinstance(key, str) and key.startswith(MSG_PREFIX) and key in STRINGS):
            raise KeyError(f"no library sentence {key!r}")
        fields = {k: _field(v) for k, v in fields.items()}
        self = super().__new__(cls, STRINGS[key][0].format(**fields))
        self.key, self.fields = key, fields
        return self

    def __reduce__(self):  # crosses processes (worker pipes, Ray) as its key and fields
        return Message, (self.key, self.fields)

    def text(self, lang: str = "en") -> str:
        if lang != "zh":
            return str(self)
        return STRINGS[self.key][1].format(**{k: text_of(v, lang) if isinstance(v, str) else v
                                              for k, v in self.fields.items()})


def _field(v):
    """A field as a Message keeps it: a message stays one (rendered in each language), an exception becomes its
    message, a number stays a number, anything else its text."""
    if isinstance(v, (Message, int, float)):
        return v
    if isinstance(v, BaseException):
        return message_of(v)
    return str(v)


def msg(key: str, **fields) -> Message:
    """The library's sentence `key` with its fields: a Message (reads as English; see text_of for the others)."""
    return Message(key, fields)


def message_of(x) -> str:
    """What `x` says: a Message where it carries one (itself, or an exception whose argument is one), else its
    text (an exception's own, or its class name when it has none)."""
    if isinstance(x, BaseException):
        arg = x.args[0] if len(x.args) == 1 else None
        if isinstance(arg, Message):
            return arg
        return str(x) or type(x).__name__
    return x if isinstance(x, str) else str(x)


def message_json(x) -> dict | None:
    """A Message as JSON data ({"key", "fields"}, nested messages too) for a file or a pipe that carries text only;
    None for text that is no Message."""
    m = message_of(x)
    if not isinstance(m, Message):
        return None
    return {"key": m.key, "fields": {k: message_json(v) or v for k, v in m.fields.items()}}


def message_from_json(data, text: str = "") -> str:
    """The Message `data` (from message_json) describes, or `text` when it describes none (an older file, a field
    missing, a key this version does not have)."""
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        return text
    fields = {k: message_from_json(v, "") if isinstance(v, dict) else v for k, v in data["fields"].items()}
    try:
        return Message(data.get("key"), fields)
    except (KeyError, IndexError, TypeError, ValueError):
        return text


def renamed(x, old: str, new: str) -> str:
    """`x`'s message with the field that names `old` naming `new` instead (a knob shown under another name)."""
    m = message_of(x)
    if isinstance(m, Message):
        return Message(m.key, {k: new if v == old else v for k, v in m.fields.items()})
    return m.replace(old, new, 1)


def text_of(x, lang: str = "en") -> str:
    """`x` (a Message, an exception or any text) in `lang`: a Message from its key and fields; an architecture's
    or preset's title in Chinese; other text as it is."""
    m = message_of(x)
    if isinstance(m, Message):
        return m.text(lang)
    return TITLES.get(m, m) if lang == "zh" else m


def labels(lang: str = "en") -> tuple[str, ...]:
    return FASHION_LABELS["zh" if lang == "zh" else "en"]


def knob_label(knob, lang: str = "en") -> str:
    """zh: the d2l-zh term with the code name (宽度乘子 α · alpha); en: the code name students see in the book."""
    if lang == "zh" and knob.label_zh:
        return knob.label_zh if knob.name in knob.label_zh else f"{knob.label_zh} · {knob.name}"
    return knob.name


# Choice values as people read them in Chinese (the code names stay in English: they are what the book prints).
VALUES_ZH = {"relu": "ReLU", "relu6": "ReLU6", "sigmoid": "sigmoid 函数", "avg": "平均汇聚", "max": "最大汇聚",
             "off": "关", "on": "开", "scratch": "从零实现", "nn": "nn.BatchNorm2d", "before_act": "激活函数之前",
             "after_act": "激活函数之后", "large": "大", "small": "小", "sgd": "随机梯度下降", "adam": "Adam",
             "cpu": "CPU", "cuda": "GPU（CUDA）", "auto": "自动", "True": "开", "False": "关"}


def value_text(value, lang: str = "en") -> str:
    """A knob's or a setting's value as the page shows it: the code name in English ("before_act", "on"),
    d2l-zh's words in Chinese ("激活函数之前", "开"); numbers and sizes as they are."""
    s = value if isinstance(value, str) else format_value(value)
    return VALUES_ZH.get(s, s) if lang == "zh" else s


def knobs_text(knobs, lang: str = "en", sep: str = ", ") -> str:
    """"batchnorm=on, residual=off" / "批量规范化 = 开, 残差连接 = 关": knob values for a label or a table."""
    if lang != "zh":
        return sep.join(f"{k}={value_text(v, lang)}" for k, v in knobs.items())
    labels = KNOB_LABELS_ZH
    return sep.join(f"{labels.get(k, k)} = {value_text(v, lang)}" for k, v in knobs.items())


def range_text(knob, lang: str = "en") -> str:
    return text_of(knob.range_text(), lang)
