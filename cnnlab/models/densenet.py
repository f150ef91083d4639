"""DenseNet (d2l 8.7): dense blocks and transition layers; growth rate, block config, compression θ,
and the paper's bottleneck (DenseNet-B; with θ < 1, DenseNet-BC)."""
import math

from torch import nn

from ..layers import DenseBlock, transition_block
from ..registry import ArchSpec, BookTraining, Knob, register

BOOK_BLOCKS = (4, 4, 4, 4)
DENSENET121_BLOCKS = (6, 12, 24, 16)


def densenet(*, in_channels=1, num_classes=10, resolution=96, growth_rate=32, block_config=BOOK_BLOCKS,
             init_channels=64, compression=0.5, bottleneck=False) -> nn.Sequential:
    b1 = nn.Sequential(nn.Conv2d(in_channels, init_channels, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(init_channels), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    blks, c = [], init_channels
    for i, num_convs in enumerate(block_config):
        blk = DenseBlock(num_convs, c, growth_rate, bottleneck=4 * growth_rate if bottleneck else 0)
        blks.append(blk)
        c = blk.out_channels
        if i != len(block_config) - 1:
            out = max(1, math.floor(compression * c))  # the book: num_channels // 2
            blks.append(transition_block(c, out))
            c = out
    return nn.Sequential(b1, *blks, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(c, num_classes))


register(ArchSpec(
    name="densenet", title_en="DenseNet", title_zh="稠密连接网络（DenseNet）", builder=densenet,
    knobs=(
        Knob("growth_rate", "int", 32, "growth rate k: channels each conv block adds", "增长率 k：每个卷积块增加的通道数",
             lo=1, hi=128, label_zh="增长率"),
        Knob("block_config", "ints", BOOK_BLOCKS,
             "conv blocks per dense block (book 4,4,4,4; DenseNet-121 6,12,24,16)",
             "每个稠密块中的卷积块数（书中 4,4,4,4；DenseNet-121 为 6,12,24,16）", lo=1, hi=64, min_len=1, max_len=6,
             suggestions=(BOOK_BLOCKS, DENSENET121_BLOCKS), label_zh="稠密块配置"),
        Knob("init_channels", "int", 64, "channels of the first 7×7 conv", "第一个 7×7 卷积层的输出通道数",
             lo=1, hi=256, label_zh="初始通道数"),
        Knob("compression", "float", 0.5, "compression θ: a transition layer keeps floor(θ·channels) (book: halve)",
             "压缩因子 θ：过渡层保留 floor(θ·通道数)（书中减半）", lo=0.0, hi=1.0, lo_open=True, step=0.05,
             label_zh="压缩因子 θ"),
        Knob("bottleneck", "bool", False, "a 1×1 conv to 4k channels before each 3×3 conv (DenseNet-B)",
             "每个 3×3 卷积前加 1×1 瓶颈卷积到 4k 通道（DenseNet-B）", label_zh="瓶颈层"),
    ),
    book_resolution=96,
    training=BookTraining(lr=0.1, batch_size=256, resolution=96, accuracy=0.88),
    source="d2l 8.7 DenseNet; Huang et al. 2017 for DenseNet-BC / DenseNet-121",
    source_zh="d2l-zh 7.7 稠密连接网络；DenseNet-BC / DenseNet-121 见 Huang 等 2017",
))
