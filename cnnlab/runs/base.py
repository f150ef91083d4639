"""The executor contract: owned runs, submitted, streamed, stopped and listed the same way everywhere.

Two executors implement it: :class:`cnnlab.runs.local.LocalExecutor` (a pool of warm worker processes on
this machine, the default) and :class:`cnnlab.runs.ray_executor.RayExecutor` (a Ray cluster). Both are
tested by one contract (tests/test_runs_contract.py). Nothing here imports streamlit or ray.

A run's event stream is the engine's frozen events (:mod:`cnnlab.events`) and ALWAYS ends with RunEnd or
RunFailed (reason: stopped | nan_loss | out_of_memory | error | worker_died | time_limit | interrupted).
"""
from __future__ import annotations

import abc
import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AdmissionRefused, DiskRefused, NotOwner, OwnerLimit, QueueFull, RunRefused  # noqa: F401
from ..events import Event, RunEnd, RunFailed

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import TrainConfig

QUEUED, RUNNING, DONE, FAILED, STOPPED, CANCELLED, INTERRUPTED = (
    "queued", "running", "done", "failed", "stopped", "cancelled", "interrupted")
FINISHED = (DONE, FAILED, STOPPED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)

OTHERS_LABEL = "someone else's run"


def new_run_id(arch: str = "run") -> str:
    """A run's one name, the same on every page: its folder's name too (``<YYYYmmdd-HHMMSS>-<arch>-<6 hex>``,
    see checkpoint.new_run_dir), so the Train page and Saved runs never show one run under two names."""
    from ..checkpoint import run_name

    return run_name(arch, secrets.token_hex(3))


def handle_id(handle: "RunHandle | str") -> str:
    return handle.id if isinstance(handle, RunHandle) else str(handle)


def state_of(end: Event | None, *, cancelled: bool = False) -> str:
    """The final state a run's last event means."""
    if cancelled:
        return CANCELLED
    if isinstance(end, RunEnd):
        return DONE
    if isinstance(end, RunFailed):
        if end.reason == "stopped":
            return STOPPED
        if end.reason == "time_limit":
            return STOPPED
        if end.reason == "interrupted":
            return INTERRUPTED
        return FAILED
    return FAILED


def _env_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        return default


CLASS_SIZE = 30   # the class a server is sized for: the default disk share is the cap / CLASS_SIZE


@dataclass(frozen=True)
class Limits:
    """Per-server limits, each from an environment variable (documented in README "Runs")."""

    max_active_per_owner: int = 1       # CNNLAB_MAX_ACTIVE_PER_OWNER: runs training at once per owner
    max_queued_per_owner: int = 1       # CNNLAB_MAX_QUEUED_PER_OWNER: runs waiting per owner
    queue_len: int = 64                 # CNNLAB_QUEUE_LEN: runs waiting in all (a class of 30, one waiting each)
    max_runs_per_client: int = 40       # CNNLAB_MAX_RUNS_PER_CLIENT: runs training or waiting from one address
                                        # (a class behind one school address fits; one person's cookies do not)
    cpu_slots: int = 1                  # CNNLAB_CPU_SLOTS: concurrent runs on the CPU
    gpu_slots: int | None = None        # CNNLAB_GPU_SLOTS: concurrent runs per GPU (None: by memory)
    max_wall_s: float = 900.0           # CNNLAB_MAX_WALL_S: a run is stopped (and kept) after this (a lesson's
                                        # runs are minutes; 30 min let one person block the queue for hours)
    disk_cap_mb: int | None = None      # CNNLAB_DISK_CAP_MB: all run folders under one root (the image: 18000);
                                        # see cnnlab.runs.disk for what is refused and what goes to make room
    disk_share_mb: int | None = None    # CNNLAB_DISK_SHARE_MB: one owner's runs (None: the cap / CLASS_SIZE)
    run_disk_mb: int | None = None      # CNNLAB_RUN_DISK_MB: what one run may save (None: the share), in the
                                        # admission estimate (AlexNet with fc_width 8192 saves 471 MB)
    workers: int = 1                    # CNNLAB_WORKERS: warm worker processes beyond the busy ones
    run_mem_mb: int | None = None       # CNNLAB_RUN_MEM_MB: memory budget per run (None: 2048 CPU / free GPU)
    max_run_hours: float = 0.5          # CNNLAB_MAX_RUN_HOURS: the estimated time a run may take (refused
                                        # before it queues beyond this: twice the time cap)
    teacher: str | None = None          # CNNLAB_TEACHER_TOKEN: an owner token that may stop any run

    @classmethod
    def from_env(cls, **overrides: Any) -> "Limits":
        d = cls()
        vals = dict(
            max_active_per_owner=_env_int("CNNLAB_MAX_ACTIVE_PER_OWNER", d.max_active_per_owner),
            max_queued_per_owner=_env_int("CNNLAB_MAX_QUEUED_PER_OWNER", d.max_queued_per_owner),
            queue_len=_env_int("CNNLAB_QUEUE_LEN", d.queue_len),
            max_runs_per_client=max(1, _env_int("CNNLAB_MAX_RUNS_PER_CLIENT", d.max_runs_per_client)),
            cpu_slots=max(1, _env_int("CNNLAB_CPU_SLOTS", d.cpu_slots)),
            gpu_slots=_env_int("CNNLAB_GPU_SLOTS", None),
            max_wall_s=float(os.environ.get("CNNLAB_MAX_WALL_S", "") or d.max_wall_s),
            disk_cap_mb=_env_int("CNNLAB_DISK_CAP_MB", None),
            disk_share_mb=_env_int("CNNLAB_DISK_SHARE_MB", None),
            run_disk_mb=_env_int("CNNLAB_RUN_DISK_MB", None),
            workers=max(0, _env_int("CNNLAB_WORKERS", d.workers)),
            run_mem_mb=_env_int("CNNLAB_RUN_MEM_MB", None),
            max_run_hours=float(os.environ.get("CNNLAB_MAX_RUN_HOURS", "") or d.max_run_hours),
            teacher=os.environ.get("CNNLAB_TEACHER_TOKEN") or None,
        )
        vals.update(overrides)
        return cls(**vals)

    @property
    def share_mb(self) -> int | None:
        """One owner's disk share: CNNLAB_DISK_SHARE_MB, else the cap divided among a class of CLASS_SIZE (None:
        no share)."""
        if self.disk_share_mb is not None:
            return max(0, self.disk_share_mb)
        return None if self.disk_cap_mb is None else max(0, self.disk_cap_mb) // CLASS_SIZE

    @property
    def run_disk_budget_mb(self) -> int | None:
        """What one run may save: CNNLAB_RUN_DISK_MB, never more than the share or the cap (None: no limit)."""
        cands = [v for v in (self.run_disk_mb, self.share_mb, self.disk_cap_mb) if v is not None]
        return max(0, min(cands)) if cands else None


@dataclass(frozen=True)
class RunHandle:
    id: str          # unique: the run folder's name (new_run_id)
    owner: str       # the owner token it was submitted with
    executor: str    # "local" | "ray"


@dataclass(frozen=True)
class RunStatus:
    """What list()/status() return. `public()` hides settings from people who do not own the run."""

    id: str
    owner: str
    executor: str
    state: str
    position: int | None          # 0 training, 1.. place in the queue, None finished
    label: str                    # human label (arch, epochs, ...) — owner only
    device: str
    created: float
    started: float | None
    finished: float | None
    run_dir: str | None
    message: str                  # failure/stop message ("" if none)
    n_events: int
    meta: dict = field(default_factory=dict)   # arch/knobs/resolution etc — owner only

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def public(self) -> "RunStatus":
        """A copy without settings, folder or message (what another owner may see)."""
        return dataclasses.replace(self, owner="", label=OTHERS_LABEL, meta={}, run_dir=None, message="")


class Executor(abc.ABC):
    """Runs training configs for owners. Thread-safe; one per server process."""

    name: str = "?"

    @abc.abstractmethod
    def submit(self, config: "TrainConfig", owner: str, *, label: str = "", meta: dict | None = None,
               out_dir: str | None = None) -> RunHandle:
        """Queue a run for `owner` (raises a RunRefused subclass). `config` is resolved by the executor."""

    @abc.abstractmethod
    def events(self, handle: RunHandle | str, since: int = 0) -> list[Event]:
        """The run's events with index >= since, in order (index = position in the run's full stream).

        Old StepEnds may be thinned once a run has more than a few thousand; the indices of the events
        returned stay those of the full stream, so `since = n_events` always continues where it left off.
        """

    @abc.abstractmethod
    def stop(self, handle: RunHandle | str, by: str) -> bool:
        """Ask the run to stop (at its next step) or cancel it if queued. NotOwner if `by` does not own it
        (the teacher token may stop any run). False if unknown or already finished."""

    @abc.abstractmethod
    def list(self, owner: str | None = None) -> list[RunStatus]:
        """Runs kept by this executor, newest first; owner=None → all."""

    @abc.abstractmethod
    def status(self, handle: RunHandle | str) -> RunStatus | None:
        """The run's status, or None if unknown."""

    @abc.abstractmethod
    def wait(self, handle: RunHandle | str, timeout: float | None = None) -> bool:
        """Block until the run is finished; True if it finished within `timeout`."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop every run, end the workers. Idempotent."""

    # context manager sugar
    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
