"""The GPU path's training-loop parts, run on the CPU: AMP with a GradScaler, evaluation out of memory,
weights saved before evaluating, compiling once, memory given back, and the device note.

What needs a real GPU (fused optimizers, the CUDA memory figures, CUDA graphs) is left to bench/bench_gpu.py;
everything whose logic can be driven from the CPU is driven here.
"""
import json
import os

import pytest
import torch

from cnnlab import checkpoint, data, engine
from cnnlab import device as dp
from cnnlab.engine import loop
from cnnlab.events import (BNSnapshot, Compiling, EpochEnd, EpochTrained, RunEnd, RunFailed, RunStart,
                           StepEnd)


@pytest.fixture(scope="module")
def tiny():
    return data.synthetic(200, 100, seed=0)


def _tc(**kw):
    base = dict(model="lenet", knobs={"batchnorm": "nn"}, epochs=2, batch_size=64, log_every=2, bn_every=3,
                threads=1, device="cpu")
    base.update(kw)
    return engine.TrainConfig(**base)


def _fit(tc, d, model=None):
    model = model or tc.model_config().build()
    return model, list(engine.fit(model, d, tc))


# -- AMP -----------------------------------------------------------------------------------------------

def test_cpu_autocast_with_the_cpu_fast_paths_on(tiny):
    """Autocast on the CPU while cnnlab.cpu_fast has swapped in its modules (BN-LeNet's second convolution takes
    the batch-as-channels weight gradient): they fall back to torch's kernels under autocast, so the run ends."""
    _, evs = _fit(_tc(amp="fp16", epochs=1, fast_cpu=True), tiny)
    start = evs[0]
    assert start.kind == "run_start" and start.fast_cpu["swapped"].get("Conv2d") == 1, start.fast_cpu
    assert evs[-1].kind == "run_end", evs[-1]


class CountingScaler(torch.amp.GradScaler):
    instances: list = []

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = {"scale": 0, "step": 0, "update": 0}
        CountingScaler.instances.append(self)

    def scale(self, outputs):
        self.calls["scale"] += 1
        return super().scale(outputs)

    def step(self, optimizer, *a, **k):
        self.calls["step"] += 1
        return super().step(optimizer, *a, **k)

    def update(self, *a, **k):
        self.calls["update"] += 1
        return super().update(*a, **k)


def test_fp16_trains_through_the_grad_scaler_on_cpu(tiny, monkeypatch):
    CountingScaler.instances = []
    monkeypatch.setattr(dp.torch.amp, "GradScaler", CountingScaler)
    d = data.synthetic(256, 128, seed=0)
    _, evs = _fit(_tc(amp="fp16", epochs=3, batch_size=32), d)
    assert isinstance(evs[-1], RunEnd), evs[-1]
    assert evs[0].amp == "fp16"
    (scaler,) = CountingScaler.instances
    steps = evs[0].steps_per_epoch * 3
    assert scaler.calls == {"scale": steps, "step": steps, "update": steps}
    assert evs[-1].test_acc > 0.5  # it learned (chance is 0.1)


def test_the_scaler_skips_a_step_with_inf_gradients_and_lowers_its_scale(tiny, monkeypatch):
    """The fp16 failure a GradScaler exists for: an overflowing gradient must not reach the weights."""
    CountingScaler.instances = []
    monkeypatch.setattr(dp.torch.amp, "GradScaler", CountingScaler)
    model = _tc().model_config().build()
    poisoned = {"left": 1}

    def poison(module, grad_input, grad_output):  # the first backward overflows
        if poisoned["left"]:
            poisoned["left"] -= 1
            return tuple(torch.full_like(g, float("inf")) if g is not None else None for g in grad_input)

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    last.register_full_backward_hook(poison)
    before = {}

    def keep_initial(ev_model):
        before.update({k: v.clone() for k, v in ev_model.state_dict().items()})

    gen = engine.fit(model, tiny, _tc(amp="fp16", epochs=1, log_every=1, init="xavier"))
    first = next(gen)
    assert isinstance(first, RunStart)
    keep_initial(model)
    first_step = next(e for e in gen if isinstance(e, StepEnd))
    assert first_step.step == 1
    scaler = CountingScaler.instances[0]
    assert scaler.get_scale() < 2.0**16  # lowered after the inf
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)
    rest = list(gen)
    assert isinstance(rest[-1], RunEnd)


def test_bf16_autocast_on_cpu_trains(tiny):
    _, evs = _fit(_tc(amp="bf16", epochs=1), tiny)
    assert isinstance(evs[-1], RunEnd) and evs[0].amp == "bf16"


def test_amp_recorded_in_config_json(tiny, tmp_path):
    for amp, recorded in (("auto", "off"), ("fp16", "fp16")):
        evs = list(engine.run(_tc(amp=amp, epochs=1), out_dir=str(tmp_path / amp), data=tiny))
        assert isinstance(evs[-1], RunEnd), evs[-1]
        cfg = checkpoint.read_config(evs[-1].run_dir)
        assert cfg["amp"] == recorded and cfg["train"]["amp"] == amp


def test_checkpoint_trained_under_autocast_and_channels_last_loads_identically_on_cpu(tiny, tmp_path, monkeypatch):
    """GPU runs train in channels_last under autocast; their checkpoint is plain fp32 weights that give the
    same logits in a model built on the CPU in the default memory format."""
    from cnnlab import cpu_fast
    monkeypatch.setattr(cpu_fast, "channels_last_rule", lambda model, device, swapped: True)
    tc = _tc(knobs={"batchnorm": "off"}, amp="bf16", epochs=1)
    model = tc.model_config().build()
    evs = list(engine.run(tc, out_dir=str(tmp_path), data=tiny, model=model))
    assert isinstance(evs[-1], RunEnd), evs[-1]
    assert any(p.is_contiguous(memory_format=torch.channels_last) and p.dim() == 4 for p in model.parameters())
    loaded = checkpoint.load_run(evs[-1].run_dir, "cpu")
    assert all(v.dtype == torch.float32 for v in loaded.model.state_dict().values() if v.is_floating_point())
    for k, v in model.state_dict().items():
        assert torch.equal(v.cpu(), loaded.model.state_dict()[k]), k
    model.eval()
    X = tiny.X_test[:64]
    with torch.inference_mode():
        trained_cl = model(X.contiguous(memory_format=torch.channels_last))
        model.to(memory_format=torch.contiguous_format)
        assert torch.equal(model(X), loaded.model(X))  # bit for bit in the same memory format
        assert torch.allclose(trained_cl, loaded.model(X), atol=1e-5)  # kernels differ by rounding only


# -- evaluation out of memory --------------------------------------------------------------------------

def oom_above(model, limit, raised, saved_check=None):
    """Make `model` raise the CUDA out-of-memory error for eval batches larger than `limit`."""
    def hook(module, args):
        if not module.training:
            if saved_check is not None:
                saved_check()
            if args[0].shape[0] > limit:
                raised.append(args[0].shape[0])
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {args[0].shape[0]} MiB")
    model.register_forward_pre_hook(hook)


def test_evaluation_out_of_memory_halves_the_batch_and_keeps_it(monkeypatch):
    d = data.synthetic(200, 300, seed=0)
    tc = _tc(epochs=2)
    model = tc.model_config().build()
    raised = []
    oom_above(model, 60, raised)
    released = []
    monkeypatch.setattr(dp, "release", lambda device, compiled=False: released.append(str(device)))
    _, evs = _fit(tc, d, model)
    assert isinstance(evs[-1], RunEnd), evs[-1]
    ends = [e for e in evs if isinstance(e, EpochEnd)]
    assert raised == [256, 128, 64]      # 256 on CPU, halved twice in epoch 1, then kept
    assert [e.eval_batch_size for e in ends] == [32, 32]
    assert len(released) == 3             # the cache emptied before each retry
    assert all(0 <= e.test_acc <= 1 for e in ends)


def test_an_epoch_is_saved_before_evaluation_so_an_eval_failure_keeps_it(tmp_path):
    d = data.synthetic(200, 100, seed=0)
    tc = _tc(epochs=3, eval_batch_size=50)
    model = tc.model_config().build()
    seen = []

    def saved_check():  # at every evaluation the epoch just trained is already on disk
        (run_dir,) = [os.path.join(tmp_path, n) for n in os.listdir(tmp_path)]
        seen.append(checkpoint.load_weights(os.path.join(run_dir, checkpoint.WEIGHTS))["epoch"])

    raised = []
    epoch = {"n": 0}

    def hook(module, args):
        if not module.training:
            saved_check()
            if seen[-1] == 2:  # epoch 2's evaluation runs out of memory even at one example
                raised.append(args[0].shape[0])
                raise torch.OutOfMemoryError("CUDA out of memory.")
    model.register_forward_pre_hook(hook)
    evs = list(engine.run(tc, out_dir=str(tmp_path), data=d, model=model))
    kinds = [e.kind for e in evs]
    assert kinds.index("epoch_trained") < kinds.index("epoch_end")
    assert isinstance(evs[-1], RunFailed) and evs[-1].reason == "out_of_memory", evs[-1]
    assert raised == [50, 25, 12, 6, 3, 1]  # halved down to one example, then it gives up
    assert set(seen) == {1, 2}
    run_dir = evs[-1].run_dir
    assert checkpoint.load_weights(os.path.join(run_dir, checkpoint.WEIGHTS))["epoch"] == 2
    cfg = checkpoint.read_config(run_dir)
    assert cfg["status"] == "failed" and cfg["final"]["epochs"] == 2
    assert len(checkpoint.read_metrics(run_dir)) == 1  # epoch 2 has weights but no test accuracy
    assert epoch  # (silence)


# -- torch.compile: one graph ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["nn", "scratch"])
def test_a_compiled_run_compiles_one_graph_and_says_so(monkeypatch, kind):
    """BN-LeNet with the snapshot hook, a smaller last batch, and evaluation between epochs: before, each of
    these recompiled (4 graphs); now only full training batches run the compiled graph."""
    from torch._dynamo.utils import counters
    monkeypatch.setenv("CNNLAB_COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    counters.clear()
    d = data.synthetic(200, 100, seed=0)  # batches 64, 64, 72 (the one-example tail joins the last)
    tc = _tc(knobs={"batchnorm": kind}, compile=True, epochs=2, bn_every=2, log_every=1)
    model, evs = _fit(tc, d)
    assert isinstance(evs[-1], RunEnd), evs[-1]
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    comp = [e for e in evs if isinstance(e, Compiling)]
    assert [c.done for c in comp] == [False, True] and comp[0].backend == "aot_eager" and comp[1].wall_s > 0
    kinds = [e.kind for e in evs]
    assert kinds.index("compiling") < kinds.index("step_end")
    assert any(isinstance(e, BNSnapshot) for e in evs)
    # the snapshot steps still see the batch statistics (eager, with the hook attached just then)
    snap = [e for e in evs if isinstance(e, BNSnapshot)][-1]
    assert all(v == v for layer in snap.layers for v in layer.batch_mean)  # no NaN placeholder
    assert not any(m._forward_pre_hooks for m in model.modules())  # no hook left behind
    torch._dynamo.reset()


def test_an_uncompiled_run_sends_no_compiling_event(tiny):
    _, evs = _fit(_tc(epochs=1), tiny)
    assert not any(isinstance(e, Compiling) for e in evs)
    assert sum(isinstance(e, EpochTrained) for e in evs) == 1


# -- memory given back, and why not the GPU -----------------------------------------------------------

def test_run_releases_the_device_after_every_run(tiny, monkeypatch):
    calls = []
    monkeypatch.setattr(dp, "release", lambda device, compiled=False: calls.append((str(device), compiled)))
    evs = list(engine.run(_tc(epochs=1), out_dir=None, data=tiny))
    assert isinstance(evs[-1], RunEnd) and calls == [("cpu", False)]
    calls.clear()
    stream = engine.run(_tc(epochs=1), out_dir=None, data=tiny)
    next(stream)
    stream.close()  # the consumer left mid-run
    assert calls == [("cpu", False)]


def test_an_auto_run_on_the_cpu_carries_the_reason(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(dp, "_REPORTS", {})
    monkeypatch.setattr(dp, "probe", lambda requested="auto", smoke=True: dp.DeviceReport(
        requested=requested, device="cpu", reason="the NVIDIA driver 535.104.05 supports CUDA up to 12.2, ..."))
    evs = list(engine.run(_tc(device="auto", epochs=1), out_dir=str(tmp_path), data=tiny))
    assert "535.104.05" in evs[0].device_note
    assert "535.104.05" in checkpoint.read_config(evs[-1].run_dir)["device_note"]
    assert json.loads(json.dumps(evs[0].to_dict()))["device_note"] == evs[0].device_note


# -- the Train page says why not the GPU ---------------------------------------------------------------

@pytest.mark.parametrize("gpu", [False, True])
def test_train_page_shows_the_checked_device_and_the_reason(monkeypatch, tmp_path, gpu):
    pytest.importorskip("streamlit")
    from helpers import open_page
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    if gpu:
        rep = dp.DeviceReport(requested="auto", device="cuda:0", name="Tesla T4", capability="7.5", amp="fp16")
    else:  # torch says a GPU is there, but the build has no kernels for it: the check says why not
        rep = dp.DeviceReport(requested="auto", device="cpu", name="Tesla P100-PCIE-16GB", capability="6.0",
                              reason="Tesla P100-PCIE-16GB has compute capability 6.0 (sm_60), but torch has "
                                     "kernels only for sm_75 sm_80")
    monkeypatch.setattr(dp, "_REPORTS", {"app": rep})
    at = open_page("app_pages/train.py", 60)
    captions = " ".join(c.value for c in at.caption)
    device = at.selectbox(key="train_device")
    if gpu:
        assert "Tesla T4" in captions and device.options == ["cuda", "cpu"]
    else:
        assert "sm_60" in captions and "Why not the GPU" in captions and "Tesla P100" not in " ".join(
            i.value for i in at.info)
        assert device.options == ["cpu"]
