"""Look inside a model before any data flows: layer table (with each layer's arithmetic), cost ledger.

Built on torchinfo (its mult-adds match torchvision's published figures). cnnlab.measure probes a Config's
model built on the *meta* device, so no weights are allocated or initialised and no real arithmetic runs:
VGG-11 at 224×224 is probed in milliseconds, not seconds. :func:`probe_model` probes a model already built.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn

from .arithmetic import Step, field_formula, size_formula, squash, walk
from .units import fmt_bytes


@dataclass(frozen=True)
class LayerRow:
    """One module call in forward order, with its layer arithmetic.

    Window numbers (kernel_size, stride, padding, dilation) are ints when height and width agree, else
    [h, w]; None for layers without a window. An adaptive pool shows the window it uses on this input
    (pooling to 1×1: the whole map). receptive_field is the output's field in input pixels (None before
    the first conv/pool and after a flatten; see cnnlab.arithmetic); jump is the stride of the output
    grid in input pixels. receptive_field_in / jump_in are the input's (the numbers of the RF step).
    """

    name: str                 # qualified module name, as torch names it (the model itself is never listed)
    type: str                 # class name, e.g. Conv2d, Residual
    depth: int                # 1 = a top-level block
    output_shape: list[int] | None  # without the batch dimension: [C, H, W] or [F]; None: never finished
    params: int               # parameters of this module and its children
    macs: int | None          # multiply-accumulates for one sample, this module and its children (None: unknown)
    is_leaf: bool
    input_shape: list[int] | None = None
    kernel_size: int | list[int] | None = None
    stride: int | list[int] | None = None
    padding: int | list[int] | None = None
    dilation: int | list[int] | None = None
    groups: int | None = None
    receptive_field: int | list[int] | None = None
    jump: int | list[int] | None = None
    receptive_field_in: int | list[int] | None = None
    jump_in: int | list[int] | None = None
    ceil_mode: bool = False
    too_small: bool = False   # this layer's output would be smaller than one pixel

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("is_leaf", "ceil_mode", "too_small"):
            d.pop(k)
        return d

    @property
    def has_window(self) -> bool:
        return self.kernel_size is not None


def _pairs(v) -> tuple[int, int]:
    return (v[0], v[1]) if isinstance(v, list) else (v, v)


def output_size_formula(row: LayerRow, latex: bool = False) -> str | None:
    """The row's output size worked out with its own numbers: '⌊(224 − 11 + 2·1)/4⌋ + 1 = 54' (height and
    width each when they differ); None for a layer without a window."""
    if not row.has_window or not row.input_shape or len(row.input_shape) != 3:
        return None
    n, k, s, p, d = (_pairs(v) for v in (row.input_shape[1:], row.kernel_size, row.stride, row.padding,
                                         row.dilation or 1))
    parts = [size_formula(n[i], k[i], s[i], p[i], d[i], row.ceil_mode, latex=latex) for i in range(2)]
    if parts[0] == parts[1]:
        return parts[0]
    return (r" \quad " if latex else "; ").join(f"{'H' if i == 0 else 'W'}: {parts[i]}" for i in range(2))


def receptive_field_formula(row: LayerRow, latex: bool = False) -> str | None:
    """The row's receptive-field step with its own numbers: 'r = 1 + (11 − 1)·1 = 11, j = 1·4 = 4';
    None for a layer without a window or without a spatial input."""
    if not row.has_window or row.receptive_field_in is None:
        return None
    r, j, k, s, d = (_pairs(v) for v in (row.receptive_field_in, row.jump_in, row.kernel_size, row.stride,
                                         row.dilation or 1))
    parts = [field_formula(r[i], j[i], k[i], s[i], d[i], latex=latex) for i in range(2)]
    if parts[0] == parts[1]:
        return parts[0]
    return (r" \quad " if latex else "; ").join(f"{'H' if i == 0 else 'W'}: {parts[i]}" for i in range(2))


def _row(st: Step, params: int, macs: int | None) -> LayerRow:
    w, f, fi = st.window, st.field, st.field_in
    return LayerRow(
        name=st.name, type=st.type, depth=st.depth,
        output_shape=list(st.output_shape) if st.output_shape is not None else None,
        params=int(params), macs=None if macs is None else int(macs), is_leaf=st.is_leaf,
        input_shape=list(st.input_shape) if st.input_shape is not None else None,
        kernel_size=squash(w.kernel) if w else None, stride=squash(w.stride) if w else None,
        padding=squash(w.padding) if w else None, dilation=squash(w.dilation) if w else None,
        groups=w.groups if w else None,
        receptive_field=squash(f.r) if f is not None and f.started else None,
        jump=squash(f.j) if f is not None and f.started else None,
        receptive_field_in=squash(fi.r) if fi is not None else None,
        jump_in=squash(fi.j) if fi is not None else None,
        ceil_mode=bool(w.ceil_mode) if w else False, too_small=st.too_small)


def rows_from_steps(steps: Sequence[Step]) -> list[LayerRow]:
    """Layer rows from a walk that stopped early (the input got too small): params counted, MACs unknown."""
    return [_row(s, s.params, None) for s in steps]


@dataclass(frozen=True)
class Cost:
    params: int
    trainable_params: int
    macs: int | None          # None where torchinfo is not installed (a training-only machine)
    activation_bytes: int     # bytes of every leaf layer's output for one sample (float32)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    input_shape: tuple[int, int, int]
    layers: tuple[LayerRow, ...]
    cost: Cost
    output_shape: tuple | None = None   # the model's output for one sample, batch included: (1, classes)

    def blocks_and_leaves(self) -> list[LayerRow]:
        """The rows of every top-level block and every leaf layer, in forward order."""
        return [r for r in self.layers if r.depth == 1 or r.is_leaf]


def _summary(model: nn.Module, x: torch.Tensor, device: str):
    try:
        import torchinfo  # imported here so the core stays importable with torch alone
    except ImportError:   # a training-only machine: shapes and arithmetic without MACs
        model(x)
        return None
    return torchinfo.summary(model, input_data=x, verbose=0, depth=100, device=device,
                             col_names=("output_size", "num_params", "mult_adds"))


def _activation_bytes(rows) -> int:
    return sum(math.prod(r.output_shape) * 4 for r in rows if r.is_leaf and r.output_shape)


def probe_model(model: nn.Module, input_shape: Sequence[int], device: str | None = None) -> Probe:
    """Layer table and cost of an existing model for one input of `input_shape` (C, H, W).

    One forward pass: cnnlab.arithmetic.walk records shapes, parameters and layer arithmetic while torchinfo counts
    the MACs (without torchinfo, a training-only machine: no MACs). Raises errors.InputTooSmall (with the steps up
    to there) when the input gets too small inside.
    """
    if device is None:
        device = str(next(model.parameters()).device) if any(True for _ in model.parameters()) else "cpu"
    outs: list[tuple] = []
    hook = model.register_forward_hook(lambda _m, _a, y: outs.append(tuple(y.shape)) if hasattr(y, "shape") else None)
    try:
        steps, stats = walk(model, input_shape, device=device, forward=lambda m, x: _summary(m, x, device))
    except RuntimeError as e:  # torchinfo wraps the model's own error: a bug in it surfaces as itself
        if e.__cause__ is not None and "torchinfo" in str(e):
            raise e.__cause__ from None
        raise
    finally:
        hook.remove()
    output_shape = outs[-1] if outs else None
    macs_of: dict[str, int] | None = None   # torchinfo's MACs; parameters are counted once, by the walk
    if stats is not None:
        names = {id(m): n for n, m in model.named_modules()}
        macs_of = {}
        for li in stats.summary_list:  # add each leaf's MACs to itself and every enclosing block (by qualified name)
            if li.depth >= 1 and li.is_leaf_layer:
                parts = names.get(id(li.module), li.var_name).split(".")
                for i in range(1, len(parts) + 1):
                    key = ".".join(parts[:i])
                    macs_of[key] = macs_of.get(key, 0) + li.macs
    rows = [_row(s, s.params, None if macs_of is None else macs_of.get(s.name, 0)) for s in steps]
    cost = Cost(params=sum(p.numel() for p in model.parameters()),
                trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                macs=None if stats is None else int(stats.total_mult_adds), activation_bytes=_activation_bytes(rows))
    return Probe(input_shape=tuple(input_shape), layers=tuple(rows), cost=cost, output_shape=output_shape)


def human(n: float, unit: str = "") -> str:
    """12345678 -> '12.35 M'; bytes (unit='B') as cnnlab.units.fmt_bytes writes them ('47.1 MB')."""
    if unit == "B":
        return fmt_bytes(n)
    for u, f in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.2f} {u}"
    return f"{int(n)}"
