"""A registered model as plain PyTorch in the book's idiom: the knobs at the top, then the book's blocks.

:func:`model_code` writes, for a resolved :class:`~cnnlab.registry.Config`, code that needs ``torch`` alone:
the knob values as the book writes them (``ratio = 4``, ``growth_rate = 32``, ``alpha = 0.5``), the blocks
with d2l's names (``vgg_block``, ``nin_block``, ``Inception``, ``Residual``/``resnet_block``,
``conv_block``/``DenseBlock``/``transition_block``; the papers' blocks for MobileNet), ``net`` built from
them, and the shape trace in the book's loop. The body reads the knobs only while building ``net`` (never in
``forward``), so changing a value at the top and running again gives that model, and two models (A and B)
can be built one after the other in one notebook.

The fidelity contract (tests/test_export.py): the code, run in a fresh interpreter with torch alone, defines
``net``; ``net.load_state_dict(cfg.build().state_dict(), strict=True)`` works; in eval mode both give the same
outputs; the printed trace agrees with the app's (cnnlab.probe's top-level rows). Each architecture has one
writer here (``WRITERS``, keyed by the registry's name): a new architecture without one is refused in one
line, and the contract test, parametrized over the registry, fails until it has one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ..i18n import t
from ..layers import bn_layers
from ..registry import Config, KnobError

IMPORTS = "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"


@dataclass(frozen=True)
class ModelCode:
    """The parts of one exported model; ``text`` is all of them, ready to run after ``IMPORTS``."""

    header: str       # the knob values, one per line, with what each one does
    body: str         # the book's blocks and `net = ...`
    trace: str        # the shape trace in the book's loop
    input_size: str   # the expression for the height = width the net sees ("resolution"; V1: "input_size")

    @property
    def text(self) -> str:
        return f"{self.header}\n{self.body}\n{self.trace}"

    def script(self) -> str:
        """The imports, the model and its shape trace: a file that runs on its own."""
        return f"{IMPORTS}\n{self.text}"


MAX_LINE = 100


def tidy(code: str) -> str:
    """Long lines read better with their comment above them: a line over MAX_LINE characters with a trailing
    `  # comment` (outside a string) becomes the comment, indented as the line, then the code."""
    out = []
    for line in code.split("\n"):
        at = line.find("  # ")
        if len(line) > MAX_LINE and at > 0 and line[:at].count("'") % 2 == 0 and line[:at].count('"') % 2 == 0:
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + line[at + 2:], line[:at].rstrip()]
        else:
            out.append(line)
    return "\n".join(out)


def _literal(v) -> str:
    """A knob value as Python writes it (repr: a float round-trips exactly; a tuple stays a tuple)."""
    if isinstance(v, list):
        v = tuple(v)
    return repr(v)


class _Writer:
    """What every architecture's writer gets: the config, the language and a comment maker."""

    def __init__(self, cfg: Config, lang: str):
        self.cfg, self.lang = cfg, lang

    def c(self, key: str, **fmt) -> str:
        """A comment line's text (no '#') in the export's language."""
        return t(key, self.lang, **fmt)

    def knob(self, name: str, var: str | None = None, value: str | None = None, note: str | None = None) -> str:
        """One header line: `var = value  # what it does` (the knob's own help in the export's language)."""
        k = self.cfg.spec.knob(name)
        text = _literal(self.cfg.knobs[name]) if value is None else value
        return f"{var or name} = {text}  # {note if note is not None else k.help(self.lang)}"

    def header(self, lines: list[str]) -> str:
        cfg = self.cfg
        title = cfg.spec.title_zh if self.lang == "zh" else cfg.spec.title_en
        top = [f"# {self.c('export.knobs', title=title)}",
               f"in_channels, num_classes, resolution = {cfg.in_channels}, {cfg.num_classes}, {cfg.resolution}"
               f"  # {self.c('export.input')}"]
        return "\n".join(top + lines) + "\n"


def _trace(w: _Writer, input_size: str) -> str:
    """The book's loop: a random input through each top-level block, printing its output shape."""
    with_bn = _has_bn(w.cfg)
    lines = [f"# {w.c('export.trace')}",
             f"X = torch.rand(size=(1, in_channels, {input_size}, {input_size}), dtype=torch.float32)"]
    if with_bn:
        lines.append(f"net.eval()  # {w.c('export.trace_eval')}")
    lines += ["for layer in net:",
              "    X = layer(X)",
              "    print(layer.__class__.__name__, 'output shape:\\t', X.shape)"]
    if with_bn:
        lines.append("net.train()")
    return "\n".join(lines) + "\n"


def _has_bn(cfg: Config) -> bool:
    return _has_bn_cached(cfg.arch, tuple(sorted(cfg.knobs.items())), cfg.in_channels, cfg.num_classes,
                          cfg.resolution)


@functools.lru_cache(maxsize=256)
def _has_bn_cached(arch: str, knobs: tuple, in_channels: int, num_classes: int, resolution: int) -> bool:
    """Whether the model has BatchNorm layers (built on the meta device: no weights; the pages rerun often)."""
    import torch

    with torch.device("meta"):
        return bool(bn_layers(Config(arch, dict(knobs), in_channels, num_classes, resolution).build()))


OUT_SIZE = '''def out_size(n, k, s=1, p=0):  # {note}
    return (n - k + 2 * p) // s + 1
'''

BATCH_NORM = '''# {intro}
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, training):
    shape = (1, -1) if X.dim() == 2 else (1, -1, 1, 1)
    if not training:  # {predict}
        X_hat = (X - moving_mean.view(shape)) / torch.sqrt(moving_var.view(shape) + eps)
        return gamma.view(shape) * X_hat + beta.view(shape), moving_mean, moving_var
    dims = (0,) if X.dim() == 2 else (0, 2, 3)  # {train}
    mean = X.mean(dim=dims)
    var = ((X - mean.view(shape)) ** 2).mean(dim=dims)
    X_hat = (X - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    n = X.numel() // X.shape[1]
    with torch.no_grad():  # {update}
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var * (n / max(n - 1, 1))
    return gamma.view(shape) * X_hat + beta.view(shape), moving_mean, moving_var


class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims=4, eps=1e-5, momentum=0.9):
        super().__init__()
        self.num_dims, self.eps, self.momentum = num_dims, eps, momentum
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features))

    def forward(self, X):
        Y, mean, var = batch_norm(X, self.gamma, self.beta, self.running_mean, self.running_var,
                                  self.eps, self.momentum, self.training)
        if self.training:
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
        return Y
'''


def _lenet(w: _Writer) -> tuple[str, str, str]:
    k = w.cfg.knobs
    head = w.header([w.knob("activation"), w.knob("pooling"), w.knob("batchnorm"), w.knob("bn_position")])
    parts = [OUT_SIZE.format(note=w.c("export.out_size"))]
    if k["batchnorm"] == "scratch":
        parts.append(BATCH_NORM.format(intro=w.c("export.bn_scratch"), predict=w.c("export.bn_predict"),
                                       train=w.c("export.bn_train"), update=w.c("export.bn_update")))
    parts.append(f'''Act = {{'sigmoid': nn.Sigmoid, 'relu': nn.ReLU}}[activation]
Pool = {{'avg': nn.AvgPool2d, 'max': nn.MaxPool2d}}[pooling]


def act(num_features, num_dims=4):  # {w.c("export.lenet_act")}
    if batchnorm == 'off':
        return [Act()]
    if batchnorm == 'scratch':
        bn = BatchNorm(num_features, num_dims=num_dims)
    else:
        bn = nn.BatchNorm2d(num_features) if num_dims == 4 else nn.BatchNorm1d(num_features)
    return [bn, Act()] if bn_position == 'before_act' else [Act(), bn]


padding = 2 if batchnorm == 'off' else 0  # {w.c("export.lenet_pad")}
h = out_size(out_size(out_size(out_size(resolution, 5, p=padding), 2, s=2), 5), 2, s=2)  # {w.c("export.lenet_h")}
net = nn.Sequential(
    nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding), *act(6),
    Pool(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), *act(16),
    Pool(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * h * h, 120), *act(120, num_dims=2),
    nn.Linear(120, 84), *act(84, num_dims=2),
    nn.Linear(84, num_classes))
''')
    return head, "\n\n".join(parts), "resolution"


def _alexnet(w: _Writer) -> tuple[str, str, str]:
    head = w.header([w.knob("dropout"), w.knob("fc_width")])
    body = OUT_SIZE.format(note=w.c("export.out_size")) + f'''

h = out_size(resolution, 11, s=4, p=1)  # {w.c("export.alexnet_h")}
h = out_size(out_size(out_size(h, 3, s=2), 3, s=2), 3, s=2)
net = nn.Sequential(
    nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Flatten(),
    nn.Linear(256 * h * h, fc_width), nn.ReLU(), nn.Dropout(p=dropout),
    nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(p=dropout),
    nn.Linear(fc_width, num_classes))
'''
    return head, body, "resolution"


def _vgg(w: _Writer) -> tuple[str, str, str]:
    from ..models.vgg import CONV_ARCHS

    name = w.cfg.knobs["conv_arch"]
    head = w.header([
        w.knob("conv_arch", value=_literal(CONV_ARCHS[name]),
               note=w.c("export.vgg_arch", name=name.replace("vgg", "VGG-"))),
        w.knob("ratio"), w.knob("fc_width"), w.knob("fc_div_ratio"), w.knob("batchnorm"), w.knob("dropout")])
    body = f'''def vgg_block(num_convs, in_channels, out_channels):  # {w.c("export.vgg_block")}
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(conv_arch, in_channels):
    conv_blks = []
    for (num_convs, out_channels) in conv_arch:
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    h = resolution // 2 ** len(conv_arch)  # {w.c("export.vgg_h")}
    width = max(1, fc_width // ratio) if fc_div_ratio else fc_width
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.Linear(out_channels * h * h, width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(width, num_classes))


small_conv_arch = [(pair[0], pair[1] // ratio) for pair in conv_arch]  # {w.c("export.vgg_small")}
net = vgg(small_conv_arch, in_channels)
'''
    return head, body, "resolution"


def _nin(w: _Writer) -> tuple[str, str, str]:
    head = w.header([w.knob("dropout")])
    body = f'''def nin_block(in_channels, out_channels, kernel_size, strides, padding):  # {w.c("export.nin_block")}
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())


net = nn.Sequential(
    nin_block(in_channels, 96, kernel_size=11, strides=4, padding=0),
    nn.MaxPool2d(3, stride=2),
    nin_block(96, 256, kernel_size=5, strides=1, padding=2),
    nn.MaxPool2d(3, stride=2),
    nin_block(256, 384, kernel_size=3, strides=1, padding=1),
    nn.MaxPool2d(3, stride=2),
    nn.Dropout(dropout),
    nin_block(384, num_classes, kernel_size=3, strides=1, padding=1),  # {w.c("export.nin_head")}
    nn.AdaptiveAvgPool2d((1, 1)),
    nn.Flatten())
'''
    return head, body, "resolution"


def _googlenet(w: _Writer) -> tuple[str, str, str]:
    head = w.header([w.knob("ratio")])
    body = f'''class Inception(nn.Module):  # {w.c("export.inception")}
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def d(c):  # {w.c("export.googlenet_d")}
    return max(1, c // ratio)


def inceptions(in_channels, table):  # {w.c("export.googlenet_stage")}
    blks = []
    for c1, c2, c3, c4 in table:
        blks.append(Inception(in_channels, d(c1), (d(c2[0]), d(c2[1])), (d(c3[0]), d(c3[1])), d(c4)))
        in_channels = d(c1) + d(c2[1]) + d(c3[1]) + d(c4)
    return blks, in_channels


b1 = nn.Sequential(nn.Conv2d(in_channels, d(64), kernel_size=7, stride=2, padding=3), nn.ReLU(),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
b2 = nn.Sequential(nn.Conv2d(d(64), d(64), kernel_size=1), nn.ReLU(),
                   nn.Conv2d(d(64), d(192), kernel_size=3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
blks, c = inceptions(d(192), [(64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)])
b3 = nn.Sequential(*blks, nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
blks, c = inceptions(c, [(192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64),
                         (128, (128, 256), (24, 64), 64), (112, (144, 288), (32, 64), 64),
                         (256, (160, 320), (32, 128), 128)])
b4 = nn.Sequential(*blks, nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
blks, c = inceptions(c, [(256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)])
b5 = nn.Sequential(*blks, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
net = nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(c, num_classes))
'''
    return head, body, "resolution"


def _resnet(w: _Writer) -> tuple[str, str, str]:
    head = w.header([w.knob("depth"), w.knob("batchnorm"), w.knob("residual")])
    body = f'''class Residual(nn.Module):  # {w.c("export.residual")}
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv and residual:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels) if batchnorm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(num_channels) if batchnorm else nn.Identity()
        self.residual = residual

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.residual:
            if self.conv3:
                X = self.conv3(X)
            Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):  # {w.c("export.resnet_block")}
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


num_residuals = {{18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}}[depth]  # {w.c("export.resnet_depth")}
b1 = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
                   *([nn.BatchNorm2d(64)] if batchnorm else []), nn.ReLU(),
                   nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
b2 = nn.Sequential(*resnet_block(64, 64, num_residuals[0], first_block=True))
b3 = nn.Sequential(*resnet_block(64, 128, num_residuals[1]))
b4 = nn.Sequential(*resnet_block(128, 256, num_residuals[2]))
b5 = nn.Sequential(*resnet_block(256, 512, num_residuals[3]))
net = nn.Sequential(b1, b2, b3, b4, b5,
                    nn.AdaptiveAvgPool2d((1, 1)),
                    nn.Flatten(), nn.Linear(512, num_classes))
'''
    return head, body, "resolution"


def _densenet(w: _Writer) -> tuple[str, str, str]:
    head = w.header([w.knob("growth_rate"), w.knob("block_config", var="num_convs_in_dense_blocks"),
                     w.knob("init_channels"), w.knob("compression"), w.knob("bottleneck")])
    body = f'''def conv_block(input_channels, num_channels):  # {w.c("export.conv_block")}
    layers = []
    if bottleneck:
        layers += [nn.BatchNorm2d(input_channels), nn.ReLU(),
                   nn.Conv2d(input_channels, 4 * num_channels, kernel_size=1)]
        input_channels = 4 * num_channels
    layers += [nn.BatchNorm2d(input_channels), nn.ReLU(),
               nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1)]
    return nn.Sequential(*layers)


class DenseBlock(nn.Module):  # {w.c("export.dense_block")}
    def __init__(self, num_convs, input_channels, num_channels):
        super().__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels * i + input_channels, num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(input_channels, num_channels):  # {w.c("export.transition")}
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


b1 = nn.Sequential(
    nn.Conv2d(in_channels, init_channels, kernel_size=7, stride=2, padding=3),
    nn.BatchNorm2d(init_channels), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
num_channels = init_channels
blks = []
for i, num_convs in enumerate(num_convs_in_dense_blocks):
    blks.append(DenseBlock(num_convs, num_channels, growth_rate))
    num_channels += num_convs * growth_rate
    if i != len(num_convs_in_dense_blocks) - 1:
        out_channels = max(1, int(compression * num_channels))  # {w.c("export.compression")}
        blks.append(transition_block(num_channels, out_channels))
        num_channels = out_channels
net = nn.Sequential(
    b1, *blks,
    nn.BatchNorm2d(num_channels), nn.ReLU(),
    nn.AdaptiveAvgPool2d((1, 1)),
    nn.Flatten(),
    nn.Linear(num_channels, num_classes))
'''
    return head, body, "resolution"


MAKE_DIVISIBLE = '''def make_divisible(v, divisor=8, min_value=None):  # {note}
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v
'''

CONV_BN = '''def conv_bn(in_channels, out_channels, kernel_size=3, stride=1, groups=1, act={act}):  # {note}
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                        bias=False),
              nn.BatchNorm2d(out_channels{bn})]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)
'''


def _mobile_common(w: _Writer, act: str, bn: str = "") -> str:
    return (MAKE_DIVISIBLE.format(note=w.c("export.make_divisible")) + "\n\n"
            + CONV_BN.format(act=act, bn=bn, note=w.c("export.conv_bn")))


def _mobilenet_v1(w: _Writer) -> tuple[str, str, str]:
    from ..models.mobilenet import V1_LAYERS

    head = w.header([w.knob("alpha"), w.knob("rho"), w.knob("activation"), w.knob("separable")])
    table = ",\n             ".join(", ".join(_literal(r) for r in V1_LAYERS[i:i + 5]) for i in range(0, len(V1_LAYERS), 5))
    body = _mobile_common(w, "nn.ReLU") + f'''

class DepthwiseSeparable(nn.Module):  # {w.c("export.dws")}
    def __init__(self, in_channels, out_channels, stride, act):
        super().__init__()
        self.depthwise = conv_bn(in_channels, in_channels, 3, stride, groups=in_channels, act=act)
        self.pointwise = conv_bn(in_channels, out_channels, 1, 1, act=act)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


# {w.c("export.v1_table")}
v1_layers = ({table})
Act = {{'relu': nn.ReLU, 'relu6': nn.ReLU6}}[activation]
c = make_divisible(32 * alpha)
layers = [conv_bn(in_channels, c, 3, 2, act=Act)]
for out_channels, stride in v1_layers:
    out_channels = make_divisible(out_channels * alpha)
    if separable:
        layers.append(DepthwiseSeparable(c, out_channels, stride, Act))
    else:
        layers.append(conv_bn(c, out_channels, 3, stride, act=Act))
    c = out_channels
net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, num_classes))
input_size = max(1, round(resolution * rho))  # {w.c("export.v1_input")}
'''
    return head, body, "input_size"


def _mobilenet_v2(w: _Writer) -> tuple[str, str, str]:
    from ..models.mobilenet import V2_SETTING

    head = w.header([w.knob("alpha"), w.knob("expansion"), w.knob("dropout")])
    table = ",\n                             ".join(_literal(list(r)) for r in V2_SETTING)
    body = _mobile_common(w, "nn.ReLU6") + f'''

class InvertedResidual(nn.Module):  # {w.c("export.inverted")}
    def __init__(self, in_channels, expanded, out_channels, stride):
        super().__init__()
        layers = []
        if expanded != in_channels:
            layers.append(conv_bn(in_channels, expanded, 1))
        layers.append(conv_bn(expanded, expanded, 3, stride, groups=expanded))
        layers.append(conv_bn(expanded, out_channels, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y


# {w.c("export.v2_table")}
inverted_residual_setting = [{table}]
c = make_divisible(32 * alpha)
last_channel = make_divisible(1280 * max(1.0, alpha))
layers = [conv_bn(in_channels, c, 3, 2)]
for t, out_channels, n, s in inverted_residual_setting:
    t = t if t == 1 else expansion
    out_channels = make_divisible(out_channels * alpha)
    for i in range(n):
        layers.append(InvertedResidual(c, int(round(c * t)), out_channels, s if i == 0 else 1))
        c = out_channels
layers.append(conv_bn(c, last_channel, 1))
net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(dropout),
                    nn.Linear(last_channel, num_classes))
'''
    return head, body, "resolution"


def _mobilenet_v3(w: _Writer) -> tuple[str, str, str]:
    from ..models.mobilenet import V3_LAST, V3_SETTINGS

    head = w.header([w.knob("size"), w.knob("alpha"), w.knob("se_reduction"), w.knob("hswish"), w.knob("dropout")])

    def rows(size):
        return ",\n              ".join(_literal(r) for r in V3_SETTINGS[size])

    body = _mobile_common(w, "nn.ReLU", bn=", eps=0.001, momentum=0.01") + f'''

class SqueezeExcitation(nn.Module):  # {w.c("export.se")}
    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):  # {w.c("export.inverted")}
    def __init__(self, in_channels, expanded, out_channels, kernel_size, stride, act, se_channels):
        super().__init__()
        layers = []
        if expanded != in_channels:
            layers.append(conv_bn(in_channels, expanded, 1, act=act))
        layers.append(conv_bn(expanded, expanded, kernel_size, stride, groups=expanded, act=act))
        if se_channels:
            layers.append(SqueezeExcitation(expanded, se_channels))
        layers.append(conv_bn(expanded, out_channels, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y


# {w.c("export.v3_table")}
settings = {{'large': [{rows("large")}],
            'small': [{rows("small")}]}}
last = {_literal(V3_LAST)}
HS = nn.Hardswish if hswish else nn.ReLU
acts = {{'RE': nn.ReLU, 'HS': HS}}
c = make_divisible(16 * alpha)
layers = [conv_bn(in_channels, c, 3, 2, act=HS)]
for k, exp, out_channels, se, a, s in settings[size]:
    exp, out_channels = make_divisible(exp * alpha), make_divisible(out_channels * alpha)
    se_channels = make_divisible(exp // se_reduction, 8) if se else 0
    layers.append(InvertedResidual(c, exp, out_channels, k, s, acts[a], se_channels))
    c = out_channels
last_conv = 6 * c
last_channel = make_divisible(last[size] * alpha)
layers.append(conv_bn(c, last_conv, 1, act=HS))
net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                    nn.Linear(last_conv, last_channel), HS(), nn.Dropout(dropout),
                    nn.Linear(last_channel, num_classes))
'''
    return head, body, "resolution"


WRITERS: dict[str, Callable[[_Writer], tuple[str, str, str]]] = {
    "lenet": _lenet, "alexnet": _alexnet, "vgg": _vgg, "nin": _nin, "googlenet": _googlenet, "resnet": _resnet,
    "densenet": _densenet, "mobilenet_v1": _mobilenet_v1, "mobilenet_v2": _mobilenet_v2,
    "mobilenet_v3": _mobilenet_v3,
}


def model_code(cfg: Config, lang: str = "en") -> ModelCode:
    """The model of `cfg` as book-style PyTorch (comments in `lang`). Raises KnobError for an architecture
    that has no writer yet."""
    writer = WRITERS.get(cfg.arch)
    if writer is None:
        raise KnobError(f"{cfg.arch} cannot be exported as code yet (no writer in cnnlab.export.code)")
    w = _Writer(cfg, lang)
    head, body, input_size = writer(w)
    return ModelCode(header=tidy(head), body=tidy(body), trace=tidy(_trace(w, input_size)), input_size=input_size)
