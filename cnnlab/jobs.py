"""Background training runs: a process-wide registry, one worker thread per run, a queue with a cap.

The app keeps ONE :class:`JobRegistry` per process (the page wraps it in ``st.cache_resource``), so a run
survives page switches and browser reloads. Each run's worker thread consumes the engine's events
(:mod:`cnnlab.events`) into a buffer guarded by a lock; pages poll :meth:`Job.view` for a consistent copy.
Nothing here imports streamlit, and the worker never touches the UI.

Scheduling: at most ``max_running`` runs per device (default 1) train at once; later submissions wait in a
FIFO queue and :meth:`JobRegistry.position` tells them their place. :meth:`JobRegistry.stop` sets the run's
stop Event (the engine ends at its next step and keeps its checkpoint) or cancels a queued run.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .events import BNSnapshot, EpochEnd, Event, RunEnd, RunFailed, RunStart, StepEnd

# A runner turns (train config, stop Event) into an iterable of events; the app passes the engine's run().
Runner = Callable[[Any, threading.Event], Iterable[Event]]

QUEUED, RUNNING, DONE, FAILED, STOPPED, CANCELLED = "queued", "running", "done", "failed", "stopped", "cancelled"
FINISHED = (DONE, FAILED, STOPPED, CANCELLED)


class QueueFull(RuntimeError):
    """Too many runs are waiting; the message is one line for people."""


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a run's state for drawing (taken under the run's lock)."""

    id: str
    label: str
    device: str
    state: str
    position: int | None      # 0 = training now, 1.. = place in the queue, None = finished
    created: float
    started: float | None
    finished: float | None
    start: RunStart | None
    steps: tuple[StepEnd, ...]
    epochs: tuple[EpochEnd, ...]
    bn: tuple[BNSnapshot, ...]
    end: RunEnd | RunFailed | None
    n_events: int
    meta: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    @property
    def last_step(self) -> StepEnd | None:
        return self.steps[-1] if self.steps else None

    @property
    def progress(self) -> float:
        """Fraction of steps done, 0..1 (1 when finished normally)."""
        if self.state == DONE:
            return 1.0
        s = self.last_step
        return min(1.0, s.step / s.total_steps) if s and s.total_steps else 0.0

    @property
    def run_dir(self) -> str | None:
        for ev in (self.end, self.start):
            if ev is not None and getattr(ev, "run_dir", None):
                return ev.run_dir
        return None

    @property
    def message(self) -> str:
        return self.end.message if isinstance(self.end, RunFailed) else ""


class Job:
    """One run: its config, stop Event, worker thread and event buffer (guarded by ``lock``)."""

    def __init__(self, job_id: str, config: Any, device: str, label: str, runner: Runner,
                 meta: dict | None = None, max_steps_kept: int = 5000, max_bn_kept: int = 200):
        self.id, self.config, self.device, self.label = job_id, config, device, label
        self.meta = dict(meta or {})
        self.runner = runner
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.state = QUEUED
        self.created, self.started, self.finished = time.time(), None, None
        self.stop_requested: float | None = None  # when stop() was called (time.time())
        self._start: RunStart | None = None
        self._steps: list[StepEnd] = []
        self._epochs: list[EpochEnd] = []
        self._bn: list[BNSnapshot] = []
        self._end: RunEnd | RunFailed | None = None
        self._n = 0
        self._max_steps = max_steps_kept
        self._max_bn = max_bn_kept
        self._done = threading.Event()

    # -- worker side ------------------------------------------------------------------
    def _record(self, ev: Event) -> None:
        with self.lock:
            self._n += 1
            if isinstance(ev, StepEnd):
                self._steps.append(ev)
                if len(self._steps) > self._max_steps:  # keep memory bounded: thin the older half
                    half = len(self._steps) // 2
                    self._steps = self._steps[:half:2] + self._steps[half:]
            elif isinstance(ev, EpochEnd):
                self._epochs.append(ev)
            elif isinstance(ev, BNSnapshot):
                self._bn.append(ev)
                if len(self._bn) > self._max_bn:
                    half = len(self._bn) // 2
                    self._bn = self._bn[:half:2] + self._bn[half:]
            elif isinstance(ev, RunStart):
                self._start = ev
            elif isinstance(ev, (RunEnd, RunFailed)):
                self._end = ev

    def _work(self, on_done: Callable[["Job"], None]) -> None:
        try:
            for ev in self.runner(self.config, self.stop_event):
                self._record(ev)
                if isinstance(ev, (RunEnd, RunFailed)):
                    break
            if self._end is None:
                if self.stop_event.is_set():
                    self._record(RunFailed(reason="stopped", message="stopped by request"))
                else:
                    self._record(RunFailed(reason="error", message="the run ended without a final event"))
        except Exception as e:  # the engine should yield RunFailed itself; this is the safety net
            self._record(RunFailed(reason="error", message=f"{type(e).__name__}: {e}".strip()))
        finally:
            with self.lock:
                end = self._end
                if isinstance(end, RunEnd):
                    self.state = DONE
                elif isinstance(end, RunFailed) and end.reason == "stopped":
                    self.state = STOPPED
                else:
                    self.state = FAILED
                self.finished = time.time()
            self._done.set()
            on_done(self)

    # -- reader side ----------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run is finished (or cancelled); True if it finished in time."""
        return self._done.wait(timeout)

    def view(self, position: int | None = None) -> JobView:
        with self.lock:
            return JobView(id=self.id, label=self.label, device=self.device, state=self.state, position=position,
                           created=self.created, started=self.started, finished=self.finished,
                           start=self._start, steps=tuple(self._steps), epochs=tuple(self._epochs),
                           bn=tuple(self._bn), end=self._end, n_events=self._n, meta=dict(self.meta))


class JobRegistry:
    """Process-wide run registry: submit, stop, list, queue positions. Thread-safe."""

    def __init__(self, runner: Runner | None = None, *, max_running: int = 1, max_queued: int = 8,
                 max_finished_kept: int = 32):
        self.runner = runner
        self.max_running = max_running
        self.max_queued = max_queued
        self.max_finished_kept = max_finished_kept
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}     # insertion order = submission order
        self._queue: list[str] = []         # queued job ids, FIFO over all devices
        self._ids = itertools.count(1)

    # -- submitting and stopping ------------------------------------------------------
    def submit(self, config: Any, *, device: str = "cpu", label: str = "", runner: Runner | None = None,
               meta: dict | None = None) -> Job:
        """Queue a run; it starts at once if its device has a free slot. Raises QueueFull."""
        runner = runner or self.runner
        if runner is None:
            raise ValueError("no runner: pass runner= to JobRegistry or submit()")
        with self._lock:
            waiting = [j for j in self._queue if self._jobs[j].device == device]
            if len(waiting) >= self.max_queued:
                raise QueueFull(f"{len(waiting)} runs are already waiting for {device}; stop one or try again later")
            job_id = f"job{next(self._ids)}-{int(time.time() * 1000) % 100000:05d}"
            job = Job(job_id, config, device, label or job_id, runner, meta=meta)
            self._jobs[job_id] = job
            self._queue.append(job_id)
            self._prune()
            self._schedule()
            return job

    def stop(self, job_id: str) -> bool:
        """Ask a run to stop (it ends at its next step), or cancel it if still queued. False if unknown/finished."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return False
            job.stop_requested = job.stop_requested or time.time()
            job.stop_event.set()
            if job.state == QUEUED:
                self._queue.remove(job_id)
                job._record(RunFailed(reason="stopped", message="cancelled before it started"))
                with job.lock:
                    job.state, job.finished = CANCELLED, time.time()
                job._done.set()
            return True

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every run (for tests and shutdown) and wait for the workers."""
        with self._lock:
            ids = list(self._jobs)
        for i in ids:
            self.stop(i)
        for i in ids:
            self._jobs[i].wait(timeout)

    # -- reading ---------------------------------------------------------------------
    def get(self, job_id: str | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id) if job_id else None

    def position(self, job_id: str) -> int | None:
        """0 = training now, 1.. = place among the runs waiting for the same device, None = finished/unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return None
            if job.state == RUNNING:
                return 0
            same = [j for j in self._queue if self._jobs[j].device == job.device]
            return same.index(job_id) + 1

    def view(self, job_id: str | None) -> JobView | None:
        job = self.get(job_id)
        return job.view(self.position(job.id)) if job else None

    def jobs(self) -> list[JobView]:
        """Every kept run, newest first."""
        with self._lock:
            ids = list(self._jobs)
        return [v for v in (self.view(i) for i in reversed(ids)) if v is not None]

    def latest(self) -> JobView | None:
        """The newest training run, else the newest queued one, else the newest run."""
        views = self.jobs()
        for state in (RUNNING, QUEUED):
            for v in views:
                if v.state == state:
                    return v
        return views[0] if views else None

    def running(self, device: str | None = None) -> list[str]:
        with self._lock:
            return [i for i, j in self._jobs.items() if j.state == RUNNING and (device is None or j.device == device)]

    # -- internals ------------------------------------------------------------------
    def _schedule(self) -> None:
        with self._lock:
            busy: dict[str, int] = {}
            for j in self._jobs.values():
                if j.state == RUNNING:
                    busy[j.device] = busy.get(j.device, 0) + 1
            for job_id in list(self._queue):
                job = self._jobs[job_id]
                if busy.get(job.device, 0) >= self.max_running:
                    continue
                self._queue.remove(job_id)
                busy[job.device] = busy.get(job.device, 0) + 1
                with job.lock:
                    job.state, job.started = RUNNING, time.time()
                job.thread = threading.Thread(target=job._work, args=(self._on_done,), daemon=True,
                                              name=f"cnnlab-{job_id}")
                job.thread.start()

    def _on_done(self, job: Job) -> None:
        self._schedule()

    def _prune(self) -> None:
        finished = [i for i, j in self._jobs.items() if j.state in FINISHED]
        for i in finished[:max(0, len(finished) - self.max_finished_kept)]:
            del self._jobs[i]
