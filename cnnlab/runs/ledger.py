"""Server-side bookkeeping shared by executors: run records, event buffers, the fair queue, owner limits.

A :class:`RunLedger` knows nothing of processes: an executor asks it to `add` a run (limits are checked
here and raise the RunRefused subclasses), asks `next_runnable(device, slots)` which queued run may start,
and feeds it each event with `record`. Thread-safe (one lock).

Event indices: every event a run produced gets the next index (0, 1, ...). To bound memory, StepEnds older
than the newest ``max_steps`` are thinned (every other one dropped) and BNSnapshots beyond ``max_bn``
likewise; the survivors keep their original indices, so ``events(since=n_events)`` always continues.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..events import BNSnapshot, Event, RunEnd, RunFailed, RunStart, StepEnd
from ..i18n import msg
from . import recovery
from .base import (CANCELLED, FINISHED, QUEUED, RUNNING, Limits, NotOwner, OwnerLimit, QueueFull, RunStatus,
                   state_of)


@dataclass
class RunRecord:
    id: str
    owner: str
    executor: str
    device: str
    config: Any
    label: str
    meta: dict
    out_dir: str | None
    state: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stop_requested: float | None = None
    limit_reason: str | None = None         # "time_limit" when the executor stopped it
    run_dir: str | None = None
    message: str = ""
    worker: Any = None                      # the executor's handle on whoever trains it
    events: list = field(default_factory=list)   # [(index, event)]
    n: int = 0
    end: Event | None = None
    done: threading.Event = field(default_factory=threading.Event)


class RunLedger:
    def __init__(self, executor: str, limits: Limits, *, max_steps: int = 5000, max_bn: int = 200,
                 max_finished: int = 64):
        self.executor = executor
        self.limits = limits
        self.max_steps, self.max_bn, self.max_finished = max_steps, max_bn, max_finished
        self.lock = threading.RLock()
        self.runs: dict[str, RunRecord] = {}   # insertion order = submission order

    # -- admission of a new run ----------------------------------------------------------
    def add(self, rec: RunRecord) -> None:
        """Check the owner's and the queue's limits, then queue the run (raises OwnerLimit / QueueFull)."""
        lim = self.limits
        with self.lock:
            mine = [r for r in self.runs.values() if r.owner == rec.owner and r.state not in FINISHED]
            allowed = lim.max_active_per_owner + lim.max_queued_per_owner
            if len(mine) >= allowed:
                raise OwnerLimit(msg("msg.owner_limit" if len(mine) != 1 else "msg.owner_limit_1", n=len(mine), active=lim.max_active_per_owner,
                                     queued=lim.max_queued_per_owner))
            client = rec.meta.get("client")
            if client is not None:  # many owners from one address: one person's made-up cookies, or a class
                theirs = [r for r in self.runs.values() if r.meta.get("client") == client and r.state not in FINISHED]
                if len(theirs) >= lim.max_runs_per_client:
                    raise OwnerLimit(msg("msg.client_limit", n=len(theirs), most=lim.max_runs_per_client))
            waiting = [r for r in self.runs.values() if r.state == QUEUED]
            if len(waiting) >= lim.queue_len:
                raise QueueFull(msg("msg.queue_full", n=len(waiting), size=lim.queue_len))
            self.runs[rec.id] = rec
            self._prune()

    def _prune(self) -> None:
        finished = [i for i, r in self.runs.items() if r.state in FINISHED]
        for i in finished[:max(0, len(finished) - self.max_finished)]:
            del self.runs[i]

    # -- scheduling -------------------------------------------------------------------
    def running(self, device: str | None = None) -> list[RunRecord]:
        with self.lock:
            return [r for r in self.runs.values() if r.state == RUNNING and (device is None or r.device == device)]

    def queued(self) -> list[RunRecord]:
        with self.lock:
            return [r for r in self.runs.values() if r.state == QUEUED]

    def fair_queue(self, device: str | None = None) -> list[RunRecord]:
        """The queued runs in the order they will start: turn by turn between client addresses (and owners
        without one), first come first served within each. One address's many runs (one person with many
        cookies) wait behind everyone else's next run instead of ahead of the whole class; a class behind one
        school address is plain first come, first served."""
        with self.lock:
            turns: dict[str, int] = {}
            for r in self.running(device):
                k = r.meta.get("client") or r.owner
                turns[k] = turns.get(k, 0) + 1
            ranked = []
            for i, r in enumerate(r for r in self.queued() if device is None or r.device == device):
                k = r.meta.get("client") or r.owner
                ranked.append((turns.get(k, 0), i, r))
                turns[k] = turns.get(k, 0) + 1
            return [r for _, _, r in sorted(ranked, key=lambda x: (x[0], x[1]))]

    def next_runnable(self, device: str, slots: int) -> RunRecord | None:
        """The next queued run for `device` (fair_queue) whose owner is under their active limit, if a slot is
        free."""
        with self.lock:
            busy = self.running(device)
            if len(busy) >= slots:
                return None
            per_owner: dict[str, int] = {}
            for r in self.running():
                per_owner[r.owner] = per_owner.get(r.owner, 0) + 1
            for r in self.fair_queue(device):
                if per_owner.get(r.owner, 0) < self.limits.max_active_per_owner:
                    return r
            return None

    def mark_running(self, rec: RunRecord, worker: Any) -> None:
        with self.lock:
            rec.state, rec.started, rec.worker = RUNNING, time.time(), worker
        recovery.forget_queued(rec.out_dir, rec.id)

    def position(self, rec: RunRecord) -> int | None:
        with self.lock:
            if rec.state == RUNNING:
                return 0
            if rec.state != QUEUED:
                return None
            order = [r.id for r in self.fair_queue(rec.device)]
            return order.index(rec.id) + 1

    # -- events ---------------------------------------------------------------------
    def record(self, rec: RunRecord, ev: Event, before_done=None) -> bool:
        """Append an event; a final event (RunEnd/RunFailed) finishes the run. True if it was final.
        `before_done(rec, final_event)` runs before waiters are woken (e.g. to fix up config.json)."""
        with self.lock:
            if rec.state in FINISHED:
                return False
            if isinstance(ev, RunFailed) and ev.reason == "stopped" and rec.limit_reason == "time_limit":
                ev = RunFailed(reason="time_limit", run_dir=ev.run_dir, epoch=ev.epoch, step=ev.step,
                               message=msg("msg.wall_limit", mins=f"{self.limits.max_wall_s / 60:g}", step=ev.step))
            rec.events.append((rec.n, ev))
            rec.n += 1
            if isinstance(ev, (RunStart, RunEnd, RunFailed)) and getattr(ev, "run_dir", None):
                rec.run_dir = ev.run_dir
            if isinstance(ev, RunStart) and ev.run_dir:  # who started it, for pages that list folders
                recovery.mark_owner(ev.run_dir, rec.owner)
                recovery.mark_class(ev.run_dir, rec.meta)
            if isinstance(ev, StepEnd):
                self._thin(rec, StepEnd, self.max_steps)
            elif isinstance(ev, BNSnapshot):
                self._thin(rec, BNSnapshot, self.max_bn)
            if isinstance(ev, (RunEnd, RunFailed)):
                rec.end = ev
                rec.state = state_of(ev)
                rec.message = ev.message if isinstance(ev, RunFailed) else ""
                rec.finished = time.time()
                rec.worker = None
                if before_done is not None:
                    try:
                        before_done(rec, ev)
                    except Exception:  # noqa: BLE001 - bookkeeping never breaks the stream
                        pass
                rec.done.set()
                return True
            return False

    @staticmethod
    def _thin(rec: RunRecord, kind: type, cap: int) -> None:
        idx = [i for i, (_, e) in enumerate(rec.events) if isinstance(e, kind)]
        if len(idx) <= cap:
            return
        drop = set(idx[:len(idx) // 2:2])  # every other one of the older half
        rec.events = [p for i, p in enumerate(rec.events) if i not in drop]

    def cancel(self, rec: RunRecord, message: str | None = None) -> None:
        message = message or msg("msg.cancelled")
        with self.lock:
            rec.events.append((rec.n, RunFailed(reason="stopped", message=message)))
            rec.n += 1
            rec.end = rec.events[-1][1]
            rec.state, rec.finished, rec.message = CANCELLED, time.time(), message
            rec.done.set()
        recovery.forget_queued(rec.out_dir, rec.id)

    def events(self, run_id: str, since: int = 0) -> list[Event]:
        with self.lock:
            rec = self.runs.get(run_id)
            if rec is None:
                return []
            return [e for i, e in rec.events if i >= since]

    # -- reading -----------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord | None:
        with self.lock:
            return self.runs.get(run_id)

    def check_owner(self, rec: RunRecord, by: str) -> None:
        if by != rec.owner and not (self.limits.teacher and by == self.limits.teacher):
            raise NotOwner("only the person who started this run can stop it")

    def status(self, rec: RunRecord) -> RunStatus:
        with self.lock:
            return RunStatus(id=rec.id, owner=rec.owner, executor=rec.executor, state=rec.state,
                             position=self.position(rec), label=rec.label, device=rec.device, created=rec.created,
                             started=rec.started, finished=rec.finished, run_dir=rec.run_dir, message=rec.message,
                             n_events=rec.n, meta=dict(rec.meta))

    def list(self, owner: str | None = None) -> list[RunStatus]:
        with self.lock:
            recs = [r for r in reversed(self.runs.values()) if owner is None or r.owner == owner]
            return [self.status(r) for r in recs]
