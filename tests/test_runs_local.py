"""The local executor beyond the contract: a killed worker, the wall-time limit, limits and admission
sentences, fairness, runs a killed server left "running", pins and the disk cap."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from helpers import needs_fmnist, save_tiny_run

from cnnlab import checkpoint as ckpt
from cnnlab import engine
from cnnlab.events import RunFailed, StepEnd
from cnnlab.runs import (DONE, FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED, AdmissionRefused, Limits, OwnerLimit,
                         QueueFull, admission, disk, recovery)
from cnnlab.runs.ledger import RunLedger, RunRecord

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**kw):
    return engine.TrainConfig(**{"model": "lenet", "epochs": 1, "train_size": 512, "test_size": 256,
                                 "device": "cpu", "log_every": 1, **kw})


def long_run(**kw):
    return tiny(**{"epochs": 50, "train_size": 4096, "batch_size": 32, **kw})


def wait_for(pred, timeout=60, what="condition"):
    t = time.time()
    while not pred():
        assert time.time() - t < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- workers ---------------------------------------------------------------------------

@needs_fmnist
def test_a_killed_worker_fails_its_run_only_and_is_replaced(tmp_path):
    from cnnlab.runs.local import LocalExecutor

    with LocalExecutor(out_dir=str(tmp_path)) as ex:
        assert ex.wait_ready(1, 120)
        h = ex.submit(long_run(), "alice")
        wait_for(lambda: any(isinstance(e, StepEnd) for e in ex.events(h)), 90, "the first step")
        pid = ex.worker_pid(h)
        assert pid and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        assert ex.wait(h, 15), "the run did not end after its worker was killed"
        st = ex.status(h)
        assert st.state == FAILED
        end = ex.events(h)[-1]
        assert isinstance(end, RunFailed) and end.reason == "worker_died"
        assert "SIGKILL" in end.message and "out-of-memory" in end.message
        assert ckpt.read_config(st.run_dir)["status"] == "failed"
        assert recovery.run_owner(st.run_dir) == recovery.owner_digest("alice")
        # the executor keeps serving: a fresh worker trains the next run
        h2 = ex.submit(tiny(), "bob")
        assert ex.wait(h2, 120) and ex.status(h2).state == DONE
        assert pid not in [w["pid"] for w in ex.workers()]


@needs_fmnist
@pytest.mark.parametrize("why", ("time_limit", "stop_unheeded"))
def test_a_worker_that_does_not_stop_is_killed_and_its_run_says_why(tmp_path, monkeypatch, why):
    """The two kill paths (LedgerExecutor._overdue / _ended): a run asked to stop, at the wall-time limit or by its
    owner, whose worker does not heed it within STOP_GRACE_S. The worker is frozen (SIGSTOP) after its first step,
    so it cannot heed anything; the executor kills it and the run's last event and config.json say which path."""
    from cnnlab.runs import executor
    from cnnlab.runs.local import LocalExecutor

    monkeypatch.setattr(executor, "STOP_GRACE_S", 1.0)
    limits = Limits.from_env(max_wall_s=2.0 if why == "time_limit" else 900.0, workers=0)
    with LocalExecutor(out_dir=str(tmp_path), limits=limits) as ex:
        h = ex.submit(long_run(), "alice")
        wait_for(lambda: any(isinstance(e, StepEnd) for e in ex.events(h)), 90, "the first step")
        pid = ex.worker_pid(h)
        os.kill(pid, signal.SIGSTOP)
        try:
            if why == "stop_unheeded":
                assert ex.stop(h, "alice")
            assert ex.wait(h, 30), "the frozen worker's run did not end"
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        st = ex.status(h)
        end = ex.events(h)[-1]
        assert isinstance(end, RunFailed) and st.state == STOPPED, (st.state, end)
        cfg = ckpt.read_config(st.run_dir)
        if why == "time_limit":
            assert end.reason == "time_limit" and "wall-time limit" in end.message, end
            assert "had to be ended" in end.message, end
            assert cfg["status"] == "stopped" and cfg["failure"]["reason"] == "time_limit", cfg
        else:
            assert end.reason == "stopped" and "did not stop within 1 s" in end.message, end
            assert cfg["status"] == "stopped" and "did not stop within 1 s" in cfg["failure"]["message"], cfg
        wait_for(lambda: pid not in [w["pid"] for w in ex.workers()], 15, "the killed worker to go")
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


@needs_fmnist
def test_the_wall_time_limit_stops_a_run_and_keeps_its_checkpoint(tmp_path):
    from cnnlab.runs.local import LocalExecutor

    with LocalExecutor(out_dir=str(tmp_path), limits=Limits.from_env(max_wall_s=2.0, workers=0)) as ex:
        h = ex.submit(long_run(), "alice")
        assert ex.wait(h, 120)
        st = ex.status(h)
        end = ex.events(h)[-1]
        assert st.state == STOPPED and isinstance(end, RunFailed) and end.reason == "time_limit", end
        assert "wall-time limit" in end.message
        assert 2.0 <= st.finished - st.started < 30
        cfg = ckpt.read_config(st.run_dir)
        assert cfg["status"] == "stopped" and cfg["failure"]["reason"] == "time_limit"
        assert os.path.isfile(os.path.join(st.run_dir, "model.pt"))


# -- a server killed mid-run ----------------------------------------------------------------

SERVER = textwrap.dedent("""
    import sys, time
    from cnnlab import engine
    from cnnlab.events import EpochEnd
    from cnnlab.runs.local import LocalExecutor
    if __name__ == "__main__":
        ex = LocalExecutor(out_dir=sys.argv[1])
        tc = engine.TrainConfig(model="lenet", epochs=50, train_size=1024, test_size=256, device="cpu",
                                batch_size=64)
        h = ex.submit(tc, "alice")
        while not any(isinstance(e, EpochEnd) for e in ex.events(h)):
            time.sleep(0.05)
        print(ex.status(h).run_dir, flush=True)
        time.sleep(600)
""")


@needs_fmnist
def test_a_run_left_running_by_a_killed_server_is_interrupted_and_loadable(tmp_path):
    root = tmp_path / "ckpt"
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT_DIR, env={**os.environ, "PYTHONPATH": ROOT_DIR})
    try:
        run_dir = proc.stdout.readline().strip()
        assert run_dir and os.path.isdir(run_dir), "the server did not report its run"
        wait_for(lambda: os.path.isfile(os.path.join(run_dir, "model.pt")), 30, "the first epoch's weights")
        worker_pid = json.load(open(os.path.join(run_dir, recovery.ALIVE)))["pid"]
    finally:
        proc.kill()  # SIGKILL: no atexit, no cleanup
        proc.wait(10)
    wait_for(lambda: not recovery._pid_alive(worker_pid), 30, "the orphaned worker to leave")
    assert ckpt.read_config(run_dir)["status"] == "running"
    # a run that a live process trains is left alone
    alive_dir = os.path.join(root, "alive-run")
    shutil.copytree(run_dir, alive_dir, ignore=shutil.ignore_patterns(recovery.ALIVE))
    recovery.mark_alive(alive_dir)

    from cnnlab.runs.local import LocalExecutor
    ex = LocalExecutor(out_dir=str(root), limits=Limits.from_env(workers=0), preload=False)
    try:
        assert ex.recovered == [run_dir]
    finally:
        ex.shutdown()
    cfg = ckpt.read_config(run_dir)
    assert cfg["status"] == INTERRUPTED and cfg["failure"]["reason"] == "interrupted"
    assert cfg["model"]["arch"] == "lenet" and cfg["final"]["epochs"] >= 1
    loaded = ckpt.load_run(run_dir)
    assert loaded.epoch >= 1 and loaded.model_config.arch == "lenet"
    assert ckpt.read_config(alive_dir)["status"] == "running"
    rows = {r.run_dir: r.status for r in ckpt.list_runs(str(root))}
    assert rows[run_dir] == "interrupted"


# -- limits, fairness and their sentences (no processes) --------------------------------------

def _rec(i, owner, state="queued"):
    return RunRecord(id=f"r{i}", owner=owner, executor="t", device="cpu", config=None, label="", meta={},
                     out_dir=None, state=state)


def test_owner_limit_and_queue_length_refuse_with_one_sentence():
    ledger = RunLedger("t", Limits(max_active_per_owner=1, max_queued_per_owner=1, queue_len=3))
    ledger.add(_rec(1, "a", RUNNING))
    ledger.add(_rec(2, "a"))
    with pytest.raises(OwnerLimit) as e:
        ledger.add(_rec(3, "a"))
    assert str(e.value) == ("you already have 2 runs training or waiting (at most 1 training and 1 waiting per "
                            "person): stop one or wait for it to finish")
    ledger.add(_rec(4, "b"))
    ledger.add(_rec(5, "c"))
    with pytest.raises(QueueFull) as e:
        ledger.add(_rec(6, "d"))
    assert str(e.value) == "3 runs are already waiting (the queue holds 3): try again in a few minutes"


def test_the_queue_skips_an_owner_who_already_trains():
    ledger = RunLedger("t", Limits(max_active_per_owner=1, max_queued_per_owner=2, cpu_slots=2))
    ledger.add(_rec(1, "a", RUNNING))
    ledger.add(_rec(2, "a"))
    ledger.add(_rec(3, "b"))
    assert ledger.next_runnable("cpu", 2).id == "r3"          # b goes first: a already has a run training
    assert ledger.position(ledger.get("r3")) == 1 and ledger.position(ledger.get("r2")) == 2  # the order it will start in
    assert ledger.next_runnable("cpu", 1) is None             # no free slot


def test_events_keep_their_indices_when_old_steps_are_thinned():
    ledger = RunLedger("t", Limits(), max_steps=10)
    rec = _rec(1, "a", RUNNING)
    ledger.add(rec)
    for i in range(1, 31):
        ledger.record(rec, StepEnd(step=i, total_steps=30, epoch=1, loss=1.0, acc=0.1, examples_per_s=1, eta_s=0))
    kept = ledger.events("r1")
    assert len(kept) < 30 and kept[-1].step == 30 and [e.step for e in kept] == sorted(e.step for e in kept)
    assert [e.step for e in ledger.events("r1", 25)] == [26, 27, 28, 29, 30]  # index 25 is step 26
    assert ledger.status(rec).n_events == 30


def test_admission_sentences_name_the_figure_and_a_preset_that_fits(monkeypatch):
    monkeypatch.setattr(admission, "cpu_rate", lambda: 10e9)
    lim = Limits(run_mem_mb=2048, max_run_hours=1.0)
    # memory and time: the book's VGG on the CPU
    with pytest.raises(AdmissionRefused) as e:
        admission.check(engine.TrainConfig(model="vgg", epochs=10, device="cpu").resolved(), "cpu", lim)
    msg = str(e.value)
    assert msg.startswith("VGG at 224×224 on all 60,000 images needs about ") and " GB and " in msg, msg
    assert "2.0 GB of memory per run and 1 h per run" in msg and "pick a CPU preset such as “VGG-11" in msg, msg
    # time only: LeNet for 200 epochs on a slow CPU fits in memory but takes hours
    monkeypatch.setattr(admission, "cpu_rate", lambda: 1e9)
    with pytest.raises(AdmissionRefused) as e:
        admission.check(engine.TrainConfig(model="lenet", epochs=200, device="cpu").resolved(), "cpu", lim)
    msg = str(e.value)
    assert "LeNet at 28×28 on all 60,000 images needs about" in msg and "(this server allows 1 h per run)" in msg
    assert "“LeNet" in msg, msg
    monkeypatch.setattr(admission, "cpu_rate", lambda: 10e9)
    # what fits passes, with an estimate to show before Start
    est = admission.check(engine.TrainConfig(model="lenet", epochs=10, device="cpu").resolved(), "cpu", lim)
    assert est.fits and est.text().startswith("≈ ") and est.text().endswith("on this CPU")
    # a warm worker (~750 MB) + all 70,000 images as float (209 MB) + the rest: a real one peaked at ~1.1 GB
    # (tests/test_admission_rss.py checks the estimate against real workers)
    assert 900 * 2**20 < est.mem_bytes < 1.5 * 2**30
    # a faster device lowers the time
    monkeypatch.setattr(admission, "cpu_rate", lambda: 20e9)
    est2 = admission.estimate(engine.TrainConfig(model="lenet", epochs=10, device="cpu").resolved(), "cpu", lim)
    assert est2.seconds == pytest.approx(est.seconds / 2)


def test_the_cpu_rate_is_measured_once_when_a_class_asks_together(monkeypatch):
    """Ten sessions open the Train page together with the figure stale: one measures, the others wait for it
    (they used to measure all at once, each slowed by the others, in the server's script threads)."""
    calls = []

    def measure():
        calls.append(1)
        time.sleep(0.3)
        return 12e9
    monkeypatch.delenv("CNNLAB_CPU_GMACS", raising=False)
    monkeypatch.setattr(admission, "_measure_cpu_rate", measure)
    monkeypatch.setattr(admission, "_rate", {"value": 0.0, "at": -1e9})
    start, got = threading.Barrier(10), []

    def ask():
        start.wait()
        got.append(admission.cpu_rate())
    threads = [threading.Thread(target=ask) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and got == [12e9] * 10


def test_memory_estimate_grows_with_batch_resolution_and_adam():
    base = engine.TrainConfig(model="resnet", resolution=32, epochs=1, device="cpu", train_size=1000,
                              test_size=500)
    e0 = admission.estimate(base.resolved())
    assert admission.estimate(engine.TrainConfig(**{**base.__dict__, "batch_size": 512}).resolved()).mem_bytes > \
        e0.mem_bytes
    assert admission.estimate(engine.TrainConfig(**{**base.__dict__, "resolution": 64}).resolved()).mem_bytes > \
        e0.mem_bytes
    adam = admission.estimate(engine.TrainConfig(**{**base.__dict__, "optimizer": "adam"}).resolved())
    assert adam.parts["optimizer"] == 2 * adam.parts["weights"] and e0.parts["optimizer"] == 0


# -- pins and the disk cap -------------------------------------------------------------------

@needs_fmnist
def test_prune_deletes_the_oldest_unpinned_runs_beyond_the_cap(tmp_path):
    save_tiny_run(tmp_path / "src", epochs=1, train_size=256, test_size=128)
    src = os.path.join(tmp_path / "src", os.listdir(tmp_path / "src")[0])
    root = tmp_path / "ckpt"
    dirs = []
    for i in range(4):
        d = str(root / f"run{i}")
        shutil.copytree(src, d)
        os.utime(os.path.join(d, "config.json"), (1000 + i, 1000 + i))
        dirs.append(d)
    recovery.pin(dirs[0])
    assert disk.prune(str(root), cap_mb=1000) == []      # under the cap: nothing goes
    removed = disk.prune(str(root), cap_mb=0, keep=[dirs[2]])
    assert removed == [dirs[1], dirs[3]]                      # oldest first; never the pinned or active one
    assert os.path.exists(dirs[0]) and os.path.exists(dirs[2]) and not os.path.exists(dirs[1])


# -- the CLI -----------------------------------------------------------------------------

@needs_fmnist
def test_cli_train_through_the_local_executor(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "lenet", "--epochs", "1", "--train-size", "512",
                          "--test-size", "256", "--executor", "local", "--out", str(tmp_path), "--json"],
                         cwd=ROOT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT_DIR})
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["event"] == "run_start" and rows[-1]["event"] == "run_end"
    run_dir = rows[-1]["run_dir"]
    assert os.path.dirname(run_dir) == str(tmp_path) and ckpt.read_config(run_dir)["status"] == "finished"
    worker = json.load(open(os.path.join(run_dir, recovery.ALIVE)))["pid"]
    assert worker != p.pid  # trained in a worker process, not the CLI's


def test_training_workers_run_at_a_lower_cpu_priority_than_the_server(monkeypatch, tmp_path):
    from cnnlab.runs import worker
    from cnnlab.runs.local import LocalExecutor

    monkeypatch.delenv("CNNLAB_WORKER_NICE", raising=False)
    assert worker.worker_nice() == 10
    for raw, want in (("0", 0), ("5", 5), ("99", 19), ("-3", 10), ("x", 10)):
        monkeypatch.setenv("CNNLAB_WORKER_NICE", raw)
        assert worker.worker_nice() == want
    monkeypatch.delenv("CNNLAB_WORKER_NICE")
    with LocalExecutor(out_dir=str(tmp_path), preload=False) as ex:
        assert ex.wait_ready(1, 120), ex.workers()
        pids = [w["pid"] for w in ex.workers() if w["ready"]]
        assert pids, ex.workers()
        want = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        assert os.getpriority(os.PRIO_PROCESS, pids[0]) == want


def test_workers_do_not_run_the_page_script_streamlit_made_main(monkeypatch, tmp_path):
    """Under `streamlit run`, sys.modules["__main__"] is the running page script; a "spawn" child re-runs its
    parent's __main__ first, so every worker used to run the whole app in bare mode as it started."""
    import types

    from cnnlab.runs.local import LocalExecutor

    marker = tmp_path / "the page script ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    with LocalExecutor(out_dir=str(tmp_path / "runs"), preload=False) as ex:
        assert ex.wait_ready(1, 120), ex.workers()
    assert sys.modules["__main__"] is page     # put back after each start
    assert not marker.exists(), "a worker ran the parent's __main__ script"


def test_the_queue_takes_turns_between_addresses():
    """#23 §2: one address's many runs (one person's made-up owners) wait behind another address's next run."""
    from cnnlab.runs.base import QUEUED, RUNNING, Limits
    from cnnlab.runs.ledger import RunLedger, RunRecord

    ledger = RunLedger("t", Limits(queue_len=64, max_runs_per_client=64))

    def rec(i, client, state=QUEUED):
        r = RunRecord(id=f"r{i}", owner=f"o{i}", executor="t", device="cpu", config=None, label="", meta={"client": client},
                      out_dir=None)
        ledger.add(r)
        r.state = state
        return r

    rec(0, "10.0.0.66", RUNNING)
    flood = [rec(i, "10.0.0.66") for i in range(1, 18)]
    student = rec(99, "10.0.0.7")
    other = rec(100, "10.0.0.8")
    assert ledger.position(student) == 1 and ledger.position(other) == 2 and ledger.position(flood[0]) == 3
    assert ledger.next_runnable("cpu", 2) is student
    same_address = [rec(200 + i, "10.0.0.9") for i in range(3)]  # a class behind one address: first come first
    assert [ledger.position(r) for r in same_address] == sorted(ledger.position(r) for r in same_address)


def test_owners_made_beyond_an_address_rate_may_look_but_not_start():
    """#23 §2: the server mints owners; many from one address within a minute may not start runs."""
    from cnnlab import owners

    m = owners.Minter(per_min=3)
    toks = [f"tok{i}" for i in range(5)]
    for i, t in enumerate(toks):
        m.note("10.0.0.66", t, now=float(i))
    m.note("10.0.0.7", "other", now=4.0)
    assert [m.may_start(t) for t in toks] == [True, True, True, False, False] and m.may_start("other")
    m.note("10.0.0.66", "later", now=100.0)  # a minute on: the address may mint again
    assert m.may_start("later")


def test_a_made_up_owner_token_is_not_valid(tmp_path):
    from cnnlab import owners

    tok = owners.mint(str(tmp_path))
    assert owners.valid(str(tmp_path), tok) and len(tok) == 46
    assert not owners.valid(str(tmp_path), tok[:-1] + ("A" if tok[-1] != "A" else "B"))
    assert not owners.valid(str(tmp_path), "x" * 46) and not owners.valid(str(tmp_path), None)


def test_a_run_store_that_cannot_be_written_still_mints_owners(tmp_path):
    from cnnlab import owners

    blocker = tmp_path / "file"
    blocker.write_text("x")  # a root under a file: nothing can be created there
    tok = owners.mint(str(blocker / "runs"))
    assert owners.valid(str(blocker / "runs"), tok)
