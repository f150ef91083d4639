"""Reusable blocks, one concept each, with d2l's names (vgg_block, Residual, DenseBlock, ...)."""
from __future__ import annotations

import time
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


def flat_features(make: Callable[[], nn.Module], in_shape: Sequence[int]) -> int:
    """Number of features `make()` outputs for one input of `in_shape`, found on the meta device.

    Used instead of Lazy layers: the head's width is known from the knobs before any data flows.
    Raises registry.InputTooSmall naming the layer (by its index in `make()`) where the input gets
    smaller than one pixel; any other error is the builder's and propagates.
    """
    from .arithmetic import walk
    from .registry import InputTooSmall

    with torch.device("meta"):
        _, out = walk(make(), tuple(in_shape), device="meta")
    n = out[0].numel()
    if n == 0:
        raise InputTooSmall(f"input too small: the features of {tuple(in_shape)} are empty ({tuple(out.shape[1:])})")
    return n


# -- 2×2 average pooling, the same numbers in fewer passes on CPU -------------------------

class _Pool2x2(torch.autograd.Function):
    """2×2 average pooling with stride 2 on an even-sized 4-d CPU tensor, as two strided adds.

    torch's CPU avg_pool2d kernel loops per output pixel; for LeNet's small maps that costs more
    than the convolutions around it (256×6×24×24: 0.9 ms forward, 0.65 ms backward on 2 cores).
    Adding row pairs, then column pairs, and in backward duplicating by two `cat`s gives the same
    values (tests check output and gradient against F.avg_pool2d) in ~0.1 ms each way.
    Works for contiguous NCHW and for channels_last (NHWC) memory; the output keeps the layout.
    """

    @staticmethod
    def forward(ctx, x):
        n, c, h2, w2 = x.shape
        h, w = h2 // 2, w2 // 2
        nhwc = not x.is_contiguous()
        ctx.nhwc = nhwc
        if nhwc:  # channels_last: memory is N, H, W, C
            u = x.permute(0, 2, 3, 1).view(n, h, 2, w2, c)
            a = torch.add(u[:, :, 0], u[:, :, 1]).view(n, h, w, 2, c)
            return torch.add(a[:, :, :, 0], a[:, :, :, 1]).mul_(0.25).permute(0, 3, 1, 2)
        u = x.view(n, c, h, 2, w2)
        a = torch.add(u[:, :, :, 0], u[:, :, :, 1]).view(n, c, h, w, 2)
        return torch.add(a[..., 0], a[..., 1]).mul_(0.25)

    @staticmethod
    def backward(ctx, g):
        n, c, h, w = g.shape
        g = g * 0.25
        if ctx.nhwc:
            q = g.permute(0, 2, 3, 1).contiguous().view(n * h, w, 1, c)
            r = torch.cat((q, q), 2).view(n * h, 1, 2 * w, c)
            return torch.cat((r, r), 1).view(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
        q = g.contiguous().view(n * c * h, w, 1)
        r = torch.cat((q, q), 2).view(n * c * h, 1, 2 * w)
        return torch.cat((r, r), 1).view(n, c, 2 * h, 2 * w)


def _is_two(v) -> bool:
    return v in (2, (2, 2), [2, 2])


class AvgPool2d(nn.AvgPool2d):
    """nn.AvgPool2d (same name, arguments and results) with a fast path for 2×2, stride 2 on CPU."""

    def forward(self, x):
        if (x.device.type == "cpu" and x.dim() == 4 and x.dtype in (torch.float32, torch.float64)
                and _is_two(self.kernel_size) and _is_two(self.stride if self.stride is not None else self.kernel_size)
                and self.padding in (0, (0, 0)) and self.divisor_override is None
                and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0 and x.shape[2] > 0 and x.shape[3] > 0
                and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))):
            return _Pool2x2.apply(x)
        return super().forward(x)


# -- Convolution whose weight gradient may be computed "batch as channels" on CPU -----------

_CONV_CHOICE: dict[tuple, bool] = {}   # (shapes, padding, bias, input grad) -> use the batch-as-channels path
_CONV_TUNE_MACS = 1e8                  # only small convolutions are timed (each try costs a step's worth)


def _conv_backward(g, x, weight, padding, mask, batch_as_channels: bool):
    """(dL/dx, dL/dW, dL/db) of a stride-1, one-group convolution; an entry is None where `mask` is False.

    batch_as_channels=False: torch's own kernel, all in one call. True: dL/dx by torch's kernel, dL/dW as a
    convolution of the inputs with the output gradients, the batch taking the place of the channels
    ((C_in, N, H, W) ⋆ (C_out, N, H', W') -> (C_in, C_out, k, k)), dL/db as a sum.
    """
    if not batch_as_channels:
        return torch.ops.aten.convolution_backward(g, x, weight, [weight.shape[0]] if mask[2] else None, [1, 1],
                                                   list(padding), [1, 1], False, [0, 0], 1, list(mask))
    gx = gw = gb = None
    if mask[0]:
        gx = torch.ops.aten.convolution_backward(g, x, weight, None, [1, 1], list(padding), [1, 1], False,
                                                 [0, 0], 1, [True, False, False])[0]
    if mask[1]:
        gw = F.conv2d(x.transpose(0, 1), g.transpose(0, 1), padding=padding).transpose(0, 1)
    if mask[2]:
        gb = g.sum((0, 2, 3))
    return gx, gw, gb


class _ConvBatchGrad(torch.autograd.Function):
    """conv2d forward as torch does it; backward by `_conv_backward(batch_as_channels=True)`.
    Same values up to float rounding (tests compare with nn.Conv2d)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        return (*_conv_backward(g, x, weight, ctx.padding, ctx.needs_input_grad[:3], True), None)


def _faster(a, b, warmup: int = 3, rounds: int = 7) -> float:
    """Median time of `a` over median time of `b`, the two alternated after `warmup` calls of each (the
    first calls in a process pay for oneDNN's primitive cache and thread start-up, so they are not timed)."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return sorted(ta)[rounds // 2] / sorted(tb)[rounds // 2]


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same name, parameters and results) that, when training on CPU, times once per shape
    torch's backward against a batch-as-channels weight gradient and keeps the faster one.

    For LeNet's second convolution (256×6×12×12 → 16×8×8, 5×5) the batch-as-channels weight gradient
    measured 1.1 ms against torch's 1.8 ms for the whole backward; for most other shapes torch's
    is faster, and then torch's is used. The choice is made per process and shape (like
    cudnn.benchmark), only for stride 1, one group and convolutions under 1e8 multiply-adds; the new
    path is taken only when it measured at most 0.8× torch's time.
    """

    def forward(self, x):
        if (self.training and torch.is_grad_enabled() and x.device.type == "cpu" and x.dim() == 4
                and x.dtype == torch.float32 and self.weight.requires_grad and self.groups == 1
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.padding_mode == "zeros"
                and isinstance(self.padding, tuple)):
            key = self.tune_key(x)
            use = _CONV_CHOICE.get(key)
            if use is None:
                use = _CONV_CHOICE[key] = self._tune(x)
            if use:
                return _ConvBatchGrad.apply(x, self.weight, self.bias, self.padding)
        return super().forward(x)

    def tune_key(self, x) -> tuple:
        return (tuple(x.shape), x.is_contiguous(), tuple(self.weight.shape), self.padding,
                self.bias is not None, x.requires_grad)

    def _tune(self, x) -> bool:
        n, c, h, w = x.shape
        k_h, k_w = self.kernel_size
        p_h, p_w = self.padding
        h_out, w_out = h + 2 * p_h - k_h + 1, w + 2 * p_w - k_w + 1
        if h_out < 1 or w_out < 1 or n * self.out_channels * h_out * w_out * c * k_h * k_w > _CONV_TUNE_MACS:
            return False
        with torch.no_grad():
            xd, wd = x.detach(), self.weight.detach()
            g = torch.randn(n, self.out_channels, h_out, w_out, generator=torch.Generator().manual_seed(0))
            mask = (x.requires_grad, True, self.bias is not None)
            return _faster(lambda: _conv_backward(g, xd, wd, self.padding, mask, True),
                           lambda: _conv_backward(g, xd, wd, self.padding, mask, False)) <= 0.8


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


def batch_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of a (N, C, ...) batch, as BN normalises with it.

    Two passes over a (N, C, H·W) view: on CPU ~3× faster than torch.var_mean over dims (0, 2, 3) or
    the training-mode batch_norm kernel, and as exact (the deviations are summed, not E[x²] − E[x]²).
    """
    n, c = x.shape[:2]
    xv = x.reshape(n, c, -1)
    mean = xv.mean((0, 2))
    var = (xv - mean[:, None]).square_().sum((0, 2)).div_(xv.shape[0] * xv.shape[2])
    return mean, var


class _BNTrain(torch.autograd.Function):
    """Training-mode batch norm: statistics by `batch_stats`, normalisation by torch's eval kernel
    (one pass), gradients by torch's own native_batch_norm_backward. Returns (y, mean, var)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        mean, var = batch_stats(x)
        y = F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)
        invstd = (var + eps).rsqrt_()
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, gy, _gmean, _gvar):
        x, weight, mean, invstd = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            gy.contiguous(), x, weight, None, None, mean, invstd, True, ctx.eps, mask)
        return gx, gw, gb, None


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d (same name, parameters, buffers and results) with a faster training step on CPU.

    torch's CPU training kernel computes the statistics channel by channel (LeNet's 256×6×24×24 batch:
    0.66 ms); `_BNTrain` does the same arithmetic in ~0.23 ms. Tests check output, gradients and
    running statistics against nn.BatchNorm2d. Other cases (CUDA, channels_last, eval) use torch's.
    """

    def forward(self, x):
        if (self.training and self.affine and self.track_running_stats and self.running_mean is not None
                and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and x.is_contiguous() and x.shape[0] * x.shape[2] * x.shape[3] > 1):
            self._check_input_dim(x)
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            y, mean, var = _BNTrain.apply(x, self.weight, self.bias, self.eps)
            cnt = x.shape[0] * x.shape[2] * x.shape[3]
            with torch.no_grad():
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * (cnt / (cnt - 1)), factor)
            return y
        return super().forward(x)


BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm)


def make_bn(kind: str | bool, num_features: int, num_dims: int = 4) -> nn.Module:
    """kind: 'off' | 'scratch' | 'nn' (or True = 'nn'). 'off' gives an Identity."""
    if kind is True:
        kind = "nn"
    if kind in (False, "off"):
        return nn.Identity()
    if kind == "scratch":
        return BatchNorm(num_features, num_dims=num_dims)
    if kind == "nn":
        return BatchNorm2d(num_features) if num_dims == 4 else nn.BatchNorm1d(num_features)
    raise ValueError(f"batchnorm must be off | scratch | nn, got {kind!r}")


def bn_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every BatchNorm layer (scratch or torch) with its qualified name, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BN_TYPES)]


# -- VGG / NiN ---------------------------------------------------------------------

def vgg_block(num_convs: int, in_channels: int, out_channels: int, batchnorm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        if batchnorm:
            layers.append(BatchNorm2d(out_channels))
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
    """The book's residual block: two 3×3 convs with BN, an optional 1×1 conv on the shortcut."""

    def __init__(self, in_channels: int, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 batchnorm: bool = True, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = BatchNorm2d(num_channels) if batchnorm else nn.Identity()
        self.bn2 = BatchNorm2d(num_channels) if batchnorm else nn.Identity()
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

def conv_block(in_channels: int, num_channels: int, bottleneck: int = 0) -> nn.Sequential:
    """BN-ReLU-Conv 3×3 (d2l); with `bottleneck` > 0 a BN-ReLU-Conv 1×1 to that width comes first (DenseNet-B)."""
    layers: list[nn.Module] = []
    if bottleneck:
        layers += [BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, bottleneck, kernel_size=1)]
        in_channels = bottleneck
    layers += [BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, num_channels, kernel_size=3, padding=1)]
    return nn.Sequential(*layers)


class DenseBlock(nn.Module):
    """稠密块: each conv_block sees the concatenation of all earlier outputs; channels grow by the growth rate."""

    def __init__(self, num_convs: int, in_channels: int, num_channels: int, bottleneck: int = 0):
        super().__init__()
        self.net = nn.Sequential(*[conv_block(in_channels + i * num_channels, num_channels, bottleneck)
                                   for i in range(num_convs)])
        self.out_channels = in_channels + num_convs * num_channels

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(in_channels: int, num_channels: int) -> nn.Sequential:
    """过渡层: BN-ReLU-Conv 1×1 to reduce channels, then 2×2 average pooling to halve height and width."""
    return nn.Sequential(BatchNorm2d(in_channels), nn.ReLU(),
                         nn.Conv2d(in_channels, num_channels, kernel_size=1), AvgPool2d(kernel_size=2, stride=2))


# -- MobileNets --------------------------------------------------------------------

def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                act: Callable[[], nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (no bias) → BN → activation; `act=None` leaves it linear (the linear bottleneck)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        BatchNorm2d(out_channels)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class DepthwiseSeparable(nn.Module):
    """MobileNet V1: a 3×3 depthwise conv (one filter per channel) then a 1×1 pointwise conv, each with BN+act."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, act: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        self.depthwise = conv_bn_act(in_channels, in_channels, 3, stride, groups=in_channels, act=act)
        self.pointwise = conv_bn_act(in_channels, out_channels, 1, 1, act=act)

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
                 act: Callable[[], nn.Module] = nn.ReLU6, se_channels: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv_bn_act(in_channels, expanded, 1, act=act))
        layers.append(conv_bn_act(expanded, expanded, kernel_size, stride, groups=expanded, act=act))
        if se_channels:
            layers.append(SqueezeExcite(expanded, se_channels))
        layers.append(conv_bn_act(expanded, out_channels, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y
