"""The worker process of the local executor (started with multiprocessing's "spawn").

At start it imports torch and the engine, reads Fashion-MNIST into the process's cache and trains a few
LeNet steps on synthetic data (so kernels and the CPU allocator are warm), then says "ready". It then
trains one run at a time: ``("run", run_id, config, out_dir)`` in, ``("event", run_id, event)`` out for
every engine event, ``("idle", run_id)`` when the run's stream has ended. A stop is the shared
``multiprocessing.Event`` the engine polls at every step (the server sets it, and clears it before the
next run). If the server goes away (the pipe breaks) the worker exits at once, leaving its run folder
"running" — the next server marks it "interrupted".
"""
from __future__ import annotations

import os
import signal
import time


def _warm(preload: bool) -> dict:
    t0 = time.perf_counter()
    from .. import data, engine  # noqa: F401  (the imports are the warm-up)

    info = {"import_s": time.perf_counter() - t0}
    if preload:
        try:
            data._read(data.find_fashion_mnist(download=False))
        except Exception as e:  # noqa: BLE001 - no data here: the run itself will say so
            info["data"] = f"{type(e).__name__}: {e}"
        try:  # a few real steps: oneDNN primitives, the allocator, cnnlab's conv path choice
            syn = data.synthetic(512, 256)
            tc = engine.TrainConfig(model="lenet", epochs=1, device="cpu", log_every=1000, train_size=512,
                                    test_size=256)
            for _ in engine.run(tc, out_dir=None, data=syn):
                pass
        except Exception as e:  # noqa: BLE001
            info["warm"] = f"{type(e).__name__}: {e}"
    info["ready_s"] = time.perf_counter() - t0
    return info


def _send(conn, msg) -> None:
    try:
        conn.send(msg)
    except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
        # the server is gone: leave at once, before the engine's generator is closed (which would write
        # "stopped" into the run folder) — the folder stays "running" and the next server marks it interrupted
        os._exit(0)


def worker_nice() -> int:
    """How much lower the training workers' CPU priority is than the web server's ($CNNLAB_WORKER_NICE,
    default 10; 0 keeps it equal): on a shared machine the pages stay responsive while runs train, and a run
    still gets every cycle the server does not use."""
    v = os.environ.get("CNNLAB_WORKER_NICE", "").strip()
    return max(0, min(19, int(v))) if v.isascii() and v.isdigit() else 10


def _lower_priority() -> None:
    n = worker_nice()
    if n and hasattr(os, "nice"):
        try:
            os.nice(n)
        except OSError:  # not allowed here: train at the server's priority
            pass


def main(wid: int, conn, stop, preload: bool = True) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server: the server stops runs itself
    _lower_priority()
    try:
        info = _warm(preload)
        _send(conn, ("ready", wid, os.getpid(), info))
        from .. import engine
        from ..events import RunStart
        from .recovery import mark_alive

        while True:
            msg = conn.recv()
            if msg is None or msg[0] != "run":
                return
            _, run_id, config, out_dir = msg
            for ev in engine.run(config, stop=stop, out_dir=out_dir, name=run_id):
                if isinstance(ev, RunStart):
                    mark_alive(ev.run_dir)
                _send(conn, ("event", run_id, ev))
            _send(conn, ("idle", run_id))
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        os._exit(0)  # the server is gone: leave at once (its run folder stays "running" → "interrupted")
