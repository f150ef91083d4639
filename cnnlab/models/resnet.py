"""ResNet (d2l 8.6) from the book's Residual / resnet_block; depth 18 or 34; BN and shortcut switchable."""
from torch import nn

from ..layers import resnet_block
from ..registry import ArchSpec, BookTraining, Knob, register

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
CHANNELS = (64, 128, 256, 512)


def resnet(*, in_channels=1, num_classes=10, resolution=96, depth=18, batchnorm=True,
           residual=True) -> nn.Sequential:
    norm_layer = nn.BatchNorm2d if batchnorm else None
    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
                       *([norm_layer(64)] if norm_layer else []), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    stages, c = [], 64
    for i, (n, out) in enumerate(zip(DEPTHS[depth], CHANNELS)):
        stages.append(resnet_block(c, out, n, first_block=(i == 0), norm_layer=norm_layer, shortcut=residual))
        c = out
    return nn.Sequential(b1, *stages, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, num_classes))


register(ArchSpec(
    name="resnet", title_en="ResNet", title_zh="残差网络（ResNet）", builder=resnet,
    knobs=(
        Knob("depth", "choice", 18, "ResNet-18 (2,2,2,2 residual blocks) or ResNet-34 (3,4,6,3)",
             "ResNet-18（每阶段 2,2,2,2 个残差块）或 ResNet-34（3,4,6,3）", choices=(18, 34), label_zh="深度"),
        Knob("batchnorm", "bool", True, "batch normalization in every residual block",
             "每个残差块中使用批量规范化", label_zh="批量规范化"),
        Knob("residual", "bool", True, "add the shortcut (off = a plain deep CNN, for the exercise)",
             "加上残差连接（关闭即普通深层卷积网络，用于练习）", label_zh="残差连接"),
    ),
    book_resolution=96,
    training=BookTraining(lr=0.05, batch_size=256, resolution=96, accuracy=0.89),
    source="d2l 8.6 ResNet-18 (the book trains at 96×96)",
    source_zh="d2l-zh 7.6 ResNet-18（书中以 96×96 训练）",
))
