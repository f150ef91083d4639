"""The executor contract (cnnlab/runs/base.py), one set of tests for both executors: local and Ray.

The "ray" executor comes from the `ray_executor` fixture (tests/conftest.py, helper H4b's part). Runs are
real but tiny: LeNet on 512 training / 256 test images of Fashion-MNIST.
"""
import os
import secrets
import time

import pytest
from helpers import needs_fmnist

from cnnlab import engine
from cnnlab.events import RunEnd, RunFailed, RunStart, StepEnd
from cnnlab.registry import KnobError
from cnnlab.runs import (CANCELLED, DONE, FINISHED, QUEUED, STOPPED, AdmissionRefused, Executor, NotOwner,
                         OwnerLimit, RunHandle)

pytestmark = needs_fmnist


@pytest.fixture(scope="module")
def local_executor(tmp_path_factory):
    from cnnlab.runs.local import LocalExecutor

    ex = LocalExecutor(out_dir=str(tmp_path_factory.mktemp("ckpt-local")))
    assert ex.wait_ready(1, 120), "no warm worker within 120 s"
    yield ex
    ex.shutdown()


@pytest.fixture(params=["local", "ray"])
def executor(request) -> Executor:
    if request.param == "local":
        ex = request.getfixturevalue("local_executor")
    else:
        try:
            ex = request.getfixturevalue("ray_executor")
        except pytest.FixtureLookupError:
            pytest.skip("the ray_executor fixture is not defined yet (helper H4b's tests/conftest.py)")
    yield ex
    for st in ex.list():  # leave nothing training for the next test
        if st.state not in FINISHED:
            ex.stop(st.id, st.owner)
    for st in ex.list():
        ex.wait(st.id, 30)


def owner() -> str:
    return secrets.token_urlsafe(8)


def tiny(**kw) -> engine.TrainConfig:
    return engine.TrainConfig(**{"model": "lenet", "epochs": 1, "train_size": 512, "test_size": 256,
                                 "device": "cpu", "log_every": 1, **kw})


def long_run(**kw) -> engine.TrainConfig:
    return tiny(**{"epochs": 50, "train_size": 4096, "batch_size": 32, **kw})


def wait_for(pred, timeout=60, what="condition"):
    t = time.time()
    while not pred():
        assert time.time() - t < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def first_step(ex, h, timeout=90):
    wait_for(lambda: any(isinstance(e, StepEnd) for e in ex.events(h)) or ex.status(h).state in FINISHED,
             timeout, "the first StepEnd")
    assert ex.status(h).state not in FINISHED, ex.status(h).message


def test_a_run_streams_its_events_in_order_and_finishes(executor):
    me = owner()
    h = executor.submit(tiny(), me, label="tiny lenet", meta={"arch": "lenet"})
    assert isinstance(h, RunHandle) and h.owner == me and h.executor == executor.name
    assert executor.wait(h, 120), "the tiny run did not finish in 120 s"
    evs = executor.events(h)
    assert isinstance(evs[0], RunStart) and evs[0].arch == "lenet"
    assert isinstance(evs[-1], RunEnd), evs[-1]
    steps = [e for e in evs if isinstance(e, StepEnd)]
    assert [s.step for s in steps] == list(range(1, len(steps) + 1)) and len(steps) == 2  # 512 / 256
    st = executor.status(h)
    assert st.state == DONE and st.position is None and st.owner == me and st.label == "tiny lenet"
    assert st.n_events == len(evs) and st.meta.get("arch") == "lenet"
    assert st.run_dir and os.path.isfile(os.path.join(st.run_dir, "model.pt"))
    # events(since) continues where the reader left off
    assert executor.events(h, 2) == evs[2:]
    assert executor.events(h, len(evs)) == []


def test_only_the_owner_can_stop_a_run(executor):
    a, b = owner(), owner()
    h = executor.submit(long_run(), a)
    first_step(executor, h)
    with pytest.raises(NotOwner):
        executor.stop(h, b)
    assert executor.status(h).state not in FINISHED
    t = time.time()
    assert executor.stop(h, a) is True
    assert executor.wait(h, 30)
    st = executor.status(h)
    assert st.state == STOPPED, st
    end = executor.events(h)[-1]
    assert isinstance(end, RunFailed) and end.reason == "stopped"
    assert time.time() - t < 10
    assert executor.stop(h, a) is False  # already finished


def test_list_is_per_owner_and_public_hides_settings(executor):
    a, b = owner(), owner()
    ha = executor.submit(tiny(), a, label="A's secret settings", meta={"arch": "lenet", "lr": 0.9})
    hb = executor.submit(tiny(), b, label="B's run")
    mine = executor.list(a)
    assert [s.id for s in mine] == [ha.id]
    everyone = {s.id for s in executor.list()}
    assert {ha.id, hb.id} <= everyone
    newest_first = [s.id for s in executor.list() if s.id in (ha.id, hb.id)]
    assert newest_first == [hb.id, ha.id]
    pub = executor.status(ha).public()
    assert "secret" not in pub.label and pub.meta == {} and pub.run_dir is None and pub.owner == ""
    assert executor.wait(ha, 120) and executor.wait(hb, 120)


def test_a_second_run_of_the_same_owner_queues_and_can_be_cancelled(executor):
    me = owner()
    h1 = executor.submit(long_run(), me)
    h2 = executor.submit(tiny(), me)
    first_step(executor, h1)
    st2 = executor.status(h2)
    assert st2.state == QUEUED and st2.position >= 1
    with pytest.raises(OwnerLimit) as e:  # 1 training + 1 waiting per person by default
        executor.submit(tiny(), me)
    assert "stop one" in str(e.value)
    assert executor.stop(h2, me) and executor.wait(h2, 10)
    assert executor.status(h2).state == CANCELLED
    assert executor.stop(h1, me) and executor.wait(h1, 30)


def test_bad_settings_and_oversized_runs_are_refused_before_they_start(executor):
    me = owner()
    with pytest.raises(KnobError):
        executor.submit(tiny(resolution=8), me)
    with pytest.raises(AdmissionRefused) as e:
        executor.submit(engine.TrainConfig(model="vgg", epochs=10, device="cpu"), me)
    msg = str(e.value)
    assert "VGG" in msg and "224×224" in msg and "60,000" in msg and "preset" in msg, msg
    assert executor.list(me) == []
