"""The model zoo: every registered architecture, parametrized over the registry."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab import cpu_fast
from cnnlab.layers import BatchNorm, make_divisible, norm_factory
from cnnlab.measure import fitting, measure, smallest_input
from cnnlab.registry import ARCHS, Config, Knob, KnobError, arch_names, get_spec, resolve

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
    trace = measure(cfg).blocks_and_leaves()
    assert tuple(y.shape) == (2, cfg.num_classes)
    assert trace[-1].output_shape == [cfg.num_classes]
    assert torch.isfinite(y).all()
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules()), "no Lazy layers"


@pytest.mark.parametrize("arch,knob,value", EXTREME_CASES, ids=[f"{a}-{k}-{v}" for a, k, v in EXTREME_CASES])
def test_knob_extremes_build(arch, knob, value):
    spec = get_spec(arch)
    loose = resolve(arch, {knob: value}, in_channels=3, num_classes=7)
    assert loose.resolution == spec.book_resolution
    # the book's resolution, or the smallest that fits when it does not (e.g. six dense blocks need 125 px);
    # the search (about ten meta forwards) only where it is needed
    res = spec.book_resolution if measure(loose).fits else smallest_input(loose)
    assert res is not None and res >= spec.book_resolution
    cfg = fitting(arch, {knob: value}, in_channels=3, num_classes=7, resolution=res)
    assert cfg.knobs[knob] == spec.knob(knob).validate(value)
    assert meta_forward(cfg) == (2, 7)
    assert measure(cfg).blocks_and_leaves()[-1].output_shape == [7]


def _expected_knob_changes():
    return [("vgg", {"ratio": 4}, -1), ("densenet", {"growth_rate": 12}, -1), ("mobilenet_v1", {"alpha": 0.5}, -1),
            ("resnet", {"depth": 34}, +1), ("mobilenet_v3", {"size": "small"}, -1), ("googlenet", {"ratio": 2}, -1),
            ("densenet", {"bottleneck": True}, +1), ("mobilenet_v2", {"expansion": 3}, -1)]


@pytest.mark.parametrize("arch,change,sign", _expected_knob_changes())
def test_knobs_change_the_model(arch, change, sign):
    base, changed = measure(resolve(arch)).cost, measure(resolve(arch, change)).cost
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
    rows = measure(resolve(arch, dict(knobs), resolution=res)).layers
    assert [r.output_shape for r in rows if r.depth == 1] == BOOK_TRACES[key]


def test_shape_trace_lists_blocks_and_leaves_in_forward_order():
    rows = measure(resolve("resnet")).blocks_and_leaves()
    names = [r.name for r in rows]
    assert names[0] == "0" and names[1] == "0.0"  # the block, then its first leaf
    assert names.index("2.0.conv3") > names.index("2.0.bn2")  # conv3 runs after bn2 in forward order
    assert all(r.depth == 1 or r.is_leaf for r in rows)


# -- published params and MACs (3×224×224, 1000 classes) -------------------------------------------
# torchvision's VGG-11, MobileNetV2 and MobileNetV3 (Large, Small) are the same networks as ours, so they are
# counted live here (torchvision's own module; MACs by torchinfo, as our probe counts) and must agree exactly.
TORCHVISION_SAME = [("vgg", {}, "vgg11"), ("mobilenet_v2", {}, "mobilenet_v2"),
                    ("mobilenet_v3", {}, "mobilenet_v3_large"), ("mobilenet_v3", {"size": "small"}, "mobilenet_v3_small")]


@pytest.mark.parametrize("arch,knobs,tv", TORCHVISION_SAME, ids=[t for _, _, t in TORCHVISION_SAME])
def test_params_and_macs_equal_torchvisions_exactly(arch, knobs, tv):
    import torchinfo
    import torchvision

    ref = getattr(torchvision.models, tv)()
    ref_macs = torchinfo.summary(ref, (1, 3, 224, 224), verbose=0).total_mult_adds
    cost = measure(resolve(arch, knobs, in_channels=3, num_classes=1000, resolution=224)).cost
    assert (cost.params, cost.macs) == (sum(p.numel() for p in ref.parameters()), ref_macs)


# The papers' and torchvision's printed figures, for the networks that are not torchvision's twins: within one
# unit of the last digit printed (e.g. 4.2 M is 4.1–4.3 M). MobileNet V1 paper Tables 6-7 (MACs; params
# 4.2/2.6/1.3 M) and TF-slim's table for 0.25 (0.47 M; the paper rounds to 0.5 M). d2l's ResNet-18 and
# DenseNet-121 against torchvision's docs (11.69 M / 1.81 G, 7.98 M / 2.83 G): the book's blocks are not
# torchvision's layer for layer (its Residual and conv_block differ in biases and order), so 2 units.
PUBLISHED = [
    ("mobilenet_v1", {}, 224, (4.2e6, 0.1e6), (569e6, 1e6)),
    ("mobilenet_v1", {"alpha": 0.75}, 224, (2.6e6, 0.1e6), (325e6, 1e6)),
    ("mobilenet_v1", {"alpha": 0.5}, 224, (1.3e6, 0.1e6), (149e6, 1e6)),
    ("mobilenet_v1", {"alpha": 0.25}, 224, (0.47e6, 0.01e6), (41e6, 1e6)),
    ("mobilenet_v1", {"rho": 192 / 224}, 224, (4.2e6, 0.1e6), (418e6, 1e6)),
    ("mobilenet_v1", {"rho": 160 / 224}, 224, (4.2e6, 0.1e6), (290e6, 1e6)),
    ("mobilenet_v1", {"rho": 128 / 224}, 224, (4.2e6, 0.1e6), (186e6, 1e6)),
    ("mobilenet_v1", {}, 128, (4.2e6, 0.1e6), (186e6, 1e6)),  # the same via the resolution itself
    ("resnet", {}, 224, (11.69e6, 0.02e6), (1.81e9, 0.02e9)),
    ("densenet", {"block_config": (6, 12, 24, 16), "bottleneck": True}, 224, (7.98e6, 0.02e6), (2.83e9, 0.02e9)),
]


@pytest.mark.parametrize("arch,knobs,res,params,macs", PUBLISHED,
                         ids=[f"{a}-{k}-{r}" for a, k, r, _, _ in PUBLISHED])
def test_published_params_and_macs(arch, knobs, res, params, macs):
    cost = measure(resolve(arch, knobs, in_channels=3, num_classes=1000, resolution=res)).cost
    assert abs(cost.params - params[0]) <= params[1], (cost.params, params)
    assert abs(cost.macs - macs[0]) <= macs[1], (cost.macs, macs)


def test_probe_matches_a_real_cpu_model():
    """The meta-device probe counts the same params as the real module, and its activation bytes add up."""
    cfg = resolve("densenet", resolution=64)
    real = cfg.build()
    p = measure(cfg)
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
# shrinks the map; 'same'-padded convs keep it): the oracle, independent of cnnlab.measure.smallest_input.
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
    """smallest_input equals the hand-worked minimum; the model really runs there on a real tensor, and one
    pixel less is refused as "input too small" naming that minimum."""
    need = next(n for n in range(1, 1025) if _floor_chain(n, KNOWN_MIN[arch]) >= 1)
    assert need == {"lenet": 12, "alexnet": 65, "vgg": 32, "nin": 67, "densenet": 29}.get(arch, 1)
    assert smallest_input(resolve(arch)) == need
    torch.manual_seed(0)
    cfg = resolve(arch, {"ratio": 16} if arch == "vgg" else {}, resolution=need)  # a narrow VGG: same sizes
    with torch.no_grad():
        assert cfg.build().eval()(torch.randn(1, *cfg.input_shape)).shape == (1, 10)  # a real forward on CPU
    if need > 1:
        with pytest.raises(KnobError, match=f"input too small: .*resolution must be at least {need} for {arch}"):
            fitting(arch, resolution=need - 1)
        loose = resolve(arch, resolution=need - 1)
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


# -- plain torch.nn modules: what the knob names is what is built -----------------------------------------
BOOK_BLOCKS = {"BatchNorm", "Inception", "Residual", "DenseBlock", "DepthwiseSeparable", "SqueezeExcite",
               "InvertedResidual"}


def _knob_variants(arch):
    """The defaults, then every value of every bool/choice knob (one at a time)."""
    out = [{}]
    for k in get_spec(arch).knobs:
        if k.kind in ("bool", "choice"):
            out += [{k.name: v} for v in extremes(k) if v != k.default]
    return out


PLAIN_CASES = [(a, kn) for a in ARCH_NAMES for kn in _knob_variants(a)]


@pytest.mark.parametrize("arch,knobs", PLAIN_CASES, ids=[f"{a}-{k}" for a, k in PLAIN_CASES])
def test_models_are_built_from_plain_torch_modules(arch, knobs):
    """Every module of a freshly built model is torch.nn's own class or one of the book's blocks
    (cnnlab.layers); none is a CPU fast class (those exist only after cpu_fast.apply)."""
    with torch.device("meta"):
        model = resolve(arch, knobs).build()
    for name, m in model.named_modules():
        mod, cls = type(m).__module__, type(m).__name__
        assert (mod.startswith("torch.nn.") and getattr(nn, cls) is type(m)) or \
            (mod == "cnnlab.layers" and cls in BOOK_BLOCKS), (name, type(m))
    assert cpu_fast.fast_modules(model) == []


@pytest.mark.parametrize("arch,knob", [("lenet", "batchnorm"), ("resnet", "batchnorm"), ("vgg", "batchnorm")])
def test_batchnorm_nn_is_exactly_torchs(arch, knob):
    on = "nn" if arch == "lenet" else True
    model = resolve(arch, {knob: on}).build()
    bns = [m for m in model.modules() if "BatchNorm" in type(m).__name__]
    assert bns and all(type(m) in (nn.BatchNorm2d, nn.BatchNorm1d) for m in bns), {type(m) for m in bns}
    off = resolve(arch, {knob: "off" if arch == "lenet" else False}).build()
    assert not [m for m in off.modules() if "BatchNorm" in type(m).__name__]


def test_lenet_batchnorm_knob_picks_the_class():
    kinds = {}
    for kind in ("nn", "scratch"):
        model = resolve("lenet", {"batchnorm": kind}).build()
        kinds[kind] = [(type(m), getattr(m, "num_dims", None)) for m in model.modules()
                       if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm))]
    assert kinds["nn"] == [(nn.BatchNorm2d, None)] * 2 + [(nn.BatchNorm1d, None)] * 2
    assert kinds["scratch"] == [(BatchNorm, 4)] * 2 + [(BatchNorm, 2)] * 2
    # the same module names, so checkpoints of either kind name their layers alike
    assert [n for n, _ in resolve("lenet", {"batchnorm": "nn"}).build().named_children()] == \
        [n for n, _ in resolve("lenet", {"batchnorm": "scratch"}).build().named_children()]


def test_norm_factory():
    assert norm_factory("nn") is nn.BatchNorm2d and norm_factory(True, 2) is nn.BatchNorm1d
    assert norm_factory("off") is None and norm_factory(False, 2) is None
    bn = norm_factory("scratch", 2)(7)
    assert type(bn) is BatchNorm and bn.num_dims == 2 and bn.num_features == 7
    with pytest.raises(ValueError, match="off | scratch | nn"):
        norm_factory("torch")


# -- bugs found against independent references ---------------------------------------------------------------

@pytest.mark.parametrize("batchnorm", [True, False])
def test_resnet_without_residual_has_no_unused_parameters(batchnorm):
    """residual=off builds no 1×1 shortcut convs: every counted parameter receives a gradient, and the count
    drops by exactly those convs' parameters."""
    torch.manual_seed(0)
    on = resolve("resnet", {"residual": True, "batchnorm": batchnorm}, resolution=32).build()
    off = resolve("resnet", {"residual": False, "batchnorm": batchnorm}, resolution=32).build()
    shortcut = sum(p.numel() for n, p in on.named_parameters() if ".conv3." in n)
    assert shortcut == sum(c_in * c_out + c_out for c_in, c_out in ((64, 128), (128, 256), (256, 512)))
    assert measure(resolve("resnet", {"residual": False, "batchnorm": batchnorm})).cost.params == \
        measure(resolve("resnet", {"residual": True, "batchnorm": batchnorm})).cost.params - shortcut
    assert not any(".conv3" in n for n, _ in off.named_parameters())
    for model in (on, off):
        model.train()
        model(torch.randn(4, 1, 32, 32)).sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert missing == []


def _bn_settings(model):
    return sorted({(m.eps, m.momentum) for m in model.modules() if isinstance(m, nn.BatchNorm2d)})


@pytest.mark.parametrize("size", ["large", "small"])
def test_mobilenet_v3_batchnorm_matches_torchvision(size):
    """BN eps 1e-3 and momentum 0.01 as torchvision's mobilenet_v3 (and the paper's TF code), in every BN."""
    from torchvision import models as tvm
    with torch.device("meta"):
        ours = resolve("mobilenet_v3", {"size": size}).build()
        ref = getattr(tvm, f"mobilenet_v3_{size}")()
    assert _bn_settings(ours) == _bn_settings(ref) == [(0.001, 0.01)]
    count = [sum(isinstance(m, nn.BatchNorm2d) for m in x.modules()) for x in (ours, ref)]
    assert count[0] == count[1]
    # V1 and V2 keep torch's defaults, as torchvision's mobilenet_v2 does
    with torch.device("meta"):
        assert _bn_settings(resolve("mobilenet_v2").build()) == _bn_settings(tvm.mobilenet_v2()) == [(1e-5, 0.1)]


def test_resnet_depth_is_an_int_choice_and_its_written_form_parses():
    from cnnlab.registry import KnobError, resolve
    assert resolve("resnet", {"depth": 34}).knobs["depth"] == 34
    assert resolve("resnet", {"depth": "34"}) == resolve("resnet", {"depth": 34})   # a URL / CLI value, or an old config
    with pytest.raises(KnobError, match="depth must be one of 18 | 34"):
        resolve("resnet", {"depth": 50})
    with pytest.raises(KnobError, match="depth"):
        resolve("resnet", {"depth": True})


def test_mobilenet_v1_separable_off_is_the_papers_conv_mobilenet():
    """Howard et al. 2017, Table 4: Conv MobileNet 29.3 M parameters, MobileNet 4.2 M (224², 1000 classes)."""
    from cnnlab.registry import resolve
    counts = {sep: sum(p.numel() for p in resolve("mobilenet_v1", {"separable": sep}, in_channels=3,
                                                     num_classes=1000, resolution=224).build().parameters())
              for sep in (True, False)}
    assert round(counts[True] / 1e6, 1) == 4.2
    assert round(counts[False] / 1e6, 1) == 29.3
