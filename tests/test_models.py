"""The model zoo: every registered architecture, parametrized over the registry."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab import layers
from cnnlab.layers import AvgPool2d, BatchNorm, BatchNorm2d, Conv2d, batch_stats, make_divisible
from cnnlab.probe import probe
from cnnlab.registry import ARCHS, Config, Knob, KnobError, arch_names, get_spec, min_resolution, resolve

ARCH_NAMES = arch_names()


def extremes(knob: Knob):
    """The values at the edges of a knob's range (every choice for choice knobs)."""
    if knob.kind == "bool":
        return [False, True]
    if knob.kind == "choice":
        return list(knob.choices)
    if knob.kind == "ints":
        return [(int(knob.lo),) * knob.min_len, (int(knob.lo),) * knob.max_len, (8,) * knob.min_len]
    if knob.kind == "int":
        return [int(knob.lo), int(knob.hi)]
    lo = knob.lo + (knob.step or 0.05) if knob.lo_open else knob.lo
    return [lo, knob.hi]


EXTREME_CASES = [(a, k.name, v) for a in ARCH_NAMES for k in get_spec(a).knobs for v in extremes(k)]


def meta_forward(cfg: Config, batch: int = 2) -> tuple[int, ...]:
    with torch.device("meta"):
        model = cfg.build().eval()
        return tuple(model(torch.empty(batch, *cfg.input_shape)).shape)


def test_registry_has_the_book_and_the_mobilenets():
    assert {"lenet", "alexnet", "vgg", "nin", "googlenet", "resnet", "densenet",
            "mobilenet_v1", "mobilenet_v2", "mobilenet_v3"} <= set(ARCH_NAMES)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_defaults_forward_matches_trace(arch):
    """A real forward pass on a batch of 2 ends in the shape the probe's trace ends in."""
    torch.manual_seed(0)
    cfg = resolve(arch)
    model = cfg.build()
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(2, *cfg.input_shape))
    trace = probe(cfg).blocks_and_leaves()
    assert tuple(y.shape) == (2, cfg.num_classes)
    assert trace[-1].output_shape == [cfg.num_classes]
    assert torch.isfinite(y).all()
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules()), "no Lazy layers"


@pytest.mark.parametrize("arch,knob,value", EXTREME_CASES, ids=[f"{a}-{k}-{v}" for a, k, v in EXTREME_CASES])
def test_knob_extremes_build(arch, knob, value):
    spec = get_spec(arch)
    loose = resolve(arch, {knob: value}, in_channels=3, num_classes=7, check_shapes=False)
    res = max(spec.book_resolution, min_resolution(loose))  # e.g. six dense blocks need 125 px
    cfg = resolve(arch, {knob: value}, in_channels=3, num_classes=7, resolution=res)
    assert cfg.knobs[knob] == spec.knob(knob).validate(value)
    assert meta_forward(cfg) == (2, 7)
    assert probe(cfg).blocks_and_leaves()[-1].output_shape == [7]


def _expected_knob_changes():
    return [("vgg", {"ratio": 4}, -1), ("densenet", {"growth_rate": 12}, -1), ("mobilenet_v1", {"alpha": 0.5}, -1),
            ("resnet", {"depth": "34"}, +1), ("mobilenet_v3", {"size": "small"}, -1), ("googlenet", {"ratio": 2}, -1),
            ("densenet", {"bottleneck": True}, +1), ("mobilenet_v2", {"expansion": 3}, -1)]


@pytest.mark.parametrize("arch,change,sign", _expected_knob_changes())
def test_knobs_change_the_model(arch, change, sign):
    base, changed = probe(resolve(arch)).cost, probe(resolve(arch, change)).cost
    assert sign * (changed.params - base.params) > 0 and sign * (changed.macs - base.macs) > 0


def test_small_real_forward_at_extremes():
    """A few extremes run for real on CPU (not only on the meta device)."""
    for arch, knobs, res in [("vgg", {"ratio": 64, "batchnorm": True}, 32), ("densenet", {"bottleneck": True,
                             "compression": 0.25, "block_config": (2, 2)}, 32),
                             ("mobilenet_v3", {"size": "small", "alpha": 0.25, "hswish": False}, 32),
                             ("resnet", {"residual": False, "batchnorm": False}, 32),
                             ("lenet", {"batchnorm": "scratch", "activation": "relu", "pooling": "max"}, 28)]:
        cfg = resolve(arch, knobs, resolution=res)
        model = cfg.build().train()
        y = model(torch.randn(2, *cfg.input_shape))
        y.sum().backward()
        assert y.shape == (2, 10)


# -- the book's printed shapes ------------------------------------------------------------------------
# Output shape of each top-level layer/block in forward order, as the book's `layer_summary` prints them
# (d2l 7.6, 8.1-8.4, 8.6, 8.7) and MobileNet V1's Table 1. Where the book groups the head in one
# Sequential (ResNet), our top level lists its three layers; the shapes are the same.
BOOK_TRACES = {
    ("lenet", 28, ()): [[6, 28, 28], [6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 10, 10], [16, 5, 5], [400],
                        [120], [120], [84], [84], [10]],
    ("lenet", 28, (("batchnorm", "scratch"),)): [
        [6, 24, 24], [6, 24, 24], [6, 24, 24], [6, 12, 12], [16, 8, 8], [16, 8, 8], [16, 8, 8], [16, 4, 4], [256],
        [120], [120], [120], [84], [84], [84], [10]],
    ("alexnet", 224, ()): [[96, 54, 54], [96, 54, 54], [96, 26, 26], [256, 26, 26], [256, 26, 26], [256, 12, 12],
                           [384, 12, 12], [384, 12, 12], [384, 12, 12], [384, 12, 12], [256, 12, 12],
                           [256, 12, 12], [256, 5, 5], [6400], [4096], [4096], [4096], [4096], [4096], [4096], [10]],
    ("vgg", 224, ()): [[64, 112, 112], [128, 56, 56], [256, 28, 28], [512, 14, 14], [512, 7, 7], [25088],
                       [4096], [4096], [4096], [4096], [4096], [4096], [10]],
    ("nin", 224, ()): [[96, 54, 54], [96, 26, 26], [256, 26, 26], [256, 12, 12], [384, 12, 12], [384, 5, 5],
                       [384, 5, 5], [10, 5, 5], [10, 1, 1], [10]],
    ("googlenet", 96, ()): [[64, 24, 24], [192, 12, 12], [480, 6, 6], [832, 3, 3], [1024], [10]],
    ("resnet", 224, ()): [[64, 56, 56], [64, 56, 56], [128, 28, 28], [256, 14, 14], [512, 7, 7], [512, 1, 1],
                          [512], [10]],
    ("resnet", 96, ()): [[64, 24, 24], [64, 24, 24], [128, 12, 12], [256, 6, 6], [512, 3, 3], [512, 1, 1],
                         [512], [10]],
    ("densenet", 96, ()): [[64, 24, 24], [192, 24, 24], [96, 12, 12], [224, 12, 12], [112, 6, 6], [240, 6, 6],
                           [120, 3, 3], [248, 3, 3], [248, 3, 3], [248, 3, 3], [248, 1, 1], [248], [10]],
    ("mobilenet_v1", 224, ()): [[32, 112, 112], [64, 112, 112], [128, 56, 56], [128, 56, 56], [256, 28, 28],
                                [256, 28, 28]] + [[512, 14, 14]] * 6 + [[1024, 7, 7], [1024, 7, 7], [1024, 1, 1],
                                                                         [1024], [10]],
}


@pytest.mark.parametrize("key", list(BOOK_TRACES), ids=[f"{a}@{r}{'-' + str(dict(k)) if k else ''}"
                                                        for a, r, k in BOOK_TRACES])
def test_trace_equals_book(key):
    arch, res, knobs = key
    rows = probe(resolve(arch, dict(knobs), resolution=res)).layers
    assert [r.output_shape for r in rows if r.depth == 1] == BOOK_TRACES[key]


def test_shape_trace_lists_blocks_and_leaves_in_forward_order():
    rows = probe(resolve("resnet")).blocks_and_leaves()
    names = [r.name for r in rows]
    assert names[0] == "0" and names[1] == "0.0"  # the block, then its first leaf
    assert names.index("2.0.conv3") > names.index("2.0.bn2")  # conv3 runs after bn2 in forward order
    assert all(r.depth == 1 or r.is_leaf for r in rows)


# -- published params and MACs (3×224×224, 1000 classes), within 3 % -------------------------------
# torchvision's model docs (params, GFLOPS which are MACs): VGG-11 132.86 M / 7.61 G, ResNet-18 11.69 M / 1.81 G,
# DenseNet-121 7.98 M / 2.83 G, MobileNetV2 3.50 M / 0.30 G, MobileNetV3-L 5.48 M, -S 2.54 M.
# MobileNet V3 paper Table 3: Large 219 M MAdds, Small 56 M. MobileNet V1 paper Tables 6-7 (MACs; params
# 4.2/2.6/1.3 M) and TF-slim's table for 0.25 (0.47 M params; the paper rounds to 0.5 M).
PUBLISHED = [
    ("vgg", {}, 224, 132.86e6, 7.61e9),
    ("resnet", {}, 224, 11.69e6, 1.81e9),
    ("densenet", {"block_config": (6, 12, 24, 16), "bottleneck": True}, 224, 7.98e6, 2.83e9),
    ("mobilenet_v2", {}, 224, 3.50e6, 0.30e9),
    ("mobilenet_v3", {}, 224, 5.48e6, 219e6),
    ("mobilenet_v3", {"size": "small"}, 224, 2.54e6, 56e6),
    ("mobilenet_v1", {}, 224, 4.2e6, 569e6),
    ("mobilenet_v1", {"alpha": 0.75}, 224, 2.6e6, 325e6),
    ("mobilenet_v1", {"alpha": 0.5}, 224, 1.3e6, 149e6),
    ("mobilenet_v1", {"alpha": 0.25}, 224, 0.47e6, 41e6),
    ("mobilenet_v1", {"rho": 192 / 224}, 224, 4.2e6, 418e6),
    ("mobilenet_v1", {"rho": 160 / 224}, 224, 4.2e6, 290e6),
    ("mobilenet_v1", {"rho": 128 / 224}, 224, 4.2e6, 186e6),
    ("mobilenet_v1", {}, 128, 4.2e6, 186e6),  # the same via the resolution itself
]


@pytest.mark.parametrize("arch,knobs,res,params,macs", PUBLISHED,
                         ids=[f"{a}-{k}-{r}" for a, k, r, _, _ in PUBLISHED])
def test_published_params_and_macs(arch, knobs, res, params, macs):
    cost = probe(resolve(arch, knobs, in_channels=3, num_classes=1000, resolution=res)).cost
    assert cost.params == pytest.approx(params, rel=0.03)
    assert cost.macs == pytest.approx(macs, rel=0.03)


def test_probe_matches_a_real_cpu_model():
    """The meta-device probe counts the same params as the real module, and its activation bytes add up."""
    cfg = resolve("densenet", resolution=64)
    real = cfg.build()
    p = probe(cfg)
    assert p.cost.params == sum(q.numel() for q in real.parameters())
    leaves = [r for r in p.layers if r.is_leaf]
    assert p.cost.activation_bytes == 4 * sum(torch.Size(r.output_shape).numel() for r in leaves)
    assert p.cost.macs == sum(r.macs for r in p.layers if r.depth == 1)


# -- knob validation: one line naming the knob and its range -------------------------------------------
BAD = [
    ("vgg", {"ratio": 0}, "ratio must be an integer in 1..64"),
    ("vgg", {"ratio": 2.5}, "ratio must be an integer in 1..64"),
    ("vgg", {"ratio": "four"}, "ratio must be an integer in 1..64"),
    ("vgg", {"conv_arch": "vgg12"}, "conv_arch must be one of vgg11 | vgg13 | vgg16 | vgg19"),
    ("densenet", {"compression": 0}, "compression must be a number in (0, 1]"),
    ("densenet", {"compression": 1.5}, "compression must be a number in (0, 1]"),
    ("densenet", {"block_config": (4, 0)}, "block_config must be"),
    ("densenet", {"block_config": "4,x"}, "block_config must be"),
    ("mobilenet_v1", {"alpha": -1}, "alpha must be a number in (0, 2]"),
    ("mobilenet_v1", {"rho": float("nan")}, "rho must be a number in (0, 1]"),
    ("lenet", {"batchnorm": "yes"}, "batchnorm must be one of off | scratch | nn"),
    ("resnet", {"batchnorm": "maybe"}, "batchnorm must be on or off"),
    ("resnet", {"widen": 2}, "unknown knob 'widen' for resnet"),
]


@pytest.mark.parametrize("arch,knobs,msg", BAD)
def test_bad_knobs_raise_one_line(arch, knobs, msg):
    with pytest.raises(KnobError) as e:
        resolve(arch, knobs)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_unknown_arch():
    with pytest.raises(KnobError, match="unknown architecture 'lenet5'"):
        resolve("lenet5")


def _floor_chain(n: int, windows) -> int:
    """The smallest side left after a chain of (kernel, stride, padding) windows, by d2l's formula."""
    least = n
    for k, s, p in windows:
        n = (n - k + 2 * p) // s + 1
        least = min(least, n)
    return least


# The smallest resolution each book model runs at, worked out by hand from its layers (the chain that
# shrinks the map; 'same'-padded convs keep it): the oracle, independent of registry.min_resolution.
_STEM = [(7, 2, 3), (3, 2, 1)]  # ResNet / GoogLeNet / DenseNet: 7×7 conv s2 p3, 3×3 max-pool s2 p1
KNOWN_MIN = {
    "lenet": [(5, 1, 2), (2, 2, 0), (5, 1, 0), (2, 2, 0)],                          # 12 px
    "alexnet": [(11, 4, 1), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 2, 0)],  # 65 px
    "vgg": [(3, 1, 1), (2, 2, 0)] * 5,                                               # 32 px
    "nin": [(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 2, 0)],      # 67 px
    "densenet": _STEM + [(2, 2, 0)] * 3,                                             # 29 px
    "resnet": _STEM + [(3, 2, 1)] * 3,                                               # 1 px
    "googlenet": _STEM + [(3, 2, 1)] * 3,                                            # 1 px
    "mobilenet_v1": [(3, 2, 1)] * 5, "mobilenet_v2": [(3, 2, 1)] * 5,                # 1 px: 'same'-padded
    "mobilenet_v3": [(3, 2, 1)] * 5,                                                 # strided convs only
}


@pytest.mark.parametrize("arch", list(KNOWN_MIN))
def test_resolution_too_small_names_the_minimum(arch):
    """min_resolution equals the hand-worked minimum; the model really runs there on a real tensor, and one
    pixel less is refused as "input too small" naming that minimum."""
    need = next(n for n in range(1, 1025) if _floor_chain(n, KNOWN_MIN[arch]) >= 1)
    assert need == {"lenet": 12, "alexnet": 65, "vgg": 32, "nin": 67, "densenet": 29}.get(arch, 1)
    assert min_resolution(resolve(arch)) == need
    torch.manual_seed(0)
    cfg = resolve(arch, {"ratio": 16} if arch == "vgg" else {}, resolution=need)  # a narrow VGG: same sizes
    with torch.no_grad():
        assert cfg.build().eval()(torch.randn(1, *cfg.input_shape)).shape == (1, 10)  # a real forward on CPU
    if need > 1:
        with pytest.raises(KnobError, match=f"input too small: .*resolution must be at least {need} for {arch}"):
            resolve(arch, resolution=need - 1)
        loose = resolve(arch, resolution=need - 1, check_shapes=False)
        with pytest.raises(Exception):  # and the real model cannot be built or run there either
            with torch.no_grad():
                loose.build().eval()(torch.randn(1, *loose.input_shape))


def test_string_values_parse_like_the_cli():
    cfg = resolve("densenet", {"growth_rate": "12", "block_config": "6,12,24,16", "bottleneck": "on",
                               "compression": "0.5"})
    assert cfg.knobs["growth_rate"] == 12 and cfg.knobs["block_config"] == (6, 12, 24, 16)
    assert cfg.knobs["bottleneck"] is True
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_book_lr_and_defaults():
    assert get_spec("lenet").book_lr({"batchnorm": "off"}) == 0.9
    assert get_spec("lenet").book_lr({"batchnorm": "scratch"}) == 1.0
    assert {a: ARCHS[a].training.lr for a in ("alexnet", "vgg", "nin", "googlenet", "resnet", "densenet")} == {
        "alexnet": 0.01, "vgg": 0.05, "nin": 0.1, "googlenet": 0.1, "resnet": 0.05, "densenet": 0.1}


def test_make_divisible():
    assert [make_divisible(v) for v in (32, 24, 8, 4, 36, 0.25 * 1280)] == [32, 24, 8, 8, 40, 320]


# -- BatchNorm from scratch equals torch's ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(16, 5), (8, 3, 6, 6)])
def test_scratch_batchnorm_equals_nn(shape):
    torch.manual_seed(0)
    c = shape[1]
    ours = BatchNorm(c, num_dims=len(shape))
    ref = nn.BatchNorm1d(c) if len(shape) == 2 else nn.BatchNorm2d(c)
    with torch.no_grad():
        for p in (ours.gamma, ref.weight):
            p.copy_(torch.linspace(0.5, 1.5, c))
        for p in (ours.beta, ref.bias):
            p.copy_(torch.linspace(-0.2, 0.3, c))
    for step in range(5):  # train mode: outputs, gradients and running statistics agree step by step
        x = torch.randn(*shape) * (step + 1) + step
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y1, y2 = ours(x1), ref(x2)
        torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-5)
        (y1 ** 2).sum().backward()
        (y2 ** 2).sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours.running_mean, ref.running_mean)
        torch.testing.assert_close(ours.running_var, ref.running_var)
    torch.testing.assert_close(ours.gamma.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    ours.eval(), ref.eval()
    x = torch.randn(*shape) * 3 + 1
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    # and the last batch statistics are kept for the BatchNorm page
    assert ours.batch_mean.shape == (c,) and ours.batch_var.shape == (c,)


def test_scratch_batchnorm_state_lives_in_buffers():
    bn = BatchNorm(4)
    assert set(bn.state_dict()) == {"gamma", "beta", "running_mean", "running_var"}
    bn(torch.randn(8, 4, 3, 3))
    bn2 = BatchNorm(4)
    bn2.load_state_dict(bn.state_dict())
    torch.testing.assert_close(bn2.running_var, bn.running_var)
    assert bn.to(torch.float64).running_mean.dtype == torch.float64


@pytest.mark.parametrize("shape,layout,kw", [
    ((8, 6, 24, 24), "nchw", {}), ((8, 16, 8, 8), "nhwc", {}), ((3, 1, 6, 4), "nchw", {}),
    ((2, 5, 4, 6), "nhwc", {}), ((4, 3, 7, 8), "nchw", {}),               # odd height: torch's own kernel
    ((4, 3, 8, 8), "nchw", {"stride": 1}), ((4, 3, 8, 8), "nchw", {"padding": 1}),
    ((2, 6, 10, 10), "slice", {}),                                          # neither layout: torch's kernel
])
def test_fast_avgpool_equals_torch(shape, layout, kw):
    """cnnlab's AvgPool2d (fast 2×2 path on CPU) gives torch's values and gradients, keeping the layout."""
    kw = {"kernel_size": 2, "stride": 2, **kw}
    torch.manual_seed(0)
    base = torch.randn(*shape, dtype=torch.float64)
    x = {"nchw": base, "nhwc": base.contiguous(memory_format=torch.channels_last),
         "slice": torch.randn(shape[0], shape[1] * 2, shape[2], shape[3], dtype=torch.float64)[:, ::2]}[layout]
    x1, x2 = x.detach().requires_grad_(), x.detach().clone().requires_grad_()
    assert x1.stride() == x.stride()
    ours, ref = AvgPool2d(**kw)(x1), nn.AvgPool2d(**kw)(x2)
    fast = layout != "slice" and kw == {"kernel_size": 2, "stride": 2} and shape[2] % 2 == 0 and shape[3] % 2 == 0
    assert ("_Pool2x2" in type(ours.grad_fn).__name__) == fast, type(ours.grad_fn).__name__
    assert ours.shape == ref.shape and torch.allclose(ours, ref)
    if layout == "nhwc":
        assert ours.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(ref)
    ours.backward(g)
    ref.backward(g)
    assert torch.allclose(x1.grad, x2.grad)
    assert type(AvgPool2d(2)).__name__ == "AvgPool2d" and isinstance(AvgPool2d(2), nn.AvgPool2d)


@pytest.mark.parametrize("shape,momentum,layout,input_grad", [
    ((32, 6, 12, 12), 0.1, "nchw", True), ((16, 4, 5, 5), None, "nchw", False),
    ((8, 3, 4, 4), 0.3, "nhwc", True), ((2, 5, 1, 1), 0.1, "nchw", True)])
def test_fast_batchnorm2d_equals_torch(shape, momentum, layout, input_grad):
    """cnnlab's BatchNorm2d (fast CPU training path) = nn.BatchNorm2d: outputs, all gradients, running
    statistics and num_batches_tracked over several training steps, then eval mode."""
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(shape[1], momentum=momentum), nn.BatchNorm2d(shape[1], momentum=momentum)
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
        assert ("_BNTrain" in type(y1.grad_fn).__name__) == (layout == "nchw")
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


@pytest.mark.parametrize("path", ["batch-as-channels", "torch"])
@pytest.mark.parametrize("shape,out,k,pad,bias,input_grad,layout", [
    ((16, 6, 12, 12), 16, 5, 0, True, True, "nchw"), ((8, 1, 10, 10), 6, 5, 2, True, False, "nchw"),
    ((4, 3, 9, 7), 5, 3, 1, False, True, "nhwc")])
def test_conv2d_weight_grad_paths_equal_torch(path, shape, out, k, pad, bias, input_grad, layout, monkeypatch):
    """Both backward paths of cnnlab's Conv2d give nn.Conv2d's output and gradients; the path is forced
    through the per-shape choice table the timing fills."""
    monkeypatch.setattr(layers, "_CONV_CHOICE", {})
    torch.manual_seed(0)
    ours = Conv2d(shape[1], out, k, padding=pad, bias=bias)
    ref = nn.Conv2d(shape[1], out, k, padding=pad, bias=bias)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(*shape)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(input_grad), x.clone().requires_grad_(input_grad)
    layers._CONV_CHOICE[ours.tune_key(x1)] = path == "batch-as-channels"
    y1, y2 = ours(x1), ref(x2)
    assert ("_ConvBatchGrad" in type(y1.grad_fn).__name__) == (path == "batch-as-channels")
    torch.testing.assert_close(y1, y2)
    g = torch.randn_like(y2)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    if input_grad:
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)


def test_conv2d_times_once_per_shape_and_not_in_eval_or_big(monkeypatch):
    """The choice is made once per shape (no draw from the global RNG), skipped in eval mode, off the CPU
    training path and for convolutions too big to time."""
    monkeypatch.setattr(layers, "_CONV_CHOICE", {})
    conv = Conv2d(6, 16, 5)
    x = torch.randn(32, 6, 12, 12)
    state = torch.random.get_rng_state()
    conv(x)
    assert torch.equal(state, torch.random.get_rng_state())
    assert list(layers._CONV_CHOICE) == [conv.tune_key(x)]
    calls = []
    monkeypatch.setattr(Conv2d, "_tune", lambda self, x: calls.append(1) or False)
    conv(x)
    conv.eval()
    conv(torch.randn(8, 6, 12, 12))
    with torch.no_grad():
        conv.train()(torch.randn(4, 6, 12, 12))
    assert calls == [] and len(layers._CONV_CHOICE) == 1
    monkeypatch.undo()
    monkeypatch.setattr(layers, "_CONV_CHOICE", {})
    big = Conv2d(64, 64, 3, padding=1)
    assert big._tune(torch.randn(64, 64, 56, 56)) is False   # 7.4e9 multiply-adds: torch's path, untimed
