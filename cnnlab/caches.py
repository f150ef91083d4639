"""Caches and budgets bounded by bytes, shared by every session of the server (module level, like
``st.cache_resource``, but never above their size):

- :data:`CACHE` — a :class:`ByteLRU` of $CNNLAB_CACHE_MB (default 1024) MB: model measurements
  (cnnlab.measure), loaded test images and BN histories;
- :class:`ByteBudget` — values sessions hold (loaded runs), bounded in total, waiting or refusing beyond.

No streamlit here; torch only (for :func:`nbytes`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch
from cachetools import LRUCache
from torch import nn

from .errors import LimitError
from .i18n import msg
from .units import fmt_bytes

log = logging.getLogger("cnnlab")

DEFAULT_CACHE_MB = 1024


def env_mb(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 1 << 30:
        return int(raw)
    log.warning("%s=%r is not a positive whole number of MB; using %d", name, raw[:40], default)
    return default


def cache_bytes() -> int:
    """What the app's shared caches may hold in all: $CNNLAB_CACHE_MB (default 1024) MB."""
    return env_mb("CNNLAB_CACHE_MB", DEFAULT_CACHE_MB) << 20



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
    """A thread-safe least-recently-used cache bounded by the bytes of its values (:func:`nbytes`): cachetools'
    LRUCache with `getsizeof`, plus one maker per key (see get_or_make).

    A value larger than the whole cache is returned without being kept. Use one per process (module level):
    it is shared by every session, like ``st.cache_resource``, but its total never exceeds `max_bytes` (read
    again at each call when it is a function: an environment setting).
    """

    def __init__(self, max_bytes: int | Callable[[], int]):
        self._max = max_bytes
        self._lru = LRUCache(maxsize=self.max_bytes, getsizeof=lambda kept: kept[1])  # values kept as (value, bytes)
        self._making: dict[Hashable, threading.Event] = {}   # keys being made now, set when done
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return int(self._max() if callable(self._max) else self._max)

    @property
    def total(self) -> int:
        return int(self._lru.currsize)

    def _bounded(self) -> LRUCache:
        """The cache, rebuilt empty when its bound changed (under the lock)."""
        if self._lru.maxsize != self.max_bytes:
            self._lru = LRUCache(maxsize=self.max_bytes, getsizeof=lambda kept: kept[1])
        return self._lru

    def get_or_make(self, key: Hashable, make: Callable[[], Any], size: Callable[[Any], int] = nbytes) -> Any:
        """The kept value for `key`, else `make()`'s (kept when it fits). While one thread makes a key, others
        asking for it wait for that value rather than make it again (a class stepping the same slider together
        asked for the same new probe at once); if the maker fails or the value is too large to keep, the
        waiters make it in turn (errors are not cached)."""
        owner = False
        while True:
            with self._lock:
                kept = self._bounded().get(key)
                if kept is not None:
                    return kept[0]
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
            n = max(1, int(size(value)))
            with self._lock:
                lru = self._bounded()
                kept = lru.get(key)
                if kept is not None:   # kept meanwhile by a maker this thread stopped waiting for
                    return kept[0]
                if n <= lru.maxsize:   # (a larger one is returned without being kept)
                    lru[key] = (value, n)
            return value
        finally:
            if owner:
                with self._lock:
                    self._making.pop(key, None)
                making.set()

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._lru


CACHE = ByteLRU(cache_bytes)  # the app's shared cache of loaded runs, test images and BN histories


# -- one byte budget for values every session shares (loaded runs) ------------------------------------------

DEFAULT_LOAD_MB = 1024
LOAD_WAIT_S = 10.0   # the longest a request waits for room before it is refused


def load_budget_bytes() -> int:
    """What loading saved runs may hold on the server in all, across every browser session: $CNNLAB_LOAD_BUDGET_MB
    (default 1024) MB."""
    return env_mb("CNNLAB_LOAD_BUDGET_MB", DEFAULT_LOAD_MB) << 20


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
