"""cnnlab.cpu_fast: each fast path equals torch's module, apply()/revert() keep the state, the choice is
recorded and switchable, two processes compute the same losses, and CPU bf16 autocast works."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from cnnlab import cpu_fast
from cnnlab.cpu_fast import BatchAsChannelsConv2d, FastAvgPool2x2, FastBatchNorm2d, batch_stats
from cnnlab.layers import BatchNorm
from cnnlab.registry import arch_names, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENETS = {"lenet": {}, "bn_lenet": {"batchnorm": "nn"}, "bn_lenet_scratch": {"batchnorm": "scratch"}}


# -- each fast module = torch's ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape,layout,kw", [
    ((8, 6, 24, 24), "nchw", {}), ((8, 16, 8, 8), "nhwc", {}), ((3, 1, 6, 4), "nchw", {}),
    ((2, 5, 4, 6), "nhwc", {}), ((4, 3, 7, 8), "nchw", {}),               # odd height: torch's own kernel
    ((4, 3, 8, 8), "nchw", {"stride": 1}), ((4, 3, 8, 8), "nchw", {"padding": 1}),
    ((4, 3, 9, 9), "nchw", {"kernel_size": 3}),                             # not 2×2: torch's kernel
    ((2, 6, 10, 10), "slice", {}),                                          # neither layout: torch's kernel
])
def test_fast_avgpool_equals_torch(shape, layout, kw):
    """FastAvgPool2x2 gives torch's values and gradients, keeping the layout; other cases run torch's."""
    kw = {"kernel_size": 2, "stride": 2, **kw}
    torch.manual_seed(0)
    base = torch.randn(*shape, dtype=torch.float64)
    x = {"nchw": base, "nhwc": base.contiguous(memory_format=torch.channels_last),
         "slice": torch.randn(shape[0], shape[1] * 2, shape[2], shape[3], dtype=torch.float64)[:, ::2]}[layout]
    x1, x2 = x.detach().requires_grad_(), x.detach().clone().requires_grad_()
    assert x1.stride() == x.stride()
    ours, ref = FastAvgPool2x2(**kw)(x1), nn.AvgPool2d(**kw)(x2)
    fast = layout != "slice" and kw == {"kernel_size": 2, "stride": 2} and shape[2] % 2 == 0 and shape[3] % 2 == 0
    assert ("AvgPool2x2" in type(ours.grad_fn).__name__) == fast, type(ours.grad_fn).__name__
    assert ours.shape == ref.shape and torch.allclose(ours, ref)
    if layout == "nhwc":
        assert ours.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(ref)
    ours.backward(g)
    ref.backward(g)
    assert torch.allclose(x1.grad, x2.grad)


@pytest.mark.parametrize("shape,momentum,layout,input_grad", [
    ((32, 6, 12, 12), 0.1, "nchw", True), ((16, 4, 5, 5), None, "nchw", False),
    ((8, 3, 4, 4), 0.3, "nhwc", True), ((2, 5, 1, 1), 0.1, "nchw", True)])
def test_fast_batchnorm2d_equals_torch(shape, momentum, layout, input_grad):
    """FastBatchNorm2d = nn.BatchNorm2d: outputs, all gradients, running statistics and num_batches_tracked
    over several training steps, then eval mode."""
    torch.manual_seed(0)
    ours, ref = FastBatchNorm2d(shape[1], momentum=momentum), nn.BatchNorm2d(shape[1], momentum=momentum)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    for _ in range(4):
        x = torch.randn(*shape) * 3 + 1
        if layout == "nhwc":
            x = x.contiguous(memory_format=torch.channels_last)
        x1, x2 = x.clone().requires_grad_(input_grad), x.clone().requires_grad_(input_grad)
        y1, y2 = ours(x1), ref(x2)
        assert ("BatchNormTrain" in type(y1.grad_fn).__name__) == (layout == "nchw")
        torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(y2)
        y1.backward(g)
        y2.backward(g)
        if input_grad:
            torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
        for a, b in [(ours.weight.grad, ref.weight.grad), (ours.bias.grad, ref.bias.grad),
                     (ours.running_mean, ref.running_mean), (ours.running_var, ref.running_var)]:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)
        ours.zero_grad()
        ref.zero_grad()
    ours.eval()
    ref.eval()
    x = torch.randn(*shape)
    torch.testing.assert_close(ours(x), ref(x))


def test_batch_stats_is_exact_for_a_large_mean():
    """Deviations are summed (two passes), so a mean far above the spread does not cancel the variance."""
    x = torch.randn(64, 3, 8, 8, dtype=torch.float64) * 0.01 + 1000.0
    mean, var = batch_stats(x.float())
    ref_var, ref_mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(mean.double(), ref_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var.double(), ref_var, rtol=2e-2, atol=1e-9)


@pytest.mark.parametrize("shape,out,k,pad,bias,input_grad,layout,fast", [
    ((16, 6, 12, 12), 16, 5, 0, True, True, "nchw", True), ((8, 1, 8, 8), 6, 5, 2, True, False, "nchw", True),
    ((4, 3, 9, 7), 5, 3, 1, False, True, "nhwc", True),
    ((2, 6, 14, 14), 16, 5, 0, True, True, "nchw", False)])   # 10×10 output map: torch's backward
def test_batch_as_channels_conv_equals_torch(shape, out, k, pad, bias, input_grad, layout, fast):
    """BatchAsChannelsConv2d gives nn.Conv2d's output and gradients (on its own path or on torch's)."""
    torch.manual_seed(0)
    ours = BatchAsChannelsConv2d(shape[1], out, k, padding=pad, bias=bias)
    ref = nn.Conv2d(shape[1], out, k, padding=pad, bias=bias)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(*shape)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(input_grad), x.clone().requires_grad_(input_grad)
    y1, y2 = ours(x1), ref(x2)
    assert ("BatchAsChannels" in type(y1.grad_fn).__name__) == fast, type(y1.grad_fn).__name__
    torch.testing.assert_close(y1, y2)
    g = torch.randn_like(y2)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    if input_grad:
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)


def test_batch_as_channels_only_where_it_applies():
    """Eval, no-grad and unsupported convolutions (stride 2, groups) take torch's path."""
    conv = BatchAsChannelsConv2d(6, 16, 5)
    x = torch.randn(8, 6, 12, 12)
    assert "BatchAsChannels" in type(conv(x).grad_fn).__name__
    with torch.no_grad():
        assert conv(x).grad_fn is None
    assert "BatchAsChannels" not in type(conv.eval()(x).grad_fn).__name__
    for kw in ({"stride": 2}, {"groups": 2}, {"dilation": 2}):
        c = BatchAsChannelsConv2d(6, 16, 5, **kw)
        ref = nn.Conv2d(6, 16, 5, **kw)
        ref.load_state_dict(c.state_dict())
        y = c(torch.randn(8, 6, 12, 12))
        assert "BatchAsChannels" not in type(y.grad_fn).__name__


def test_the_conv_rule_is_lenets_second_conv_only():
    """The fixed rule picks LeNet's 6→16 5×5 conv and no convolution of the other architectures."""
    picked = {}
    for arch in arch_names():
        for knobs in ({}, {"batchnorm": "nn"}) if arch == "lenet" else ({},):
            model = resolve(arch, knobs).build()
            picked[(arch, str(knobs))] = [n for n, m in model.named_modules() if cpu_fast.batch_as_channels_rule(m)]
    assert picked.pop(("lenet", "{}")) == ["3"]
    assert picked.pop(("lenet", "{'batchnorm': 'nn'}")) == ["4"]
    assert all(v == [] for v in picked.values()), picked


# -- apply / revert ---------------------------------------------------------------------------------------

def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch,knobs", [("lenet", {}), ("lenet", {"batchnorm": "nn"}), ("densenet", {}),
                                        ("resnet", {}), ("alexnet", {})])
def test_apply_swaps_in_place_and_revert_restores(arch, knobs):
    model = resolve(arch, knobs, resolution=28 if arch == "lenet" else 96).build()
    types = [type(m) for m in model.modules()]
    params = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    rec = cpu_fast.apply(model, device="cpu", enabled=True)
    assert json.loads(json.dumps(rec)) == rec
    assert rec["enabled"] is True and rec["device"] == "cpu"
    fast = cpu_fast.fast_modules(model)
    assert sum(rec["swapped"].values()) == len(fast)
    assert {type(m).__mro__[1].__name__ for _, m in fast} == set(rec["swapped"])
    assert rec["conv_weight_grad"] == {n: "batch_as_channels" for n, m in fast if isinstance(m, BatchAsChannelsConv2d)}
    assert [id(p) for p in model.parameters()] == params and list(model.state_dict()) == keys
    expect_cl = not (rec["swapped"] or any(isinstance(m, nn.BatchNorm2d) for m in model.modules()))
    assert rec["channels_last"] is expect_cl
    if arch == "lenet":
        assert rec["swapped"]["AvgPool2d"] == 2 and rec["swapped"]["Conv2d"] == 1 and not rec["channels_last"]
        assert rec["swapped"].get("BatchNorm2d", 0) == (2 if knobs else 0)
    if arch == "alexnet":
        assert rec["swapped"] == {} and rec["channels_last"] is True
    assert cpu_fast.revert(model) == len(fast)
    assert [type(m) for m in model.modules()] == types and cpu_fast.fast_modules(model) == []


def test_apply_with_the_input_shape_picks_only_the_measured_conv_shape():
    """With the input size known, only BN-LeNet's 12×12 -> 8×8 convolution gets the batch-as-channels path;
    plain LeNet's 14×14 -> 10×10 keeps torch's, and the record says so."""
    lenet, bn = resolve("lenet").build(), resolve("lenet", {"batchnorm": "nn"}).build()
    assert cpu_fast.apply(lenet, device="cpu", enabled=True, input_shape=(1, 28, 28))["conv_weight_grad"] == {}
    assert type(lenet[3]) is nn.Conv2d and cpu_fast.fast_modules(lenet)   # the pools are still switched
    rec = cpu_fast.apply(bn, device="cpu", enabled=True, input_shape=(1, 28, 28))
    assert rec["conv_weight_grad"] == {"4": "batch_as_channels"} and rec["swapped"]["Conv2d"] == 1
    bigger = resolve("lenet", {"batchnorm": "nn"}, resolution=32).build()   # a 10×10 map again
    assert cpu_fast.apply(bigger, device="cpu", enabled=True, input_shape=(1, 32, 32))["conv_weight_grad"] == {}


def test_apply_is_switchable_and_cpu_only(monkeypatch):
    for enabled, env, dev in [(False, None, "cpu"), (None, "0", "cpu"), (True, None, "cuda"), (None, "1", "cuda")]:
        if env is None:
            monkeypatch.delenv(cpu_fast.ENV, raising=False)
        else:
            monkeypatch.setenv(cpu_fast.ENV, env)
        model = resolve("lenet", {"batchnorm": "nn"}).build()
        rec = cpu_fast.apply(model, device=dev, enabled=enabled)
        assert rec["enabled"] is False and rec["swapped"] == {} and cpu_fast.fast_modules(model) == []
        assert rec["channels_last"] is (dev == "cuda")
    monkeypatch.setenv(cpu_fast.ENV, "1")
    assert cpu_fast.apply(resolve("lenet").build(), device="cpu")["enabled"] is True
    monkeypatch.delenv(cpu_fast.ENV)
    assert cpu_fast.apply(resolve("lenet").build(), device="cpu")["enabled"] is True  # on by default
    # off: plain LeNet trains channels_last (measured faster without the fast paths), BN nets NCHW
    assert cpu_fast.apply(resolve("lenet").build(), device="cpu", enabled=False)["channels_last"] is True


def test_subclassed_modules_are_left_alone():
    class MyPool(nn.AvgPool2d):
        pass

    model = nn.Sequential(MyPool(2), BatchNorm(3), nn.AvgPool2d(3), nn.Conv2d(6, 16, 5, stride=2))
    assert cpu_fast.apply(model, device="cpu", enabled=True)["swapped"] == {}


@pytest.mark.parametrize("name", list(LENETS))
def test_fast_model_trains_like_torchs(name):
    """A few SGD steps of the swapped model match the plain model's (same start, same batches)."""
    torch.manual_seed(0)
    plain = resolve("lenet", LENETS[name]).build()
    fast = resolve("lenet", LENETS[name]).build()
    fast.load_state_dict(plain.state_dict())
    cpu_fast.apply(fast, device="cpu", enabled=True)
    assert cpu_fast.fast_modules(fast)
    opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (plain, fast)]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        X, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
        losses = []
        for m, opt in zip((plain, fast), opts):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(X), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-4, abs=1e-5)
    for (k, a), b in zip(plain.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=k)


# -- autocast --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,knobs,res", [("lenet", {}, 28), ("lenet", {"batchnorm": "nn"}, 28),
                                             ("densenet", {"block_config": (2, 2)}, 32)])
def test_fast_paths_work_under_cpu_bf16_autocast(arch, knobs, res):
    """Forward and backward under torch.autocast('cpu', bfloat16) run (torch's paths) and give the plain
    model's numbers."""
    torch.manual_seed(0)
    plain = resolve(arch, knobs, resolution=res).build()
    fast = resolve(arch, knobs, resolution=res).build()
    fast.load_state_dict(plain.state_dict())
    cpu_fast.apply(fast, device="cpu", enabled=True)
    X = torch.rand(16, 1, res, res)
    outs = []
    for m in (plain, fast):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(X)
            loss = out.float().logsumexp(1).mean()
        loss.backward()
        outs.append((out, [p.grad for p in m.parameters()]))
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b)


def test_batch_as_channels_conv_under_autocast_with_float_input():
    """The case that crashed before: a float32 input to the custom convolution under CPU bf16 autocast."""
    conv = BatchAsChannelsConv2d(6, 16, 5)
    x = torch.randn(8, 6, 12, 12, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and conv.weight.grad is not None and x.grad is not None


# -- the same losses in two processes -----------------------------------------------------------------------

_TRAIN = r"""
import json, sys, torch
from torch.nn import functional as F
from cnnlab import cpu_fast, data, engine
from cnnlab.registry import resolve
torch.set_num_threads(int(sys.argv[2]))
d = data.synthetic(1024, 16, seed=0)
out = {}
for name, knobs in json.loads(sys.argv[1]).items():
    torch.manual_seed(0)
    model = resolve("lenet", knobs).build()
    engine.init_weights(model, seed=0)
    rec = cpu_fast.apply(model, device="cpu", enabled=True, input_shape=(1, 28, 28))
    opt = torch.optim.SGD(model.parameters(), lr=0.9)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for X, y in d.batches("train", 256, shuffle=True, generator=gen):
        if rec["channels_last"]:
            X = X.contiguous(memory_format=torch.channels_last)
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        losses.append(loss.item().hex())
    out[name] = {"record": rec, "losses": losses}
print(json.dumps(out))
"""


def test_two_processes_give_the_same_losses():
    """Same seed, device and thread count: bit-for-bit the same losses in two separate processes, with the
    fast paths (the batch-as-channels convolution included) in effect, for LeNet and BN-LeNet."""
    env = dict(os.environ, PYTHONPATH=ROOT, CNNLAB_FAST_CPU="1")
    nets = {k: LENETS[k] for k in ("lenet", "bn_lenet")}
    runs = []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-c", _TRAIN, json.dumps(nets), "2"], capture_output=True,
                           text=True, cwd=ROOT, env=env, timeout=240)
        assert p.returncode == 0, p.stderr[-2000:]
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    assert runs[0]["bn_lenet"]["record"]["conv_weight_grad"] == {"4": "batch_as_channels"}
    for name in nets:
        rec = runs[0][name]["record"]
        assert rec["swapped"]["AvgPool2d"] == 2
        assert len(runs[0][name]["losses"]) == 4
        assert runs[0][name] == runs[1][name], name
    assert runs[0]["lenet"]["losses"] != runs[0]["bn_lenet"]["losses"]
