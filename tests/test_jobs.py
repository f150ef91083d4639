"""The run registry: worker threads, event buffer, stop, queue positions — with a fake runner (no torch work)."""
import threading
import time

import pytest

from cnnlab import jobs
from cnnlab.events import EpochEnd, RunEnd, RunFailed, RunStart, StepEnd


def fake_runner(steps=20, delay=0.01, fail_at=None, raise_at=None):
    """A stand-in for engine.run: yields the contract's events and honours the stop Event."""

    def run(config, stop):
        yield RunStart(arch="lenet", knobs={}, device="cpu", epochs=2, steps_per_epoch=steps // 2, train_size=64,
                       test_size=32, lr=0.9, batch_size=8, optimizer="sgd", params=1, run_dir=f"/tmp/{config}")
        for s in range(1, steps + 1):
            if stop.is_set():
                yield RunFailed(reason="stopped", message="stopped by request", run_dir=f"/tmp/{config}", step=s)
                return
            if raise_at == s:
                raise RuntimeError("boom")
            if fail_at == s:
                yield RunFailed(reason="nan_loss", message="the loss became NaN")
                return
            time.sleep(delay)
            yield StepEnd(step=s, total_steps=steps, epoch=1 + (s - 1) // (steps // 2), loss=1.0 / s, acc=s / steps,
                          examples_per_s=100.0, eta_s=(steps - s) * delay)
            if s % (steps // 2) == 0:
                yield EpochEnd(epoch=s // (steps // 2), epochs=2, train_loss=1.0 / s, train_acc=0.5, test_acc=0.4,
                               wall_s=s * delay, examples_per_s=100.0)
        yield RunEnd(run_dir=f"/tmp/{config}", test_acc=0.4, train_acc=0.5, epochs=2, wall_s=steps * delay)

    return run


def test_run_completes_and_buffers_events():
    reg = jobs.JobRegistry(fake_runner())
    job = reg.submit("a", label="first")
    assert job.wait(5)
    v = reg.view(job.id)
    assert v.state == jobs.DONE and v.position is None and not v.active
    assert len(v.steps) == 20 and len(v.epochs) == 2 and isinstance(v.end, RunEnd)
    assert v.start.arch == "lenet" and v.run_dir == "/tmp/a" and v.progress == 1.0
    assert reg.latest().id == job.id


def test_stop_ends_a_running_job_quickly():
    reg = jobs.JobRegistry(fake_runner(steps=10_000, delay=0.01))
    job = reg.submit("b")
    while not reg.view(job.id).steps:
        time.sleep(0.01)
    t = time.time()
    assert reg.stop(job.id)
    assert job.wait(2)
    assert time.time() - t < 1.0 and job.finished - job.stop_requested < 1.0
    v = reg.view(job.id)
    assert v.state == jobs.STOPPED and v.end.reason == "stopped" and v.run_dir == "/tmp/b"
    assert not reg.stop(job.id)  # already finished


def test_queue_positions_cap_and_cancel():
    gate = threading.Event()

    def slow(config, stop):
        yield RunStart(arch="lenet", knobs={}, device="cpu", epochs=1, steps_per_epoch=1, train_size=1, test_size=1,
                       lr=0.1, batch_size=1, optimizer="sgd", params=1)
        while not (gate.is_set() or stop.is_set()):
            time.sleep(0.005)
        yield RunEnd(run_dir=None, test_acc=0.0, train_acc=0.0, epochs=1, wall_s=0.0)

    reg = jobs.JobRegistry(slow, max_running=1, max_queued=2)
    a, b, c = reg.submit(1), reg.submit(2), reg.submit(3)
    other = reg.submit(4, device="cuda")  # another device has its own slot
    assert reg.position(a.id) == 0 and reg.position(b.id) == 1 and reg.position(c.id) == 2
    assert reg.position(other.id) == 0
    with pytest.raises(jobs.QueueFull, match="waiting"):
        reg.submit(5)
    assert reg.stop(b.id)  # cancel a queued run
    assert reg.view(b.id).state == jobs.CANCELLED and reg.position(c.id) == 1
    gate.set()
    assert c.wait(5) and a.wait(5) and other.wait(5)
    assert [reg.view(i).state for i in (a.id, c.id, other.id)] == [jobs.DONE] * 3
    assert reg.running() == []


def test_failures_are_recorded_not_raised():
    reg = jobs.JobRegistry(fake_runner(raise_at=3))
    job = reg.submit("x")
    assert job.wait(5)
    v = reg.view(job.id)
    assert v.state == jobs.FAILED and "boom" in v.message and len(v.steps) == 2
    job2 = reg.submit("y", runner=fake_runner(fail_at=2))
    assert job2.wait(5)
    assert reg.view(job2.id).end.reason == "nan_loss"


def test_views_are_consistent_while_running():
    reg = jobs.JobRegistry(fake_runner(steps=200, delay=0.001))
    job = reg.submit("z")
    seen = 0
    while not job.wait(0.001):
        v = reg.view(job.id)
        assert all(s.step == i + 1 for i, s in enumerate(v.steps))
        seen = max(seen, len(v.steps))
    assert reg.view(job.id).progress == 1.0


def test_finished_jobs_are_pruned():
    reg = jobs.JobRegistry(fake_runner(steps=2, delay=0), max_finished_kept=2)
    ids = []
    for i in range(5):
        j = reg.submit(i)
        j.wait(5)
        ids.append(j.id)
    reg.submit(99).wait(5)
    kept = [v.id for v in reg.jobs()]
    assert len(kept) <= 3 and ids[0] not in kept
