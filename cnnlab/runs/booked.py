"""What the local and the Ray executors share: the books (a RunBook), and the contract's methods that only
read or change the books — submit (checks, admission, the disk share and cap, the record), events, stop, list,
status, wait — plus the disk cap after a run ends. A subclass says where runs train: `_device_of`, `_schedule`,
`_send_stop`, and the hooks below."""
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
from .book import RunBook, RunRecord


class BookedExecutor(Executor):
    """An executor whose runs are kept in ``self.book``; subclasses set ``book``, ``limits``, ``out_dir``,
    ``admission_check``, ``_lock`` (an RLock) and ``_closed`` in their constructor."""

    book: RunBook
    limits: Limits
    out_dir: str | None
    admission_check: bool
    _lock: threading.RLock
    _closed: bool

    # -- what a subclass provides --------------------------------------------------------------
    def _device_of(self, device: str) -> str:
        raise NotImplementedError

    def _schedule(self) -> None:
        raise NotImplementedError

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
            self.book.add(rec)
            disk.delete(room)            # booked: the owner's (then others') oldest runs make room for it
            recovery.note_queued(rec.out_dir, rec.id, owner, rec.label, meta)  # kept if this server is killed
            self._before_schedule()
            self._schedule()
        return RunHandle(rec.id, owner, self.name)

    def events(self, handle: RunHandle | str, since: int = 0) -> list[Event]:
        return self.book.events(handle_id(handle), since)

    def stop(self, handle: RunHandle | str, by: str) -> bool:
        rec = self.book.get(handle_id(handle))
        if rec is None:
            return False
        self.book.check_owner(rec, by)
        with self._lock, self.book.lock:
            if rec.state in FINISHED:
                return False
            rec.stop_requested = rec.stop_requested or time.time()
            if by != rec.owner:  # the teacher (check_owner let the server's token through): the owner is told
                rec.meta["stopped_by"] = "teacher"
            if rec.state == QUEUED:
                self.book.cancel(rec)
            elif rec.worker is not None:
                self._send_stop(rec.worker)
            self._schedule()
            return True

    def list(self, owner: str | None = None) -> list[RunStatus]:
        return self.book.list(owner)

    def status(self, handle: RunHandle | str) -> RunStatus | None:
        rec = self.book.get(handle_id(handle))
        return self.book.status(rec) if rec else None

    def wait(self, handle: RunHandle | str, timeout: float | None = None) -> bool:
        rec = self.book.get(handle_id(handle))
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
        with self.book.lock:
            active = [r for r in self.book.runs.values() if r.state not in FINISHED and r.out_dir
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
        roots = {self.out_dir} | {r.out_dir for r in self.book.runs.values()}
        for root in roots:
            if root:
                pending, keep = self._disk_pending(root)
                disk.prune(root, self.limits.disk_cap_mb, keep=keep, pending=pending, share_mb=self.limits.share_mb)

    # -- shutting down (the subclass orders these around its own threads and workers) -----------
    def _shutdown_stop(self) -> list[RunRecord]:
        """Under the lock: cancel the queued runs and ask the training ones to stop; returns the unfinished runs."""
        recs = [r for r in self.book.runs.values() if r.state not in FINISHED]
        for r in recs:
            if r.state == QUEUED:
                self.book.cancel(r, msg("msg.cancelled_shutdown"))
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
        self.book.record(rec, RunFailed(reason="stopped", message=msg("msg.shutdown"), run_dir=rec.run_dir))
        return True
