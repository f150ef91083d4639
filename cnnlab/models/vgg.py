"""VGG from d2l's vgg_block (d2l 8.2): conv_arch preset, channel divisor `ratio`, fc width, batchnorm."""
from torch import nn

from ..layers import flat_features, vgg_block
from ..registry import ArchSpec, BookTraining, Knob, register

CONV_ARCHS = {  # (num_convs, out_channels) per block, as the book's conv_arch
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


def vgg(*, in_channels=1, num_classes=10, resolution=224, conv_arch="vgg11", ratio=1, fc_width=4096,
        fc_div_ratio=False, batchnorm=False, dropout=0.5) -> nn.Sequential:
    arch = [(n, max(1, c // ratio)) for n, c in CONV_ARCHS[conv_arch]]
    width = max(1, fc_width // ratio) if fc_div_ratio else fc_width

    def features():
        blks, c = [], in_channels
        for num_convs, out_channels in arch:
            blks.append(vgg_block(num_convs, c, out_channels, nn.BatchNorm2d if batchnorm else None))
            c = out_channels
        return nn.Sequential(*blks, nn.Flatten())

    feats = features()
    n = flat_features(feats, (in_channels, resolution, resolution))
    return nn.Sequential(
        *feats,
        nn.Linear(n, width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, num_classes))


register(ArchSpec(
    name="vgg", title_en="VGG", title_zh="使用块的网络（VGG）", builder=vgg,
    knobs=(
        Knob("conv_arch", "choice", "vgg11", "blocks and convs per block (VGG-11/13/16/19)",
             "卷积块结构（VGG-11/13/16/19）", choices=tuple(CONV_ARCHS), label_zh="网络结构"),
        Knob("ratio", "int", 1,
             "divide every conv's channels by this (the book trains with 4, the d2lzh notes with 8)",
             "各卷积层通道数除以该值（书中训练时用 4，d2lzh 笔记用 8）", lo=1, hi=64, label_zh="通道缩减比 ratio"),
        Knob("fc_width", "int", 4096, "width of the two hidden dense layers", "两个隐藏全连接层的宽度",
             lo=16, hi=8192, label_zh="全连接层宽度"),
        Knob("fc_div_ratio", "bool", False, "also divide the dense width by ratio (as the d2lzh notes do)",
             "全连接层宽度也除以 ratio（d2lzh 笔记的做法）", label_zh="全连接层也缩减"),
        Knob("batchnorm", "bool", False, "batch normalization after each conv", "每个卷积层后加批量规范化",
             label_zh="批量规范化"),
        Knob("dropout", "float", 0.5, "dropout probability in the dense layers", "全连接层的暂退概率",
             lo=0.0, hi=0.95, step=0.05, label_zh="暂退概率"),
    ),
    book_resolution=224,
    training=BookTraining(lr=0.05, batch_size=128, resolution=224, knobs={"ratio": 4}, accuracy=0.92),
    source="d2l 8.2 VGG-11 (trained with ratio 4)",
    source_zh="d2l-zh 7.2 VGG-11（以 ratio 4 训练）",
))
