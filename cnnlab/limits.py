"""Limits for a public instance: a memory budget, and checks made *before* the work they guard.

One budget (``$CNNLAB_MEM_BUDGET_MB``, default 2048 MB) bounds what one request or one run may allocate
on the server. The checks here count on the *meta* device (no weights allocated, no arithmetic done), so
refusing a model costs a fraction of a second, and every refusal is one sentence (:class:`LimitError`,
a :class:`~cnnlab.registry.KnobError`, so pages show it with st.error and the CLI exits 2).

- :func:`check_probe_cost` — called by ``registry.resolve`` before the shape checks: refuses models
  whose probe would take seconds of CPU (too many modules) or whose size is absurd.
- :func:`check_model` — before a real model is built outside training (loading a saved run; run
  admission): its weights and the activations of `batch` samples must fit the budget.
- :func:`footprint` — the figures behind both (params, weight bytes, activation bytes per sample).
- :class:`ByteLRU` — a cache bounded by bytes, not entries (loaded runs, test images, BN histories).

No streamlit here; torch only.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import torch
from torch import nn

from .i18n import msg
from .registry import Config, KnobError
from .errors import LimitError  # noqa: F401
from .units import fmt_bytes

log = logging.getLogger("cnnlab")

DEFAULT_BUDGET_MB = 2048
DEFAULT_CACHE_MB = 1024
MAX_PROBE_MODULES = 1000        # layers (leaf modules); DenseNet-121 has ~360; a probe walks each a dozen times
MAX_PROBE_PARAMS = 4 * 10 ** 9  # beyond this even the numbers on the Architecture page mean nothing
SEARCH_LAYERS = 250             # deeper models are not searched for their smallest input (a dozen forwards;
                                # DenseNet-121 has 195 layers, MobileNet V3 169)


def _env_mb(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 1 << 30:
        return int(raw)
    log.warning("%s=%r is not a positive whole number of MB; using %d", name, raw[:40], default)
    return default


def budget_bytes() -> int:
    """What one request or run may allocate on the server: $CNNLAB_MEM_BUDGET_MB (default 2048) MB."""
    return _env_mb("CNNLAB_MEM_BUDGET_MB", DEFAULT_BUDGET_MB) << 20


def cache_bytes() -> int:
    """What the app's shared caches may hold in all: $CNNLAB_CACHE_MB (default 1024) MB."""
    return _env_mb("CNNLAB_CACHE_MB", DEFAULT_CACHE_MB) << 20


def _count(n: int) -> str:
    if n >= 10 ** 9:
        return f"{n / 1e9:.2f} billion"
    if n >= 10 ** 6:
        return f"{n / 1e6:.1f} million"
    return f"{n:,}"


# -- what a model costs, counted on the meta device ---------------------------------------------------

@dataclass(frozen=True)
class Footprint:
    """A model's size: parameters, bytes of weights (parameters + buffers), layers (leaf modules), and the bytes of every
    leaf layer's output for one sample (float32; None when the forward pass cannot run at this input)."""

    params: int
    weight_bytes: int
    modules: int
    activation_bytes: int | None

    def bytes_for(self, batch: int = 1) -> int:
        """Weights plus the activations of `batch` samples (inference)."""
        return self.weight_bytes + batch * (self.activation_bytes or 0)


def _key(cfg: Config) -> tuple:
    knobs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in dict(cfg.knobs).items()))
    return (cfg.arch, knobs, int(cfg.in_channels), int(cfg.num_classes), int(cfg.resolution))


def _meta_build(key: tuple) -> nn.Module:
    arch, knobs, in_channels, num_classes, resolution = key
    cfg = Config(arch, dict(knobs), in_channels, num_classes, resolution)
    with torch.device("meta"):
        return cfg.build()


def _sizes(model: nn.Module) -> tuple[int, int, int]:
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    leaves = sum(1 for m in model.modules() if next(m.children(), None) is None)
    return params, weight_bytes, leaves


@functools.lru_cache(maxsize=256)
def _counts(key: tuple) -> tuple[int, int, int] | None:
    """(params, weight bytes, modules) of a config built on meta; None when it cannot be built."""
    try:
        return _sizes(_meta_build(key))
    except (RuntimeError, ValueError, ZeroDivisionError, IndexError, TypeError):
        return None


@functools.lru_cache(maxsize=256)
def _footprint(key: tuple) -> Footprint:
    model = _meta_build(key)
    params, weight_bytes, modules = _sizes(model)
    act = 0
    handles = []

    def hook(module, args, out):
        nonlocal act
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor):
                act += t.numel() // max(1, t.shape[0]) * 4 if t.dim() else 4
    for m in model.modules():
        if next(m.children(), None) is None:
            handles.append(m.register_forward_hook(hook))
    arch, knobs, in_channels, num_classes, resolution = key
    shape = Config(arch, dict(knobs), in_channels, num_classes, resolution).input_shape
    try:
        model.eval()
        with torch.no_grad():
            model(torch.empty(1, *shape, device="meta"))
        activation: int | None = act
    except (RuntimeError, ValueError, ZeroDivisionError, IndexError):
        activation = None
    finally:
        for h in handles:
            h.remove()
    return Footprint(params=params, weight_bytes=weight_bytes, modules=modules, activation_bytes=activation)


def footprint(cfg: Config) -> Footprint:
    """The model's Footprint, counted on the meta device (cached per configuration). Raises LimitError
    when the model is too large to count (see check_probe_cost)."""
    check_probe_cost(cfg)
    return _footprint(_key(cfg))


def check_probe_cost(cfg: Config) -> None:
    """Refuse, in one sentence, a model whose probe would be expensive: more than MAX_PROBE_MODULES layers
    (every shape check walks them all) or more than MAX_PROBE_PARAMS parameters. One build on the meta
    device, cached; a model that cannot be built at this input is left to the shape checks."""
    key = _key(cfg)
    counts = _counts(key)
    builds = counts is not None
    counts = counts or _counts(key[:4] + (1024,))  # too small to build: count it at the largest input
    if counts is None:
        return
    params, weight_bytes, modules = counts
    if modules > MAX_PROBE_MODULES:
        raise LimitError(msg("msg.lim_layers", arch=cfg.arch, n=f"{modules:,}", most=f"{MAX_PROBE_MODULES:,}"))
    if params > MAX_PROBE_PARAMS:
        raise LimitError(msg("msg.lim_params", arch=cfg.arch, params=_count(params), weights=fmt_bytes(weight_bytes),
                             most=_count(MAX_PROBE_PARAMS)))
    if modules > SEARCH_LAYERS and (not builds or _footprint(key).activation_bytes is None):
        # one forward pass said no: the search for the smallest input would take a dozen more
        book = cfg.spec.book_resolution
        raise LimitError(msg("msg.lim_search", arch=cfg.arch, res=cfg.resolution, n=f"{modules:,}", book=book))


def check_model(cfg: Config, *, batch: int = 1, budget: int | None = None) -> Footprint:
    """Before building `cfg` for real: its weights, and its activations for `batch` samples, must fit the
    memory budget. Returns the Footprint; raises LimitError (one sentence) otherwise.

    Run admission (the executor) can call ``check_model(cfg)`` for the model itself and use
    ``footprint(cfg)`` with its own factor for training (gradients, optimizer state, batch activations).
    """
    budget = budget_bytes() if budget is None else int(budget)
    fp = footprint(cfg)
    mb = fmt_bytes(budget)
    if fp.weight_bytes > budget:
        raise LimitError(msg("msg.lim_weights", arch=cfg.arch, res=cfg.resolution, params=_count(fp.params),
                             weights=fmt_bytes(fp.weight_bytes), budget=mb))
    if fp.activation_bytes is not None and fp.bytes_for(batch) > budget:
        raise LimitError(msg("msg.lim_memory" if batch != 1 else "msg.lim_memory_1", arch=cfg.arch, res=cfg.resolution, needs=fmt_bytes(fp.bytes_for(batch)),
                             batch=batch, budget=mb))
    return fp


def batch_for(fp: Footprint, budget: int | None = None, most: int = 512) -> int:
    """The largest inference batch (1..most) whose activations fit in half the budget beside the weights."""
    budget = budget_bytes() if budget is None else int(budget)
    per = max(1, fp.activation_bytes or 1)
    room = max(0, budget - fp.weight_bytes) // 2
    return int(max(1, min(most, room // per)))


# -- caches bounded by bytes -----------------------------------------------------------------------------

def nbytes(obj: Any, _depth: int = 0) -> int:
    """An estimate of the memory an object holds: tensors by their storage, modules by their parameters
    and buffers, floats at 32 bytes (a float object and its list slot), containers and dataclasses
    recursively (to a small depth)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, nn.Module):
        return sum(t.numel() * t.element_size() for t in (*obj.parameters(), *obj.buffers()))
    if isinstance(obj, (bool, int, float)) or obj is None:
        return 32
    if isinstance(obj, (str, bytes)):
        return 64 + len(obj)
    if _depth > 8:
        return 64
    if isinstance(obj, dict):
        return 64 + sum(nbytes(k, _depth + 1) + nbytes(v, _depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        if obj and all(isinstance(v, float) for v in obj):
            return 64 + 32 * len(obj)
        return 64 + sum(nbytes(v, _depth + 1) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return 64 + sum(nbytes(getattr(obj, f.name), _depth + 1) for f in dataclasses.fields(obj))
    return 64


MAKE_WAIT_S = 30.0   # the longest a ByteLRU waits for another thread making the same key


class ByteLRU:
    """A thread-safe least-recently-used cache bounded by the bytes of its values (:func:`nbytes`).

    A value larger than the whole cache is returned without being kept. Use one per process (module level):
    it is shared by every session, like ``st.cache_resource``, but its total never exceeds `max_bytes`.
    """

    def __init__(self, max_bytes: int | Callable[[], int]):
        self._max = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._making: dict[Hashable, threading.Event] = {}   # keys being made now, set when done
        self._lock = threading.Lock()
        self.total = 0

    @property
    def max_bytes(self) -> int:
        return int(self._max() if callable(self._max) else self._max)

    def get_or_make(self, key: Hashable, make: Callable[[], Any], size: Callable[[Any], int] = nbytes) -> Any:
        """The kept value for `key`, else `make()`'s (kept when it fits). While one thread makes a key, others
        asking for it wait for that value rather than make it again (a class stepping the same slider together
        asked for the same new probe at once); if the maker fails or the value is too large to keep, the
        waiters make it in turn (errors are not cached)."""
        owner = False
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
                making = self._making.get(key)
                if making is None:
                    making = self._making[key] = threading.Event()
                    owner = True
                    break
            # then kept (returned above), or the maker failed / could not keep it: made here. A maker taking
            # longer than MAKE_WAIT_S (or one waiting on this thread) is not waited for any longer.
            if not making.wait(MAKE_WAIT_S):
                break
        try:
            value = make()  # outside the lock: making may take seconds
            n = int(size(value))
            with self._lock:
                if key in self._items:   # kept meanwhile by a maker this thread stopped waiting for
                    self._items.move_to_end(key)
                    return self._items[key][0]
                if n <= self.max_bytes:
                    self._items[key] = (value, n)
                    self.total += n
                    while self.total > self.max_bytes and self._items:
                        _, (_, old) = self._items.popitem(last=False)
                        self.total -= old
            return value
        finally:
            if owner:
                with self._lock:
                    self._making.pop(key, None)
                making.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.total = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


CACHE = ByteLRU(cache_bytes)  # the app's shared cache of loaded runs, test images and BN histories


# -- one byte budget for values every session shares (loaded runs) ------------------------------------------

DEFAULT_LOAD_MB = 1024
LOAD_WAIT_S = 10.0   # the longest a request waits for room before it is refused


def load_budget_bytes() -> int:
    """What loading saved runs may hold on the server in all, across every browser session: $CNNLAB_LOAD_BUDGET_MB
    (default 1024) MB."""
    return _env_mb("CNNLAB_LOAD_BUDGET_MB", DEFAULT_LOAD_MB) << 20


class ByteBudget:
    """Values made on request and shared by every session (loaded runs), bounded in total by bytes: what is
    being made, what is kept, and what sessions still hold after it was let go all count, until it is collected.

    ``get_or_make(key, cost, make)`` returns the value for `key` when one is alive (kept, or still held by some
    session), so a value is never made twice at once; else it reserves `cost` bytes (the most `make` may
    allocate) before calling `make`, then charges the value's own size (:func:`nbytes`) until the value is garbage
    collected. Room is made by letting go of kept values, least recently used first; when that is not enough (the
    sessions still hold them, or others are being made) it waits up to `wait_s` seconds, then refuses with one
    sentence (LimitError). A request larger than the whole budget is refused at once. So N sessions loading N
    runs at once hold at most the budget, not N runs.
    """

    def __init__(self, max_bytes: int | Callable[[], int], *, wait_s: float = LOAD_WAIT_S,
                 too_big: str = "msg.load_big", busy: str = "msg.load_busy"):
        self._max = max_bytes
        self.wait_s = float(wait_s)
        self._too_big, self._busy = too_big, busy
        self._cond = threading.Condition(threading.RLock())  # re-entrant: a collection may release inside it
        self._kept: OrderedDict[Hashable, Any] = OrderedDict()
        self._alive: dict[Hashable, Any] = {}               # key -> weak reference to the value
        self._making: set[Hashable] = set()
        self.used = 0    # bytes reserved by makes under way plus bytes of live values
        self.peak = 0

    @property
    def max_bytes(self) -> int:
        return int(self._max() if callable(self._max) else self._max)

    def _release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()

    def _live(self, key: Hashable) -> Any:
        ref = self._alive.get(key)
        value = ref() if ref is not None else None
        if value is not None:
            self._kept[key] = value
            self._kept.move_to_end(key)
        return value

    def get_or_make(self, key: Hashable, cost: int, make: Callable[[], Any],
                    size: Callable[[Any], int] = nbytes) -> Any:
        import gc
        import time
        import weakref

        cost = max(1, int(cost))
        deadline = time.monotonic() + self.wait_s
        collected = -1e9   # when gc last ran for room
        with self._cond:
            while True:
                value = self._live(key)
                if value is not None:
                    return value
                most = self.max_bytes
                if cost > most:
                    raise LimitError(msg(self._too_big, amount=fmt_bytes(cost), allowed=fmt_bytes(most)))
                if key not in self._making and self.used + cost <= most:
                    break
                if key not in self._making and self._kept:
                    self._kept.popitem(last=False)  # let go of the least recently used; its bytes count until
                    continue                        # no session holds it any more
                if time.monotonic() - collected >= 2.0:  # a value only a reference cycle still holds
                    collected = time.monotonic()
                    self._cond.release()  # collect outside the lock: finalizers may take other locks
                    try:
                        gc.collect()
                    finally:
                        self._cond.acquire()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LimitError(msg(self._busy, used=fmt_bytes(self.used), allowed=fmt_bytes(most)))
                self._cond.wait(min(left, 0.5))
            self._making.add(key)
            self.used += cost
            self.peak = max(self.peak, self.used)
        try:
            value = make()  # outside the lock: loading takes seconds
            n = max(1, int(size(value)))
        except BaseException:
            with self._cond:
                self._making.discard(key)
                self.used -= cost
                self._cond.notify_all()
            raise
        with self._cond:
            self._making.discard(key)
            self.used += n - cost
            self.peak = max(self.peak, self.used)
            weakref.finalize(value, self._release, n)
            self._alive = {k: r for k, r in self._alive.items() if r() is not None}
            self._alive[key] = weakref.ref(value)
            self._kept[key] = value
            self._cond.notify_all()
        return value

    def clear(self) -> None:
        """Let go of every kept value (their bytes count until no session holds them)."""
        with self._cond:
            self._kept.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._kept
