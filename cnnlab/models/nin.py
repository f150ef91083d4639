"""Network in Network (d2l 8.3): nin_blocks and a global average pool instead of dense layers."""
from torch import nn

from ..layers import nin_block
from ..registry import ArchSpec, BookTraining, Knob, register


def nin(*, in_channels=1, num_classes=10, resolution=224, dropout=0.5) -> nn.Sequential:
    return nn.Sequential(
        nin_block(in_channels, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(dropout),
        nin_block(384, num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())


register(ArchSpec(
    name="nin", title_en="NiN", title_zh="网络中的网络（NiN）", builder=nin,
    knobs=(Knob("dropout", "float", 0.5, "dropout probability before the last NiN block",
                "最后一个 NiN 块之前的暂退概率", lo=0.0, hi=0.95, step=0.05, label_zh="暂退概率"),),
    book_resolution=224,
    training=BookTraining(lr=0.1, batch_size=128, resolution=224, accuracy=0.79),
    source="d2l 8.3 NiN",
    source_zh="d2l-zh 7.3 网络中的网络（NiN）",
))
