"""Structure diagrams (cnnlab.diagram): one per registered architecture, with the channel numbers the shape trace
has, the special blocks drawn as the book draws them, and the Architecture page's block filter (AppTest)."""
import pytest
import torch
from helpers import assert_no_exception, open_page

from cnnlab.diagram import diagram
from cnnlab.probe import probe
from cnnlab.registry import arch_names, resolve


def _d(arch, knobs=None, **dims):
    cfg = resolve(arch, knobs or {}, **dims)
    pr = probe(cfg)
    with torch.device("meta"):
        model = cfg.build()
    return diagram(model, pr.layers), {r.name: r for r in pr.layers}


@pytest.mark.parametrize("arch", arch_names())
def test_every_architecture_has_a_diagram_whose_blocks_are_table_rows(arch):
    d, rows = _d(arch)
    assert d.blocks
    for b in d.blocks:
        assert b.name in rows, b.name  # a block is a row of the layer table (the filter uses it)
        assert b.nodes
    dot = d.to_dot(highlight=d.blocks[0].name)
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == len(d.blocks)
    assert len(d.links) == len(d.blocks) - 1  # one chain from input to output


def test_inception_branches_match_the_trace():
    d, rows = _d("googlenet", resolution=96)
    inc = [b for b in d.blocks if b.title.startswith("Inception")]
    assert len(inc) == 9
    for b in inc:
        assert sum(b.channels["branches"]) == b.channels["out"] == rows[b.name].output_shape[0]
        for i, c in enumerate(b.channels["branches"], start=1):
            last = max((n for n in rows if n.startswith(f"{b.name}.b{i}_")), key=lambda n: n)
            assert rows[last].output_shape[0] == c
    assert inc[0].channels["branches"] == [64, 128, 32, 32]  # Szegedy et al. 2015, Table 1: inception (3a)


def test_densenet_grows_by_k_and_transitions_keep_theta():
    for k, theta in ((32, 0.5), (12, 1.0)):
        d, rows = _d("densenet", {"growth_rate": k, "compression": theta}, resolution=96)
        dense = [b for b in d.blocks if b.title.startswith("Dense")]
        trans = [b for b in d.blocks if b.title.startswith("Transition")]
        assert dense and trans
        for b in dense:
            c0 = b.channels["c0"]
            assert b.channels["steps"] == [c0 + i * k for i in range(len(b.channels["steps"]))]
            assert b.channels["out"] == rows[b.name].output_shape[0]
        for t in trans:
            assert t.channels["out"] == int(t.channels["in"] * theta) == rows[t.name].output_shape[0]


def test_resnet_shortcut_is_a_1x1_conv_only_where_shape_changes_and_dashed_when_off():
    d, rows = _d("resnet", resolution=96)
    res = [b for b in d.blocks if b.title.startswith("Residual")]
    for b in res:
        first_conv = rows[b.name + ".conv1"]
        changes = b.channels["in"] != b.channels["out"] or first_conv.stride not in (1, [1, 1])
        assert b.channels["conv1x1"] == changes, b.name
        assert b.channels["out"] == rows[b.name].output_shape[0]
    assert not any(style == "dashed" for b in res for _, _, style, _ in b.edges)
    off, _ = _d("resnet", {"residual": False}, resolution=96)
    assert all(any(style == "dashed" for _, _, style, _ in b.edges)
               for b in off.blocks if b.title.startswith("Residual"))


def test_nin_mlp_convs_and_mobilenet_depthwise_pointwise():
    d, _ = _d("nin", resolution=224)
    nin = [b for b in d.blocks if b.title.startswith("NiN block")]
    assert len(nin) == 4 and all("1×1 conv" in lbl and "(MLP)" in lbl for b in nin for _, lbl in b.nodes[1:])
    d, rows = _d("mobilenet_v1", in_channels=3, num_classes=1000, resolution=224)
    sep = [b for b in d.blocks if b.title.startswith("Depthwise")]
    assert len(sep) == 13 and all(b.channels["out"] == rows[b.name].output_shape[0] for b in sep)
    assert "depthwise" in sep[0].nodes[0][1] and "pointwise" in sep[0].nodes[1][1]
    d, _ = _d("mobilenet_v3", in_channels=3, num_classes=1000, resolution=224)
    assert any(lbl.startswith("SE ") for b in d.blocks for _, lbl in b.nodes)


def test_picking_a_block_filters_the_layer_table():
    at = open_page("app_pages/architecture.py")
    at.selectbox(key="arch_arch").set_value("googlenet").run()
    assert_no_exception(at)
    full = len(at.dataframe[0].value)
    at.button_group(key="arch_block").set_value("2.0").run() if hasattr(at, "button_group") else \
        at.get_by_key("arch_block").set_value("2.0").run()
    assert_no_exception(at)
    part = at.dataframe[0].value
    assert 1 < len(part) < full
    names = [str(x).strip() for x in part.iloc[:, 1]]
    assert names[0] == "2.0" and all(n.startswith("2.0") for n in names)
    assert part.iloc[0, 0] > 1  # the rows keep their numbers in the whole table
    assert any("Rows of block 2.0 only" in c.value for c in at.caption)
