"""AlexNet, the book's 1-channel version for Fashion-MNIST at 224×224 (d2l 8.1)."""
from torch import nn

from ..layers import flat_features
from ..registry import ArchSpec, BookTraining, Knob, register


def alexnet(*, in_channels=1, num_classes=10, resolution=224, dropout=0.5, fc_width=4096) -> nn.Sequential:
    def features():
        return nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten())

    feats = features()
    n = flat_features(feats, (in_channels, resolution, resolution))
    return nn.Sequential(
        *feats,
        nn.Linear(n, fc_width), nn.ReLU(), nn.Dropout(p=dropout),
        nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(p=dropout),
        nn.Linear(fc_width, num_classes))


register(ArchSpec(
    name="alexnet", title_en="AlexNet", title_zh="深度卷积神经网络（AlexNet）", builder=alexnet,
    knobs=(
        Knob("dropout", "float", 0.5, "dropout probability in the two dense layers", "两个全连接层的暂退概率",
             lo=0.0, hi=0.95, step=0.05, label_zh="暂退概率"),
        Knob("fc_width", "int", 4096, "width of the two hidden dense layers", "两个隐藏全连接层的宽度",
             lo=16, hi=8192, label_zh="全连接层宽度"),
    ),
    book_resolution=224,
    training=BookTraining(lr=0.01, batch_size=128, resolution=224, accuracy=0.88),
    source="d2l 8.1 AlexNet (1 input channel, 10 classes)",
    source_zh="d2l-zh 7.1 AlexNet（1 个输入通道，10 类）",
))
