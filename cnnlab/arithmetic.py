"""Layer arithmetic: a conv/pool layer's own numbers, the size it outputs and its receptive field.

Output size, per spatial dimension (torch's rule; d2l 6.3 writes it with the total padding 2p):

    n_out = ⌊(n − k + 2p)/s⌋ + 1                  (dilation d ≠ 1: ⌊(n − d·(k − 1) − 1 + 2p)/s⌋ + 1)

Receptive field r (in input pixels) and jump j (input pixels between two neighbouring outputs), starting
at r = 1, j = 1 on the input image:

    r_out = r_in + (k − 1)·d·j_in        j_out = j_in·s

:func:`walk` runs one forward pass (on the meta device nothing is computed) and records every module
call in forward order: its input and output shapes, its window (kernel, stride, padding, dilation,
groups) and the receptive field of its output. Each tensor carries its own (r, j), so branches work
out by themselves: where paths meet (``torch.cat`` in Inception and DenseBlock, ``+`` in Residual and
InvertedResidual) the field is the largest over the inputs of the same height × width — the block's
field is the max over its branches. A broadcast operand of another size (a Squeeze-and-Excitation gate
of 1×1) does not widen it: the field counts the paths that keep a spatial map. Global (adaptive)
pooling to 1×1 is a window the size of its input, so it covers the whole map:
r_out = r_in + (n − 1)·j_in. After a flatten there is no field (None).

The field is the theoretical one: it may be larger than the image (the rest is padding), as in the
published figures (VGG-16's pool5 212 px, ResNet-18's last conv 435 px, both at 224 px).

When a window does not fit (its output would be smaller than 1), :func:`walk` raises
:class:`~cnnlab.errors.InputTooSmall` naming the layer and its formula, with the steps recorded up to
and including that layer on ``.steps``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .i18n import msg
from .errors import InputTooSmall

Pair = tuple[int, int]
_ATTR = "_cnnlab_field"  # the (r, j) a tensor carries during walk(); None = no spatial map (flattened)


def _pair(v) -> Pair:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def squash(p: Sequence[int] | None):
    """(3, 3) → 3; (3, 5) → [3, 5]; None → None: the number people read when height and width agree."""
    if p is None:
        return None
    return int(p[0]) if p[0] == p[1] else [int(p[0]), int(p[1])]


@dataclass(frozen=True)
class Window:
    """A sliding window's numbers, per spatial dimension (height, width)."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair = (1, 1)
    groups: int | None = None      # convolutions only
    ceil_mode: bool = False        # pools only

    def output(self, n: Pair) -> Pair:
        return tuple(output_size(n[i], self.kernel[i], self.stride[i], self.padding[i], self.dilation[i],
                                 self.ceil_mode) for i in range(2))


def _adaptive_window(n: int, o: int) -> tuple[int, int]:
    """(largest window, stride) of adaptive pooling from n to o: exact when o divides n (o = 1: the whole map)."""
    k = max(-(-((i + 1) * n) // o) - (i * n) // o for i in range(o))
    return k, max(1, n // o)


def window_of(m: nn.Module, in_hw: Pair | None = None) -> Window | None:
    """The window of a 2-d conv or pool layer (adaptive pools need the input size `in_hw`); None for others."""
    if isinstance(m, nn.Conv2d):
        k, d = _pair(m.kernel_size), _pair(m.dilation)
        pad = m.padding
        if isinstance(pad, str):  # 'valid' = 0; 'same' pads d·(k − 1) in total (the left half shown)
            pad = (0, 0) if pad == "valid" else tuple(d[i] * (k[i] - 1) // 2 for i in range(2))
        return Window(k, _pair(m.stride), _pair(pad), d, int(m.groups))
    if isinstance(m, nn.MaxPool2d):
        k = _pair(m.kernel_size)
        return Window(k, _pair(m.stride if m.stride is not None else k), _pair(m.padding), _pair(m.dilation),
                      None, bool(m.ceil_mode))
    if isinstance(m, nn.AvgPool2d):
        k = _pair(m.kernel_size)
        return Window(k, _pair(m.stride if m.stride is not None else k), _pair(m.padding), (1, 1), None,
                      bool(m.ceil_mode))
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and in_hw is not None:
        o = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size, m.output_size)
        o = tuple(in_hw[i] if o[i] is None else int(o[i]) for i in range(2))
        ks = [_adaptive_window(in_hw[i], o[i]) if in_hw[i] >= 1 and o[i] >= 1 else (1, 1) for i in range(2)]
        return Window((ks[0][0], ks[1][0]), (ks[0][1], ks[1][1]), (0, 0))
    return None


def output_size(n: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """torch's output size of a conv/pool window along one dimension (may be ≤ 0: the input is too small)."""
    num = n + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return num // s + 1  # Python's // is the floor, also below zero
    out = -(-num // s) + 1
    if (out - 1) * s >= n + p:  # torch: the last window must start inside the input or its left padding
        out -= 1
    return out


def size_formula(n: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False, latex: bool = False) -> str:
    """'⌊(224 − 11 + 2·1)/4⌋ + 1 = 54' (or the LaTeX of it), with these numbers."""
    out = output_size(n, k, s, p, d, ceil_mode)
    if latex:
        inner = f"{n} - {k} + 2 \\cdot {p}" if d == 1 else f"{n} - {d} \\cdot ({k} - 1) - 1 + 2 \\cdot {p}"
        lo, hi = (r"\left\lceil", r"\right\rceil") if ceil_mode else (r"\left\lfloor", r"\right\rfloor")
        return f"{lo} \\frac{{{inner}}}{{{s}}} {hi} + 1 = {out}"
    inner = f"{n} − {k} + 2·{p}" if d == 1 else f"{n} − {d}·({k} − 1) − 1 + 2·{p}"
    lo, hi = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
    return f"{lo}({inner})/{s}{hi} + 1 = {out}"


def field_step(r: int, j: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """(r_out, j_out) = (r_in + (k − 1)·d·j_in, j_in·s)."""
    return r + (k - 1) * d * j, j * s


def field_formula(r: int, j: int, k: int, s: int, d: int = 1, latex: bool = False) -> str:
    """'r = 1 + (11 − 1)·1 = 11, j = 1·4 = 4' (dilation shown only when ≠ 1), with these numbers."""
    r_out, j_out = field_step(r, j, k, s, d)
    if latex:  # two aligned lines: r, then j
        dd = f" \\cdot {d}" if d != 1 else ""
        return (f"\\begin{{aligned}} r_{{out}} &= r_{{in}} + (k - 1){' d' if d != 1 else ''}\\, j_{{in}} = {r} + ({k} - 1){dd}"
                f" \\cdot {j} = {r_out} \\\\ j_{{out}} &= j_{{in}}\\, s = {j} \\cdot {s} = {j_out} \\end{{aligned}}")
    dd = f"·{d}" if d != 1 else ""
    return f"r = {r} + ({k} − 1){dd}·{j} = {r_out}, j = {j}·{s} = {j_out}"


# -- one forward pass, recorded ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    r: Pair
    j: Pair
    started: bool  # a conv/pool has been passed (before that the table shows no field)


@dataclass(frozen=True)
class Step:
    """One module call, in forward order."""

    name: str
    type: str
    depth: int
    is_leaf: bool
    params: int                          # this module's parameters, children included
    input_shape: tuple | None            # without the batch dimension
    output_shape: tuple | None           # None: the call never finished (the input got too small inside it)
    window: Window | None
    field_in: Field | None               # the input's field (None: not a spatial map)
    field: Field | None                  # the output's field
    too_small: bool = False              # this layer's output would be smaller than 1


def _field(t) -> tuple[bool, Field | None]:
    """(tracked, field) of a tensor."""
    if isinstance(t, torch.Tensor) and hasattr(t, _ATTR):
        return True, getattr(t, _ATTR)
    return False, None


def _set_field(t, f: Field | None) -> None:
    if isinstance(t, torch.Tensor):
        try:
            setattr(t, _ATTR, f)
        except (AttributeError, RuntimeError):  # pragma: no cover - a tensor subclass without a __dict__
            pass


def _combine(inputs: list, out: torch.Tensor) -> Field | None:
    """The field of an op's 4-d output: the max over its tracked inputs of the same height × width."""
    if out.dim() != 4:
        return None
    best: Field | None = None
    for t in inputs:
        f = getattr(t, _ATTR)
        if f is None or t.dim() != 4 or t.shape[-2:] != out.shape[-2:]:
            continue
        if best is None:
            best = f
        else:
            r = (max(best.r[0], f.r[0]), max(best.r[1], f.r[1]))
            j = best.j if best.r >= f.r else f.j
            best = Field(r, j, best.started or f.started)
    return best


class _FieldMode(TorchFunctionMode):
    """Carries each tensor's receptive field through the ops between modules (cat, +, relu, ...)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = [out] if isinstance(out, torch.Tensor) else (
            [o for o in out if isinstance(o, torch.Tensor)] if isinstance(out, (tuple, list)) else [])
        if not outs:
            return out
        ins = []
        for a in (*args, *(kwargs or {}).values()):
            for b in (a if isinstance(a, (tuple, list)) else (a,)):
                if isinstance(b, torch.Tensor) and hasattr(b, _ATTR):
                    ins.append(b)
        if ins:
            for o in outs:
                _set_field(o, _combine(ins, o))
        return out


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for v in x:
            if isinstance(v, torch.Tensor):
                return v
    return None


def _hw(t) -> Pair | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if isinstance(t, torch.Tensor) and t.dim() == 4 else None


def _shape(t) -> tuple | None:
    return tuple(int(s) for s in t.shape[1:]) if isinstance(t, torch.Tensor) else None


def too_small_message(name: str, type_: str, in_hw: Pair, w: Window) -> tuple[str, str]:
    """('input too small: layer 5 (MaxPool2d) gets 2×2, ⌊(2 − 3 + 2·0)/2⌋ + 1 = 0', the formula)."""
    out = w.output(in_hw)
    i = 0 if out[0] < 1 else 1
    formula = size_formula(in_hw[i], w.kernel[i], w.stride[i], w.padding[i], w.dilation[i], w.ceil_mode)
    return msg("msg.too_small", layer=name, type=type_, h=in_hw[0], w=in_hw[1], formula=formula), formula


def walk(model: nn.Module, input_shape: Sequence[int], device=None,
         forward: Callable[[nn.Module, torch.Tensor], Any] | None = None) -> tuple[list[Step], Any]:
    """Run one input of `input_shape` (C, H, W) through `model` (eval mode) and record every module call.

    `forward(model, x)` runs the pass (default ``model(x)``; the probe passes torchinfo's summary, so one pass
    gives both). Returns (steps, what `forward` returned). Raises InputTooSmall (with ``.steps``) where a
    window's output would be < 1, even if `forward` wrapped it in another error. Any other error is the
    model's and propagates.
    """
    too_small: list[InputTooSmall] = []
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else "cpu"
    names = {id(m): n for n, m in model.named_modules()}
    steps: list[Step | None] = []
    open_: list[tuple[int, nn.Module, Window | None, Field | None]] = []  # calls in progress
    pending: dict[int, dict] = {}

    def pre(mod, args):
        name = names.get(id(mod))
        if not name:  # the model itself is not a row
            return
        x = _first_tensor(args)
        tracked, f_in = _field(x)
        in_hw = _hw(x)
        w = window_of(mod, in_hw) if in_hw is not None else None
        is_leaf = next(iter(mod.children()), None) is None
        info = dict(name=name, type=type(mod).__name__, depth=name.count(".") + 1, is_leaf=is_leaf,
                    params=sum(p.numel() for p in mod.parameters()), input_shape=_shape(x), window=w,
                    field_in=f_in if w is None else (f_in or Field((1, 1), (1, 1), False)))
        idx = len(steps)
        steps.append(None)
        pending[idx] = info
        open_.append((idx, mod, w, info["field_in"]))
        if w is not None and min(w.output(in_hw)) < 1:
            out_hw = w.output(in_hw)
            c = _shape(x)[0] if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)) else getattr(mod, "out_channels", None)
            steps[idx] = Step(**info, output_shape=(c, max(0, out_hw[0]), max(0, out_hw[1])), field=None,
                              too_small=True)
            del pending[idx]
            msg, formula = too_small_message(name, info["type"], in_hw, w)
            too_small.append(InputTooSmall(msg, layer=name, layer_type=info["type"], input_hw=in_hw, formula=formula))
            raise too_small[-1]

    def post(mod, args, out):
        if not names.get(id(mod)):
            return
        idx, _, w, f_in = open_.pop()
        y = _first_tensor(out)
        if w is not None and isinstance(y, torch.Tensor) and y.dim() == 4:
            r, j = zip(*(field_step(f_in.r[i], f_in.j[i], w.kernel[i], w.stride[i], w.dilation[i]) for i in range(2)))
            _set_field(y, Field(tuple(r), tuple(j), True))
        hw = _hw(y)
        if hw is not None and min(hw) < 1:  # any other layer that emptied the map
            info = pending.pop(idx)
            steps[idx] = Step(**info, output_shape=_shape(y), field=None, too_small=True)
            too_small.append(InputTooSmall(
                msg("msg.too_small_out", layer=info["name"], type=info["type"], h=hw[0], w=hw[1]),
                layer=info["name"], layer_type=info["type"], input_hw=_hw(_first_tensor(args)), formula=""))
            raise too_small[-1]
        info = pending.pop(idx)
        steps[idx] = Step(**info, output_shape=_shape(y), field=_field(y)[1])

    handles = []
    was_training = model.training
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        model.eval()  # one sample: BatchNorm1d cannot train on a batch of 1
        x = torch.empty(1, *input_shape, device=device)
        _set_field(x, Field((1, 1), (1, 1), False) if x.dim() == 4 else None)
        try:
            with torch.no_grad(), _FieldMode():
                y = model(x) if forward is None else forward(model, x)
        except Exception as wrapped:
            if not too_small:
                raise
            e = too_small[0]
            # calls still open when the error came: their rows stay, with no output
            for idx, info in pending.items():
                steps[idx] = Step(**info, output_shape=None, field=None)
            e.steps = [s for s in steps if s is not None]
            raise e from (None if wrapped is e else wrapped)
        return [s for s in steps if s is not None], y
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
