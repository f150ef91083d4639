"""MobileNet V1 (Howard et al. 2017), V2 (Sandler et al. 2018) and V3 (Howard et al. 2019), as in the papers'
tables (and torchvision's `inverted_residual_setting`): width multiplier α everywhere, resolution multiplier ρ on V1."""
from functools import partial

from torch import nn

from ..layers import DepthwiseSeparable, InvertedResidual, conv_bn_act, make_divisible
from ..registry import ArchSpec, BookTraining, Knob, register

# ---- V1: (out_channels, stride) of the 13 depthwise-separable layers (paper Table 1) ----------------------
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish}


def mobilenet_v1(*, in_channels=1, num_classes=10, resolution=224, alpha=1.0, rho=1.0,
                 activation="relu", separable=True) -> nn.Sequential:
    """`resolution` here is the size the net sees (already ρ·resolution: see the spec's input_size).
    separable=False is the paper's "Conv MobileNet" (Table 4): each depthwise-separable layer becomes one standard
    3×3 convolution (+ BN + activation) with the same in/out channels and stride."""
    act = ACTS[activation]
    c = make_divisible(32 * alpha)
    layers = [conv_bn_act(in_channels, c, 3, 2, act=act)]
    for out, stride in V1_LAYERS:
        out = make_divisible(out * alpha)
        layers.append(DepthwiseSeparable(c, out, stride, act=act) if separable
                      else conv_bn_act(c, out, 3, stride, act=act))
        c = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, num_classes))


def _alpha_knob(hi=2.0):
    return Knob("alpha", "float", 1.0, "width multiplier α: every layer's channels × α (about α² the MACs)",
                "宽度乘子 α：每层通道数乘以 α（计算量约为 α²）", lo=0.0, hi=hi, lo_open=True, step=0.05,
                label_zh="宽度乘子 α")


register(ArchSpec(
    name="mobilenet_v1", title_en="MobileNet V1", title_zh="MobileNet V1（深度可分离卷积）", builder=mobilenet_v1,
    knobs=(
        _alpha_knob(),
        Knob("rho", "float", 1.0, "resolution multiplier ρ: the net sees round(ρ·resolution) pixels (about ρ² the MACs)",
             "分辨率乘子 ρ：输入尺寸为 round(ρ·分辨率)（计算量约为 ρ²）", lo=0.0, hi=1.0, lo_open=True, step=0.05,
             label_zh="分辨率乘子 ρ"),
        Knob("activation", "choice", "relu", "activation after every conv: ReLU (paper) or ReLU6",
             "每个卷积后的激活函数：ReLU（论文）或 ReLU6", choices=("relu", "relu6"), label_zh="激活函数"),
        Knob("separable", "bool", True,
             "depthwise-separable layers (off = one standard 3×3 conv each, the paper's Conv MobileNet, Table 4)",
             "深度可分离卷积（关闭则每层换成一个标准 3×3 卷积，即论文表 4 的 Conv MobileNet）", label_zh="深度可分离"),
    ),
    book_resolution=224,
    input_size=lambda k, r: max(1, round(r * k["rho"])),
    training=BookTraining(lr=0.1, batch_size=128, resolution=96),
    source="Howard et al. 2017, Table 1; the course notes train at 96×96 with lr 0.1",
    source_zh="Howard 等 2017 表 1；课程笔记以 96×96、学习率 0.1 训练",
))

# ---- V2: t (expansion), c (out channels), n (repeats), s (first stride), paper Table 2 ---------------------
V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
              (6, 320, 1, 1))


def mobilenet_v2(*, in_channels=1, num_classes=10, resolution=224, alpha=1.0, expansion=6,
                 dropout=0.2) -> nn.Sequential:
    c = make_divisible(32 * alpha)
    last = make_divisible(1280 * max(1.0, alpha))
    layers = [conv_bn_act(in_channels, c, 3, 2, act=nn.ReLU6)]
    for t, out, n, s in V2_SETTING:
        t = t if t == 1 else expansion
        out = make_divisible(out * alpha)
        for i in range(n):
            layers.append(InvertedResidual(c, int(round(c * t)), out, 3, s if i == 0 else 1, act=nn.ReLU6))
            c = out
    layers.append(conv_bn_act(c, last, 1, act=nn.ReLU6))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(last, num_classes))


register(ArchSpec(
    name="mobilenet_v2", title_en="MobileNet V2", title_zh="MobileNet V2（倒残差与线性瓶颈）", builder=mobilenet_v2,
    knobs=(
        _alpha_knob(),
        Knob("expansion", "int", 6, "expansion factor t of the inverted residual blocks (paper 6)",
             "倒残差块的扩展因子 t（论文为 6）", lo=1, hi=10, label_zh="扩展因子 t"),
        Knob("dropout", "float", 0.2, "dropout before the classifier", "分类器之前的暂退概率",
             lo=0.0, hi=0.95, step=0.05, label_zh="暂退概率"),
    ),
    book_resolution=224,
    training=BookTraining(lr=0.1, batch_size=128, resolution=96),
    source="Sandler et al. 2018, Table 2; torchvision mobilenet_v2",
    source_zh="Sandler 等 2018 表 2；torchvision 的 mobilenet_v2",
))

# torchvision's mobilenet_v3 and the paper's TF code: BN eps 1e-3, momentum 0.01 (torch's convention:
# the running statistics move 1 % towards each batch's). V1 and V2 keep torch's defaults, as torchvision's do.
V3_NORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)

# ---- V3: kernel, expanded, out, SE, activation (RE/HS), stride, paper Tables 1-2 ----------------------------
V3_SETTINGS = {
    "large": ((3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
              (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
              (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
              (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
              (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1)),
    "small": ((3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
              (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
              (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
              (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)),
}
V3_LAST = {"large": 1280, "small": 1024}


def mobilenet_v3(*, in_channels=1, num_classes=10, resolution=224, size="large", alpha=1.0, se_reduction=4,
                 hswish=True, dropout=0.2) -> nn.Sequential:
    hs = nn.Hardswish if hswish else nn.ReLU
    acts = {"RE": nn.ReLU, "HS": hs}
    c = make_divisible(16 * alpha)
    layers = [conv_bn_act(in_channels, c, 3, 2, act=hs, norm_layer=V3_NORM)]
    for k, exp, out, se, a, s in V3_SETTINGS[size]:
        exp, out = make_divisible(exp * alpha), make_divisible(out * alpha)
        se_c = make_divisible(exp // se_reduction, 8) if se else 0
        layers.append(InvertedResidual(c, exp, out, k, s, act=acts[a], se_channels=se_c, norm_layer=V3_NORM))
        c = out
    last_conv = 6 * c
    last = make_divisible(V3_LAST[size] * alpha)
    layers.append(conv_bn_act(c, last_conv, 1, act=hs, norm_layer=V3_NORM))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(last_conv, last), hs(), nn.Dropout(dropout), nn.Linear(last, num_classes))


register(ArchSpec(
    name="mobilenet_v3", title_en="MobileNet V3", title_zh="MobileNet V3（SE 与 h-swish）", builder=mobilenet_v3,
    knobs=(
        Knob("size", "choice", "large", "MobileNetV3-Large or -Small (paper Tables 1 and 2)",
             "MobileNetV3-Large 或 -Small（论文表 1、表 2）", choices=("large", "small"), label_zh="规模"),
        _alpha_knob(),
        Knob("se_reduction", "int", 4, "squeeze-and-excite reduction: SE squeezes to expanded/r channels (paper 4)",
             "SE 模块的压缩比 r：压缩到 扩展通道数/r（论文为 4）", lo=1, hi=64, label_zh="SE 压缩比"),
        Knob("hswish", "bool", True, "h-swish in the later layers (off = ReLU everywhere)",
             "后面各层使用 h-swish（关闭则全部为 ReLU）", label_zh="h-swish"),
        Knob("dropout", "float", 0.2, "dropout before the classifier", "分类器之前的暂退概率",
             lo=0.0, hi=0.95, step=0.05, label_zh="暂退概率"),
    ),
    book_resolution=224,
    training=BookTraining(lr=0.1, batch_size=128, resolution=96),
    source="Howard et al. 2019, Tables 1-2; torchvision mobilenet_v3",
    source_zh="Howard 等 2019 表 1–2；torchvision 的 mobilenet_v3",
))
