"""CPU speed paths for training, kept apart from the book's blocks and applied by one explicit call.

    record = cpu_fast.apply(model, device=device)   # the engine, before building the optimizer
    ...
    cpu_fast.revert(model)                          # back to torch's classes (the engine, when done)

A model built from cnnlab.models holds plain torch.nn modules only. `apply()` switches, in place, the
modules for which a faster CPU training step was measured on a small (2-core) machine to a subclass of
the same torch class that only overrides `forward`:

* ``nn.AvgPool2d(2, 2)``  -> :class:`FastAvgPool2x2` — 2×2/stride-2 average pooling as two strided adds;
* ``nn.BatchNorm2d``      -> :class:`FastBatchNorm2d` — training statistics in two passes over an
  (N, C, H·W) view, normalisation and backward by torch's own kernels;
* ``nn.Conv2d`` (LeNet's second convolution, by a fixed rule: :func:`batch_as_channels_rule`)
                          -> :class:`BatchAsChannelsConv2d` — the weight gradient computed as a
  convolution with the batch in place of the channels.

The swap changes only the module's class: parameters, buffers, hooks and state_dict keys are the same
objects, so checkpoints are interchangeable and an optimizer built before or after sees the same tensors.
A printed model shows the fast class names (that is what runs); the layer table is made from a freshly
built model and shows torch's. Every fast module falls back to torch's own forward whenever its case is
not covered: not CPU, not float32 (or float64 for pooling), CPU autocast on, eval mode, other layouts.

It is on by default for CPU training; ``apply(..., enabled=False)`` or ``CNNLAB_FAST_CPU=0`` turns it off.
`apply()` also owns the memory-layout rule (channels_last or not) and returns a JSON-able record of what
it chose, for the run's config.json. Every choice is a fixed function of the model and the device, never
of a timing, so two processes with the same seed, device and thread count compute the same losses.
"""
from __future__ import annotations

import copy
import os

import torch
from torch import nn
from torch.nn import functional as F

from .layers import bn_layers

ENV = "CNNLAB_FAST_CPU"


def enabled_from_env() -> bool:
    """$CNNLAB_FAST_CPU: '0', 'off', 'false' or 'no' turn the fast paths off; anything else (or unset) leaves them on."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def _autocast_on() -> bool:
    return torch.is_autocast_enabled("cpu")


# -- statistics ---------------------------------------------------------------------------------

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


# -- 2×2 average pooling as strided adds ------------------------------------------------------------

class _AvgPool2x2Fn(torch.autograd.Function):
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


def _pool_is_2x2(m: nn.AvgPool2d) -> bool:
    return (_is_two(m.kernel_size) and _is_two(m.stride if m.stride is not None else m.kernel_size)
            and m.padding in (0, (0, 0)) and m.divisor_override is None and not m.ceil_mode)


def _pool_eligible(m: nn.Module) -> bool:
    return type(m) is nn.AvgPool2d and _pool_is_2x2(m)


class FastAvgPool2x2(nn.AvgPool2d):
    """nn.AvgPool2d(2, stride=2) whose CPU forward/backward are two strided adds (same values as torch's)."""

    def forward(self, x):
        if (x.device.type == "cpu" and x.dim() == 4 and x.dtype in (torch.float32, torch.float64)
                and not _autocast_on() and _pool_is_2x2(self)
                and x.shape[2] > 0 and x.shape[3] > 0 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
                and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))):
            return _AvgPool2x2Fn.apply(x)
        return super().forward(x)


# -- BatchNorm training step with two-pass statistics ------------------------------------------------

class _BatchNormTrainFn(torch.autograd.Function):
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


def _bn_eligible(m: nn.Module) -> bool:
    return type(m) is nn.BatchNorm2d and m.affine and m.track_running_stats


class FastBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose CPU float32 training step computes the statistics in two passes over an
    (N, C, H·W) view (LeNet's 256×6×24×24 batch: 0.23 ms against torch's 0.66 ms). Same outputs,
    gradients, running statistics and num_batches_tracked as torch's (tests compare them). Other cases
    (eval, channels_last, autocast, other dtypes or devices) run torch's forward."""

    def forward(self, x):
        if (self.training and self.affine and self.track_running_stats and self.running_mean is not None
                and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and self.weight.dtype == torch.float32 and not _autocast_on()
                and x.is_contiguous() and x.shape[0] * x.shape[2] * x.shape[3] > 1):
            self._check_input_dim(x)
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            y, mean, var = _BatchNormTrainFn.apply(x, self.weight, self.bias, self.eps)
            cnt = x.shape[0] * x.shape[2] * x.shape[3]
            with torch.no_grad():
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * (cnt / (cnt - 1)), factor)
            return y
        return super().forward(x)


# -- convolution with a batch-as-channels weight gradient ------------------------------------------

CONV_MAX_OUT_PIXELS = 64  # an output map above 8×8 pixels: torch's backward (the only shape measured faster)


def conv_backward(g, x, weight, padding, mask, batch_as_channels: bool):
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


class _BatchAsChannelsConvFn(torch.autograd.Function):
    """conv2d forward as torch does it; backward by `conv_backward(batch_as_channels=True)`.
    Same values up to float rounding (tests compare with nn.Conv2d)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        return (*conv_backward(g, x, weight, ctx.padding, ctx.needs_input_grad[:3], True), None)


def _conv_supported(m: nn.Conv2d) -> bool:
    """The cases `conv_backward` handles: stride 1, one group, no dilation, zero padding given as numbers."""
    return (m.groups == 1 and m.stride == (1, 1) and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and isinstance(m.padding, tuple))


def batch_as_channels_rule(m: nn.Module) -> bool:
    """Whether a convolution gets the batch-as-channels weight gradient: a fixed rule, not a timing.

    Measured on 2 cores (median of alternated runs), the batch-as-channels weight gradient was faster
    than torch's backward only for BN-LeNet's second convolution (6 -> 16 channels, 5×5, 12×12 -> 8×8
    maps: about 1.1 ms against 1.8 ms), not reliably for plain LeNet's (14×14 -> 10×10), and 1.0-7×
    slower for the first convolution (one input channel), for 3×3 convolutions and for every AlexNet-,
    VGG- or ResNet-sized shape. So this rule on the module: stride 1, one group, no dilation, zero padding,
    2 ≤ in_channels, in_channels·out_channels ≤ 96, kernel ≥ 5; and on the shape (`apply(input_shape=)`
    and again at run time): an output map of at most CONV_MAX_OUT_PIXELS (8×8) pixels.
    """
    return (type(m) is nn.Conv2d and _conv_supported(m)
            and 2 <= m.in_channels and m.in_channels * m.out_channels <= 96 and min(m.kernel_size) >= 5)


class BatchAsChannelsConv2d(nn.Conv2d):
    """nn.Conv2d whose CPU float32 training backward computes the weight gradient as a convolution with
    the batch in place of the channels (see `batch_as_channels_rule` for where that measured faster).
    Torch's own forward/backward everywhere else: eval, no grad, autocast, other dtypes or devices, and
    output maps above CONV_MAX_OUT_PIXELS (a function of the shape only, never of a timing)."""

    def forward(self, x):
        if (self.training and torch.is_grad_enabled() and self.weight.requires_grad and x.device.type == "cpu"
                and x.dim() == 4 and x.dtype == torch.float32 and self.weight.dtype == torch.float32
                and not _autocast_on() and _conv_supported(self) and self._small_enough(x)):
            return _BatchAsChannelsConvFn.apply(x, self.weight, self.bias, self.padding)
        return super().forward(x)

    def _small_enough(self, x) -> bool:
        (k_h, k_w), (p_h, p_w) = self.kernel_size, self.padding
        h_out, w_out = x.shape[2] + 2 * p_h - k_h + 1, x.shape[3] + 2 * p_w - k_w + 1
        return 1 <= h_out and 1 <= w_out and h_out * w_out <= CONV_MAX_OUT_PIXELS


# -- apply / revert ------------------------------------------------------------------------------------

FAST_OF = {nn.AvgPool2d: FastAvgPool2x2, nn.BatchNorm2d: FastBatchNorm2d, nn.Conv2d: BatchAsChannelsConv2d}
TORCH_OF = {fast: base for base, fast in FAST_OF.items()}
_ELIGIBLE = {nn.AvgPool2d: _pool_eligible, nn.BatchNorm2d: _bn_eligible, nn.Conv2d: batch_as_channels_rule}


def channels_last_rule(model: nn.Module, device: torch.device | str, swapped: int) -> bool:
    """Memory layout for training: channels_last on CUDA always. On CPU it measured faster for AlexNet,
    VGG and NiN, but slower for nets with BatchNorm layers (BN-LeNet 19 k vs 30 k examples/s on two
    threads, ResNet) and, once the fast paths run, for LeNet too (~10 % per step): NCHW for those."""
    if torch.device(device).type == "cuda":
        return True
    return not (bn_layers(model) or swapped)


def _conv_out_pixels(model: nn.Module, names: list[str], input_shape) -> dict[str, int]:
    """Output pixels (H·W) of the named convolutions for one input of `input_shape`, on the meta device."""
    shadow = copy.deepcopy(model).to("meta").eval()
    mods = dict(shadow.named_modules())
    out: dict[str, int] = {}
    for n in names:
        mods[n].register_forward_hook(lambda m, a, o, n=n: out.__setitem__(n, o.shape[-2] * o.shape[-1]))
    with torch.no_grad():
        shadow(torch.empty(1, *input_shape, device="meta"))
    return out


def apply(model: nn.Module, *, device: torch.device | str, enabled: bool | None = None,
          input_shape: tuple[int, ...] | None = None) -> dict:
    """Switch the model's eligible modules to their CPU fast classes (in place) and set its memory layout.

    Only on a CPU device and when `enabled` (None: $CNNLAB_FAST_CPU, default on). With `input_shape`
    (C, H, W) a convolution is switched only where its output map fits the rule at that size (else the
    module rule alone decides, and the size is checked at run time). Moves the model to channels_last
    when `channels_last_rule` says so; the caller converts its inputs the same way.
    Returns what was chosen, as plain JSON::

        {"enabled": true, "device": "cpu", "channels_last": false,
         "swapped": {"AvgPool2d": 2, "BatchNorm2d": 2, "Conv2d": 1},
         "conv_weight_grad": {"4": "batch_as_channels"}}

    `swapped` counts modules by their torch class; `conv_weight_grad` names every convolution that uses
    the batch-as-channels weight gradient (all others use torch's).
    """
    dev = torch.device(device)
    want = enabled_from_env() if enabled is None else bool(enabled)
    on = want and dev.type == "cpu"
    swapped: dict[str, int] = {}
    conv_choice: dict[str, str] = {}
    if on:
        convs = [n for n, m in model.named_modules() if batch_as_channels_rule(m)]
        if convs and input_shape is not None:
            pixels = _conv_out_pixels(model, convs, input_shape)
            convs = [n for n in convs if pixels.get(n, 0) <= CONV_MAX_OUT_PIXELS]
        for name, m in model.named_modules():
            base = type(m)
            if base is nn.Conv2d and name not in convs:
                continue
            if base in FAST_OF and _ELIGIBLE[base](m):
                m.__class__ = FAST_OF[base]
                swapped[base.__name__] = swapped.get(base.__name__, 0) + 1
                if base is nn.Conv2d:
                    conv_choice[name] = "batch_as_channels"
    channels_last = channels_last_rule(model, dev, sum(swapped.values()))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return {"enabled": on, "device": dev.type, "channels_last": channels_last, "swapped": swapped,
            "conv_weight_grad": conv_choice}


def revert(model: nn.Module) -> int:
    """Switch every fast module back to its torch class (in place); returns how many were switched."""
    n = 0
    for m in model.modules():
        base = TORCH_OF.get(type(m))
        if base is not None:
            m.__class__ = base
            n += 1
    return n


def fast_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules of `model` that are cnnlab CPU fast classes (empty for a freshly built model)."""
    return [(n, m) for n, m in model.named_modules() if type(m) in TORCH_OF]
