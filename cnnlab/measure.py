"""A Config measured once: every figure a page, the memory budget, run admission or the CLI reads about a model.

:func:`measure` builds the model once on the *meta* device (no weights allocated, no arithmetic done) and walks
one sample through it (cnnlab.arithmetic records each call's shapes and window arithmetic while torchinfo counts
the MACs). The :class:`Measurement` holds the layer rows, the cost (params, MACs, activation bytes), the
footprint the memory budget checks, what a saved model.pt holds, and, when the model does not fit its input or
is too costly to explore, the one-sentence refusal (``error``). It is kept in one byte-bounded cache shared by
every session (:data:`cnnlab.caches.CACHE`), keyed by the Config: a class stepping the same slider measures
each new config once.

Measuring reads the registry, never the reverse: nothing in registry, layers or models imports this module.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import nn

from .arithmetic import walk
from .caches import CACHE, nbytes
from .errors import InputTooSmall, KnobError, LimitError
from .i18n import msg
from .probe import Cost, LayerRow, probe_model, rows_from_steps
from .registry import RESOLUTION, Config, resolve
from .units import fmt_bytes, fmt_count

MAX_MODULES = 1000        # layers (leaf modules); DenseNet-121 has ~360; a measurement walks each a dozen times
MAX_PARAMS = 4 * 10 ** 9  # beyond this even the numbers on the Architecture page mean nothing
SEARCH_LAYERS = 250       # deeper models are not searched for their smallest input (a dozen forwards;
                          # DenseNet-121 has 195 layers, MobileNet V3 169)


@dataclass(frozen=True)
class Footprint:
    """A model's size: parameters, bytes of weights (parameters + buffers), layers (leaf modules), and the bytes of
    every leaf layer's output for one sample (float32; None when the forward pass cannot run at this input)."""

    params: int
    weight_bytes: int
    modules: int
    activation_bytes: int | None

    def bytes_for(self, batch: int = 1) -> int:
        """Weights plus the activations of `batch` samples (inference)."""
        return self.weight_bytes + batch * (self.activation_bytes or 0)


@dataclass(frozen=True)
class Measurement:
    """Everything known about a Config before any data flows (see the module's text).

    ``layers``: one row per module call in forward order; when the input gets too small, the rows up to and
    including that layer. ``cost``: None unless the model fits. ``error``: None when the model fits, else the
    InputTooSmall (naming the layer and the smallest input that fits) or LimitError (too costly) to show.
    """

    config: Config
    footprint: Footprint
    layers: tuple[LayerRow, ...] = ()
    cost: Cost | None = None
    error: KnobError | None = None
    state_tensors: int = 0    # tensors in the model's state dict (what model.pt saves)
    state_bytes: int = 0      # their bytes
    bn_channels: int = 0      # channels of every BatchNorm layer together
    bn_layers: int = 0

    @property
    def fits(self) -> bool:
        return self.error is None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.config.input_shape

    def check(self) -> "Measurement":
        """This measurement, or its refusal raised (InputTooSmall or LimitError, one sentence)."""
        if self.error is not None:  # a copy: raising the cached error itself would grow its traceback each time
            err = copy.copy(self.error)
            if isinstance(err, InputTooSmall):
                err.steps = self.error.steps   # (not pickled with it)
            raise err.with_traceback(None)
        return self

    def blocks_and_leaves(self) -> list[LayerRow]:
        """The rows of every top-level block and every leaf layer, in forward order."""
        return [r for r in self.layers if r.depth == 1 or r.is_leaf]


def config_key(cfg: Config) -> tuple:
    """A hashable, order-independent key of a Config (for the shared cache)."""
    knobs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in dict(cfg.knobs).items()))
    return (cfg.arch, knobs, int(cfg.in_channels), int(cfg.num_classes), int(cfg.resolution))


def measure(cfg: Config) -> Measurement:
    """The Measurement of a validated Config, from the shared cache or made now (milliseconds for LeNet, about a
    second for DenseNet-121). A refusal is in ``error``, never raised here; any other error is a bug."""
    return CACHE.get_or_make(("measure",) + config_key(cfg), lambda: _measure(cfg), _size)


def fitting(arch: str, knobs=None, *, in_channels: int = 1, num_classes: int = 10,
            resolution: int | None = None) -> Config:
    """The Config of these knobs, validated (KnobError) and measured to fit its input and the instance's limits
    (InputTooSmall, LimitError): what the CLI, presets, exercises and training start from."""
    cfg = resolve(arch, knobs, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    measure(cfg).check()
    return cfg


def smallest_input(cfg: Config) -> int | None:
    """The smallest resolution at which `cfg`'s model runs (None: none up to the largest allowed); a binary search
    of shape walks on the meta device, kept in the shared cache per (arch, knobs, channels, classes)."""
    key = ("smallest",) + config_key(cfg)[:4]
    return CACHE.get_or_make(key, lambda: _search(cfg), lambda _: 64)


# -- making a measurement -----------------------------------------------------------------------------------------

def _size(m: Measurement) -> int:
    return nbytes(m.layers) + 1024


def _build(cfg: Config) -> nn.Module | None:
    """The model on the meta device; None when its builder finds the input too small (layers.flat_features)."""
    try:
        with torch.device("meta"):
            return cfg.build()
    except InputTooSmall:
        return None


def _runs_at(cfg: Config, resolution: int) -> bool:
    c = replace(cfg, resolution=resolution)
    model = _build(c)
    if model is None:
        return False
    try:
        _, out = walk(model, c.input_shape, device="meta")
    except InputTooSmall:
        return False
    if tuple(out.shape) != (1, c.num_classes):
        raise RuntimeError(f"{c.arch} builds an output of shape {tuple(out.shape)}, not (1, {c.num_classes})")
    return True


def _search(cfg: Config) -> int | None:
    lo, hi = 1, int(RESOLUTION.hi)
    if not _runs_at(cfg, hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if _runs_at(cfg, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _too_costly(cfg: Config, fp: Footprint) -> LimitError | None:
    """Too many layers or parameters to explore on a shared instance (each would take seconds of CPU)."""
    if fp.modules > MAX_MODULES:
        return LimitError(msg("msg.lim_layers", arch=cfg.arch, n=f"{fp.modules:,}", most=f"{MAX_MODULES:,}"))
    if fp.params > MAX_PARAMS:
        return LimitError(msg("msg.lim_params", arch=cfg.arch, params=fmt_count(fp.params),
                              weights=fmt_bytes(fp.weight_bytes), most=fmt_count(MAX_PARAMS)))
    return None


def _too_small(cfg: Config, model: nn.Module | None, modules: int) -> KnobError:
    """Why `cfg` does not fit: where its input gets too small and the smallest input that fits."""
    if modules > SEARCH_LAYERS:  # one forward pass said no: the search would take a dozen more
        return LimitError(msg("msg.lim_search", arch=cfg.arch, res=cfg.resolution, n=f"{modules:,}",
                              book=cfg.spec.book_resolution))
    need = smallest_input(cfg)
    if model is None and need is not None:  # the builder sized its head: build where it fits, run at cfg's input
        model = _build(replace(cfg, resolution=need))
    err = InputTooSmall(f"input too small: {cfg.arch} at {cfg.resolution}")
    if model is not None:
        try:
            walk(model, cfg.input_shape, device="meta")
        except InputTooSmall as e:
            err = e
        else:  # pragma: no cover - a bug: it neither fits nor stops
            raise RuntimeError(f"{cfg.arch} does not fit at {cfg.resolution} but runs")
    text = (msg("msg.fits_never", err=err, arch=cfg.arch) if need is None else
            msg("msg.fits_from", err=err, need=need, arch=cfg.arch, got=cfg.resolution))
    return InputTooSmall(text, layer=err.layer, layer_type=err.layer_type, input_hw=err.input_hw,
                         formula=err.formula, steps=err.steps)


def _sizes(model: nn.Module, activation_bytes: int | None) -> Footprint:
    return Footprint(params=sum(p.numel() for p in model.parameters()),
                     weight_bytes=sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers())),
                     modules=sum(1 for m in model.modules() if next(m.children(), None) is None),
                     activation_bytes=activation_bytes)


def _measure(cfg: Config) -> Measurement:
    from .layers import bn_layers

    model = _build(cfg)
    # a model too small to build is counted at the largest input, for the bounds
    counted = model if model is not None else _build(replace(cfg, resolution=int(RESOLUTION.hi)))
    fp = _sizes(counted, None) if counted is not None else Footprint(0, 0, 0, None)
    refusal = _too_costly(cfg, fp)
    if refusal is not None:
        return Measurement(cfg, fp, error=refusal)
    if model is not None:
        try:
            pr = probe_model(model, cfg.input_shape, device="meta")
        except InputTooSmall:
            pass
        else:
            if pr.output_shape != (1, cfg.num_classes):  # a bug in the builder, not a config that does not fit
                raise RuntimeError(f"{cfg.arch} builds an output of shape {pr.output_shape}, not (1, {cfg.num_classes})")
            sd = model.state_dict()
            bns = bn_layers(model)
            return Measurement(cfg, replace(fp, activation_bytes=pr.cost.activation_bytes), layers=pr.layers,
                               cost=pr.cost, state_tensors=len(sd),
                               state_bytes=sum(t.numel() * t.element_size() for t in sd.values()),
                               bn_channels=int(sum(m.num_features for _, m in bns)), bn_layers=len(bns))
    err = _too_small(cfg, model, fp.modules)
    rows = rows_from_steps(err.steps or []) if isinstance(err, InputTooSmall) else []
    return Measurement(cfg, fp, layers=tuple(rows), error=err)
