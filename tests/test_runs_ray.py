"""The Ray executor against a real local Ray (tests/conftest.py `ray_cluster`: ray.init(num_cpus=2)).

What is Ray-specific: the resources each run's actor asks for (a GPU fraction only where GPUs exist),
streaming through the actor, stop, an actor killed by Ray → only its run fails, two runs training at once
while a third waits, the run folder written by the worker under the shared checkpoints path. The shared
behaviour (owners, limits, listing) is tests/test_runs_contract.py, run over this executor too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from cnnlab import engine
from cnnlab.events import EpochEnd, RunEnd, RunFailed, RunStart, StepEnd
from cnnlab.runs import (DONE, FAILED, QUEUED, RUNNING, STOPPED, AdmissionRefused, Limits, NotOwner,
                         get_executor)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**kw) -> engine.TrainConfig:
    base = dict(model="lenet", epochs=1, train_size=512, test_size=256, device="cpu", log_every=1)
    base.update(kw)
    return engine.TrainConfig(**base)


def long_run(**kw) -> engine.TrainConfig:
    """A run that trains far longer than any test waits: it is always stopped or killed."""
    return tiny(epochs=50, train_size=4096, batch_size=64, **kw)


def stream(ex, h, timeout: float = 120.0, until=None) -> list:
    """Read the run's events as the app does (since = what we have), until `until(events)` or the end."""
    got: list = []
    t = time.time() + timeout
    while time.time() < t:
        new = ex.events(h, len(got))
        got += new
        if until is not None and until(got):
            return got
        st = ex.status(h)
        if st.state not in (QUEUED, RUNNING) and len(got) >= st.n_events:
            return got
        time.sleep(0.05)
    raise AssertionError(f"run {ex.status(h)} did not get there within {timeout} s; events: {got[-3:]}")


def has_step(events) -> bool:
    return any(isinstance(e, StepEnd) for e in events)


def test_ray_is_imported_lazily():
    code = ("import sys; import cnnlab.runs, cnnlab.runs.ray_executor, cnnlab.runs.local; "
            "assert 'ray' not in sys.modules, 'ray imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_actor_resources_ask_for_a_gpu_fraction_only_for_cuda(monkeypatch):
    from cnnlab.runs.ray_executor import actor_resources, gpu_fraction_from_env

    monkeypatch.setenv("CNNLAB_GPU_FRACTION", "0.25")
    f = gpu_fraction_from_env()
    assert f == 0.25
    assert actor_resources("cuda", cpus=1, gpu_fraction=f) == {"num_cpus": 1, "num_gpus": 0.25}
    assert actor_resources("cpu", cpus=1, gpu_fraction=f) == {"num_cpus": 1, "num_gpus": 0}
    for bad in ("0", "1.5", "-0.25"):
        monkeypatch.setenv("CNNLAB_GPU_FRACTION", bad)
        with pytest.raises(ValueError, match="CNNLAB_GPU_FRACTION"):
            gpu_fraction_from_env()


def test_get_executor_picks_ray_from_the_env(ray_cluster, tmp_path, monkeypatch):
    from cnnlab.runs.ray_executor import RayExecutor

    monkeypatch.setenv("CNNLAB_RAY_ADDRESS", "auto")   # ray is initialised already: that connection is used
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "shared"))
    with get_executor() as ex:
        assert isinstance(ex, RayExecutor) and ex.name == "ray"
        assert ex.out_dir == str(tmp_path / "shared")
    with get_executor("ray", out_dir=str(tmp_path)) as ex:
        assert isinstance(ex, RayExecutor)
    assert ray_cluster.is_initialized()   # an executor never shuts down a Ray it did not start


def test_stream_and_run_folder_written_by_the_worker_on_the_shared_path(ray_executor, tmp_path):
    ex = ray_executor
    shared = tmp_path / "shared-checkpoints"
    h = ex.submit(tiny(), "alice", out_dir=str(shared))
    assert h.executor == "ray"
    evs = stream(ex, h)
    st = ex.status(h)
    assert st.state == DONE, st
    assert isinstance(evs[0], RunStart) and isinstance(evs[-1], RunEnd)
    assert [type(e) for e in evs].count(EpochEnd) == 1
    steps = [e.step for e in evs if isinstance(e, StepEnd)]
    assert steps == list(range(1, evs[0].steps_per_epoch + 1))     # log_every=1: every step, in order
    assert st.n_events == len(evs) and ex.events(h, st.n_events) == []
    assert ex.events(h, 2) == evs[2:]
    # the worker (another process, on the Ray node) wrote the run folder under the shared path
    run_dir = evs[-1].run_dir
    assert run_dir and os.path.dirname(run_dir) == str(shared) and st.run_dir == run_dir
    cfg = json.loads((shared / os.path.basename(run_dir) / "config.json").read_text())
    assert cfg["status"] == "finished" and cfg["final"]["epochs"] == 1
    alive = json.loads((shared / os.path.basename(run_dir) / ".alive").read_text())
    assert alive["pid"] != os.getpid()
    assert {"model.pt", "metrics.jsonl"} <= set(os.listdir(run_dir))
    assert st.meta["ray"]["num_cpus"] == 1 and st.meta["ray"]["max_restarts"] == 0


def test_cpu_only_cluster_never_asks_for_a_gpu(ray_cluster, tmp_path, monkeypatch):
    from cnnlab.runs.ray_executor import RayExecutor

    if ray_cluster.cluster_resources().get("GPU", 0) > 0:
        pytest.skip("this Ray cluster has a GPU: test_gpu_fraction_shares_one_gpu covers it")
    monkeypatch.setenv("CNNLAB_GPU_FRACTION", "0.25")
    with RayExecutor(limits=Limits(), out_dir=str(tmp_path)) as ex:
        assert ex.gpu_fraction == 0.25
        with pytest.raises(AdmissionRefused, match="no GPU"):
            ex.submit(tiny(device="cuda"), "alice")
        h = ex.submit(long_run(device="auto"), "alice")
        stream(ex, h, until=has_step)
        st = ex.status(h)
        assert st.device == "cpu" and st.state == RUNNING
        assert ex.actor_options(h)["num_gpus"] == 0
        info = ex.worker_info(h)
        assert info["assigned"] == {"CPU": 1.0}, info        # what Ray itself assigned the actor
        assert info["gpu_ids"] == [] and info["cnnlab"].startswith(ROOT)
        assert info["pid"] != os.getpid()
        # it trains below the server's CPU priority, as local workers do (Ray itself starts its workers niced)
        assert info["train_nice"] > os.getpriority(os.PRIO_PROCESS, 0), info
        assert ex.stop(h, "alice")
        assert ex.wait(h, 30)


def test_gpu_fraction_shares_one_gpu(ray_cluster, tmp_path):
    from cnnlab.runs.ray_executor import RayExecutor

    if ray_cluster.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("no GPU in this Ray cluster")
    with RayExecutor(limits=Limits(), out_dir=str(tmp_path), gpu_fraction=0.25) as ex:
        hs = [ex.submit(long_run(device="cuda"), owner) for owner in ("alice", "bob")]
        for h in hs:
            stream(ex, h, until=has_step)
        infos = [ex.worker_info(h) for h in hs]
        for h, info in zip(hs, infos):
            assert ex.actor_options(h)["num_gpus"] == 0.25
            assert info["assigned"].get("GPU") == 0.25, info
            assert ex.status(h).state == RUNNING and ex.status(h).device == "cuda"
        assert infos[0]["gpu_ids"] == infos[1]["gpu_ids"]       # both on the same GPU at once
        for h in hs:
            ex.stop(h, ex.status(h).owner)
        assert all(ex.wait(h, 60) for h in hs)


def test_stop_lands_within_a_few_steps_and_only_for_the_owner(ray_executor):
    ex = ray_executor
    h = ex.submit(long_run(), "alice")
    evs = stream(ex, h, until=lambda got: sum(isinstance(e, StepEnd) for e in got) >= 3)
    with pytest.raises(NotOwner):
        ex.stop(h, "mallory")
    assert ex.status(h).state == RUNNING
    seen = max(e.step for e in evs if isinstance(e, StepEnd))
    t0 = time.time()
    assert ex.stop(h, "alice") is True
    evs = stream(ex, h, timeout=30)
    took = time.time() - t0
    end = evs[-1]
    assert isinstance(end, RunFailed) and end.reason == "stopped", end
    st = ex.status(h)
    assert st.state == STOPPED and st.message == end.message
    last = max(e.step for e in evs if isinstance(e, StepEnd))
    assert end.step == last
    # the stop lands at the next step the worker starts after it arrives: a couple of seconds at most
    assert took < 10, took
    steps_after = end.step - seen
    assert steps_after < 400, steps_after   # the run has 3,200 steps: it ended long before its end
    assert ex.stop(h, "alice") is False     # already finished
    cfg = json.loads(open(os.path.join(st.run_dir, "config.json")).read())
    assert cfg["status"] == "stopped"


def test_killed_actor_fails_its_run_only(ray_executor, ray_cluster, monkeypatch):
    ex = ray_executor
    from cnnlab.runs import recovery
    real_update = recovery.update_config

    def slow_update(*a, **kw):   # a slow disk: config.json must still say "failed" before the end is seen
        time.sleep(1.0)
        return real_update(*a, **kw)
    monkeypatch.setattr(recovery, "update_config", slow_update)
    a = ex.submit(long_run(), "alice")
    b = ex.submit(tiny(epochs=2), "bob")
    stream(ex, a, until=has_step)
    info = ex.worker_info(a)
    actor = ray_cluster.get_actor(f"cnnlab-{a.id}")     # the actor by name, as an operator would find it
    ray_cluster.kill(actor, no_restart=True)
    evs = stream(ex, a, timeout=60)
    end = evs[-1]
    assert isinstance(end, RunFailed) and end.reason == "worker_died", end
    assert end.step >= 1 and end.epoch == 1     # where it was when it died
    assert "Ray worker" in end.message and end.message.count(". ") == 0 and "\n" not in end.message
    st = ex.status(a)
    assert st.state == FAILED and st.message == end.message
    cfg = json.loads(open(os.path.join(st.run_dir, "config.json")).read())
    assert cfg["status"] == "failed" and cfg["failure"]["reason"] == "worker_died"
    with pytest.raises(ProcessLookupError):   # the worker process is really gone
        deadline = time.time() + 20
        while time.time() < deadline:
            os.kill(info["pid"], 0)
            time.sleep(0.2)
    # bob's run was not touched, and the executor keeps serving
    evs_b = stream(ex, b, timeout=120)
    assert isinstance(evs_b[-1], RunEnd) and ex.status(b).state == DONE
    c = ex.submit(tiny(), "alice")
    assert isinstance(stream(ex, c, timeout=120)[-1], RunEnd)


def test_two_runs_at_once_and_a_third_waits(ray_executor):
    ex = ray_executor
    hs = [ex.submit(long_run(), o) for o in ("alice", "bob")]
    c = ex.submit(tiny(), "carol")       # 2 CPUs, 1 CPU per run: carol waits in the executor's queue
    st_c = ex.status(c)
    assert st_c.state == QUEUED and st_c.position == 1
    for h in hs:
        stream(ex, h, until=has_step)
    # both train at the same time, in two Ray worker processes
    sts = [ex.status(h) for h in hs]
    assert [s.state for s in sts] == [RUNNING, RUNNING] and [s.position for s in sts] == [0, 0]
    pids = {ex.worker_info(h)["pid"] for h in hs}
    assert len(pids) == 2 and os.getpid() not in pids
    n0 = [ex.status(h).n_events for h in hs]
    time.sleep(1.0)
    assert all(ex.status(h).n_events > n for h, n in zip(hs, n0))  # both still streaming
    assert ex.status(c).state == QUEUED
    mine = ex.list(owner="alice")
    assert [s.id for s in mine] == [hs[0].id]
    assert {s.id for s in ex.list()} == {hs[0].id, hs[1].id, c.id}
    assert ex.list()[0].id == c.id       # newest first
    # a slot frees up: carol starts
    ex.stop(hs[0], "alice")
    evs_c = stream(ex, c, timeout=120)
    assert isinstance(evs_c[-1], RunEnd)
    assert ex.status(hs[1]).state == RUNNING
    ex.stop(hs[1], "bob")
    assert ex.wait(hs[1], 30) and ex.status(hs[1]).state == STOPPED


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_executor_connects_to_a_cluster_started_with_ray_start(ray_cluster, tmp_path):
    """CNNLAB_RAY_ADDRESS=host:port: a separate server process connects to a `ray start --head` cluster (token
    authentication on) that declares one GPU. A CPU run trains there and its worker writes the run folder under
    CNNLAB_CHECKPOINTS; two device="auto" runs go to the GPU and each asks Ray for CNNLAB_GPU_FRACTION=0.25 of
    it — Ray assigns both 0.25 of the same GPU. (On a machine without a real GPU they then fail with one
    sentence from torch; with one they train.)"""
    import secrets
    import shutil
    import signal
    import socket
    import tempfile

    ports = {k: _free_port() for k in ("port", "ray-client-server-port", "dashboard-agent-listen-port",
                                       "runtime-env-agent-port")}
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")   # short: Ray's unix sockets live under it
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--num-cpus=2", "--num-gpus=1",
                             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
                             "--object-store-memory=100000000", *[f"--{k}={v}" for k, v in ports.items()]],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 90
        while True:
            assert head.poll() is None, "ray start --head exited"
            try:
                socket.create_connection(("127.0.0.1", ports["port"]), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "ray start --head did not come up in 90 s"
                time.sleep(0.5)
        shared = tmp_path / "shared"
        code = (
            "import json, os\n"
            "from cnnlab import engine\n"
            "from cnnlab.runs import Limits, get_executor\n"
            "ex = get_executor(limits=Limits(max_active_per_owner=2, max_queued_per_owner=2))\n"
            "tc = lambda dev: engine.TrainConfig(model='lenet', epochs=1, train_size=512, test_size=256, device=dev,"
            " log_every=1)\n"
            "hs = [ex.submit(tc('cpu'), 'alice'), ex.submit(tc('auto'), 'bob'), ex.submit(tc('auto'), 'carol')]\n"
            "ok = all(ex.wait(h, 180) for h in hs)\n"
            "out = []\n"
            "for h in hs:\n"
            "    st = ex.status(h)\n"
            "    out.append({'state': st.state, 'device': st.device, 'run_dir': st.run_dir, 'message': st.message,"
            " 'ray': st.meta.get('ray'), 'events': [e.kind for e in ex.events(h)]})\n"
            "print('RESULT ' + json.dumps({'kind': type(ex).__name__, 'ok': ok, 'res': ex.cluster_resources(),"
            " 'runs': out}))\n"
            "ex.shutdown()\n")
        denv = dict(env, CNNLAB_RAY_ADDRESS=f"127.0.0.1:{ports['port']}", CNNLAB_CHECKPOINTS=str(shared),
                    CNNLAB_GPU_FRACTION="0.25", PYTHONPATH=ROOT)
        r = subprocess.run([sys.executable, "-c", code], env=denv, cwd=str(tmp_path), capture_output=True,
                           text=True, timeout=400)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
        assert r.returncode == 0 and line, r.stderr[-3000:]
        res = json.loads(line[len("RESULT "):])
        assert res["kind"] == "RayExecutor" and res["ok"], res
        assert res["res"].get("CPU") == 2.0 and res["res"].get("GPU") == 1.0   # ray start's cluster, not a new one
        cpu, *gpu = res["runs"]
        assert cpu["state"] == DONE and cpu["device"] == "cpu", cpu
        assert cpu["events"][0] == "run_start" and cpu["events"][-1] == "run_end"
        assert os.path.dirname(cpu["run_dir"]) == str(shared)
        assert os.path.isfile(os.path.join(cpu["run_dir"], "model.pt"))
        assert cpu["ray"]["num_gpus"] == 0 and cpu["ray"]["worker"]["assigned"] == {"CPU": 1.0}
        for g in gpu:
            assert g["device"] == "cuda" and g["ray"]["num_gpus"] == 0.25, g
            assert g["ray"]["worker"]["assigned"] == {"CPU": 1.0, "GPU": 0.25}, g
            assert g["ray"]["worker"]["gpu_ids"] == ["0"] and g["ray"]["worker"]["cuda_visible_devices"] == "0"
            if g["state"] != DONE:   # no real GPU here: torch says so, in one sentence
                assert g["events"][-1] == "run_failed" and g["message"] and "\n" not in g["message"], g
    finally:
        head.send_signal(signal.SIGTERM)      # --block: ray start stops the processes it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        shutil.rmtree(temp, ignore_errors=True)
