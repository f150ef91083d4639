"""Owned runs: an executor trains configs in worker processes (local pool, or Ray) and streams events back.

`get_executor(kind)` picks one: "local" (default) or "ray" (when CNNLAB_RAY_ADDRESS is set or asked for).
"""
from __future__ import annotations

import os

from .base import (ACTIVE, CANCELLED, DONE, FAILED, FINISHED, INTERRUPTED, QUEUED, RUNNING, STOPPED,
                   AdmissionRefused, DiskRefused, Executor, Limits, NotOwner, OwnerLimit, QueueFull, RunHandle,
                   RunRefused, RunStatus)

__all__ = ["ACTIVE", "CANCELLED", "DONE", "FAILED", "FINISHED", "INTERRUPTED", "QUEUED", "RUNNING", "STOPPED",
           "AdmissionRefused", "DiskRefused", "Executor", "Limits", "NotOwner", "OwnerLimit", "QueueFull", "RunHandle",
           "RunRefused", "RunStatus", "get_executor"]


def get_executor(kind: str | None = None, **kw) -> Executor:
    """A new executor: "local" (worker processes here) or "ray"; None → "ray" if CNNLAB_RAY_ADDRESS is set."""
    if kind is None:
        kind = "ray" if os.environ.get("CNNLAB_RAY_ADDRESS") else "local"
    if kind == "local":
        from .local import LocalExecutor
        return LocalExecutor(**kw)
    if kind == "ray":
        from .ray_executor import RayExecutor
        return RayExecutor(**kw)
    raise ValueError(f"executor must be local or ray, got {kind!r}")
