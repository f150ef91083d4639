"""Layer arithmetic: output sizes, receptive fields, "input too small" and builder bugs (issue #14 §1, #9).

The oracles are worked out here by hand from each network's layers (or are published figures), never by
the code under test: VGG-16's pool5 212 px, AlexNet's pool5 195 px, ResNet-18's last conv 435 px.
"""
from __future__ import annotations

import itertools
import pickle

import pytest
import torch
from torch import nn

from cnnlab import arithmetic, layers
from cnnlab.layers import DenseBlock, Inception, InvertedResidual, Residual, flat_features
from cnnlab.caches import CACHE
from cnnlab.errors import InputTooSmall, KnobError
from cnnlab.measure import fitting, measure
from cnnlab.probe import output_size_formula, probe_model, receptive_field_formula
from cnnlab.registry import ARCHS, ArchSpec, BookTraining, register, resolve


def hand_field(windows) -> list[int]:
    """Receptive field after each (kernel, stride) of a plain chain: r += (k − 1)·j; j *= s (from r = j = 1)."""
    r, j, out = 1, 1, []
    for k, s in windows:
        r += (k - 1) * j
        j *= s
        out.append(r)
    return out


def windows_of(p, types=("Conv2d", "MaxPool2d", "AvgPool2d")):
    return [r for r in p.layers if r.type in types]


# -- receptive fields of the book's networks --------------------------------------------------------------

def test_lenet_fields():
    rows = windows_of(measure(resolve("lenet")))
    assert [r.receptive_field for r in rows] == hand_field([(5, 1), (2, 2), (5, 1), (2, 2)]) == [5, 6, 14, 16]
    assert [r.jump for r in rows] == [1, 2, 2, 4]


def test_alexnet_fields_end_at_195():
    rows = windows_of(measure(resolve("alexnet")))
    chain = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)]
    assert [r.receptive_field for r in rows] == hand_field(chain)
    assert rows[0].receptive_field == 11 and rows[1].receptive_field == 19 and rows[-1].receptive_field == 195


def test_vgg16_conv5_3_is_196_and_pool5_212():
    rows = windows_of(measure(resolve("vgg", {"conv_arch": "vgg16"})))
    chain = []
    for n in (2, 2, 3, 3, 3):
        chain += [(3, 1)] * n + [(2, 2)]
    assert [r.receptive_field for r in rows] == hand_field(chain)
    assert [r.receptive_field for r in rows[-2:]] == [196, 212]  # conv5_3 and pool5 (published figures)


def test_resnet18_last_conv_is_435_and_the_global_pool_covers_the_map():
    p = measure(resolve("resnet", resolution=224))
    convs = [r for r in p.layers if r.type == "Conv2d" and not r.name.endswith("conv3")]  # the main path
    # stem 7/2, max-pool 3/2, then 16 3×3 convs, the first of stages 2-4 with stride 2
    chain = [(7, 2), (3, 2)] + [(3, 1)] * 4 + ([(3, 2)] + [(3, 1)] * 3) * 3
    assert [r.receptive_field for r in convs] == [f for i, f in enumerate(hand_field(chain)) if i != 1]
    assert convs[-1].receptive_field == 435 and convs[-1].jump == 32
    pool = next(r for r in p.layers if r.type == "AdaptiveAvgPool2d")
    assert pool.kernel_size == 7 and pool.stride == 7 and pool.input_shape == [512, 7, 7]
    assert pool.receptive_field == 435 + (7 - 1) * 32  # a window the size of the map: r_in + (n − 1)·j_in
    stage = {r.name: r for r in p.layers}
    assert stage["4"].receptive_field == 435  # a block's field is its output's: the longest path (not the shortcut)


def test_flatten_and_dense_layers_have_no_field_and_layers_before_the_first_window_none():
    p = probe_model(nn.Sequential(nn.ReLU(), nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)), (1, 8, 8))
    assert [r.receptive_field for r in p.layers] == [None, 3, None, None]
    assert [r.kernel_size for r in p.layers] == [None, 3, None, None]


# -- branches: the field is the max over the paths that meet -----------------------------------------------

def _block_field(block, shape=(8, 16, 16)):
    rows = probe_model(nn.Sequential(block), shape).layers
    return rows[0].receptive_field, rows[0].jump


def test_inception_takes_its_widest_branch():
    # branches: 1×1 → 1; 1×1 → 3×3 → 3; 1×1 → 5×5 → 5; 3×3 pool → 1×1 → 3. Not a chain of all seven (1+2+4+2 = 9).
    assert _block_field(Inception(8, 4, (4, 4), (4, 4), 4)) == (5, 1)


def test_dense_block_grows_by_each_conv():
    assert _block_field(DenseBlock(3, 8, 4)) == (1 + 3 * 2, 1)  # three 3×3 convs, each seeing all before


def test_residual_with_a_strided_shortcut():
    # conv1 3×3 stride 2: r 3, j 2; conv2 3×3: 3 + 2·2 = 7; the 1×1 shortcut (r 1) does not win the max
    assert _block_field(Residual(8, 8, use_1x1conv=True, strides=2)) == (7, 2)


def test_a_squeeze_excite_gate_does_not_make_the_field_global():
    block = InvertedResidual(8, 16, 8, kernel_size=5, se_channels=4)
    assert _block_field(block) == (5, 1)  # the 5×5 depthwise conv only


def test_dilation_and_groups():
    p = probe_model(nn.Sequential(nn.Conv2d(4, 4, 3, dilation=2, groups=4)), (4, 10, 10))
    r = p.layers[0]
    assert (r.kernel_size, r.dilation, r.groups, r.receptive_field, r.output_shape) == (3, 2, 4, 5, [4, 6, 6])
    assert output_size_formula(r) == "⌊(10 − 2·(3 − 1) − 1 + 2·0)/1⌋ + 1 = 6"
    assert receptive_field_formula(r) == "r = 1 + (3 − 1)·2·1 = 5, j = 1·1 = 1"
    depthwise = [x for x in measure(resolve("mobilenet_v1")).layers if x.type == "Conv2d"][1]
    assert depthwise.groups == depthwise.input_shape[0] == 32


def test_non_square_windows_are_listed_per_dimension():
    p = probe_model(nn.Sequential(nn.Conv2d(1, 1, (3, 5), stride=(1, 2), padding=(1, 0))), (1, 9, 9))
    r = p.layers[0]
    assert (r.kernel_size, r.stride, r.padding, r.receptive_field, r.output_shape) == ([3, 5], [1, 2], [1, 0],
                                                                                      [3, 5], [1, 9, 3])
    assert output_size_formula(r) == "H: ⌊(9 − 3 + 2·1)/1⌋ + 1 = 9; W: ⌊(9 − 5 + 2·0)/2⌋ + 1 = 3"


# -- the formulas, against torch --------------------------------------------------------------------------

def test_output_size_equals_torch_for_convs_and_pools():
    for n, k, s, p, d in itertools.product((5, 7, 12), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        if d * (k - 1) + 1 > n + 2 * p:
            continue
        x = torch.empty(1, 1, n, n, device="meta")
        conv = nn.Conv2d(1, 1, k, s, p, dilation=d, device="meta")
        assert conv(x).shape[-1] == arithmetic.output_size(n, k, s, p, d), (n, k, s, p, d)
        if p <= k // 2:
            for ceil in (False, True):
                pool = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
                assert pool(x).shape[-1] == arithmetic.output_size(n, k, s, p, d, ceil), (n, k, s, p, d, ceil)


def test_the_formula_shows_the_book_numbers():
    """d2l 8.1 prints AlexNet's first conv as 96×54×54 at 224: ⌊(224 − 11 + 2·1)/4⌋ + 1 = 54."""
    first = measure(resolve("alexnet")).layers[0]
    assert output_size_formula(first) == "⌊(224 − 11 + 2·1)/4⌋ + 1 = 54"
    assert receptive_field_formula(first) == "r = 1 + (11 − 1)·1 = 11, j = 1·4 = 4"
    assert output_size_formula(first, latex=True) == r"\left\lfloor \frac{224 - 11 + 2 \cdot 1}{4} \right\rfloor + 1 = 54"
    relu = measure(resolve("alexnet")).layers[1]
    assert output_size_formula(relu) is None and receptive_field_formula(relu) is None


# -- input too small --------------------------------------------------------------------------------------

def test_too_small_names_the_layer_and_its_formula():
    with pytest.raises(InputTooSmall) as e:
        fitting("alexnet", resolution=32)
    err = e.value
    assert isinstance(err, KnobError) and "\n" not in str(err)
    assert str(err).startswith("input too small: layer 5 (MaxPool2d) gets 2×2, ⌊(2 − 3 + 2·0)/2⌋ + 1 = 0; ")
    assert (err.layer, err.layer_type, err.input_hw) == ("5", "MaxPool2d", (2, 2))
    back = pickle.loads(pickle.dumps(err))  # crosses process boundaries with its fields
    assert isinstance(back, InputTooSmall) and str(back) == str(err) and back.layer == "5"


def test_too_small_trace_uses_the_model_names():
    """LeNet drops its Identity (no-BN) layers from the final model, so the features' own indices differ from
    the model's: the trace must name the layers as the layer table does. At 10 px: 10 → 10 → 5 → 1, then the
    2×2 pool gets 1×1."""
    m = measure(resolve("lenet", resolution=10))
    rows, err = list(m.layers), m.error
    assert [(r.name, r.type) for r in rows] == [("0", "Conv2d"), ("1", "Sigmoid"), ("2", "AvgPool2d"),
                                                ("3", "Conv2d"), ("4", "Sigmoid"), ("5", "AvgPool2d")]
    assert rows[-1].too_small and rows[-1].output_shape == [16, 0, 0] and rows[-1].macs is None
    assert err.formula == "⌊(1 − 2 + 2·0)/2⌋ + 1 = 0"
    assert measure(resolve("lenet")).error is None and not measure(resolve("lenet")).layers[-1].too_small


def test_flat_features_raises_input_too_small_and_lets_a_bug_through():
    """A window larger than its input is "too small" (cnnlab.measure then names the layer); a builder's own
    mistake (a channel mismatch) is not, and propagates. The module itself is neither moved nor changed."""
    feats = nn.Sequential(nn.Conv2d(1, 2, 5), nn.BatchNorm2d(2), nn.Flatten()).train()
    assert flat_features(feats, (1, 7, 7)) == 2 * 3 * 3
    assert feats.training and feats[0].weight.device.type == "cpu" and int(feats[1].num_batches_tracked) == 0
    with pytest.raises(InputTooSmall, match="input too small"):
        flat_features(feats, (1, 4, 4))
    with pytest.raises(InputTooSmall, match="input too small"):
        flat_features(nn.Sequential(nn.MaxPool2d(3, 2), nn.Flatten()), (1, 2, 2))
    with pytest.raises(RuntimeError) as e:
        flat_features(nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten()), (1, 7, 7))
    assert not isinstance(e.value, InputTooSmall)


# -- a builder bug is a bug, not "does not fit" (issue #9) ----------------------------------------------

def _spec(name, builder):
    return ArchSpec(name=name, title_en=name, title_zh=name, builder=builder, knobs=(), book_resolution=28,
                    training=BookTraining(lr=0.1, batch_size=8, resolution=28), source="test")


@pytest.fixture
def temp_arch(monkeypatch):
    def add(name, builder):
        monkeypatch.setitem(ARCHS, name, _spec(name, builder))
        CACHE.clear()
        return name
    yield add
    CACHE.clear()


def test_a_builder_bug_surfaces_as_its_own_error(temp_arch):
    def broken(**kw):
        return [][0]  # IndexError: a bug in the builder

    name = temp_arch("_broken_build", broken)
    with pytest.raises(IndexError):
        fitting(name)
    with pytest.raises(IndexError):  # the measurement itself lets it through (it used to say "does not fit")
        measure(resolve(name))


def test_a_forward_bug_surfaces_as_its_own_error(temp_arch):
    class Bad(nn.Module):
        def forward(self, x):
            raise ValueError("bug in forward")

    name = temp_arch("_broken_forward", lambda **kw: Bad())
    with pytest.raises(ValueError, match="bug in forward") as e:
        fitting(name)
    assert not isinstance(e.value, KnobError)
    with pytest.raises(ValueError, match="bug in forward"):
        measure(resolve(name))


def test_a_wrong_output_shape_is_a_bug(temp_arch):
    with pytest.raises(RuntimeError, match="builds an output of shape"):
        fitting(temp_arch("_wrong_head", lambda **kw: nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 3))))


def test_register_still_rejects_a_duplicate():
    with pytest.raises(AssertionError):
        register(ARCHS["lenet"])


def test_layers_module_exposes_flat_features():
    assert layers.flat_features is flat_features
