"""The local executor: a small pool of warm worker processes on this machine (the default).

Each worker is a ``multiprocessing`` "spawn" process (:mod:`cnnlab.runs.worker`) with torch imported and
Fashion-MNIST read, so a Start click shows its first curve point quickly. The server process never
trains: one daemon thread here reads every worker's pipe into the :class:`~cnnlab.runs.ledger.RunLedger`,
starts queued runs when a device slot and a warm worker are free, enforces the wall-time limit, and
watches the workers. A worker that dies (SIGKILL, a segfault, the kernel's out-of-memory killer) fails
only its own run (reason ``worker_died``) and is replaced by a fresh one; the server keeps serving.

Pool: at most ``cpu_slots`` (+ ``gpu_slots`` with a GPU) runs train at once; ``workers`` warm spares wait
beside the busy ones (so the next Start after a run is as fast as the first).
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection
import signal
import sys
import threading
import time
import types
import weakref
from typing import Any

from ..events import RunFailed
from ..i18n import msg
from . import admission, recovery
from .base import RUNNING, Limits, RunHandle
from .ledger import RunRecord
from .executor import LedgerExecutor

EARLY_DEATHS_MAX = 3    # workers that die before "ready" this many times in a row: pause respawning


def _signal_text(code: int | None) -> str:
    if code is None:
        return msg("msg.worker_died")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {"SIGKILL": "msg.sig_killed", "SIGSEGV": "msg.sig_crash", "SIGABRT": "msg.sig_aborted",
               "SIGTERM": "msg.sig_terminated", "SIGBUS": "msg.sig_crash"}.get(name, "msg.sig_other")
        return msg("msg.worker_signal", sig=name.replace(" ", "_"), why=msg(why))
    return msg("msg.worker_exit", code=code)


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _bare_main():
    """A "spawn" child first re-imports its parent's ``__main__``. Under ``streamlit run`` that is the page script
    (Streamlit makes the running script ``sys.modules["__main__"]``), so every worker ran the whole app in
    bare mode as it started: the UI's imports (pandas, pyarrow, plotly) in its memory, seconds of CPU, and a
    screen of "missing ScriptRunContext" warnings in the server log. Workers need nothing from ``__main__``
    (their target is :func:`cnnlab.runs.worker.main`), so they start against an empty one."""
    with _MAIN_LOCK:
        real = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if real is not None:
                sys.modules["__main__"] = real


class _Worker:
    def __init__(self, ctx, wid: int, preload: bool):
        from . import worker

        self.wid = wid
        self.conn, child = ctx.Pipe(duplex=True)
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=worker.main, args=(wid, child, self.stop, preload), daemon=True,
                                name=f"cnnlab-worker-{wid}")
        with _bare_main():
            self.proc.start()
        child.close()
        self.spawned = time.time()
        self.ready = False
        self.pid: int | None = self.proc.pid
        self.info: dict = {}
        self.run: RunRecord | None = None
        self.dead = False

    @property
    def idle(self) -> bool:
        return self.ready and self.run is None and not self.dead


class LocalExecutor(LedgerExecutor):
    name = "local"

    def __init__(self, *, limits: Limits | None = None, out_dir: str | None = "checkpoints", preload: bool = True,
                 admission_check: bool = True, recover: bool = True, poll_s: float = 0.1):
        super().__init__(limits=limits, out_dir=out_dir, admission_check=admission_check, recover=recover)
        self.preload = preload
        self.poll_s = poll_s
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._wid = 0
        self._early_deaths = 0
        self._pause_until = 0.0
        self._cuda = self._has_cuda()
        self._ensure_pool()
        self._start("cnnlab-local-executor")
        weakref.finalize(self, LocalExecutor._final, self._workers)

    def _release(self) -> None:
        LocalExecutor._final(self._workers)

    @staticmethod
    def _final(workers: list) -> None:
        for w in list(workers):
            try:
                w.conn.send(None)
            except Exception:  # noqa: BLE001
                pass
        t = time.time() + 2
        for w in list(workers):
            w.proc.join(max(0.0, t - time.time()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(1)
            try:
                w.conn.close()
            except Exception:  # noqa: BLE001
                pass
        workers.clear()

    # -- extras (tests, the bench, the app) -------------------------------------------------
    def worker_pid(self, handle: RunHandle | str) -> int | None:
        """The pid of the process training this run (None if it is not training)."""
        w = self._worker_of(handle)
        return w.pid if w is not None else None

    def workers(self) -> list[dict]:
        with self._lock:
            return [{"wid": w.wid, "pid": w.pid, "ready": w.ready, "busy": w.run is not None,
                     "alive": w.proc.is_alive(), **w.info} for w in self._workers]

    def wait_ready(self, n: int = 1, timeout: float = 120) -> bool:
        """Block until `n` workers are warm (for the bench and tests)."""
        t = time.time() + timeout
        while time.time() < t:
            if sum(w.ready and not w.dead for w in list(self._workers)) >= n:
                return True
            time.sleep(0.05)
        return False

    # -- internals ----------------------------------------------------------------------
    @staticmethod
    def _has_cuda() -> bool:
        try:
            import torch
            return torch.cuda.is_available()
        except Exception:  # noqa: BLE001
            return False

    def _send_stop(self, w: "_Worker") -> None:
        w.stop.set()

    def _before_schedule(self) -> None:
        self._ensure_pool()

    def _device_of(self, device: str) -> str:
        d = str(device)
        if d == "auto":
            return "cuda" if self._cuda else "cpu"
        return d

    def _slots(self, device: str) -> int:
        if device == "cuda":
            return self.limits.gpu_slots or admission.gpu_slots_by_memory()
        return self.limits.cpu_slots

    def _target_pool(self) -> int:
        slots = self.limits.cpu_slots + (self._slots("cuda") if self._cuda else 0)
        return slots + self.limits.workers

    def _ensure_pool(self) -> None:
        """Keep `slots + workers` worker processes alive (all started up front, so no process warms up —
        and competes for the cores — while a run trains; a dead one is replaced)."""
        with self._lock:
            if self._closed or time.time() < self._pause_until:
                return
            alive = [w for w in self._workers if not w.dead]
            while len(alive) < max(self._target_pool(), 1):
                self._wid += 1
                w = _Worker(self._ctx, self._wid, self.preload)
                self._workers.append(w)
                alive.append(w)

    def _start_run(self, rec: RunRecord) -> bool:
        w = next((w for w in self._workers if w.idle), None)
        if w is None:
            return False
        w.stop.clear()
        try:
            w.conn.send(("run", rec.id, rec.config, rec.out_dir))
        except (OSError, ValueError):
            self._died(w)
            return True  # another worker may take it
        w.run = rec
        self.ledger.mark_running(rec, w)
        return True

    def _loop(self) -> None:
        while self._running:
            with self._lock:
                conns = {w.conn: w for w in self._workers if not w.dead}
            try:
                ready = mp.connection.wait(list(conns), timeout=self.poll_s) if conns else []
            except (OSError, ValueError):
                ready = []
            if not conns:
                time.sleep(self.poll_s)
            for c in ready:
                w = conns[c]
                try:
                    while True:
                        self._dispatch(w, c.recv())
                        if not c.poll():
                            break
                except (EOFError, OSError):
                    w.proc.join(1.0)
                    with self._lock:
                        self._died(w)
            try:
                self._watch()
            except Exception:  # noqa: BLE001 - the watcher must never die
                pass

    def _dispatch(self, w: _Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind == "ready":
            with self._lock:
                w.ready, w.pid, w.info = True, msg[2], dict(msg[3] or {})
                self._early_deaths = 0
                self._schedule()
        elif kind == "event":
            rec = self.ledger.get(msg[1])
            if rec is None:
                return
            ev = msg[2]
            self.ledger.record(rec, ev, before_done=self._fix_config)
        elif kind == "idle":
            with self._lock:
                w.run = None
                self._prune_disk()
                self._schedule()
                self._ensure_pool()

    @staticmethod
    def _fix_config(rec: RunRecord, ev) -> None:
        """config.json for ends the worker could not write itself (death, the wall-time limit)."""
        if not rec.run_dir or not isinstance(ev, RunFailed):
            return
        if ev.reason == "time_limit":
            recovery.update_config(rec.run_dir, status="stopped", failure={
                "reason": ev.reason, "message": ev.message, "epoch": ev.epoch, "step": ev.step})
        elif ev.reason == "worker_died" or "its worker was ended" in ev.message:
            recovery.update_config(rec.run_dir, status="stopped" if ev.reason == "stopped" else "failed",
                                   failure={"reason": ev.reason, "message": ev.message})

    def _died(self, w: _Worker) -> None:
        """A worker is gone: fail its run, forget it, start a fresh one."""
        if w.dead:
            return
        w.dead = True
        if not w.ready:
            self._early_deaths += 1
            if self._early_deaths >= EARLY_DEATHS_MAX:
                self._pause_until = time.time() + 30
        rec, w.run = w.run, None
        code = w.proc.exitcode
        if rec is not None and rec.state == RUNNING:
            ev = self._ended(rec, RunFailed(reason="worker_died", message=_signal_text(code), run_dir=rec.run_dir))
            self.ledger.record(rec, ev, before_done=self._fix_config)
        try:
            w.conn.close()
        except Exception:  # noqa: BLE001
            pass
        if w in self._workers:
            self._workers.remove(w)
        self._ensure_pool()
        self._schedule()

    def _watch(self) -> None:
        now = time.time()
        with self._lock:
            for w in list(self._workers):
                if not w.dead and w.proc.exitcode is not None:
                    # drain what it sent before dying (its last events), then fail its run
                    try:
                        while w.conn.poll():
                            self._dispatch(w, w.conn.recv())
                    except (EOFError, OSError):
                        pass
                    self._died(w)
            for rec in self.ledger.running():
                w = rec.worker
                if w is None:
                    continue
                if self._overdue(rec, now) and w.proc.is_alive():
                    w.proc.kill()
            if not self._closed:
                self._ensure_pool()
                self._schedule()

    def __repr__(self) -> str:  # pragma: no cover
        return f"LocalExecutor(workers={len(self._workers)}, runs={len(self.ledger.runs)})"


def worker_info(ex: Any) -> list[dict]:
    return ex.workers() if hasattr(ex, "workers") else []
