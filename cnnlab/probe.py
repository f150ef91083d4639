"""Look inside a model before any data flows: layer table, shape trace, cost ledger.

Built on torchinfo (its mult-adds match torchvision's published figures). By default the probe
builds the model on the *meta* device, so no weights are allocated or initialised and no real
arithmetic runs: VGG-11 at 224×224 is probed in milliseconds, not seconds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn

from .registry import Config


@dataclass(frozen=True)
class LayerRow:
    name: str                 # qualified module name ("" for the whole model is never listed)
    type: str                 # class name, e.g. Conv2d, Residual
    depth: int                # 1 = a top-level block
    output_shape: list[int]   # without the batch dimension: [C, H, W] or [F]
    params: int               # parameters of this module and its children
    macs: int                 # multiply-accumulates for one sample, this module and its children
    is_leaf: bool

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("is_leaf")
        return d


@dataclass(frozen=True)
class Cost:
    params: int
    trainable_params: int
    macs: int
    activation_bytes: int     # bytes of every leaf layer's output for one sample (float32)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    input_shape: tuple[int, int, int]
    layers: tuple[LayerRow, ...]
    cost: Cost

    def shape_trace(self) -> list[LayerRow]:
        return shape_trace(self.layers)


def _summary(model: nn.Module, input_shape: Sequence[int], device: str):
    import torchinfo  # imported here so the core stays importable with torch alone

    was_training = model.training
    model.eval()  # one-sample probe: BatchNorm1d cannot train on a batch of 1
    try:
        return torchinfo.summary(model, input_size=(1, *input_shape), verbose=0, depth=100, device=device,
                                 col_names=("output_size", "num_params", "mult_adds"))
    finally:
        model.train(was_training)


def probe_model(model: nn.Module, input_shape: Sequence[int], device: str | None = None) -> Probe:
    """Layer table and cost of an existing model for one input of `input_shape` (C, H, W)."""
    if device is None:
        device = str(next(model.parameters()).device) if any(True for _ in model.parameters()) else "cpu"
    stats = _summary(model, input_shape, device)
    names = {id(m): n for n, m in model.named_modules()}
    infos = [li for li in stats.summary_list if li.depth >= 1]
    # aggregate leaf MACs and params up the tree (torchinfo counts MACs on leaves only)
    named = [(names.get(id(li.module), li.var_name), li) for li in infos]
    macs_of: dict[str, int] = {}
    for name, li in named:  # add each leaf's MACs to itself and every enclosing block (by qualified name)
        if li.is_leaf_layer:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                key = ".".join(parts[:i])
                macs_of[key] = macs_of.get(key, 0) + li.macs
    rows, act_bytes = [], 0
    for name, li in named:
        if not li.output_size:  # a container the forward never called as a whole (DenseBlock's `net`)
            continue
        shape = list(li.output_size[1:])
        if li.is_leaf_layer:
            act_bytes += math.prod(shape) * 4
        rows.append(LayerRow(name=name, type=li.class_name, depth=li.depth, output_shape=shape,
                             params=int(li.num_params), macs=int(macs_of.get(name, 0)), is_leaf=li.is_leaf_layer))
    cost = Cost(params=int(stats.total_params), trainable_params=int(stats.trainable_params),
                macs=int(stats.total_mult_adds), activation_bytes=act_bytes)
    return Probe(input_shape=tuple(input_shape), layers=tuple(rows), cost=cost)


def probe(cfg: Config) -> Probe:
    """Probe a configuration on the meta device: no weights allocated, no arithmetic done."""
    with torch.device("meta"):
        model = cfg.build()
    return probe_model(model, cfg.input_shape, device="meta")


def layer_table(model: nn.Module, input_shape: Sequence[int]) -> list[LayerRow]:
    """Every module in forward order: name, type, depth, output shape, params, MACs (torchinfo)."""
    return list(probe_model(model, input_shape).layers)


def shape_trace(rows: Sequence[LayerRow] | nn.Module, input_shape: Sequence[int] | None = None) -> list[LayerRow]:
    """The output shape after every top-level block and every leaf layer, in forward order."""
    if isinstance(rows, nn.Module):
        rows = layer_table(rows, input_shape)
    return [r for r in rows if r.depth == 1 or r.is_leaf]


def cost(model: nn.Module, input_shape: Sequence[int]) -> Cost:
    """Total and trainable params, MACs and activation memory (bytes) for one sample."""
    return probe_model(model, input_shape).cost


def human(n: float, unit: str = "") -> str:
    """12345678 -> '12.35 M'; bytes with unit='B' -> '47.1 MiB'."""
    if unit == "B":
        for u in ("B", "KiB", "MiB", "GiB"):
            if abs(n) < 1024 or u == "GiB":
                return f"{n:.1f} {u}" if u != "B" else f"{int(n)} B"
            n /= 1024
    for u, f in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.2f} {u}"
    return f"{int(n)}"
