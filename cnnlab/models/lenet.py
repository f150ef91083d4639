"""LeNet (d2l 7.6) and BN-LeNet (d2l 8.5): lenet with batchnorm = scratch | nn."""
from torch import nn

from ..layers import flat_features, norm_factory
from ..registry import ArchSpec, BookTraining, Knob, register

ACTS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def lenet(*, in_channels=1, num_classes=10, resolution=28, activation="sigmoid", pooling="avg",
          batchnorm="off") -> nn.Sequential:
    act, pool = ACTS[activation], POOLS[pooling]
    # The book's BN-LeNet drops the first conv's padding, so 16×4×4 = 256 features reach the first dense layer.
    pad = 2 if batchnorm == "off" else 0
    norm2d, norm1d = norm_factory(batchnorm, 4), norm_factory(batchnorm, 2)

    def bn(norm, c):  # no layer at all without BN, so LeNet's indices are the book's
        return [norm(c)] if norm is not None else []

    def features():
        return nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad), *bn(norm2d, 6), act(),
            pool(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), *bn(norm2d, 16), act(),
            pool(kernel_size=2, stride=2), nn.Flatten())

    n = flat_features(features, (in_channels, resolution, resolution))
    return nn.Sequential(
        *features(),
        nn.Linear(n, 120), *bn(norm1d, 120), act(),
        nn.Linear(120, 84), *bn(norm1d, 84), act(),
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
    ),
    book_resolution=28,
    training=BookTraining(lr=0.9, batch_size=256, resolution=28, accuracy=0.78),
    lr_for=lambda k: 0.9 if k.get("batchnorm", "off") == "off" else 1.0,
    source="d2l 7.6 LeNet; d2l 8.5 BN-LeNet (lr 1.0, first conv without padding)",
))
