"""GoogLeNet (d2l 8.4): five stages, nine Inception blocks with the book's channel table."""
from torch import nn

from ..layers import Inception
from ..registry import ArchSpec, BookTraining, Knob, register

# (c1, (c2 reduce, c2), (c3 reduce, c3), c4) per Inception block, stage by stage, as in the book
INCEPTIONS = {
    3: ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    4: ((192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64), (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64), (256, (160, 320), (32, 128), 128)),
    5: ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
}


def googlenet(*, in_channels=1, num_classes=10, resolution=96, ratio=1) -> nn.Sequential:
    def d(c):
        return max(1, c // ratio)

    b1 = nn.Sequential(nn.Conv2d(in_channels, d(64), kernel_size=7, stride=2, padding=3), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(nn.Conv2d(d(64), d(64), kernel_size=1), nn.ReLU(),
                       nn.Conv2d(d(64), d(192), kernel_size=3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    c, stages = d(192), []
    for stage, table in INCEPTIONS.items():
        blks = []
        for c1, (r2, c2), (r3, c3), c4 in table:
            blk = Inception(c, d(c1), (d(r2), d(c2)), (d(r3), d(c3)), d(c4))
            blks.append(blk)
            c = blk.out_channels
        tail = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stage < 5 else nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        stages.append(nn.Sequential(*blks, *(tail if stage == 5 else [tail])))
    return nn.Sequential(b1, b2, *stages, nn.Linear(c, num_classes))


register(ArchSpec(
    name="googlenet", title_en="GoogLeNet", title_zh="含并行连结的网络（GoogLeNet）", builder=googlenet,
    knobs=(Knob("ratio", "int", 1, "divide every conv's channels by this (1 = the book's table)",
                "各卷积层通道数除以该值（1 为书中的通道表）", lo=1, hi=16, label_zh="通道缩减比"),),
    book_resolution=96,
    training=BookTraining(lr=0.1, batch_size=128, resolution=96, accuracy=0.89),
    source="d2l 8.4 GoogLeNet at 96×96",
    source_zh="d2l-zh 7.4 含并行连结的网络（GoogLeNet），96×96",
))
