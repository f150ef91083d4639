"""Block diagrams of a model, built from the model's own modules and the probe's shapes (plain Python; no
streamlit). `diagram(model, rows, lang)` gives a `Diagram` (blocks with their nodes and edges) and `to_dot()` the
Graphviz text the app draws with st.graphviz_chart (rendered in the browser: no graphviz binary needed).

Blocks carry the book's names (d2l's and, in Chinese, d2l-zh's: "VGG block 1" / "VGG块 1", "Inception (3a)",
"b3 · Residual 1" / "b3 · 残差块 1", "DenseBlock 1" / "稠密块 1", "transition_block 1" / "过渡层 1"; the papers'
blocks for MobileNet), and every block carries the layer table's row name, so picking a block filters the table.
A layer's activation, batch norm and dropout belong to the layer before them (LeNet's "conv 1" is its conv and
its sigmoid).

What each block shows: Inception's four branches with their channel counts and the concatenation; ResNet's
residual path and its shortcut (a 1×1 conv where channels or stride change, dashed when the knob residual is
off); DenseNet's conv blocks concatenating c₀ + i·k channels and transitions keeping θ of them; NiN's 1×1 "MLP"
convolutions; MobileNet's depthwise → pointwise (V1) and expand → depthwise → (SE) → project (V2/V3).

How it is drawn (to_dot): left to right, wrapped into rows about `width` points wide, so the drawing keeps the
shape of its panel and its text stays readable when the browser scales it to fit. Inception and Residual are
clusters of boxes (their branches and shortcut are arrows); every other block is one box listing its layers
(a "card"). Titles sit inside the boxes or at the top of the clusters, where no arrow runs.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Sequence

from torch import nn

from . import layers as L
from .i18n import t as _t

CARD = "card"         # Block.style: one box listing the block's layers
CLUSTER = "cluster"   # Block.style: a cluster of boxes joined by arrows (branches, shortcuts)
FONT = 10             # points: the text size before the browser scales the drawing to its panel
ROW_WIDTH = 580       # points: rows wrap at about this width (564 px wide at 1024: text ≥ 9.5 px)
RANKSEP = 14          # points between boxes along a row
WRAP = 24             # characters: a card's longer line breaks before its " · " (the activation, BN, dropout)


@dataclass
class Block:
    name: str                       # the layer table's row name ("2.0"), what a picked block filters by
    title: str                      # the book's name in the diagram's language: "Inception (3a)"
    kind: str = ""                  # layer | stage | vgg | nin | inception | residual | dense | transition |
                                    # separable | bottleneck
    nodes: list = field(default_factory=list)   # (id, label); a label may have several lines ("\n")
    edges: list = field(default_factory=list)   # (src, dst, style: "" | "dashed", label)
    channels: dict = field(default_factory=dict)  # numbers the tests check against the shape trace
    rows: list = field(default_factory=list)    # every layer-table row drawn in the block (name first)
    style: str = CARD
    shape: str = ""                 # the block's output shape as the table writes it ("6×28×28"), if known


@dataclass
class Diagram:
    blocks: list[Block]
    links: list[tuple[str, str]]    # node id → node id between blocks
    lang: str = "en"

    def to_dot(self, highlight: str | None = None, width: float = ROW_WIDTH) -> str:
        """Graphviz text: left to right, wrapped into rows about `width` points wide. Every row starts at a dot on
        the left and ends at a dot on the right; an arrow runs back under the row to the next row's dot. The
        dots of each side stand in a column of their own, in row order, which keeps the rows in reading order.
        `highlight` (a block's row name) outlines that block in red."""
        rows, hug = _pack(self.blocks, width)
        drawn: dict[str, str] = {}   # node id → the id drawn for it (a card draws its block's nodes as one box)
        entries: dict[int, list[tuple[str, list[str]]]] = {}  # where the arrow into block i lands (it may split)
        out = ["digraph G {",
               f'  rankdir=LR; newrank=true; nodesep=0.12; ranksep={RANKSEP / 72:.2f}; pad=0.05; '
               f'fontname="Helvetica"; fontsize={FONT};',
               f'  node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", color="#52606d", '
               f'fontname="Helvetica", fontsize={FONT}, margin="0.06,0.03", height=0.3];',
               f'  edge [arrowsize=0.6, color="#52606d"];']

        def edge(src: str, dst: str, attrs: list[str] = (), indent: str = "  ") -> str:
            return f"{indent}{src} -> {dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";"

        for i, b in enumerate(self.blocks):
            hl = highlight is not None and b.name == highlight
            color, pen = ("#d62728", 2.5) if hl else ("#9aa5b1", 1)
            if b.style == CARD:
                cid = b.nodes[0][0]
                drawn.update({nid: cid for nid, _ in b.nodes})
                entries[i] = [(cid, [])]
                out.append(f'  {cid} [label=<{_card(b)}>, color="{color}", penwidth={pen}];')
                continue
            # a cluster: its title on top, where no arrow runs. Its first node, when unlabelled, is the input
            # splitting into branches or into the path and its shortcut: not drawn, the arrow coming in splits
            # instead, as the book draws it. Other unlabelled nodes are bends that keep an arrow in the block.
            fork = b.nodes[0][0] if not b.nodes[0][1] else None
            bends = {nid for nid, label in b.nodes[1:] if not label}

            def attrs_of(dst: str, style: str) -> list[str]:
                return ([f"style={style}"] if style else []) + (["arrowhead=none"] if dst in bends else [])

            entries[i] = [(dst, attrs_of(dst, st)) for src, dst, st, _ in b.edges if src == fork] if fork \
                else [(b.nodes[0][0], [])]
            drawn.update({nid: nid for nid, _ in b.nodes})
            out.append(f'  subgraph cluster_{i} {{ label="{_q(b.title)}"; labelloc=t; fontsize={FONT}; '
                       f'style="rounded"; color="{color}"; penwidth={pen}; margin=6;')
            # written last to first: dot then stacks the branches in the book's order, top to bottom
            for nid, label in reversed(b.nodes):
                if nid in bends:
                    out.append(f'    {nid} [shape=point, width=0.02, label=""];')
                elif nid != fork:
                    out.append(f'    {nid} [label="{_lines(label)}"];')
            for src, dst, style, label in reversed(b.edges):
                if src != fork:  # weight: a block's boxes keep close together
                    out.append(edge(src, dst, attrs_of(dst, style) + ["weight=5"], "    "))
            out.append("  }")
        index = {nid: i for i, b in enumerate(self.blocks) for nid, _ in b.nodes}
        firsts = {r[0] for r in rows}
        n = len(rows)
        for side in "LR":
            out.append("  " + " ".join(f'{side}{k} [shape=point, width=0.06, label=""];' for k in range(n)))
        heavy = ["weight=20"]  # short and heavy: the rows' boxes close up, and a row sits against its side
        for k, r in enumerate(rows):
            last = self.blocks[r[-1]]
            last = drawn[last.nodes[-1][0]] if last.style == CARD else self._exit(last)
            for dst, attrs in entries[r[0]]:
                out.append(edge(f"L{k}", dst, attrs + (heavy if hug[k] == "L" else [])))
            out.append(edge(last, f"R{k}", heavy if hug[k] == "R" else []))
            if k + 1 < n:
                out.append(edge(f"R{k}", f"L{k + 1}"))  # back under the row, to the next row's start
        for src, dst in self.links:
            j = index[dst]
            if j not in firsts:  # a row's first block is reached through the dots
                out += [edge(drawn[src], d, attrs + heavy) for d, attrs in entries[j]]
        for side, rank in (("L", "source"), ("R", "sink")):
            dots = [f"{side}{k}" for k in range(n)]
            out.append(f"  {{ rank={rank}; {'; '.join(dots)}; }}")
            if n > 1:
                out.append(f"  {' -> '.join(dots)} [style=invis];")
        out.append("}")
        return "\n".join(out)

    @staticmethod
    def _exit(b: Block) -> str:
        """The node a cluster's arrows leave from: the one no edge of the block leaves."""
        srcs = {e[0] for e in b.edges}
        return [nid for nid, _ in b.nodes if nid not in srcs][-1]


def _q(s: str) -> str:
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def _lines(label: str) -> str:
    return "\\n".join(_q(x) for x in str(label).split("\n"))


def _card(b: Block) -> str:
    """A card's HTML-like label: the title in bold, one row per layer, the output shape in grey."""
    rows = [f"<tr><td><b>{html.escape(b.title)}</b></td></tr>"]
    rows += [f'<tr><td align="left">{html.escape(line)}</td></tr>' for line in _card_lines(b)]
    if b.shape:
        rows.append(f'<tr><td align="left"><font color="#52606d">→ {html.escape(b.shape)}</font></td></tr>')
    return f'<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{"".join(rows)}</table>'


def _card_lines(b: Block) -> list[str]:
    """A card's layer lines; one longer than WRAP characters breaks before its first " · " (so "7×7 conv, 64,
    stride 2" and "· BN · ReLU" on the next line)."""
    out = []
    for _, label in b.nodes:
        for line in str(label).split("\n"):
            head, sep, tail = line.partition(" · ")
            out += [head, "  · " + tail] if sep and len(line) > WRAP else [line]
    return out


# -- sizes, to wrap the rows (graphviz measures the text itself; this only needs to be close) -------------------

def _text_pt(s: str) -> float:
    return sum(FONT * (1.0 if ord(c) > 0x2e80 else 0.47) for c in s)


def _box_pt(label: str) -> float:
    return max((_text_pt(x) for x in str(label).split("\n")), default=0) + 9


def _block_ranks(b: Block) -> list[float]:
    """The widths (points) of the block's boxes along the row, one per rank it takes."""
    if b.style == CARD:
        lines = [b.title] + _card_lines(b) + ([f"→ {b.shape}"] if b.shape else [])
        return [max(_text_pt(x) for x in lines) + 10]
    fork = b.nodes[0][0] if not b.nodes[0][1] else None   # not drawn (see to_dot)
    rank = {b.nodes[0][0]: -1 if fork else 0}
    for _ in b.nodes:  # longest path from the block's entry (a handful of nodes: relax until stable)
        for src, dst, _s, _l in b.edges:
            if src in rank:
                rank[dst] = max(rank.get(dst, 0), rank[src] + 1)
    widths = [0.0] * (max(rank.values()) + 1)
    for nid, label in b.nodes:
        if nid != fork:
            widths[rank.get(nid, 0)] = max(widths[rank.get(nid, 0)], _box_pt(label))
    widths[0] = max(widths[0], _text_pt(b.title) + 12 - sum(widths[1:]))  # the title spans the cluster
    widths[-1] += 12  # the cluster's margins
    return widths


def _columns(runs: list[list[float]], hug: list[str]) -> list[float]:
    """The rank columns' widths when each row's boxes (widths in rank order, left to right) sit against the
    left ("L") or the right ("R") side dots."""
    n = max(len(x) for x in runs)
    cols = [0.0] * n
    for run, side in zip(runs, hug):
        at = n - len(run) if side == "R" else 0
        for j, w in enumerate(run):
            cols[at + j] = max(cols[at + j], w)
    return cols


def _span(cols: list[float]) -> float:
    return sum(cols) + RANKSEP * (len(cols) + 1) + 8   # and the two columns of side dots


def _pack(blocks: list[Block], width: float) -> tuple[list[list[int]], list[str]]:
    """Blocks (indices) in as few rows as keep the drawing within `width` points, the rows as even as they can
    be; and the side each row sits against ("L" or "R"), chosen so the rows' boxes share columns well (rows
    share their rank columns: a column is as wide as its widest box)."""
    ranks = [_block_ranks(b) for b in blocks]
    n = len(blocks)
    own = [sum(r) + RANKSEP * len(r) for r in ranks]

    def split(k: int) -> list[list[int]]:
        """`n` blocks in `k` contiguous rows, the widest row as narrow as can be (dynamic programming)."""
        inf = float("inf")
        best = [[inf] * (n + 1) for _ in range(k + 1)]
        cut = [[0] * (n + 1) for _ in range(k + 1)]
        best[0][0] = 0.0
        for j in range(1, k + 1):
            for e in range(1, n + 1):
                for b in range(j - 1, e):
                    v = max(best[j - 1][b], sum(own[b:e]))
                    if v < best[j][e]:
                        best[j][e], cut[j][e] = v, b
        rows, e = [], n
        for j in range(k, 0, -1):
            rows.append(list(range(cut[j][e], e)))
            e = cut[j][e]
        return rows[::-1]

    rows, hug = [list(range(n))], ["L"]
    for k in range(1, n + 1):
        rows = split(k)
        runs = [[w for i in r for w in ranks[i]] for r in rows]
        hug = []
        for j in range(len(rows)):  # each row against the side that keeps the drawing narrowest so far
            hug.append(min("LR", key=lambda side: _span(_columns(runs[:j + 1], hug + [side]))))
        if _span(_columns(runs, hug)) <= width:
            break
    return rows, hug


# -- labels -----------------------------------------------------------------------------------------------------

def _k(v) -> str:
    k = v if isinstance(v, int) else v[0]
    return f"{k}×{k}"


def _g(x: float) -> str:
    return f"{x:g}"


TITLE_KEYS = {"conv": "dg.t_conv", "dense": "dg.t_dense", "gap": "dg.t_gap", "flatten": "dg.t_flatten",
              "dropout": "dg.t_dropout", "bn": "dg.t_bn", "act": "dg.t_act"}  # a layer's name by its kind
ACT_NAMES = {"Sigmoid": "sigmoid", "ReLU": "ReLU", "ReLU6": "ReLU6", "Hardswish": "h-swish", "Tanh": "tanh",
             "Hardsigmoid": "h-sigmoid"}


def _is_aux(m: nn.Module) -> bool:
    """Layers drawn with the layer before them: activations, batch norm, dropout (and Identity, not drawn)."""
    t = type(m).__name__
    return t in ACT_NAMES or "Norm" in t or isinstance(m, (nn.Dropout, nn.Identity))


class _Builder:
    def __init__(self, rows: Sequence, lang: str = "en"):
        self.rows = {r.name: r for r in rows}
        self.lang = lang
        self.blocks: list[Block] = []
        self.links: list[tuple[str, str]] = []
        self.n = 0
        self.last: str | None = None   # the node the next block's input edge starts from
        self.count: dict[str, int] = {}
        self.totals: dict[str, int] = {}

    def tr(self, key: str, **fmt) -> str:
        return _t(key, self.lang, **fmt)

    def nid(self) -> str:
        self.n += 1
        return f"n{self.n}"

    def number(self, kind: str) -> int:
        self.count[kind] = self.count.get(kind, 0) + 1
        return self.count[kind]

    def shape_of(self, name: str) -> str:
        r = self.rows.get(name)
        return "×".join(map(str, r.output_shape)) if r is not None and r.output_shape is not None else ""

    def add(self, block: Block, first: str, last: str) -> None:
        if self.last is not None:
            self.links.append((self.last, first))
        if not block.rows:
            block.rows = [block.name]
        self.blocks.append(block)
        self.last = last

    def chain(self, block: Block, labels: list[str]) -> None:
        ids = [self.nid() for _ in labels]
        block.nodes = list(zip(ids, labels))
        block.edges = [(a, c, "", "") for a, c in zip(ids, ids[1:])]
        self.add(block, ids[0], ids[-1])

    # -- one layer's words --------------------------------------------------------------------------------
    def op(self, m: nn.Module, wrap: bool = False) -> str:
        """The layer in a few words ("5×5 conv, 6"); `wrap` puts a stride on a line of its own."""
        t = type(m).__name__
        if isinstance(m, nn.Conv2d):
            s = m.stride[0]
            if m.groups > 1 and m.groups == m.in_channels:
                label = self.tr("dg.depthwise", k=_k(m.kernel_size), c=m.out_channels)
            else:
                label = self.tr("dg.conv", k=_k(m.kernel_size), c=m.out_channels)
            return label + (("\n" if wrap else ", ") + self.tr("dg.stride", s=s) if s != 1 else "")
        if isinstance(m, nn.Linear):
            return self.tr("dg.dense", n=m.out_features)
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return self.tr("dg.gap")
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else (m.stride[0] if m.stride else k)
            label = self.tr("dg.maxpool" if isinstance(m, nn.MaxPool2d) else "dg.avgpool", k=_k(k))
            return label + (", " + self.tr("dg.stride", s=s) if s not in (k, 1) else "")
        if isinstance(m, nn.Flatten):
            return self.tr("dg.flatten")
        if isinstance(m, nn.Dropout):
            return self.tr("dg.dropout", p=_g(m.p))
        if "Norm" in t:
            return self.tr("dg.bn")
        return ACT_NAMES.get(t, t)

    def groups(self, mods: list[tuple[str, nn.Module]]) -> list[list[tuple[str, nn.Module]]]:
        """Sibling layers grouped as the book names them: a layer with the activation, BN and dropout after it."""
        out: list[list[tuple[str, nn.Module]]] = []
        for name, m in mods:
            if isinstance(m, nn.Identity):
                continue
            if out and _is_aux(m) and not _is_aux(out[-1][0][1]):
                out[-1].append((name, m))
            elif out and _is_aux(m) and all(_is_aux(x) for _, x in out[-1]):
                out[-1].append((name, m))
            else:
                out.append([(name, m)])
        return out

    def line(self, group: list[tuple[str, nn.Module]]) -> str:
        return " · ".join(self.op(m) for _, m in group)

    @staticmethod
    def kind_of(m: nn.Module) -> str:
        if isinstance(m, nn.Conv2d):
            return "conv"
        if isinstance(m, nn.Linear):
            return "dense"
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return "gap"
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            return "pool"
        if isinstance(m, nn.Flatten):
            return "flatten"
        if isinstance(m, nn.Dropout):
            return "dropout"
        if "Norm" in type(m).__name__:
            return "bn"
        return "act"

    def title_of(self, m: nn.Module) -> str:
        kind = self.kind_of(m)
        if kind == "pool":
            return self.tr("dg.t_maxpool" if isinstance(m, nn.MaxPool2d) else "dg.t_avgpool")
        return self.tr(TITLE_KEYS[kind])

    # -- the special blocks ------------------------------------------------------------------------
    def inception(self, name: str, m: L.Inception, title: str) -> None:
        b = Block(name, title, "inception", style=CLUSTER)
        src, cat = self.nid(), self.nid()
        b.nodes.append((src, ""))  # the input forks into the four branches
        branches = [[m.b1_1], [m.b2_1, m.b2_2], [m.b3_1, m.b3_2], [m.b4_1, m.b4_2]]
        outs = []
        for mods in branches:
            nid = self.nid()
            b.nodes.append((nid, "\n→ ".join(self.op(x) for x in mods)))
            b.edges += [(src, nid, "", ""), (nid, cat, "", "")]
            outs.append(mods[-1].out_channels)
        b.nodes.append((cat, self.tr("dg.concat", parts="+".join(map(str, outs)), total=sum(outs))))
        b.channels = {"in": m.b1_1.in_channels}
        b.channels.update(branches=outs, out=sum(outs))
        self.add(b, src, cat)

    def residual(self, name: str, m: L.Residual, title: str) -> None:
        b = Block(name, title, "residual", style=CLUSTER)
        i, c1, c2, add = self.nid(), self.nid(), self.nid(), self.nid()
        cin, cout = m.conv1.in_channels, m.conv1.out_channels
        bn = [self.tr("dg.bn")] if not isinstance(m.bn1, nn.Identity) else []
        b.nodes += [(i, ""), (c1, self.op(m.conv1, wrap=True) + "\n" + " · ".join(bn + ["ReLU"])),  # i: the input
                    (c2, "\n".join([self.op(m.conv2)] + bn)),                                # forks (see to_dot)
                    (add, self.tr("dg.add") if m.shortcut else self.tr("dg.no_shortcut"))]
        b.edges += [(i, c1, "", ""), (c1, c2, "", ""), (c2, add, "", "")]
        style = "" if m.shortcut else "dashed"
        sc = self.nid()  # the 1×1 conv, or the identity: a bare arrow (through a bend that keeps it in the block)
        b.nodes.append((sc, self.op(m.conv3, wrap=True) if m.conv3 is not None else ""))
        b.edges += [(i, sc, style, ""), (sc, add, style, "")]
        b.channels = {"in": cin, "out": cout, "conv1x1": m.conv3 is not None, "shortcut": bool(m.shortcut)}
        self.add(b, i, add)

    def dense(self, name: str, m: L.DenseBlock) -> None:
        b = Block(name, self.tr("dg.t_denseblock", i=self.number("dense_block")), "dense", shape=self.shape_of(name))
        convs = list(m.net)
        k = [x for x in convs[0] if isinstance(x, nn.Conv2d)][-1].out_channels
        c0 = [x for x in convs[0] if isinstance(x, nn.Conv2d)][0].in_channels
        chans = [c0 + j * k for j in range(len(convs) + 1)]
        labels = [self.tr("dg.input", c=f"c₀ = {c0}")]
        shown = list(range(len(convs))) if len(convs) <= 6 else [0, 1, 2, None, len(convs) - 1]
        for j in shown:
            if j is None:
                labels.append(self.tr("dg.dense_more", n=len(convs) - 4))
            else:
                labels.append(self.tr("dg.dense_conv", j=j + 1, a=chans[j], k=k, b=chans[j + 1]))
        self.chain(b, labels)
        b.channels = {"c0": c0, "k": k, "out": chans[-1], "steps": chans}

    def transition(self, name: str, m: nn.Sequential) -> None:
        conv = [x for x in m if isinstance(x, nn.Conv2d)][0]
        pool = [x for x in m if isinstance(x, nn.AvgPool2d)][0]
        theta = conv.out_channels / conv.in_channels
        b = Block(name, self.tr("dg.t_transition", i=self.number("transition")), "transition",
                  shape=self.shape_of(name))
        self.chain(b, [self.tr("dg.bn") + " · ReLU",
                       self.tr("dg.transition_conv", a=conv.in_channels, b=conv.out_channels, t=f"{theta:.3g}"),
                       self.op(pool)])
        b.channels = {"in": conv.in_channels, "out": conv.out_channels, "theta": theta}

    def vgg(self, name: str, m: nn.Sequential) -> None:
        b = Block(name, self.tr("dg.t_vgg", i=self.number("vgg")), "vgg", shape=self.shape_of(name))
        self.chain(b, [self.line(g) for g in self.groups(list(m.named_children()))])
        b.channels = {"out": [x for x in m if isinstance(x, nn.Conv2d)][-1].out_channels}

    def nin(self, name: str, m: nn.Sequential) -> None:
        b = Block(name, self.tr("dg.t_nin", i=self.number("nin")), "nin", shape=self.shape_of(name))
        labels = []
        for j, g in enumerate(self.groups(list(m.named_children()))):
            conv = g[0][1]
            head = self.op(conv) if j == 0 else self.tr("dg.mlp", c=conv.out_channels)
            labels.append(" · ".join([head] + [self.op(x) for _, x in g[1:]]))
        self.chain(b, labels)
        b.channels = {"out": [x for x in m if isinstance(x, nn.Conv2d)][-1].out_channels}

    def separable(self, name: str, m: L.DepthwiseSeparable) -> None:
        dw = [x for x in m.depthwise if isinstance(x, nn.Conv2d)][0]
        pw = [x for x in m.pointwise if isinstance(x, nn.Conv2d)][0]
        act = self.op(list(m.depthwise)[-1])
        b = Block(name, self.tr("dg.t_separable", i=self.number("separable")), "separable", shape=self.shape_of(name))
        self.chain(b, [f"{self.op(dw)} · {act}",
                       self.tr("dg.pointwise", a=pw.in_channels, b=pw.out_channels) + f" · {act}"])
        b.channels = {"in": dw.in_channels, "out": pw.out_channels}

    def inverted(self, name: str, m: L.InvertedResidual) -> None:
        se = [x for x in m.block if isinstance(x, L.SqueezeExcite)]
        stages = [x for x in m.block if not isinstance(x, L.SqueezeExcite)]
        main = [[y for y in s if isinstance(y, nn.Conv2d)][0] for s in stages]
        labels = []
        for s, c in zip(stages, main):
            act = [self.op(y) for y in s if type(y).__name__ in ACT_NAMES]
            if c.groups > 1:
                labels.append(" · ".join([self.op(c)] + act))
                if se:
                    labels.append(f"SE {se[0].fc1.in_channels} → {se[0].fc1.out_channels} → {se[0].fc2.out_channels}")
            elif c is main[-1]:
                labels.append(self.tr("dg.project", a=c.in_channels, b=c.out_channels))
            else:
                labels.append(" · ".join([self.tr("dg.expand", a=c.in_channels, b=c.out_channels)] + act))
        if m.use_res_connect:
            labels.append(self.tr("dg.plus_input"))
        b = Block(name, self.tr("dg.t_bottleneck", i=self.number("bottleneck")), "bottleneck", shape=self.shape_of(name))
        self.chain(b, labels)
        b.channels = {"in": main[0].in_channels, "out": main[-1].out_channels,
                      "expanded": main[0].out_channels if len(main) == 3 else main[0].in_channels}

    # -- plain layers ----------------------------------------------------------------------------------
    def layer(self, group: list[tuple[str, nn.Module]], stage: str | None = None) -> None:
        """One book layer: a conv, pool or dense layer with the activation, BN and dropout that follow it."""
        name, main = group[0]
        kind = self.kind_of(main)
        title = self.title_of(main)
        if stage is not None:
            title = f"{stage} · {title}"
        elif self.totals.get(kind, 0) > 1:
            title = f"{title} {self.number(kind)}"
        b = Block(name, title, "layer", rows=[n for n, _ in group], shape=self.shape_of(group[-1][0]))
        self.chain(b, [self.line(group)])

    def seq_layer(self, name: str, m: nn.Sequential) -> None:
        """A Sequential with one main layer (MobileNet's conv → BN → activation): one layer, titled by it."""
        group = [(f"{name}.{n}", x) for n, x in m.named_children() if not isinstance(x, nn.Identity)]
        kind = self.kind_of(group[0][1])
        title = self.title_of(group[0][1]) + (f" {self.number(kind)}" if self.totals.get(kind, 0) > 1 else "")
        b = Block(name, title, "layer", rows=[name] + [n for n, _ in group], shape=self.shape_of(name))
        self.chain(b, [self.line(group)])

    def stage(self, name: str, m: nn.Sequential, stage: str) -> None:
        """A stage of plain layers as d2l names it (GoogLeNet's and ResNet's b1, b2): one card, a line per layer."""
        groups = self.groups([(f"{name}.{n}", x) for n, x in m.named_children()])
        b = Block(name, stage, "stage", shape=self.shape_of(name))
        self.chain(b, [self.line(g) for g in groups])

    # -- the walk ----------------------------------------------------------------------------------
    SPECIAL = (L.Inception, L.Residual, L.DenseBlock, L.DepthwiseSeparable, L.InvertedResidual)

    def special(self, name: str, m: nn.Module, stage: str | None = None, j: int = 0) -> bool:
        if isinstance(m, L.Inception):
            title = self.tr("dg.t_inception", i=f"{stage[1:]}{chr(ord('a') + j)}" if stage else self.number("inception"))
            self.inception(name, m, title)
        elif isinstance(m, L.Residual):
            i = j + 1 if stage else self.number("residual")
            title = self.tr("dg.t_residual", i=i)
            self.residual(name, m, f"{stage} · {title}" if stage else title)
        elif isinstance(m, L.DenseBlock):
            self.dense(name, m)
        elif isinstance(m, L.DepthwiseSeparable):
            self.separable(name, m)
        elif isinstance(m, L.InvertedResidual):
            self.inverted(name, m)
        elif _is_transition(m):
            self.transition(name, m)
        elif _is_nin(m):
            self.nin(name, m)
        elif _is_vgg(m):
            self.vgg(name, m)
        else:
            return False
        return True

    def walk(self, model: nn.Module) -> None:
        children = list(model.named_children())
        flat = [(n, m) for n, m in children if not isinstance(m, nn.Sequential) and not isinstance(m, self.SPECIAL)]
        for g in self.groups(flat):
            k = self.kind_of(g[0][1])
            self.totals[k] = self.totals.get(k, 0) + 1
        for _, m in children:  # MobileNet's conv → BN → act Sequentials count among the convs
            if isinstance(m, nn.Sequential) and _mains(m) == 1:
                k = self.kind_of([x for x in m if not _is_aux(x)][0])
                self.totals[k] = self.totals.get(k, 0) + 1
        pending: list[tuple[str, nn.Module]] = []

        def flush():
            for g in self.groups(pending):
                self.layer(g)
            pending.clear()

        for idx, (name, m) in enumerate(children):
            if isinstance(m, self.SPECIAL) or not isinstance(m, nn.Sequential):
                if not isinstance(m, self.SPECIAL):
                    pending.append((name, m))
                    continue
                flush()
                self.special(name, m)
                continue
            flush()
            if self.special(name, m):
                continue
            stage = f"b{idx + 1}"  # d2l names the stages of GoogLeNet, ResNet and DenseNet b1, b2, …
            kids = list(m.named_children())
            if any(isinstance(c, self.SPECIAL) or _is_transition(c) for _, c in kids):
                plain: list[tuple[str, nn.Module]] = []
                j = 0
                for cname, c in kids:
                    full = f"{name}.{cname}"
                    if isinstance(c, self.SPECIAL):
                        for g in self.groups(plain):
                            self.layer(g, stage)
                        plain.clear()
                        self.special(full, c, stage, j)
                        j += 1
                    elif not self.special(full, c):
                        plain.append((full, c))
                for g in self.groups(plain):
                    self.layer(g, stage)
            elif _mains(m) == 1:
                self.seq_layer(name, m)
            else:
                self.stage(name, m, stage)
        flush()


def _mains(m: nn.Sequential) -> int:
    return sum(1 for x in m if not _is_aux(x))


def _is_transition(m: nn.Module) -> bool:
    if not isinstance(m, nn.Sequential) or len(m) != 4:
        return False
    return isinstance(m[2], nn.Conv2d) and m[2].kernel_size == (1, 1) and isinstance(m[3], nn.AvgPool2d)


def _is_nin(m: nn.Module) -> bool:
    if not isinstance(m, nn.Sequential):
        return False
    convs = [x for x in m if isinstance(x, nn.Conv2d)]
    return len(convs) == 3 and all(c.kernel_size == (1, 1) for c in convs[1:]) and convs[0].kernel_size != (1, 1)


def _is_vgg(m: nn.Module) -> bool:
    """d2l's vgg_block: 3×3 convs (each with its BN and ReLU), then one 2×2 max pool."""
    if not isinstance(m, nn.Sequential) or not isinstance(m[-1], nn.MaxPool2d):
        return False
    convs = [x for x in m if isinstance(x, nn.Conv2d)]
    return bool(convs) and all(c.kernel_size == (3, 3) for c in convs) and \
        all(isinstance(x, nn.Conv2d) or _is_aux(x) for x in list(m)[:-1])


def diagram(model: nn.Module, rows: Sequence, lang: str = "en") -> Diagram:
    """The block diagram of `model`; `rows` are the probe's layer rows (for shapes and row names); the labels are
    in `lang` ("en" or "zh", d2l-zh's terms)."""
    b = _Builder(rows, lang)
    b.walk(model)
    return Diagram(b.blocks, b.links, lang)
