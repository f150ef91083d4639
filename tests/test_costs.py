"""Costs explained (cnnlab.costs): the split by layer kind, MobileNet's block arithmetic against the probe's
ledger and the paper's Table 4, and the Architecture page's panels (AppTest)."""
import pytest
from helpers import assert_no_exception, open_page

from cnnlab import costs
from cnnlab.measure import measure
from cnnlab.registry import arch_names, resolve


def _probe(arch, knobs=None, **dims):
    return measure(resolve(arch, knobs or {}, **{"in_channels": 1, "num_classes": 10, **dims}))


@pytest.mark.parametrize("arch", arch_names())
def test_kinds_sum_to_the_ledger(arch):
    pr = _probe(arch)
    k = costs.by_kind(pr.layers, pr.cost.params, pr.cost.macs)
    assert sum(v["params"] for v in k.values()) == pr.cost.params
    assert sum(v["macs"] for v in k.values()) == pr.cost.macs
    assert sum(v["params_share"] for v in k.values()) == pytest.approx(1.0)


def test_alexnet_parameters_live_in_its_dense_layers_nin_has_none():
    """d2l 7.3: NiN drops AlexNet's dense layers — about 2 M parameters against about 47 M."""
    alex, nin = _probe("alexnet", resolution=224), _probe("nin", resolution=224)
    ka, kn = (costs.by_kind(p.layers, p.cost.params, p.cost.macs) for p in (alex, nin))
    assert ka["linear"]["params_share"] > 0.9
    assert kn["linear"]["params"] == 0 and kn["conv"]["params"] == nin.cost.params
    assert round(nin.cost.params / 1e6, 2) == 1.99 and round(alex.cost.params / 1e6, 1) == 46.8


def test_separable_blocks_match_the_ledger_and_the_papers_formula():
    pr = _probe("mobilenet_v1", in_channels=3, num_classes=1000, resolution=224)
    blocks = costs.separable_blocks(pr.layers)
    assert len(blocks) == 13
    for b in blocks:
        assert b.ledger == b.depthwise + b.pointwise  # the probe counts exactly the formula
        assert b.ratio == pytest.approx(b.ratio_formula)
        assert b.standard == b.D_K ** 2 * b.M * b.N * b.H * b.W
    first = blocks[0]
    assert (first.M, first.N, first.H) == (32, 64, 112)
    assert "3²·32·64·112²" in first.formulas()["standard"]


def test_conv_mobilenet_against_the_papers_table_4():
    """Howard et al. 2017, Table 4: Conv MobileNet 4866 M mult-adds, 29.3 M params; MobileNet 569 M, 4.2 M."""
    conv = _probe("mobilenet_v1", {"separable": False}, in_channels=3, num_classes=1000, resolution=224)
    sep = _probe("mobilenet_v1", {"separable": True}, in_channels=3, num_classes=1000, resolution=224)
    assert round(conv.cost.macs / 1e6) == pytest.approx(4866, abs=3)
    assert round(sep.cost.macs / 1e6) == 569
    assert round(conv.cost.params / 1e6, 1) == 29.3 and round(sep.cost.params / 1e6, 1) == 4.2
    # each standard block's conv is exactly the "standard" figure of the separable block it replaces
    std = [r.macs for r in conv.layers if r.depth == 2 and r.type == "Conv2d" and r.name.split(".")[0] != "0"]
    assert std == [b.standard for b in costs.separable_blocks(sep.layers)]
    assert costs.separable_blocks(conv.layers) == []


@pytest.mark.parametrize("arch", ["mobilenet_v2", "mobilenet_v3"])
def test_inverted_blocks_match_the_ledger(arch):
    pr = _probe(arch, in_channels=3, num_classes=1000, resolution=224)
    blocks = costs.inverted_blocks(pr.layers)
    assert blocks
    roles = set()
    for b in blocks:
        for p in b.parts:
            roles.add(p.role)
            assert p.macs == p.ledger_macs, (b.block, p)
            assert p.params == p.ledger_params, (b.block, p)
    assert {"expand", "depthwise", "project"} <= roles
    assert ("se" in roles) == (arch == "mobilenet_v3")


def test_se_adds_about_two_c_squared_over_r():
    for r in (4, 8):
        pr = _probe("mobilenet_v3", {"se_reduction": r}, in_channels=3, num_classes=1000, resolution=224)
        for b in costs.inverted_blocks(pr.layers):
            se = [p for p in b.parts if p.role == "se"]
            if se:
                S = (se[0].params - b.E) // (2 * b.E + 1)
                assert se[0].params == 2 * b.E * S + S + b.E
                assert abs(S - b.E / r) <= 8  # S = E/r rounded to a multiple of 8


def test_architecture_page_shows_the_kind_split_and_the_block_panel():
    at = open_page("app_pages/architecture.py")
    assert at.get_by_key("arch_kinds_fig") is not None
    at.selectbox(key="arch_arch").set_value("mobilenet_v1").run()
    assert_no_exception(at)
    text = " ".join(m.value for m in at.markdown)
    assert "D_K²·M·N·D_F²" in text and "1/N + 1/D_K²" in text and "the ledger counts" in text
    at.selectbox(key="arch_sep_block").set_value("2").run()
    assert_no_exception(at)
    assert "1/128 + 1/9" in " ".join(m.value for m in at.markdown)
    at.selectbox(key="arch_arch").set_value("mobilenet_v3").run()
    assert_no_exception(at)
    at.selectbox(key="arch_inv_block").set_value("4").run()  # V3-Large's 4th block has squeeze-and-excite
    assert_no_exception(at)
    assert "2·E·S + S + E = 2·72·24 + 24 + 72" in " ".join(m.value for m in at.markdown)


def test_compare_mode_puts_b_beside_a_with_its_change(monkeypatch):
    at = open_page("app_pages/architecture.py")
    at.selectbox(key="arch_arch").set_value("alexnet").run()
    at.toggle(key="arch_compare").set_value(True).run()
    assert_no_exception(at)
    at.selectbox(key="cmp_arch").set_value("nin").run()
    assert_no_exception(at)
    a = at.get_by_key("cmp_cost_a")
    b = at.get_by_key("cmp_cost_b")
    assert a is not None and b is not None
    deltas = [m.proto.delta for m in at.metric if "× A" in m.proto.delta]
    assert deltas and deltas[0].startswith("-96%"), deltas  # NiN has 4 % of AlexNet's parameters (1.99 / 46.8)
    assert len(at.dataframe) == 3  # the page's layer table, then A's and B's
