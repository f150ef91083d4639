"""What the local and the Ray executors share: the run ledger (cnnlab.runs.ledger), and the contract's methods
that only read or change it — submit (checks, admission, the disk share and cap, the record), events, stop,
list, status, wait, shutdown — plus the disk cap after a run ends. A subclass says where runs train:
`_device_of`, `_schedule`, `_send_stop`, its thread (`_loop`, started by `_start`), and the hooks below."""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any

from ..events import Event, RunFailed
from ..i18n import msg
from . import admission, disk, recovery
from .base import FINISHED, QUEUED, Executor, Limits, RunHandle, RunStatus, handle_id, new_run_id
from .ledger import RunLedger, RunRecord

STOP_GRACE_S = 30.0   # a run that ignores its stop this long gets its worker killed


class LedgerExecutor(Executor):
    """An executor whose runs are kept in ``self.ledger``, with one thread of its own (`_loop`) that collects
    the runs' events and starts the waiting ones."""

    name = "ledger"
    _join_s = 2.0   # how long shutdown waits for the executor's thread

    def __init__(self, *, limits: Limits | None, out_dir: str | None, admission_check: bool, recover: bool):
        self.limits = limits or Limits.from_env()
        self.out_dir = out_dir
        self.admission_check = admission_check
        self.ledger = RunLedger(self.name, self.limits)
        self._lock = threading.RLock()
        self._closed = False      # shut down: no new runs, no new workers
        self._running = True      # the executor's thread runs until shutdown has collected the last events
        self.recovered = recovery.recover_interrupted(out_dir) if recover else []
        self.not_started = recovery.recover_queue(out_dir) if recover else []
        self._thread: threading.Thread | None = None

    def _start(self, thread_name: str) -> None:
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)
        self._thread.start()

    def _worker_of(self, handle: RunHandle | str) -> Any:
        """The worker training this run (None if it is not training)."""
        rec = self.ledger.get(handle_id(handle))
        return rec.worker if rec else None

    # -- what a subclass provides --------------------------------------------------------------
    def _device_of(self, device: str) -> str:
        raise NotImplementedError

    def _start_run(self, rec: RunRecord) -> bool:
        """Under the lock: start `rec` on a worker (`self.ledger.mark_running`); False when no worker is free
        now (scheduling waits for one). A run that cannot start is recorded as failed (True: go on)."""
        raise NotImplementedError

    def _slots(self, device: str) -> int:
        raise NotImplementedError

    def _schedule(self) -> None:
        """Start the waiting runs in the ledger's fair order while each device has a free slot."""
        with self._lock, self.ledger.lock:
            if self._closed:
                return
            for device in ("cuda", "cpu"):
                while True:
                    rec = self.ledger.next_runnable(device, self._slots(device))
                    if rec is None or not self._start_run(rec):
                        break

    def _send_stop(self, worker: Any) -> None:
        """Ask the worker training a run to stop at its next step."""
        raise NotImplementedError

    def _admission_limits(self, device: str) -> Limits:
        return self.limits

    def _record_device(self, device: str) -> str:
        return device.split(":")[0]

    def _out_dir_for(self, out_dir: str | None) -> str | None:
        return out_dir if out_dir is not None else self.out_dir

    def _before_schedule(self) -> None:
        """Called under the lock after a run is booked, before scheduling (e.g. to grow a worker pool)."""

    def _loop(self) -> None:
        raise NotImplementedError

    def _ended_by_shutdown(self, rec: RunRecord) -> None:
        """Under the lock: a run shutdown had to end as stopped (its worker sent no last event in time)."""

    def _let_go(self, worker: Any) -> None:
        """Under the lock, at shutdown: the worker of an unfinished run."""

    def _release(self) -> None:
        """Under the lock, last at shutdown: every worker, and what the executor started."""

    # -- the contract ---------------------------------------------------------------------------
    def submit(self, config, owner: str, *, label: str = "", meta: dict | None = None,
               out_dir: str | None = None) -> RunHandle:
        if self._closed:
            raise RuntimeError("the executor is shut down")
        if not owner:
            raise ValueError("a run needs an owner")
        tc = config.resolved()
        device = self._device_of(tc.device)
        tc = dataclasses.replace(tc, device=device)
        est = admission.check(tc, device, self._admission_limits(device)) if self.admission_check else None
        meta = dict(meta or {})
        if est is not None:
            meta.setdefault("estimate", est.to_dict())
        rec = RunRecord(id=new_run_id(tc.model.arch), owner=owner, executor=self.name, device=self._record_device(device),
                        config=tc, label=label or f"{tc.model.arch} · {tc.epochs} ep", meta=meta,
                        out_dir=self._out_dir_for(out_dir))
        with self._lock:
            room = self._make_room(rec)  # DiskRefused before anything is booked; nothing is deleted yet
            self.ledger.add(rec)
            disk.delete(room)            # booked: the owner's (then others') oldest runs make room for it
            recovery.note_queued(rec.out_dir, rec.id, owner, rec.label, meta)  # kept if this server is killed
            self._before_schedule()
            self._schedule()
        return RunHandle(rec.id, owner, self.name)

    def events(self, handle: RunHandle | str, since: int = 0) -> list[Event]:
        return self.ledger.events(handle_id(handle), since)

    def stop(self, handle: RunHandle | str, by: str) -> bool:
        rec = self.ledger.get(handle_id(handle))
        if rec is None:
            return False
        self.ledger.check_owner(rec, by)
        with self._lock, self.ledger.lock:
            if rec.state in FINISHED:
                return False
            rec.stop_requested = rec.stop_requested or time.time()
            if by != rec.owner:  # the teacher (check_owner let the server's token through): the owner is told
                rec.meta["stopped_by"] = "teacher"
            if rec.state == QUEUED:
                self.ledger.cancel(rec)
            elif rec.worker is not None:
                self._send_stop(rec.worker)
            self._schedule()
            return True

    def list(self, owner: str | None = None) -> list[RunStatus]:
        return self.ledger.list(owner)

    def status(self, handle: RunHandle | str) -> RunStatus | None:
        rec = self.ledger.get(handle_id(handle))
        return self.ledger.status(rec) if rec else None

    def wait(self, handle: RunHandle | str, timeout: float | None = None) -> bool:
        rec = self.ledger.get(handle_id(handle))
        return True if rec is None else rec.done.wait(timeout)

    # -- the disk cap (cnnlab.runs.disk) ---------------------------------------------------------
    def _disk_limited(self) -> bool:
        return self.limits.disk_cap_mb is not None or self.limits.disk_share_mb is not None

    def _make_room(self, rec: RunRecord) -> list[str]:
        """The folders to delete so that `rec` fits its owner's share and the cap (DiskRefused if it cannot);
        records what it will save in rec.meta["disk_bytes"]."""
        if not self._disk_limited() or not rec.out_dir:
            return []
        est = rec.meta.get("estimate") or {}
        need = int(est.get("disk_bytes") or 0) or admission.checkpoint_bytes(rec.config)
        rec.meta["disk_bytes"] = need
        pending, keep = self._disk_pending(rec.out_dir)
        return disk.make_room(rec.out_dir, self.limits, owner=rec.owner, need=need, pending=pending, keep=keep)

    def _disk_pending(self, root: str) -> tuple[dict, list[str]]:
        """What the runs training or waiting under `root` have still to write, by owner digest, and their folders."""
        pending: dict = {}
        keep: list[str] = []
        with self.ledger.lock:
            active = [r for r in self.ledger.runs.values() if r.state not in FINISHED and r.out_dir
                      and os.path.abspath(r.out_dir) == os.path.abspath(root)]
        for r in active:
            left = int(r.meta.get("disk_bytes") or 0)
            if r.run_dir:
                keep.append(r.run_dir)
                left -= recovery.folder_bytes(r.run_dir)
            d = recovery.owner_digest(r.owner)
            pending[d] = pending.get(d, 0) + max(0, left)
        return pending, keep

    def _prune_disk(self) -> None:
        """After a run has ended: back under the cap (what it saved may be more than planned)."""
        if self.limits.disk_cap_mb is None:
            return
        roots = {self.out_dir} | {r.out_dir for r in self.ledger.runs.values()}
        for root in roots:
            if root:
                pending, keep = self._disk_pending(root)
                disk.prune(root, self.limits.disk_cap_mb, keep=keep, pending=pending, share_mb=self.limits.share_mb)

    # -- the executor's thread, every poll ------------------------------------------------------------
    def _overdue(self, rec: RunRecord, now: float) -> bool:
        """Under the lock: ask a run past its time limit (CNNLAB_MAX_WALL_S) to stop, once (reason time_limit);
        True when a stop asked earlier went unheeded for STOP_GRACE_S (its worker is to be killed)."""
        if rec.started and now - rec.started > self.limits.max_wall_s and rec.limit_reason is None:
            rec.limit_reason = "time_limit"
            rec.stop_requested = rec.stop_requested or now
            self._send_stop(rec.worker)
        return bool(rec.stop_requested) and now - rec.stop_requested > STOP_GRACE_S

    # what a killed worker's run says: (wall-time limit, stop unheeded), each naming this executor's worker
    KILLED = ("msg.wall_killed", "msg.no_stop")

    def _ended(self, rec: RunRecord, otherwise: RunFailed) -> RunFailed:
        """Why a training run's worker ended: killed at the wall-time limit, or after a stop it left unheeded for
        STOP_GRACE_S (both asked by _overdue), else `otherwise` (the worker died by itself)."""
        at_limit, unheeded = self.KILLED
        if rec.stop_requested and rec.limit_reason == "time_limit":
            return RunFailed(reason="time_limit", message=msg(at_limit), run_dir=rec.run_dir)
        if rec.stop_requested and time.time() - rec.stop_requested >= STOP_GRACE_S:
            return RunFailed(reason="stopped", message=msg(unheeded, secs=f"{STOP_GRACE_S:g}"), run_dir=rec.run_dir)
        return otherwise

    # -- shutting down ---------------------------------------------------------------------------
    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel the waiting runs, ask the training ones to stop and give them `timeout` to send their last
        events (the executor's thread still records them); end the rest as stopped; let the workers go."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            recs = self._shutdown_stop()
        self._shutdown_wait(recs, timeout)
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=self._join_s)
        with self._lock:
            for r in recs:
                worker = r.worker
                if self._shutdown_record(r):
                    self._ended_by_shutdown(r)
                if worker is not None:
                    self._let_go(worker)
            self._release()

    def _shutdown_stop(self) -> list[RunRecord]:
        """Under the lock: cancel the queued runs and ask the training ones to stop; returns the unfinished runs."""
        recs = [r for r in self.ledger.runs.values() if r.state not in FINISHED]
        for r in recs:
            if r.state == QUEUED:
                self.ledger.cancel(r, msg("msg.cancelled_shutdown"))
            elif r.worker is not None:
                r.stop_requested = r.stop_requested or time.time()
                self._send_stop(r.worker)
        return recs

    @staticmethod
    def _shutdown_wait(recs: list[RunRecord], timeout: float) -> None:
        """Give the stopped runs until `timeout` (in all) to send their last events."""
        deadline = time.time() + timeout
        for r in recs:
            r.done.wait(max(0.0, deadline - time.time()))

    def _shutdown_record(self, rec: RunRecord) -> bool:
        """Under the lock: end a run that did not finish in time as stopped; True if it had to."""
        if rec.state in FINISHED:
            return False
        self.ledger.record(rec, RunFailed(reason="stopped", message=msg("msg.shutdown"), run_dir=rec.run_dir))
        return True
