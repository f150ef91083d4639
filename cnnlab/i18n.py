"""zh / en strings for the app, with d2l-zh terminology (批量规范化, 稠密连接网络, 残差网络, 增长率, 宽度乘子, ...).

``t(key, lang, **fmt)`` returns the string in the chosen language (falling back to English, then to the
key itself, so a missing string never breaks a page). No streamlit here: the pages pass the language.
"""
from __future__ import annotations

LANGS = ("en", "zh")
LANG_NAMES = {"en": "English", "zh": "中文"}

# key: (english, chinese)
STRINGS: dict[str, tuple[str, str]] = {
    # app shell
    "app.title": ("CNN Lab", "CNN 实验室"),
    "app.language": ("Language / 语言", "语言 / Language"),
    "app.caption": ("Modern CNNs from *Dive into Deep Learning*, hands on.",
                    "动手学深度学习 · 现代卷积神经网络，动手实验。"),
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
    "ex.refused": ("The pair was not started: {msg}", "未能开始这一对训练：{msg}"),
    "ex.gone": ("These runs are no longer on this server (it restarted); run the pair again.",
                "这些训练已不在服务器上（服务器已重启）；请重新运行。"),
    "ex.incomplete": ("One of the two runs did not finish, so there is no reading.", "两个训练中有一个未完成，因此没有结论。"),
    "runs.grid_legend": ("Each image: ✓ prediction when right; ✗ prediction (truth) when wrong.",
                         "每张图：预测正确显示 ✓ 预测；预测错误显示 ✗ 预测（真实类别）。"),
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
    "train.assignment": ("Assignment {title}: your teacher fixed {locked}; the other settings are yours to change.",
                         "作业 {title}：老师已固定 {locked}；其余设置可以自行修改。"),
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
    "train.done": ("Finished: test accuracy {acc:.3f} after {epochs} epochs in {wall}. Saved in {dir}.",
                   "训练完成：{epochs} 轮后测试精度 {acc:.3f}，用时 {wall}。已保存到 {dir}。"),
    "train.stopped": ("Stopped: {msg}. The checkpoint is kept in {dir}.", "已停止：{msg}。检查点保存在 {dir}。"),
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
    "train.queued_ahead": ("Waiting in the queue: position {pos}, {ahead} run(s) ahead of yours.",
                           "正在排队：第 {pos} 位，前面还有 {ahead} 个训练。"),
    "train.others": ("Other people: {running} training, {queued} waiting (their settings stay private).",
                     "其他人：{running} 个正在训练，{queued} 个在排队（他们的设置不公开）。"),
    "train.my_runs": ("Only your own runs are listed here; only you can stop them.",
                      "这里只列出你自己的训练，也只有你能停止它们。"),
    "train.estimate": ("Estimate before Start: {text}.", "开始前的估计：{text}。"),
    "train.estimate_wall": ("Runs longer than {min} min are stopped (the checkpoint is kept).",
                            "超过 {min} 分钟的训练会被停止（检查点会保留）。"),
    "train.time_limit": ("Stopped at the time limit: {msg}. The checkpoint is kept in {dir}.",
                         "达到时间上限而停止：{msg}。检查点保存在 {dir}。"),
    "arch.train_this": ("Train this", "训练这个模型"),
    "runs.status.running": ("running", "训练中"),
    "runs.status.finished": ("finished", "已完成"),
    "runs.status.stopped": ("stopped", "已停止"),
    "runs.status.failed": ("failed", "失败"),
    "runs.status.interrupted": ("interrupted (server restarted)", "已中断（服务器重启）"),
    "runs.status.unreadable": ("unreadable", "无法读取"),
    # where runs are saved (Saved runs page; the hosted image picks /data or a temp folder)
    "runs.where": ("Runs are saved in `{root}`.", "训练记录保存在 `{root}`。"),
    "runs.where_persistent": ("Runs are saved in `{root}` (persistent storage: they survive a restart).",
                              "训练记录保存在 `{root}`（持久存储：重启后仍在）。"),
    "runs.where_temp": ("No persistent storage (/data): runs are saved in the temporary folder `{root}` and are "
                        "lost when the app restarts.",
                        "没有持久存储（/data）：训练记录保存在临时文件夹 `{root}`，应用重启后会丢失。"),
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


def labels(lang: str = "en") -> tuple[str, ...]:
    return FASHION_LABELS["zh" if lang == "zh" else "en"]


def knob_label(knob, lang: str = "en") -> str:
    """zh: the d2l-zh term with the code name (宽度乘子 α · alpha); en: the code name students see in the book."""
    if lang == "zh" and knob.label_zh:
        return knob.label_zh if knob.name in knob.label_zh else f"{knob.label_zh} · {knob.name}"
    return knob.name


_RANGE_ZH = (("on or off", "开或关"), ("one of ", "取值之一："), ("comma-separated integers, each in ", "个逗号分隔的整数，每个在 "),
             ("an integer in ", "整数，范围 "), ("a number in ", "数值，范围 "))


def range_text(knob, lang: str = "en") -> str:
    s = knob.range_text()
    if lang == "zh":
        for en, zh in _RANGE_ZH:
            s = s.replace(en, zh)
    return s
