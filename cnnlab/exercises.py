"""The book's exercises as experiments (plain Python; no streamlit): one entry per modern-CNN section of d2l
(d2l-zh 7.1–7.7 = the English edition's 8.1–8.7, plus LeNet, d2l-zh 6.6 = 7.6) plus MobileNet from the course
notes, each with its question, an A/B setup, what
to look at and the result the book or the paper reports.

"cost" exercises compare the two models' ledgers at once. "train" exercises run A and B as a pair with the same
seed: the same data order (the data generator is seeded), and the same initial weights wherever the two models
build the same parameters (the engine initialises every layer from the seed; `shared_init` says how many
parameter tensors the two starts share). Each pair fits a stated CPU budget, measured on a 2-core machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .i18n import msg, t
from .measure import fitting
from .registry import KnobError, get_spec


# d2l 1.0 (English) section → the same section in d2l-zh 2.0 (its modern-CNN chapter is 7, LeNet is 6.6)
ZH_SECTION = {"7.6": "6.6", "8.1": "7.1", "8.2": "7.2", "8.3": "7.3", "8.4": "7.4", "8.5": "7.5", "8.6": "7.6",
              "8.7": "7.7"}


@dataclass(frozen=True)
class Side:
    label_en: str
    label_zh: str
    arch: str
    knobs: Mapping[str, Any] = field(default_factory=dict)
    lr: float | None = None           # None: the book's lr for the model and knobs
    optimizer: str = "sgd"

    def label(self, lang: str) -> str:
        return self.label_zh if lang == "zh" else self.label_en


@dataclass(frozen=True)
class Exercise:
    id: str
    section: str                      # the English edition's: "d2l 7.6", "d2l 8.1", or "Howard et al. 2017"
    title_en: str
    title_zh: str
    question_en: str
    question_zh: str
    look_en: str
    look_zh: str
    reported_en: str
    reported_zh: str
    a: Side
    b: Side
    kind: str = "cost"                # cost | train
    resolution: int | None = None     # None: the book's (cost) / training resolution (train)
    epochs: int = 2
    train_size: int = 20000
    test_size: int = 2000
    batch_size: int | None = None
    budget_s: int = 0                 # the pair's time on a quiet 2-core machine (train exercises; what the page
                                      # shows is budget_estimate's figure, this only when that cannot be made)
    in_channels: int = 1
    num_classes: int = 10

    def section_label(self, lang: str) -> str:
        """"d2l 8.1" in English, "d2l-zh 7.1" in Chinese (the Chinese edition numbers these sections one lower)."""
        if lang == "zh" and self.section.startswith("d2l "):
            return "d2l-zh " + ZH_SECTION.get(self.section[4:], self.section[4:])
        return self.section

    def text(self, what: str, lang: str) -> str:
        return getattr(self, f"{what}_{'zh' if lang == 'zh' else 'en'}")

    def config(self, side: Side):
        """The registry Config of one side (raises KnobError)."""
        spec = get_spec(side.arch)
        res = self.resolution or (spec.training.resolution if self.kind == "train" else spec.book_resolution)
        return fitting(side.arch, dict(side.knobs), in_channels=self.in_channels, num_classes=self.num_classes,
                       resolution=res)

    def train_config(self, side: Side, *, seed: int = 0, device: str = "cpu", **over):
        """The engine's TrainConfig of one side of a training pair (both sides get the same seed)."""
        from .engine import TrainConfig

        cfg = self.config(side)
        kw = dict(model=cfg, epochs=self.epochs, lr=side.lr, batch_size=self.batch_size, optimizer=side.optimizer,
                  train_size=None if self.train_size >= 60000 else self.train_size,
                  test_size=None if self.test_size >= 10000 else self.test_size, device=device, seed=seed)
        kw.update(over)
        return TrainConfig(**kw).resolved()


def shared_init(ex: Exercise, seed: int = 0) -> tuple[int, int]:
    """(parameter tensors B starts equal to A's, parameter tensors of B), the tensors paired in build order: both
    models built and initialised from `seed` as the engine does (a BN layer moved after the activation keeps its
    place in this order; a layer the other model lacks shifts the ones after it)."""
    import torch

    from .engine.loop import init_weights

    params = []
    for side in (ex.a, ex.b):
        m = ex.config(side).build()
        init_weights(m, seed=seed)
        params.append([p.detach() for p in m.parameters()])
    a, b = params
    same = sum(1 for x, y in zip(a, b) if x.shape == y.shape and torch.equal(x, y))
    return same, len(b)


def _s(en, zh, arch, knobs=None, **kw) -> Side:
    return Side(en, zh, arch, dict(knobs or {}), **kw)


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lenet_relu", "d2l 7.6", "LeNet: sigmoid → ReLU", "LeNet：sigmoid → ReLU",
        "Replace LeNet's sigmoid activations with ReLU. Does it learn faster?",
        "把 LeNet 的 sigmoid 激活函数换成 ReLU。它学得更快吗？",
        "The test accuracy after each epoch, and how long the sigmoid net's loss stays flat at ln 10 ≈ 2.30.",
        "每轮之后的测试精度，以及 sigmoid 网络的损失在 ln 10 ≈ 2.30 停留多久。",
        "The book's LeNet (sigmoid, lr 0.9) reaches about 0.78 test accuracy after 10 epochs; ReLU (with a smaller "
        "lr) learns in far fewer steps (d2l 7.6 exercises).",
        "书中的 LeNet（sigmoid，学习率 0.9）训练 10 轮后测试精度约 0.78；ReLU（配合较小学习率）用少得多的步数就能学会（d2l-zh 6.6 练习）。",
        _s("sigmoid, lr 0.9 (book)", "sigmoid，学习率 0.9（书中）", "lenet", {"activation": "sigmoid"}),
        _s("ReLU, lr 0.1", "ReLU，学习率 0.1", "lenet", {"activation": "relu"}, lr=0.1),
        kind="train", epochs=3, train_size=20000, budget_s=10),
    Exercise(
        "lenet_maxpool", "d2l 7.6", "LeNet: average → max pooling", "LeNet：平均汇聚 → 最大汇聚",
        "Replace average pooling with max pooling. What happens?", "把平均汇聚换成最大汇聚，会怎样？",
        "Test accuracy per epoch; the two nets have the same parameters and start from the same weights.",
        "每轮测试精度；两个网络参数相同，初始权重也相同。",
        "Max pooling, the modern default, trains at least as well as LeNet's average pooling (d2l 7.6 exercises).",
        "最大汇聚（现代网络的默认选择）训练效果不逊于 LeNet 的平均汇聚（d2l-zh 6.6 练习）。",
        _s("average pooling (book)", "平均汇聚（书中）", "lenet", {"pooling": "avg"}),
        _s("max pooling", "最大汇聚", "lenet", {"pooling": "max"}),
        kind="train", epochs=5, train_size=30000, budget_s=15),
    Exercise(
        "alexnet_dropout", "d2l 8.1", "AlexNet without dropout", "不使用暂退法的 AlexNet",
        "Turn off AlexNet's dropout. Does it train faster? What happens to the test accuracy?",
        "关闭 AlexNet 的暂退法。训练是否更快？测试精度如何变化？",
        "The gap between train and test accuracy (overfitting), at 68×68 on 10,000 examples with Adam.",
        "训练精度与测试精度之差（过拟合），68×68、1 万个样本、Adam 优化。",
        "Dropout fights overfitting in AlexNet's 40 M-parameter dense layers (d2l 8.1, exercise 'dropout').",
        "暂退法抑制 AlexNet 中约 4000 万参数的全连接层的过拟合（d2l-zh 7.1 练习）。",
        _s("dropout 0.5 (book)", "暂退 0.5（书中）", "alexnet", {"dropout": 0.5, "fc_width": 1024}, lr=0.001,
           optimizer="adam"),
        _s("no dropout", "不使用暂退", "alexnet", {"dropout": 0.0, "fc_width": 1024}, lr=0.001, optimizer="adam"),
        kind="train", resolution=68, epochs=3, train_size=10000, budget_s=100),
    Exercise(
        "vgg_ratio", "d2l 8.2", "VGG: the ratio knob", "VGG：通道缩小比例",
        "The book trains VGG-11 with every channel count divided by 4. What does that do to the cost?",
        "书中把 VGG-11 的每层通道数除以 4 来训练。这对计算量有什么影响？",
        "Parameters and multiply-adds: dividing channels by r divides conv costs by about r².",
        "参数量和乘加次数：通道数除以 r，卷积的代价约除以 r²。",
        "d2l 8.2: ratio 4 makes VGG-11 trainable on Fashion-MNIST; conv MACs drop about 16×.",
        "d2l-zh 7.2：ratio 4 让 VGG-11 能在 Fashion-MNIST 上训练；卷积乘加次数约降为 1/16。",
        _s("VGG-11, ratio 1", "VGG-11，ratio 1", "vgg", {"ratio": 1}),
        _s("VGG-11, ratio 4 (book)", "VGG-11，ratio 4（书中）", "vgg", {"ratio": 4})),
    Exercise(
        "vgg16_vs_11", "d2l 8.2", "VGG-16 against VGG-11", "VGG-16 与 VGG-11",
        "Build VGG-16 (the exercise asks for it). How much more does it cost than VGG-11?",
        "构建 VGG-16（练习要求）。它比 VGG-11 多花多少计算？",
        "Multiply-adds grow much more than parameters: the extra convolutions are 3×3 on large maps.",
        "乘加次数的增长远大于参数量：新增的 3×3 卷积作用在较大的特征图上。",
        "Simonyan & Zisserman 2015, Table 2: VGG-11 133 M and VGG-16 138 M parameters (224², 1000 classes).",
        "Simonyan 与 Zisserman 2015 表 2：VGG-11 1.33 亿、VGG-16 1.38 亿参数（224²，1000 类）。",
        _s("VGG-11", "VGG-11", "vgg", {"conv_arch": "vgg11"}),
        _s("VGG-16", "VGG-16", "vgg", {"conv_arch": "vgg16"}), in_channels=3, num_classes=1000),
    Exercise(
        "nin_vs_alexnet", "d2l 8.3", "NiN against AlexNet: parameters", "NiN 与 AlexNet：参数量",
        "NiN drops the dense layers. How many parameters does that save?", "NiN 去掉了全连接层，省下多少参数？",
        "The split by layer kind under the ledger: AlexNet's parameters sit in its dense layers.",
        "成本表下方按层类型的分布：AlexNet 的参数集中在全连接层。",
        "d2l 8.3: NiN has about 2 M parameters, AlexNet about 47 M (Fashion-MNIST, 224²).",
        "d2l-zh 7.3：NiN 约 200 万参数，AlexNet 约 4700 万（Fashion-MNIST，224²）。",
        _s("AlexNet", "AlexNet", "alexnet"), _s("NiN", "NiN", "nin"), resolution=224),
    Exercise(
        "googlenet_split", "d2l 8.4", "GoogLeNet: the channel split", "GoogLeNet：通道分配",
        "Inception blocks split their output channels over four branches. What does the ratio knob change?",
        "Inception 块把输出通道分给四条路径。ratio 参数改变了什么？",
        "The layer table's Inception rows (the four branches and their channel counts) and the ledger.",
        "层表中的 Inception 行（四条路径及其通道数）与成本表。",
        "Szegedy et al. 2015, Table 1: e.g. inception (3a) 64 + 128 + 32 + 32 = 256 channels.",
        "Szegedy 等 2015 表 1：例如 inception (3a) 64 + 128 + 32 + 32 = 256 个通道。",
        _s("ratio 1 (the paper)", "ratio 1（论文）", "googlenet", {"ratio": 1}),
        _s("ratio 4", "ratio 4", "googlenet", {"ratio": 4}), resolution=96),
    Exercise(
        "bn_lr", "d2l 8.5", "Batch norm and a large learning rate", "批量规范化与大学习率",
        "BN-LeNet trains at lr 1.0; plain LeNet at 0.9. Compare how fast they learn.",
        "BN-LeNet 用学习率 1.0 训练，普通 LeNet 用 0.9。比较它们学习的速度。",
        "Test accuracy after each epoch; the BN net's loss falls from the first steps.",
        "每轮测试精度；BN 网络的损失从一开始就下降。",
        "d2l 8.5: BN-LeNet reaches about 0.87 test accuracy in 10 epochs, LeNet about 0.78.",
        "d2l-zh 7.5：BN-LeNet 10 轮后测试精度约 0.87，LeNet 约 0.78。",
        _s("LeNet, lr 0.9", "LeNet，学习率 0.9", "lenet", {}),
        _s("BN-LeNet, lr 1.0", "BN-LeNet，学习率 1.0", "lenet", {"batchnorm": "scratch"}),
        kind="train", epochs=2, train_size=60000, test_size=2000, budget_s=15),
    Exercise(
        "bn_position", "d2l 8.5", "Batch norm before or after the activation", "批量规范化放在激活函数之前还是之后",
        "The book puts BN between the affine layer and the activation. Try it after the activation.",
        "书中把批量规范化放在仿射层与激活函数之间。试试放在激活函数之后。",
        "Test accuracy per epoch; both nets have exactly the same parameters and initial weights.",
        "每轮测试精度；两个网络的参数与初始权重完全相同。",
        "d2l 8.5 exercise; Ioffe & Szegedy 2015 normalise before the nonlinearity.",
        "d2l-zh 7.5 练习；Ioffe 与 Szegedy 2015 在非线性之前做规范化。",
        _s("before the activation (book)", "激活之前（书中）", "lenet", {"batchnorm": "nn", "bn_position": "before_act"}),
        _s("after the activation", "激活之后", "lenet", {"batchnorm": "nn", "bn_position": "after_act"}),
        kind="train", epochs=2, train_size=30000, test_size=2000, budget_s=10),
    Exercise(
        "bn_scratch_nn", "d2l 8.5", "Scratch batch norm = nn.BatchNorm", "从零实现的批量规范化 = nn.BatchNorm",
        "Train BN-LeNet with the book's from-scratch BatchNorm and with torch's. Same curves?",
        "分别用书中从零实现的 BatchNorm 与框架的实现训练 BN-LeNet。曲线一样吗？",
        "The two curves lie on each other (same seed, same data order, same initial weights).",
        "两条曲线重合（相同的随机种子、数据顺序与初始权重）。",
        "d2l 8.5: the concise implementation gives the same results, only faster.",
        "d2l-zh 7.5：简洁实现给出相同的结果，只是更快。",
        _s("scratch BatchNorm", "从零实现", "lenet", {"batchnorm": "scratch"}),
        _s("nn.BatchNorm", "nn.BatchNorm", "lenet", {"batchnorm": "nn"}),
        kind="train", epochs=1, train_size=30000, test_size=2000, budget_s=5),
    Exercise(
        "resnet_residual", "d2l 8.6", "ResNet without the shortcut", "去掉捷径连接的 ResNet",
        "Switch off ResNet-18's residual connections. How does training change?",
        "关闭 ResNet-18 的残差连接，训练会怎样变化？",
        "Train loss in the first epoch and test accuracy; without shortcuts the same layers train slower.",
        "第一轮的训练损失与测试精度；没有捷径时同样的层训练更慢。",
        "He et al. 2016, Fig. 4: the plain 18/34-layer nets train worse than their residual twins.",
        "He 等 2016 图 4：18/34 层的普通网络比对应的残差网络训练得更差。",
        _s("residual (book)", "残差（书中）", "resnet", {"residual": True}, lr=0.01),
        _s("no shortcut", "无捷径", "resnet", {"residual": False}, lr=0.01),
        kind="train", resolution=32, epochs=3, train_size=10000, budget_s=70),
    Exercise(
        "densenet_growth", "d2l 8.7", "DenseNet: growth rate k 12 vs 32", "DenseNet：增长率 12 与 32",
        "Each conv block adds k channels. Compare k = 12 with the book's 32.",
        "每个卷积块增加 k 个通道。比较 k = 12 与书中的 32。",
        "Parameters and MACs; the layer table's channel counts c₀ + i·k inside a dense block.",
        "参数量与乘加次数；层表中稠密块内的通道数 c₀ + i·k。",
        "Huang et al. 2017 use k = 12 for CIFAR and 32 for ImageNet; cost grows about as k².",
        "Huang 等 2017 在 CIFAR 上用 k = 12，在 ImageNet 上用 32；代价约随 k² 增长。",
        _s("k = 32 (book)", "k = 32（书中）", "densenet", {"growth_rate": 32}),
        _s("k = 12", "k = 12", "densenet", {"growth_rate": 12}), resolution=96),
    Exercise(
        "densenet_theta", "d2l 8.7", "DenseNet: compression θ 0.5 vs 1", "DenseNet：压缩因子 θ 0.5 与 1",
        "Transition layers keep θ of the channels. What if they keep all of them (θ = 1)?",
        "过渡层保留 θ 比例的通道。如果全部保留（θ = 1）会怎样？",
        "Parameters and MACs, and the channels after each transition in the shape trace.",
        "参数量与乘加次数，以及形状变化图中每个过渡层之后的通道数。",
        "Huang et al. 2017 (DenseNet-BC) use θ = 0.5, halving the channels at every transition.",
        "Huang 等 2017（DenseNet-BC）使用 θ = 0.5，每个过渡层把通道数减半。",
        _s("θ = 0.5 (book)", "θ = 0.5（书中）", "densenet", {"compression": 0.5}),
        _s("θ = 1", "θ = 1", "densenet", {"compression": 1.0}), resolution=96),
    Exercise(
        "mobilenet_alpha", "Howard et al. 2017", "MobileNet: width multiplier α", "MobileNet：宽度乘子 α",
        "Halve every layer's channels (α = 0.5). How much cheaper is it?", "把每层通道数减半（α = 0.5），便宜多少？",
        "Multiply-adds and parameters shrink about α²; compare with the paper's table.",
        "乘加次数与参数量约按 α² 缩小；与论文的表格对比。",
        "Howard et al. 2017, Table 6: 1.0 MobileNet-224 569 M mult-adds, 4.2 M params; 0.5 MobileNet-224 149 M, 1.3 M.",
        "Howard 等 2017 表 6：1.0 MobileNet-224 为 5.69 亿次乘加、420 万参数；0.5 MobileNet-224 为 1.49 亿、130 万。",
        _s("α = 1.0", "α = 1.0", "mobilenet_v1", {"alpha": 1.0}),
        _s("α = 0.5", "α = 0.5", "mobilenet_v1", {"alpha": 0.5}), resolution=224, in_channels=3,
        num_classes=1000),
    Exercise(
        "mobilenet_rho", "Howard et al. 2017", "MobileNet: resolution multiplier ρ", "MobileNet：分辨率乘子 ρ",
        "Feed 160×160 instead of 224×224 (ρ = 0.714). What changes, and what does not?",
        "输入 160×160 而不是 224×224（ρ = 0.714）。什么变了，什么没变？",
        "Multiply-adds shrink about ρ²; the parameter count stays the same.",
        "乘加次数约按 ρ² 缩小；参数量不变。",
        "Howard et al. 2017, Table 7: 1.0 MobileNet-224 569 M mult-adds; 1.0 MobileNet-160 290 M; 4.2 M params both.",
        "Howard 等 2017 表 7：1.0 MobileNet-224 为 5.69 亿次乘加；1.0 MobileNet-160 为 2.90 亿；参数均为 420 万。",
        _s("ρ = 1 (224 px)", "ρ = 1（224 像素）", "mobilenet_v1", {"rho": 1.0}),
        _s("ρ = 0.714 (160 px)", "ρ = 0.714（160 像素）", "mobilenet_v1", {"rho": 0.714}), resolution=224,
        in_channels=3, num_classes=1000),
    Exercise(
        "mobilenet_separable", "Howard et al. 2017", "MobileNet: separable vs standard convolutions",
        "MobileNet：深度可分离卷积与标准卷积",
        "Replace every depthwise-separable layer with one standard 3×3 convolution (the paper's Conv MobileNet).",
        "把每个深度可分离层换成一个标准 3×3 卷积（论文中的 Conv MobileNet）。",
        "Multiply-adds and parameters; the Architecture page's block arithmetic shows the 1/N + 1/D_K² per block.",
        "乘加次数与参数量；结构页面的“块的计算量”逐块给出 1/N + 1/D_K²。",
        "Howard et al. 2017, Table 4: Conv MobileNet 4866 M mult-adds, 29.3 M params; MobileNet 569 M, 4.2 M.",
        "Howard 等 2017 表 4：Conv MobileNet 为 48.66 亿次乘加、2930 万参数；MobileNet 为 5.69 亿、420 万。",
        _s("separable (MobileNet)", "深度可分离（MobileNet）", "mobilenet_v1", {"separable": True}),
        _s("standard (Conv MobileNet)", "标准卷积（Conv MobileNet）", "mobilenet_v1", {"separable": False}),
        resolution=224, in_channels=3, num_classes=1000),
)

BY_ID = {e.id: e for e in EXERCISES}


def get(ex_id: str) -> Exercise:
    """The exercise with this id; KnobError (one sentence) naming the valid ones otherwise."""
    if isinstance(ex_id, str) and ex_id in BY_ID:
        return BY_ID[ex_id]
    shown = str(ex_id)[:40]
    raise KnobError(msg("msg.ex_none", name=repr(shown), names=", ".join(BY_ID)))


def budget_estimate(ex: Exercise, executor=None, data: dict | None = None):
    """When the pair (A, then B: one owner's two runs, back to back) would have ended if started now: the one time
    estimate of every page (cnnlab.runs.admission.expect_runs), with `executor`'s queue ahead of it."""
    from .runs import admission

    return admission.expect_runs([ex.train_config(ex.a), ex.train_config(ex.b)], "cpu", executor, data=data)


def budget_text(ex: Exercise, lang: str, same: int, total: int, executor=None) -> str:
    """The pair's caption: its time estimate (budget_estimate), epochs, examples and the shared start."""
    fields = dict(epochs=ex.epochs, n=f"{ex.train_size:,}", same=same, total=total)
    try:
        when = budget_estimate(ex, executor).text(lang)
    except Exception:  # noqa: BLE001 - no estimate (nothing measured, a broken table): the stated figure
        return t("ex.budget", lang, s=ex.budget_s, **fields)
    return t("ex.budget_est", lang, time=when, **fields)


def reading(ex: Exercise, acc_a: float, acc_b: float, lang: str = "en") -> str:
    """One line when both runs of a pair have ended: which side ended higher, and by how much."""
    la, lb = ex.a.label(lang), ex.b.label(lang)
    d = acc_b - acc_a
    if abs(d) < 0.005:
        return (f"{la} 与 {lb} 的测试精度几乎相同（{acc_a:.3f} 对 {acc_b:.3f}）。" if lang == "zh" else
                f"{la} and {lb} end at about the same test accuracy ({acc_a:.3f} vs {acc_b:.3f}).")
    hi, lo, ha, la_ = (lb, la, acc_b, acc_a) if d > 0 else (la, lb, acc_a, acc_b)
    return (f"{hi} 的测试精度为 {ha:.3f}，{lo} 为 {la_:.3f}（相差 {abs(d):.3f}），训练 {ex.epochs} 轮后。"
            if lang == "zh" else
            f"{hi} reached {ha:.3f} test accuracy vs {la_:.3f} for {lo} (a difference of {abs(d):.3f}) "
            f"after {ex.epochs} epoch{'s' if ex.epochs != 1 else ''}.")
