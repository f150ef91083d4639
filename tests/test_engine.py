"""cnnlab.engine: the event stream on a tiny synthetic set, failures as events, one real run."""
import json
import logging
import os
import sys
import threading

import pytest
import torch
from torch import nn

from cnnlab import checkpoint, data, engine
from cnnlab.events import BNSnapshot, EpochEnd, RunEnd, RunFailed, RunStart, StepEnd
from cnnlab.layers import bn_layers
from cnnlab.registry import KnobError, resolve
from helpers import needs_fmnist  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    return data.synthetic(256, 128, seed=0)


def _tc(**kw):
    base = dict(model="lenet", knobs={"batchnorm": "nn"}, epochs=2, batch_size=32, log_every=2, bn_every=3,
                threads=1)
    base.update(kw)
    return engine.TrainConfig(**base)


def _fit(tc, d, stop=None, model=None):
    model = model or tc.model_config().build()
    return model, list(engine.fit(model, d, tc, stop))


def test_stream_shape_and_json(tiny):
    _, evs = _fit(_tc(), tiny)
    assert isinstance(evs[0], RunStart) and isinstance(evs[-1], RunEnd)
    start = evs[0]
    assert start.steps_per_epoch == 8 and start.train_size == 256 and start.lr == 1.0  # BN-LeNet's book lr
    steps = [e for e in evs if isinstance(e, StepEnd)]
    assert [e.step for e in steps] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert all(e.total_steps == 16 and 0 <= e.acc <= 1 and e.loss > 0 and e.examples_per_s > 0 for e in steps)
    assert [e.examples for e in steps] == [64] * 8  # two batches of 32 in each window
    epochs = [e for e in evs if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2] and epochs[-1].test_acc == evs[-1].test_acc
    assert epochs[0].wall_s <= epochs[1].wall_s == pytest.approx(evs[-1].wall_s, abs=0.5)
    for e in evs:
        d = json.loads(json.dumps(e.to_dict()))
        assert d["event"] == e.kind


def test_same_seed_same_losses_other_seed_differs(tiny):
    def losses(seed, pre_rng):
        torch.manual_seed(pre_rng)  # whatever ran before must not matter
        _, evs = _fit(_tc(seed=seed, epochs=1), tiny)
        return [e.loss for e in evs if isinstance(e, StepEnd)]

    a, b, c = losses(0, 1), losses(0, 2), losses(1, 1)
    assert a == b
    assert a != c


def test_learns_the_synthetic_set(tiny):
    _, evs = _fit(_tc(epochs=4), tiny)
    assert evs[-1].test_acc > 0.6 and evs[-1].train_acc > 0.6


def test_stop_event_ends_within_one_step(tiny):
    stop = threading.Event()
    model = _tc().model_config().build()
    seen = []
    for ev in engine.fit(model, tiny, _tc(log_every=1, epochs=5), stop):
        seen.append(ev)
        if isinstance(ev, StepEnd) and ev.step == 3:
            stop.set()
    last = seen[-1]
    assert isinstance(last, RunFailed) and last.reason == "stopped" and last.step == 3
    assert max(e.step for e in seen if isinstance(e, StepEnd)) == 3


def test_stop_before_start_trains_nothing(tiny):
    stop = threading.Event()
    stop.set()
    _, evs = _fit(_tc(), tiny, stop)
    assert [type(e) for e in evs] == [RunStart, RunFailed] and evs[-1].step == 0


def test_nan_loss_ends_with_run_failed(tiny):
    _, evs = _fit(_tc(knobs={"activation": "relu"}, lr=1e30, epochs=3, log_every=1), tiny)
    assert isinstance(evs[-1], RunFailed) and evs[-1].reason == "nan_loss"
    assert "NaN" in evs[-1].message and evs[-1].step >= 1


class _Broken(nn.Module):
    def __init__(self, exc=None):
        super().__init__()
        self.lin = nn.Linear(784, 10)
        self.exc = exc

    def forward(self, x):
        if self.exc is not None:
            raise self.exc
        return self.lin(x.flatten(1)) * float("nan")


def test_model_returning_nan_and_errors_become_events(tiny):
    tc = _tc(log_every=1)
    _, evs = _fit(tc, tiny, model=_Broken())
    assert evs[-1].kind == "run_failed" and evs[-1].reason == "nan_loss"
    _, evs = _fit(tc, tiny, model=_Broken(ValueError("bad shapes\nsecond line")))
    assert evs[-1].reason == "error" and evs[-1].message == "ValueError: bad shapes"
    _, evs = _fit(tc, tiny, model=_Broken(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")))
    assert evs[-1].reason == "out_of_memory" and "batch size" in evs[-1].message


def test_an_error_keeps_its_traceback_in_the_event_the_log_and_config_json(tiny, tmp_path, caplog):
    """People get one sentence; the full traceback is logged and kept with the run (config.json "failure")."""
    tc = _tc(log_every=1, epochs=1)
    with caplog.at_level(logging.ERROR, logger="cnnlab"):
        evs = list(engine.run(tc, out_dir=str(tmp_path), data=tiny,
                              model=_Broken(KeyError("a builder bug"))))
    end = evs[-1]
    assert end.reason == "error" and end.message == "KeyError: 'a builder bug'"
    assert "Traceback (most recent call last)" in end.detail and "raise self.exc" in end.detail
    assert any("a builder bug" in r.getMessage() and "Traceback" in r.getMessage() for r in caplog.records)
    cfg = checkpoint.read_config(end.run_dir)
    assert cfg["status"] == "failed" and cfg["failure"]["message"] == end.message
    assert cfg["failure"]["traceback"] == end.detail


@pytest.mark.parametrize("kind", ["nn", "scratch"])
def test_a_last_batch_of_one_example_is_merged_not_fed_alone_to_batchnorm(kind):
    """33 examples at batch 32 would leave a batch of one ("Expected more than 1 value per channel")."""
    d = data.synthetic(33, 16, seed=0)
    assert data.batch_bounds(33, 32) == [(0, 33)] and data.batch_bounds(34, 32) == [(0, 32), (32, 34)]
    assert data.batch_bounds(1, 32) == [(0, 1)] and data.batch_bounds(65, 32) == [(0, 32), (32, 65)]
    assert d.num_batches("train", 32) == 1
    sizes = [len(y) for _, y in d.batches("train", 32, shuffle=True, generator=torch.Generator().manual_seed(0))]
    assert sizes == [33]
    _, evs = _fit(_tc(knobs={"batchnorm": kind}, epochs=1, log_every=1), d)
    assert evs[-1].kind == "run_end", evs[-1]


def test_bad_config_is_an_event_from_fit_and_a_knob_error_from_resolved(tiny):
    with pytest.raises(KnobError, match="epochs"):
        _tc(epochs=0).resolved()
    with pytest.raises(KnobError, match="device"):
        _tc(device="tpu").resolved()
    _, evs = _fit(_tc(batch_size=0), tiny)
    assert len(evs) == 1 and evs[0].reason == "error" and "batch_size" in evs[0].message


@pytest.mark.parametrize("kind", ["nn", "scratch"])
def test_bn_snapshots_shapes_and_steps(tiny, kind):
    tc = _tc(knobs={"batchnorm": kind}, bn_every=3)
    model, evs = _fit(tc, tiny)
    snaps = [e for e in evs if isinstance(e, BNSnapshot)]
    # every 3 steps, plus each epoch's last step (8, 16), without duplicates
    assert [s.step for s in snaps] == [3, 6, 8, 9, 12, 15, 16]
    names = [n for n, _ in bn_layers(model)]
    widths = {n: m.num_features for n, m in bn_layers(model)}
    assert sorted(widths.values()) == [6, 16, 84, 120]
    for s in snaps:
        assert [layer.name for layer in s.layers] == names
        for layer in s.layers:
            c = widths[layer.name]
            for f in ("gamma", "beta", "running_mean", "running_var", "batch_mean", "batch_var"):
                v = getattr(layer, f)
                assert len(v) == c and all(x == x for x in v), (layer.name, f)  # no NaN
            assert min(layer.batch_var) >= 0 and min(layer.running_var) > 0
    # round trip through the JSON form the checkpoint writes
    assert BNSnapshot.from_dict(json.loads(json.dumps(snaps[0].to_dict()))) == snaps[0]


@pytest.mark.parametrize("kind", ["nn", "scratch"])
def test_bn_batch_stats_are_the_batch_ones(kind):
    """One step on one full batch from fresh running stats: running_mean = 0.1 × batch mean (both conventions)."""
    d = data.synthetic(64, 16, seed=1)
    _, evs = _fit(_tc(knobs={"batchnorm": kind}, epochs=1, batch_size=64), d)
    (snap,) = [e for e in evs if isinstance(e, BNSnapshot)]
    for layer in snap.layers:
        bm = torch.tensor(layer.batch_mean)
        assert bm.abs().max() > 1e-3
        assert torch.allclose(torch.tensor(layer.running_mean), 0.1 * bm, atol=1e-5), layer.name


def test_models_without_bn_send_no_snapshots(tiny):
    _, evs = _fit(_tc(knobs={}), tiny)
    assert not any(isinstance(e, BNSnapshot) for e in evs)


def test_resolved_uses_the_books_recipe():
    assert _tc(knobs={}, threads=None).resolved().lr == 0.9
    r = engine.TrainConfig(model="vgg").resolved()
    assert r.model.knobs["ratio"] == 4 and r.model.resolution == 224 and r.lr == 0.05 and r.batch_size == 128
    assert engine.TrainConfig(model="vgg", knobs={"ratio": 8}, resolution=96).resolved().model.knobs["ratio"] == 8
    assert engine.TrainConfig(optimizer="adam").resolved().lr == 0.001
    cfg = resolve("lenet", {"batchnorm": "scratch"})
    r = engine.TrainConfig(model=cfg, lr=0.3).resolved()
    assert r.model == cfg and r.lr == 0.3 and r.batch_size == 256


def test_run_writes_a_checkpoint_and_stop_keeps_it(tiny, tmp_path):
    stop = threading.Event()
    evs = []
    for ev in engine.run(_tc(epochs=5), stop, out_dir=str(tmp_path), data=tiny):
        evs.append(ev)
        if isinstance(ev, EpochEnd):
            # the checkpoint for this epoch is on disk before the event arrives
            assert checkpoint.read_metrics(ev_dir)[-1]["epoch"] == ev.epoch
            stop.set()
        if isinstance(ev, RunStart):
            ev_dir = ev.run_dir
            assert ev_dir.startswith(str(tmp_path))
    assert evs[-1].reason == "stopped" and evs[-1].run_dir == ev_dir
    cfg = checkpoint.read_config(ev_dir)
    assert cfg["status"] == "stopped" and cfg["train"]["epochs"] == 5 and cfg["torch"] == torch.__version__
    loaded = checkpoint.load_run(ev_dir)
    assert len(loaded.metrics) == 1 and loaded.epoch == 1
    assert len(checkpoint.read_bn_history(ev_dir)) >= 3


def test_run_without_data_fails_with_one_sentence(monkeypatch, tmp_path):
    def missing(*a, **k):
        raise data.DataError("Fashion-MNIST was not found; install it with `apt-get install -y dataset-fashion-mnist`")

    monkeypatch.setattr(sys.modules["cnnlab.engine.launch"], "load_fashion_mnist", missing)
    evs = list(engine.run(_tc(), out_dir=str(tmp_path)))
    assert len(evs) == 1 and evs[0].reason == "error" and "apt-get" in evs[0].message
    assert os.listdir(tmp_path) == []



@needs_fmnist
def test_real_one_epoch_bn_lenet_on_a_fashion_mnist_subset(tmp_path):
    tc = engine.TrainConfig(model="lenet", knobs={"batchnorm": "nn"}, epochs=1, train_size=2048, test_size=512,
                            batch_size=64, device="cpu", threads=1)
    evs = list(engine.run(tc, out_dir=str(tmp_path)))
    end = evs[-1]
    assert isinstance(end, RunEnd), end
    assert end.test_acc > 0.3  # chance is 0.1
    loaded = checkpoint.load_run(end.run_dir)
    assert loaded.config["data"] == {"name": "fashion-mnist", "train_size": 2048, "test_size": 512, "resolution": 28}
    d = data.load_fashion_mnist(28, train_size=10, test_size=512, seed=0)
    assert engine.evaluate(loaded.model, d) == pytest.approx(end.test_acc)


@pytest.mark.parametrize("fast", [True, False])
def test_what_the_cpu_fast_paths_chose_is_in_run_start_and_config_json(tiny, tmp_path, fast):
    evs = list(engine.run(_tc(epochs=1, fast_cpu=fast), out_dir=str(tmp_path), data=tiny))
    start, end = evs[0], evs[-1]
    assert start.kind == "run_start" and end.kind == "run_end", end
    assert start.fast_cpu["enabled"] is fast
    assert (sum(start.fast_cpu["swapped"].values()) > 0) is fast   # BN-LeNet: avg pools and BN layers
    cfg = checkpoint.read_config(end.run_dir)
    assert cfg["fast_cpu"] == json.loads(json.dumps(start.fast_cpu)) and cfg["train"]["fast_cpu"] is fast


def test_cnnlab_fast_cpu_0_turns_the_fast_paths_off(monkeypatch):
    monkeypatch.setenv("CNNLAB_FAST_CPU", "0")
    assert _tc().resolved().fast_cpu is False
    monkeypatch.setenv("CNNLAB_FAST_CPU", "1")
    assert _tc().resolved().fast_cpu is True
    assert _tc(fast_cpu=False).resolved().fast_cpu is False   # the config (CLI --no-fast-cpu) wins
