"""LeNet (d2l 7.6) and BN-LeNet (d2l 8.5): lenet with batchnorm = scratch | nn."""
from torch import nn

from ..layers import flat_features, norm_factory
from ..registry import ArchSpec, BookTraining, Knob, register

ACTS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def lenet(*, in_channels=1, num_classes=10, resolution=28, activation="sigmoid", pooling="avg",
          batchnorm="off", bn_position="before_act") -> nn.Sequential:
    """bn_position: the book puts BN between the affine layer and the activation ("before_act"); "after_act"
    normalizes the activation's output instead (d2l 8.5, exercise: where should BN go?)."""
    act, pool = ACTS[activation], POOLS[pooling]
    # The book's BN-LeNet drops the first conv's padding, so 16×4×4 = 256 features reach the first dense layer.
    pad = 2 if batchnorm == "off" else 0
    norm2d, norm1d = norm_factory(batchnorm, 4), norm_factory(batchnorm, 2)

    def bn_act(norm, c):  # no BN layer at all without BN, so LeNet's indices are the book's
        if norm is None:
            return [act()]
        return [norm(c), act()] if bn_position == "before_act" else [act(), norm(c)]

    def features():
        return nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad), *bn_act(norm2d, 6),
            pool(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), *bn_act(norm2d, 16),
            pool(kernel_size=2, stride=2), nn.Flatten())

    feats = features()
    n = flat_features(feats, (in_channels, resolution, resolution))
    return nn.Sequential(
        *feats,
        nn.Linear(n, 120), *bn_act(norm1d, 120),
        nn.Linear(120, 84), *bn_act(norm1d, 84),
        nn.Linear(84, num_classes))


register(ArchSpec(
    name="lenet", title_en="LeNet", title_zh="LeNet（卷积神经网络）", builder=lenet,
    knobs=(
        Knob("activation", "choice", "sigmoid", "activation after each conv and dense layer",
             "卷积层和全连接层之后的激活函数", choices=("sigmoid", "relu"), label_zh="激活函数"),
        Knob("pooling", "choice", "avg", "pooling: average (the book) or max", "汇聚方式：平均（书中）或最大",
             choices=("avg", "max"), label_zh="汇聚层"),
        Knob("batchnorm", "choice", "off",
             "batch normalization: off (LeNet), scratch (the book's BatchNorm) or nn (torch's) — BN-LeNet",
             "批量规范化：off（LeNet）、scratch（从零实现）或 nn（框架实现）", choices=("off", "scratch", "nn"),
             label_zh="批量规范化"),
        Knob("bn_position", "choice", "before_act",
             "where batch norm goes: between the conv/dense layer and the activation (the book) or after the "
             "activation (no effect without batch norm)",
             "批量规范化的位置：在卷积/全连接层与激活函数之间（书中）或激活函数之后（不使用批量规范化时无效）",
             choices=("before_act", "after_act"), label_zh="批量规范化位置"),
    ),
    book_resolution=28,
    training=BookTraining(lr=0.9, batch_size=256, resolution=28, accuracy=0.78),
    lr_for=lambda k: 0.9 if k.get("batchnorm", "off") == "off" else 1.0,
    source="d2l 7.6 LeNet; d2l 8.5 BN-LeNet (lr 1.0, first conv without padding)",
    source_zh="d2l-zh 6.6 LeNet；d2l-zh 7.5 BN-LeNet（学习率 1.0，第一个卷积层不填充）",
))
