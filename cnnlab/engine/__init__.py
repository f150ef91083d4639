"""The training engine: a run configuration, a training loop that yields events, and a run folder.

* :mod:`.config` — :class:`TrainConfig`, every value checked like a knob; the book's recipe comes from
  ``ArchSpec.recipe``.
* :mod:`.loop` — :func:`fit`, a generator of frozen event dataclasses (cnnlab.events); it never prints
  or plots; :func:`evaluate`, :func:`init_weights` (d2l's Xavier init).
* :mod:`.launch` — :func:`run`: model + data + :func:`fit`, with the run folder written by
  ``checkpoint.RunWriter.on_event``.

The device policy (threads, allocator, autocast, out-of-memory) is :mod:`cnnlab.device`'s.
"""
from .config import TrainConfig
from .loop import count_params, evaluate, fit, init_weights
from .launch import build_data, run

__all__ = ["TrainConfig", "build_data", "count_params", "evaluate", "fit", "init_weights", "run"]
