"""Structure diagrams (cnnlab.diagram): one per registered architecture, with the channel numbers the shape trace
has, the special blocks drawn as the book draws them, the blocks named as the book names them (in English and in
d2l-zh's Chinese), and the Architecture page's block filter (AppTest). How the diagram looks in a browser (fits its
panel, readable, no arrow through a label) is tests/test_diagram_browser.py."""
import re

import pytest
import torch
from helpers import assert_no_exception, open_page

from cnnlab.diagram import CARD, CLUSTER, ROW_WIDTH, _block_ranks, _columns, _pack, _span, diagram
from cnnlab.measure import measure
from cnnlab.registry import arch_names, resolve

ENGLISH = re.compile(r"\b(conv|avgpool|avg pool|max ?pool|flatten|dense|concat|input|pool|stride|shortcut|"
                     r"depthwise|pointwise|expand|project|block|transition|dropout|batch norm|bottleneck|"
                     r"separable|residual)\b", re.I)
CJK = re.compile(r"[\u4e00-\u9fff]")


def _d(arch, knobs=None, lang="en", **dims):
    cfg = resolve(arch, knobs or {}, **dims)
    pr = measure(cfg)
    with torch.device("meta"):
        model = cfg.build()
    return diagram(model, pr.layers, lang), {r.name: r for r in pr.layers}


def _texts(d):
    """Every text the diagram draws: the blocks' titles and their nodes' labels."""
    return [b.title for b in d.blocks] + [label for b in d.blocks for _, label in b.nodes if label]


@pytest.mark.parametrize("arch", arch_names())
def test_every_architecture_has_a_diagram_whose_blocks_are_table_rows(arch):
    d, rows = _d(arch)
    assert d.blocks
    for b in d.blocks:
        assert b.name in rows, b.name  # a block is a row of the layer table (the filter uses it)
        assert b.rows[0] == b.name and all(r in rows for r in b.rows), b.rows
        assert b.nodes
    dot = d.to_dot(highlight=d.blocks[0].name)
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == sum(b.style == CLUSTER for b in d.blocks)
    assert dot.count("#d62728") == 1  # the picked block, outlined
    assert len(d.links) == len(d.blocks) - 1  # one chain from input to output
    # every layer row of the table is drawn in exactly one block (a top-level row, or one inside a block's row)
    drawn = [r for b in d.blocks for r in b.rows]
    assert len(drawn) == len(set(drawn))
    top = [n for n, r in rows.items() if r.depth == 1 and r.type != "Identity"]
    assert all(any(n == x or x.startswith(n + ".") for x in drawn) for n in top), top


@pytest.mark.parametrize("lang", ("en", "zh"))
@pytest.mark.parametrize("arch", arch_names())
def test_blocks_have_the_books_names_in_either_language(arch, lang):
    d, _ = _d(arch, lang=lang)
    titles = [b.title for b in d.blocks]
    for t in titles:  # a name, never a module index ("0", "8", "Residual 1.0")
        assert not re.fullmatch(r"[\d.\s–-]+", t), t
        assert not re.search(r"\b\d+\.\d+\b", t), t
    texts = _texts(d)
    if lang == "zh":
        english = sorted({m.lower() for t in texts for m in ENGLISH.findall(t)})
        assert not english, english
        assert any(CJK.search(t) for t in titles)
    else:
        assert not [t for t in texts if CJK.search(t)]


@pytest.mark.parametrize("arch, lang, titles", [
    ("lenet", "en", ["conv 1", "avg pool 1", "conv 2", "avg pool 2", "flatten", "dense 1", "dense 2", "dense 3"]),
    ("lenet", "zh", ["卷积层 1", "平均汇聚层 1", "卷积层 2", "平均汇聚层 2", "展平层", "全连接层 1", "全连接层 2",
                     "全连接层 3"]),
    ("vgg", "en", [f"VGG block {i}" for i in range(1, 6)] + ["flatten", "dense 1", "dense 2", "dense 3"]),
    ("vgg", "zh", [f"VGG块 {i}" for i in range(1, 6)] + ["展平层", "全连接层 1", "全连接层 2", "全连接层 3"]),
    ("nin", "en", ["NiN block 1", "max pool 1", "NiN block 2", "max pool 2", "NiN block 3", "max pool 3",
                   "NiN block 4", "global avg pool", "flatten"]),
    ("resnet", "en", ["b1"] + [f"b{s} · Residual {i}" for s in (2, 3, 4, 5) for i in (1, 2)]
     + ["global avg pool", "flatten", "dense"]),
    ("resnet", "zh", ["b1"] + [f"b{s} · 残差块 {i}" for s in (2, 3, 4, 5) for i in (1, 2)]
     + ["全局平均汇聚层", "展平层", "全连接层"]),
    ("densenet", "en", ["b1", "DenseBlock 1", "transition_block 1", "DenseBlock 2", "transition_block 2",
                        "DenseBlock 3", "transition_block 3", "DenseBlock 4", "batch norm", "global avg pool",
                        "flatten", "dense"]),
    ("densenet", "zh", ["b1", "稠密块 1", "过渡层 1", "稠密块 2", "过渡层 2", "稠密块 3", "过渡层 3", "稠密块 4",
                        "批量规范化层", "全局平均汇聚层", "展平层", "全连接层"]),
])
def test_the_chips_read_as_the_book(arch, lang, titles):
    d, _ = _d(arch, lang=lang)
    assert [b.title for b in d.blocks] == titles


def test_googlenet_mobilenet_names_and_zh_labels():
    d, _ = _d("googlenet", resolution=96)
    titles = [b.title for b in d.blocks]
    assert [t for t in titles if t.startswith("Inception")] == [
        f"Inception ({s})" for s in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert titles[:2] == ["b1", "b2"] and "b3 · max pool" in titles
    d, _ = _d("googlenet", lang="zh", resolution=96)
    assert "Inception块 (3a)" in [b.title for b in d.blocks]
    d, _ = _d("mobilenet_v1", in_channels=3, num_classes=1000, resolution=224)
    assert [b.title for b in d.blocks if b.kind == "separable"] == [f"depthwise separable {i}" for i in range(1, 14)]
    d, _ = _d("mobilenet_v2", in_channels=3, num_classes=1000, resolution=224, lang="zh")
    assert [b.title for b in d.blocks if b.kind == "bottleneck"] == [f"瓶颈块 {i}" for i in range(1, 18)]
    # LeNet's labels as d2l-zh writes them: 卷积, 平均汇聚, 展平, 全连接
    d, _ = _d("lenet", lang="zh")
    labels = [label for b in d.blocks for _, label in b.nodes]
    assert labels[:2] == ["5×5 卷积, 6 · sigmoid", "2×2 平均汇聚"]
    assert "展平" in labels and "全连接, 120 · sigmoid" in labels


def test_a_layer_keeps_its_activation_and_a_stage_its_layers():
    d, _ = _d("lenet")
    assert [b.rows for b in d.blocks][:3] == [["0", "1"], ["2"], ["3", "4"]]
    assert d.blocks[0].nodes[0][1] == "5×5 conv, 6 · sigmoid" and d.blocks[0].shape == "6×28×28"
    d, _ = _d("lenet", {"batchnorm": "nn"})
    assert d.blocks[0].nodes[0][1] == "5×5 conv, 6 · BN · sigmoid"
    d, _ = _d("resnet", resolution=96)
    assert d.blocks[0].title == "b1" and len(d.blocks[0].nodes) == 2  # conv (BN, ReLU) and max pool


@pytest.mark.parametrize("arch", arch_names())
def test_the_rows_fit_the_width(arch):
    """The wrap keeps the drawing about ROW_WIDTH points wide, as estimated (the browser test measures it)."""
    d, _ = _d(arch)
    rows, hug = _pack(d.blocks, ROW_WIDTH)
    assert [i for r in rows for i in r] == list(range(len(d.blocks))) and len(hug) == len(rows)
    ranks = [_block_ranks(b) for b in d.blocks]
    width = _span(_columns([[w for i in r for w in ranks[i]] for r in rows], hug))
    assert width <= ROW_WIDTH or len(rows) == len(d.blocks), width
    assert all(b.style in (CARD, CLUSTER) for b in d.blocks)


def test_inception_branches_match_the_trace():
    d, rows = _d("googlenet", resolution=96)
    inc = [b for b in d.blocks if b.kind == "inception"]
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
        dense = [b for b in d.blocks if b.kind == "dense"]
        trans = [b for b in d.blocks if b.kind == "transition"]
        assert dense and trans
        for b in dense:
            c0 = b.channels["c0"]
            assert b.channels["steps"] == [c0 + i * k for i in range(len(b.channels["steps"]))]
            assert b.channels["out"] == rows[b.name].output_shape[0]
        for t in trans:
            assert t.channels["out"] == int(t.channels["in"] * theta) == rows[t.name].output_shape[0]


def test_resnet_shortcut_is_a_1x1_conv_only_where_shape_changes_and_dashed_when_off():
    d, rows = _d("resnet", resolution=96)
    res = [b for b in d.blocks if b.kind == "residual"]
    for b in res:
        first_conv = rows[b.name + ".conv1"]
        changes = b.channels["in"] != b.channels["out"] or first_conv.stride not in (1, [1, 1])
        assert b.channels["conv1x1"] == changes, b.name
        assert b.channels["out"] == rows[b.name].output_shape[0]
    assert not any(style == "dashed" for b in res for _, _, style, _ in b.edges)
    off, _ = _d("resnet", {"residual": False}, resolution=96)
    assert all(any(style == "dashed" for _, _, style, _ in b.edges)
               for b in off.blocks if b.kind == "residual")


def test_nin_mlp_convs_and_mobilenet_depthwise_pointwise():
    d, _ = _d("nin", resolution=224)
    nin = [b for b in d.blocks if b.kind == "nin"]
    assert len(nin) == 4 and all("1×1 conv" in lbl and "(MLP)" in lbl for b in nin for _, lbl in b.nodes[1:])
    d, rows = _d("mobilenet_v1", in_channels=3, num_classes=1000, resolution=224)
    sep = [b for b in d.blocks if b.kind == "separable"]
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
    assert any("Rows of block Inception (3a) only" in c.value for c in at.caption), [c.value for c in at.caption]


def test_picking_a_lenet_block_shows_every_row_it_draws():
    """LeNet's layers are flat: its "conv 1" block is the conv and its sigmoid, two rows of the table."""
    at = open_page("app_pages/architecture.py")
    at.selectbox(key="arch_arch").set_value("lenet").run()
    at.get_by_key("arch_block").set_value("0").run()
    assert_no_exception(at)
    part = at.dataframe[0].value
    assert [str(x).strip() for x in part.iloc[:, 1]] == ["0", "1"]
    assert any("Rows of block conv 1 only" in c.value for c in at.caption), [c.value for c in at.caption]
