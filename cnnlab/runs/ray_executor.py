"""The Ray executor: each run is one Ray actor on a cluster; events come back by polling the actor.

Ray is optional (``requirements-ray.txt``): nothing here imports it before a :class:`RayExecutor` is made.

* Cluster: ``CNNLAB_RAY_ADDRESS`` (or ``address=``) is ``auto`` (the cluster ``ray start`` began on this
  machine), ``ray://host:port`` (Ray Client) or ``host:port``; unset or ``local`` starts a private local Ray
  for this process (shut down with the executor). If ``ray.init()`` was already called (tests, notebooks)
  that connection is used as it is.
* One run = one actor (:class:`RunWorker`) that requests ``CNNLAB_RAY_CPUS_PER_RUN`` CPUs (default 1)
  and, for a CUDA run, ``CNNLAB_GPU_FRACTION`` of a GPU (default 0.25: four small runs share one GPU; Ray
  packs them and sets ``CUDA_VISIBLE_DEVICES``). A run asks for a GPU only if the cluster has one: with
  ``device="auto"`` on a CPU-only cluster it trains on a CPU whatever the fraction says.
* The actor trains in its own thread with ``cnnlab.engine.run(config, stop=<threading.Event>,
  out_dir=...)`` and buffers the events; it is a threaded actor (``max_concurrency``) so ``poll`` and
  ``stop`` are served while it trains. ``max_restarts=0``: a worker that dies is never silently re-run.
* Driver side (the web server): one daemon thread long-polls every running actor (``poll.remote(since)``)
  into the shared :class:`~cnnlab.runs.ledger.RunLedger` (owners, limits, FIFO queue, event indices — the same
  bookkeeping as the local executor), starts queued runs while the cluster has room, enforces the
  wall-time limit. An actor that dies (killed, its node lost, out of memory) raises ``RayActorError`` on
  the next poll, and its run — only its run — ends ``RunFailed(reason="worker_died")``.
* Run folders: the worker writes them under ``CNNLAB_CHECKPOINTS`` (or ``out_dir=``), made absolute here;
  on a cluster of several machines that path must be one every node shares (NFS, a mounted bucket).
* Code on the workers: with a local or ``auto`` cluster the workers get this checkout on ``PYTHONPATH``;
  with ``ray://`` (or ``CNNLAB_RAY_SHIP_CODE=1``) the ``cnnlab`` package is shipped with the actor
  (Ray's ``py_modules``); torch must be installed on the nodes.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import socket
import threading
import time
import weakref
from typing import Any

import cnnlab

from ..i18n import msg
from ..events import RunFailed, RunStart, StepEnd
from . import recovery
from .base import RUNNING, AdmissionRefused, Limits, RunHandle, handle_id
from .ledger import RunLedger, RunRecord
from .executor import LedgerExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cnnlab.__file__)))
DEFAULT_GPU_FRACTION = 0.25
POLL_WAIT_S = 0.5          # how long the actor holds a poll open waiting for a new event
START_TIMEOUT_S = 600.0    # a run whose actor has not started training by then fails (no room, no env)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def gpu_fraction_from_env() -> float:
    """CNNLAB_GPU_FRACTION in (0, 1]: the share of one GPU a CUDA run asks Ray for."""
    f = _env_float("CNNLAB_GPU_FRACTION", DEFAULT_GPU_FRACTION)
    if not 0 < f <= 1:
        raise ValueError(f"CNNLAB_GPU_FRACTION must be a number in (0, 1], got {f:g}")
    return f


def actor_resources(device: str, *, cpus: float = 1.0, gpu_fraction: float = DEFAULT_GPU_FRACTION) -> dict:
    """The Ray resources one run asks for: CPUs always, a fraction of a GPU only for a CUDA run."""
    res = {"num_cpus": cpus, "num_gpus": 0}
    if str(device).startswith("cuda"):
        res["num_gpus"] = gpu_fraction
    return res


# -- the worker (runs inside a Ray actor process) ---------------------------------------------------

class RunWorker:
    """One run inside a Ray actor: trains in a thread, buffers events, answers poll/stop concurrently."""

    def __init__(self, run_id: str, config, out_dir: str | None):
        self.run_id = run_id
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._events: list = []      # events not yet acknowledged by the driver
        self._base = 0               # index of self._events[0] in the run's full stream
        self._done = False
        self._thread = threading.Thread(target=self._train, args=(config, out_dir), name=f"cnnlab-{run_id}",
                                        daemon=True)
        self._thread.start()

    def _train(self, config, out_dir) -> None:
        from .. import engine
        try:
            for ev in engine.run(config, stop=self._stop, out_dir=out_dir, name=self.run_id):
                if isinstance(ev, RunStart):
                    recovery.mark_alive(ev.run_dir)
                with self._cond:
                    self._events.append(ev)
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - engine.run never raises for training; this is a bug
            with self._cond:
                self._events.append(RunFailed(reason="error", message=f"{type(e).__name__}: {e}"[:200]))
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def poll(self, since: int, wait_s: float = POLL_WAIT_S) -> tuple[list, bool, dict | None]:
        """Events with index >= since (waiting up to `wait_s` for one), whether the stream has ended, and (on
        the first poll, since=0) where the run is: info(). Asking from `since` acknowledges everything before
        it: those are dropped here."""
        info = self.info() if since == 0 else None
        with self._cond:
            if since > self._base:
                del self._events[:since - self._base]
                self._base = since
            if not self._events and not self._done:
                self._cond.wait(wait_s)
            start = max(0, since - self._base)
            return list(self._events[start:]), self._done, info

    def stop(self) -> bool:
        self._stop.set()
        return True

    def info(self) -> dict:
        """Where Ray put this run: pid, host, node, the resources Ray assigned, the GPUs it sees."""
        import ray
        ctx = ray.get_runtime_context()
        try:
            assigned = dict(ctx.get_assigned_resources())
        except Exception:  # noqa: BLE001
            assigned = {}
        return {"pid": os.getpid(), "host": socket.gethostname(), "node_id": ctx.get_node_id(),
                "assigned": assigned, "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "threads_env": os.environ.get("CNNLAB_THREADS"), "cnnlab": cnnlab.__file__,
                "train_nice": _nice_of(self._thread.native_id)}   # Ray starts workers niced ($RAY_worker_niceness)


def _nice_of(tid: int | None) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, tid) if tid else None
    except OSError:   # the thread has ended
        return None


# -- the executor (driver side) ---------------------------------------------------------------

@dataclasses.dataclass
class _Actor:
    handle: Any                   # the Ray actor handle
    options: dict                 # what was passed to .options()
    got: int = 0                  # events received so far (= the next `since`)
    pending: Any = None           # the poll in flight (a Future of its ObjectRef)
    started_training: bool = False
    errors: int = 0


def _died_message(err: BaseException) -> str:
    text = str(err)
    if "creation task" in text or "__init__" in text:
        first = next((ln.strip() for ln in text.splitlines() if "Error" in ln and ":" in ln), "")
        return ("the Ray worker for this run could not start" + (f" ({first[:160]})" if first else ""))
    if "OutOfMemory" in type(err).__name__ or "out of memory" in text.lower() or "oom" in text.lower():
        return "the Ray worker training this run was killed for using too much memory"
    return "the Ray worker training this run died (it was killed, crashed, or its node was lost)"


class RayExecutor(LedgerExecutor):
    name = "ray"
    KILLED = ("msg.ray_wall_killed", "msg.ray_no_stop")

    def __init__(self, *, limits: Limits | None = None, out_dir: str | None = None, address: str | None = None,
                 gpu_fraction: float | None = None, cpus_per_run: float | None = None,
                 admission_check: bool = True, recover: bool = True, poll_s: float = 0.2,
                 init_kwargs: dict | None = None):
        try:
            import ray
        except ImportError as e:  # pragma: no cover - only without requirements-ray.txt
            raise RuntimeError("the Ray executor needs Ray: pip install -r requirements-ray.txt") from e
        self._ray = ray
        out = out_dir if out_dir is not None else os.environ.get("CNNLAB_CHECKPOINTS", "checkpoints")
        super().__init__(limits=limits, out_dir=os.path.abspath(out) if out else None,
                         admission_check=admission_check, recover=recover)
        self.gpu_fraction = gpu_fraction if gpu_fraction is not None else gpu_fraction_from_env()
        if not 0 < self.gpu_fraction <= 1:
            raise ValueError(f"gpu_fraction must be in (0, 1], got {self.gpu_fraction:g}")
        self.cpus_per_run = cpus_per_run if cpus_per_run is not None else _env_float("CNNLAB_RAY_CPUS_PER_RUN", 1.0)
        self.poll_s = poll_s
        self.address = address if address is not None else (os.environ.get("CNNLAB_RAY_ADDRESS") or None)
        ship = (self.address or "").startswith("ray://") or os.environ.get("CNNLAB_RAY_SHIP_CODE") == "1"
        # Per actor: the CPU threads it may use, and (one machine, or nodes sharing this path) this checkout.
        # Shipping the package is only possible for the whole job, i.e. when this executor calls ray.init.
        env_vars = {"CNNLAB_THREADS": str(max(1, int(self.cpus_per_run)))}
        if not ship:
            env_vars["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
        self.runtime_env = {"env_vars": env_vars}
        self._owns_ray = False
        if not ray.is_initialized():
            kw = {"log_to_driver": False, **(init_kwargs or {})}
            if self.address in (None, "", "local"):
                # a private Ray on this machine: small object store (events are tiny), no dashboard
                kw = {"address": "local", "include_dashboard": False, "object_store_memory": 256 * 2**20,
                      "logging_level": logging.WARNING, **kw}
            else:
                kw["address"] = self.address
            if ship:
                kw.setdefault("runtime_env", {"py_modules": [os.path.dirname(os.path.abspath(cnnlab.__file__))]})
            ray.init(**kw)
            self._owns_ray = True
        self._remote = ray.remote(RunWorker)
        self._resources: dict = {}
        self._resources_at = 0.0
        self._gpu_mem: int | None = None
        self._gpu_probe: concurrent.futures.Future | None = None
        if self.cluster_resources().get("GPU", 0) > 0:
            self._start_gpu_probe()
        self._start("cnnlab-ray-executor")
        weakref.finalize(self, RayExecutor._final, self.ledger)

    _join_s = 5.0

    def _ended_by_shutdown(self, rec: RunRecord) -> None:
        if rec.run_dir:  # its actor wrote no final status
            recovery.update_config(rec.run_dir, status="stopped",
                                   failure={"reason": "stopped", "message": "the server shut down"})

    def _let_go(self, worker: _Actor) -> None:
        self._kill(worker)

    def _release(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()

    @staticmethod
    def _final(ledger: RunLedger) -> None:
        for r in list(ledger.runs.values()):
            w = r.worker
            if w is not None:
                try:
                    import ray
                    ray.kill(w.handle, no_restart=True)
                except Exception:  # noqa: BLE001
                    pass

    # -- extras (tests, the app) ----------------------------------------------------------
    def actor_options(self, handle: RunHandle | str) -> dict | None:
        """The options the run's actor was created with (resources, restarts, concurrency)."""
        rec = self.ledger.get(handle_id(handle))
        w = rec.worker if rec else None
        return dict(w.options) if w is not None else (rec.meta.get("ray") if rec else None)

    def worker_info(self, handle: RunHandle | str, timeout: float = 30) -> dict | None:
        """Ask the run's actor where it runs and what Ray assigned it (None if it is not running)."""
        w = self._worker_of(handle)
        if w is None:
            return None
        return self._ray.get(w.handle.info.remote(), timeout=timeout)

    def cluster_resources(self, refresh: bool = False) -> dict:
        if refresh or time.time() - self._resources_at > 5:
            try:
                self._resources = dict(self._ray.cluster_resources())
                self._resources_at = time.time()
            except Exception:  # noqa: BLE001 - keep the last known figures
                pass
        return self._resources

    # -- internals ----------------------------------------------------------------------
    def _admission_limits(self, device: str) -> Limits:
        """On a GPU without CNNLAB_RUN_MEM_MB, a run may use its fraction of the GPU's memory."""
        lim = self.limits
        if device == "cuda" and lim.run_mem_mb is None:
            mem = self._gpu_memory()
            if mem:
                lim = dataclasses.replace(lim, run_mem_mb=max(1, int(mem * self.gpu_fraction) >> 20))
        return lim

    def _record_device(self, device: str) -> str:
        return device

    def _out_dir_for(self, out_dir: str | None) -> str | None:
        return os.path.abspath(out_dir) if out_dir is not None else self.out_dir

    def _device_of(self, device: str) -> str:
        d = str(device)
        gpus = self.cluster_resources().get("GPU", 0)
        if d == "auto":
            return "cuda" if gpus > 0 else "cpu"
        if d.startswith("cuda"):
            if gpus <= 0:
                raise AdmissionRefused(msg("msg.ray_no_gpu"))
            return "cuda"   # Ray picks the GPU and sets CUDA_VISIBLE_DEVICES; cuda:N has no meaning here
        return d

    def _gpu_memory(self, wait_s: float = 15.0) -> int | None:
        """Total memory of one cluster GPU, from a tiny task on a GPU node (asked once, when the executor starts
        on a cluster with GPUs; a submit waits at most `wait_s` for the answer, then uses admission's default)."""
        if self._gpu_mem is None and self._gpu_probe is not None:
            try:
                self._gpu_mem = int(self._gpu_probe.result(timeout=wait_s)) or 0
            except concurrent.futures.TimeoutError:
                return None      # every GPU share is taken right now: ask again at the next submit
            except Exception:  # noqa: BLE001 - no answer: admission's defaults
                self._gpu_mem = 0
        return self._gpu_mem or None

    def _start_gpu_probe(self) -> None:
        def probe():
            import torch
            return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else 0
        try:
            f = self._ray.remote(num_gpus=0.01, num_cpus=0, runtime_env=self.runtime_env)(probe)
            self._gpu_probe = f.remote().future()
        except Exception:  # noqa: BLE001
            self._gpu_probe = None

    def _slots(self, device: str) -> int:
        """How many runs of this device the cluster can train at once (Ray packs them; we queue the rest)."""
        res = self.cluster_resources()
        cpu_slots = max(1, int(res.get("CPU", 1) // max(self.cpus_per_run, 1e-9))) if self.cpus_per_run else 1 << 30
        if device == "cuda":
            gpus = res.get("GPU", 0)
            per_gpu = self.limits.gpu_slots or int(round(1 / self.gpu_fraction))
            return min(cpu_slots, max(1, int(gpus * per_gpu + 1e-9)))
        return cpu_slots

    def _options(self, rec: RunRecord) -> dict:
        opts = actor_resources(rec.device, cpus=self.cpus_per_run, gpu_fraction=self.gpu_fraction)
        opts.update(max_restarts=0, max_task_retries=0, max_concurrency=4, name=f"cnnlab-{rec.id}",
                    runtime_env=self.runtime_env)
        return opts

    def _start_run(self, rec: RunRecord) -> bool:
        opts = self._options(rec)
        try:
            handle = self._remote.options(**opts).remote(rec.id, rec.config, rec.out_dir)
        except Exception as e:  # noqa: BLE001 - e.g. the cluster is gone
            self.ledger.mark_running(rec, None)
            self.ledger.record(rec, RunFailed(reason="error", message=msg(
                "msg.ray_no_start", why=f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")))
            return True
        rec.meta["ray"] = {k: v for k, v in opts.items() if k != "runtime_env"}
        self.ledger.mark_running(rec, _Actor(handle=handle, options=opts))
        return True

    def _send_stop(self, w: _Actor) -> None:
        try:
            w.handle.stop.remote()
        except Exception:  # noqa: BLE001 - a dead actor: the next poll fails the run
            pass

    def _kill(self, w: _Actor) -> None:
        try:
            self._ray.kill(w.handle, no_restart=True)
        except Exception:  # noqa: BLE001
            pass

    def _loop(self) -> None:
        # Each running actor has one poll in flight, as a concurrent.futures.Future (works the same through
        # Ray Client, where ray.wait from a thread does not see results); the actor holds it open up to
        # POLL_WAIT_S, so an event reaches the book within a round trip and an idle run costs 2 calls/s.
        while self._running:
            try:
                with self._lock:
                    running = [r for r in self.ledger.running() if r.worker is not None]
                    for r in running:
                        if r.worker.pending is None:
                            r.worker.pending = r.worker.handle.poll.remote(r.worker.got).future()
                    futs = {r.worker.pending: r for r in running}
                if not futs:
                    time.sleep(self.poll_s)
                else:
                    done, _ = concurrent.futures.wait(list(futs), timeout=self.poll_s,
                                                      return_when=concurrent.futures.FIRST_COMPLETED)
                    for fut in done:
                        self._collect(futs[fut], fut)
                self._watch()
            except Exception:  # noqa: BLE001 - the poller must never die
                time.sleep(self.poll_s)

    def _collect(self, rec: RunRecord, fut: concurrent.futures.Future) -> None:
        ray = self._ray
        w: _Actor | None = rec.worker
        if w is None or w.pending is not fut:
            return
        w.pending = None
        try:
            evs, done, info = fut.result()
        except ray.exceptions.ActorUnavailableError:
            w.errors += 1
            if w.errors < 20:
                return       # a transient network problem: ask again
            self._died(rec, w, msg("msg.ray_silent"))
            return
        except ray.exceptions.RayActorError as e:
            self._died(rec, w, _died_message(e))
            return
        except Exception as e:  # noqa: BLE001 - a bug in the worker's poll: the run fails, the server stays
            self._died(rec, w, msg("msg.ray_failed", type=type(e).__name__), reason="error")
            return
        w.errors = 0
        if info and "worker" not in rec.meta.get("ray", {}):
            with self.ledger.lock:   # where Ray put it, as Ray says (pid, node, the resources it assigned)
                rec.meta.setdefault("ray", {})["worker"] = info
        final = False
        for ev in evs:
            w.got += 1
            w.started_training = True
            final = self.ledger.record(rec, ev, before_done=self._fix_time_limit_config) or final
        if final or done:
            if not final:   # the stream ended without a final event (should not happen): end it here
                self.ledger.record(rec, RunFailed(reason="error", message=msg("msg.no_final"),
                                                run_dir=rec.run_dir))
            try:
                w.handle.__ray_terminate__.remote()   # let the actor exit; its resources go back to Ray
            except Exception:  # noqa: BLE001
                self._kill(w)
            with self._lock:
                self._prune_disk()
                self._schedule()

    def _died(self, rec: RunRecord, w: _Actor, message: str, reason: str = "worker_died") -> None:
        with self._lock:
            if rec.state != RUNNING:
                return
            ev = self._ended(rec, RunFailed(reason=reason, message=message, run_dir=rec.run_dir))
            last = next((e for _, e in reversed(rec.events) if isinstance(e, StepEnd)), None)
            if last is not None:   # where it was when it died
                ev = dataclasses.replace(ev, epoch=last.epoch, step=last.step)
            self.ledger.record(rec, ev, before_done=self._fix_died_config)   # the folder says so before anyone
            self._kill(w)                                                   # who waits on the run is woken
            self._schedule()

    @staticmethod
    def _fix_time_limit_config(rec: RunRecord, ev) -> None:
        if isinstance(ev, RunFailed) and ev.reason == "time_limit" and rec.run_dir:
            recovery.update_config(rec.run_dir, failure={"reason": ev.reason, "message": ev.message,
                                                         "epoch": ev.epoch, "step": ev.step})

    @staticmethod
    def _fix_died_config(rec: RunRecord, ev: RunFailed) -> None:
        if rec.run_dir:
            recovery.update_config(rec.run_dir, status="stopped" if ev.reason == "stopped" else "failed",
                                   failure={"reason": ev.reason, "message": ev.message})

    def _watch(self) -> None:
        now = time.time()
        with self._lock:
            for rec in self.ledger.running():
                w = rec.worker
                if w is None:
                    continue
                if self._overdue(rec, now):
                    self._died(rec, w, "")
                elif not w.started_training and rec.started and now - rec.started > START_TIMEOUT_S:
                    self._died(rec, w, msg("msg.ray_start_timeout", mins=f"{START_TIMEOUT_S / 60:g}"), reason="error")
            if not self._closed:
                self._schedule()

    def __repr__(self) -> str:  # pragma: no cover
        return f"RayExecutor(address={self.address!r}, runs={len(self.ledger.runs)})"
