"""The book's blocks, one concept each, with d2l's names (vgg_block, Residual, DenseBlock, ...).

Built from plain torch.nn modules only. Blocks with a normalisation take `norm_layer`, a callable
from a channel count to a module (torchvision's habit, e.g. `nn.BatchNorm2d` or
`partial(nn.BatchNorm2d, eps=1e-3)`); `norm_factory()` maps the `batchnorm` knob to one. CPU speed
paths live in cnnlab.cpu_fast and are applied to a built model by the engine, never here.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never below 90 % of `v` (as torchvision/TF do)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def flat_features(features: nn.Module, in_shape: Sequence[int]) -> int:
    """Number of features `features` outputs for one input of `in_shape`, found on the meta device.

    Used instead of Lazy layers: the head's width is known from the knobs before any data flows. The module is
    run once with meta copies of its weights (nothing allocated, no arithmetic done, the module itself untouched).
    Raises InputTooSmall when a window no longer fits the input (cnnlab.measure names the layer); any other error
    is the builder's and propagates.
    """
    from .errors import InputTooSmall

    state = {k: torch.empty_like(v, device="meta")
             for k, v in (*features.named_parameters(), *features.named_buffers())}
    was_training = features.training
    features.eval()   # no batch statistics: one sample of a 1×1 map is fine
    try:
        with torch.no_grad():
            out = torch.func.functional_call(features, state, (torch.empty(1, *in_shape, device="meta"),))
    except RuntimeError as e:
        if not _TOO_SMALL.search(str(e)):
            raise
        raise InputTooSmall(f"input too small: {tuple(in_shape)} does not reach the head") from None
    finally:
        features.train(was_training)
    n = out[0].numel()
    if n == 0:
        raise InputTooSmall(f"input too small: the features of {tuple(in_shape)} are empty ({tuple(out.shape[1:])})")
    return n


# torch's words for a window larger than its (padded) input: conv, pooling
_TOO_SMALL = re.compile(r"can't be greater than actual input size|Output size is too small|output size .* too small",
                        re.I)


# -- BatchNorm from scratch ---------------------------------------------------------

def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, training):
    """The book's `batch_norm`, with its momentum convention: new = momentum * old + (1 - momentum) * batch.

    Returns (Y, batch_mean, batch_var, new_moving_mean, new_moving_var); stats have shape (C,).
    Like torch (and unlike the book) the moving variance is updated with the *unbiased* batch variance,
    so this layer equals nn.BatchNorm in train and eval mode; the book's biased update differs by n/(n-1).
    """
    assert X.dim() in (2, 4), "BatchNorm expects (N, C) or (N, C, H, W)"
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    shape = (1, -1) if X.dim() == 2 else (1, -1, 1, 1)
    if not training:
        mean, var = moving_mean, moving_var
        X_hat = (X - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
        return gamma.view(shape) * X_hat + beta.view(shape), None, None, moving_mean, moving_var
    mean = X.mean(dim=dims)
    var = ((X - mean.view(shape)) ** 2).mean(dim=dims)  # biased: used to normalise, as in the book
    X_hat = (X - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    n = X.numel() // X.shape[1]
    with torch.no_grad():
        unbiased = var * (n / max(n - 1, 1))
        new_mean = momentum * moving_mean + (1.0 - momentum) * mean
        new_var = momentum * moving_var + (1.0 - momentum) * unbiased
    return gamma.view(shape) * X_hat + beta.view(shape), mean, var, new_mean, new_var


class BatchNorm(nn.Module):
    """批量规范化 from scratch (d2l's `BatchNorm`), with state in registered buffers.

    `gamma`/`beta` are parameters; `running_mean`/`running_var` are buffers named as in torch,
    so the state saves, loads and moves devices like nn.BatchNorm (and a state_dict maps across
    via `weight`/`bias` aliases). `momentum` is the book's: 0.9 keeps 90 % of the old statistic.
    The last training batch's mean/var are kept (non-persistent) for the BatchNorm page.
    """

    def __init__(self, num_features: int, num_dims: int = 4, eps: float = 1e-5, momentum: float = 0.9):
        super().__init__()
        assert num_dims in (2, 4)
        self.num_features, self.num_dims, self.eps, self.momentum = num_features, num_dims, eps, momentum
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("batch_mean", torch.zeros(num_features), persistent=False)
        self.register_buffer("batch_var", torch.ones(num_features), persistent=False)

    # aliases so code written for nn.BatchNorm (weight/bias) works on both
    @property
    def weight(self):
        return self.gamma

    @property
    def bias(self):
        return self.beta

    def forward(self, X):
        if X.dim() != self.num_dims:
            raise ValueError(f"BatchNorm(num_dims={self.num_dims}) got a {X.dim()}-d input")
        Y, mean, var, new_mean, new_var = batch_norm(
            X, self.gamma, self.beta, self.running_mean, self.running_var, self.eps, self.momentum, self.training)
        if self.training and not X.is_meta:
            with torch.no_grad():
                self.running_mean.copy_(new_mean)
                self.running_var.copy_(new_var)
                self.batch_mean.copy_(mean.detach())
                self.batch_var.copy_(var.detach())
        return Y

    def extra_repr(self):
        return f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}"


NormLayer = Callable[[int], nn.Module]
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm)


def norm_factory(kind: str | bool, num_dims: int = 4) -> NormLayer | None:
    """The `batchnorm` knob as a `norm_layer`: 'nn' (or True) -> torch's nn.BatchNorm2d / nn.BatchNorm1d
    (exactly those classes), 'scratch' -> the book's BatchNorm, 'off' (or False) -> None (no layer).
    `num_dims` is 4 after a convolution, 2 after a dense layer."""
    if num_dims not in (2, 4):
        raise ValueError(f"num_dims must be 2 or 4, got {num_dims!r}")
    if kind is True:
        kind = "nn"
    if kind is False or kind == "off":
        return None
    if kind == "scratch":
        return partial(BatchNorm, num_dims=num_dims)
    if kind == "nn":
        return nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d
    raise ValueError(f"batchnorm must be off | scratch | nn, got {kind!r}")


def bn_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every BatchNorm layer (scratch or torch) with its qualified name, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BN_TYPES)]


# -- VGG / NiN ---------------------------------------------------------------------

def vgg_block(num_convs: int, in_channels: int, out_channels: int,
              norm_layer: NormLayer | None = None) -> nn.Sequential:
    """`num_convs` 3×3 convs (each followed by `norm_layer` if given, then ReLU), then 2×2 max-pooling."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def nin_block(in_channels: int, out_channels: int, kernel_size: int, strides: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())


# -- GoogLeNet ---------------------------------------------------------------------

class Inception(nn.Module):
    """Four parallel paths (d2l): 1×1 | 1×1→3×3 | 1×1→5×5 | 3×3 max-pool→1×1, concatenated on channels."""

    def __init__(self, in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int):
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


# -- ResNet ------------------------------------------------------------------------

class Residual(nn.Module):
    """The book's residual block: two 3×3 convs with BN, an optional 1×1 conv on the shortcut.

    `norm_layer=None` leaves the BN out (Identity). `shortcut=False` drops the addition (a plain block,
    for the book's exercise) and with it the 1×1 conv, which would otherwise be counted but never used.
    """

    def __init__(self, in_channels: int, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 norm_layer: NormLayer | None = nn.BatchNorm2d, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(in_channels, num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv and shortcut else None)
        self.bn1 = norm_layer(num_channels) if norm_layer is not None else nn.Identity()
        self.bn2 = norm_layer(num_channels) if norm_layer is not None else nn.Identity()
        self.shortcut = shortcut

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.shortcut:
            if self.conv3 is not None:
                X = self.conv3(X)
            Y = Y + X
        return F.relu(Y)


def resnet_block(in_channels: int, num_channels: int, num_residuals: int, first_block: bool = False,
                 **kw) -> nn.Sequential:
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(in_channels, num_channels, use_1x1conv=True, strides=2, **kw))
        else:
            blk.append(Residual(num_channels, num_channels, **kw))
    return nn.Sequential(*blk)


# -- DenseNet ----------------------------------------------------------------------

def conv_block(in_channels: int, num_channels: int, bottleneck: int = 0,
               norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
    """BN-ReLU-Conv 3×3 (d2l); with `bottleneck` > 0 a BN-ReLU-Conv 1×1 to that width comes first (DenseNet-B)."""
    layers: list[nn.Module] = []
    if bottleneck:
        layers += [norm_layer(in_channels), nn.ReLU(), nn.Conv2d(in_channels, bottleneck, kernel_size=1)]
        in_channels = bottleneck
    layers += [norm_layer(in_channels), nn.ReLU(), nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1)]
    return nn.Sequential(*layers)


class DenseBlock(nn.Module):
    """稠密块: each conv_block sees the concatenation of all earlier outputs; channels grow by the growth rate."""

    def __init__(self, num_convs: int, in_channels: int, num_channels: int, bottleneck: int = 0,
                 norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.net = nn.Sequential(*[conv_block(in_channels + i * num_channels, num_channels, bottleneck, norm_layer)
                                   for i in range(num_convs)])
        self.out_channels = in_channels + num_convs * num_channels

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(in_channels: int, num_channels: int, norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
    """过渡层: BN-ReLU-Conv 1×1 to reduce channels, then 2×2 average pooling to halve height and width."""
    return nn.Sequential(norm_layer(in_channels), nn.ReLU(),
                         nn.Conv2d(in_channels, num_channels, kernel_size=1), nn.AvgPool2d(kernel_size=2, stride=2))


# -- MobileNets --------------------------------------------------------------------

def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                act: Callable[[], nn.Module] | None = nn.ReLU, norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
    """Conv (no bias) → BN → activation; `act=None` leaves it linear (the linear bottleneck)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        norm_layer(out_channels)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class DepthwiseSeparable(nn.Module):
    """MobileNet V1: a 3×3 depthwise conv (one filter per channel) then a 1×1 pointwise conv, each with BN+act."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, act: Callable[[], nn.Module] = nn.ReLU,
                 norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.depthwise = conv_bn_act(in_channels, in_channels, 3, stride, groups=in_channels, act=act,
                                     norm_layer=norm_layer)
        self.pointwise = conv_bn_act(in_channels, out_channels, 1, 1, act=act, norm_layer=norm_layer)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class SqueezeExcite(nn.Module):
    """SE: global pool → 1×1 reduce → ReLU → 1×1 expand → hard-sigmoid gate per channel."""

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    """MobileNet V2/V3 block: 1×1 expand → k×k depthwise → (SE) → 1×1 linear projection; residual when shapes match."""

    def __init__(self, in_channels: int, expanded: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 act: Callable[[], nn.Module] = nn.ReLU6, se_channels: int = 0, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv_bn_act(in_channels, expanded, 1, act=act, norm_layer=norm_layer))
        layers.append(conv_bn_act(expanded, expanded, kernel_size, stride, groups=expanded, act=act,
                                  norm_layer=norm_layer))
        if se_channels:
            layers.append(SqueezeExcite(expanded, se_channels))
        layers.append(conv_bn_act(expanded, out_channels, 1, act=None, norm_layer=norm_layer))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y
