"""Block diagrams of a model, built from the model's own modules and the probe's shapes (plain Python; no
streamlit). `diagram(model, rows)` gives a `Diagram` (blocks with their nodes and edges) and `to_dot()` the
Graphviz text the app draws with st.graphviz_chart (rendered in the browser: no graphviz binary needed).

What each block shows: Inception's four branches with their channel counts and the concatenation; ResNet's
residual path and its shortcut (a 1×1 conv where channels or stride change, dashed when the knob residual is
off); DenseNet's conv blocks concatenating c₀ + i·k channels and transitions keeping θ of them; NiN's 1×1 "MLP"
convolutions; MobileNet's depthwise → pointwise (V1) and expand → depthwise → (SE) → project (V2/V3); other
layers as one box per top-level block. Every block carries the layer table's row name, so picking a block
filters the table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from torch import nn

from . import layers as L


@dataclass
class Block:
    name: str                       # the layer table's row name ("2.0")
    title: str                      # "Inception 2.0"
    nodes: list = field(default_factory=list)   # (id, label)
    edges: list = field(default_factory=list)   # (src, dst, style: "" | "dashed", label)
    channels: dict = field(default_factory=dict)  # numbers the tests check against the shape trace


@dataclass
class Diagram:
    blocks: list[Block]
    links: list[tuple[str, str]]    # node id → node id between blocks

    def to_dot(self, highlight: str | None = None) -> str:
        out = ["digraph G {", '  rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", '
               'fontname="Helvetica", fontsize=10]; edge [fontsize=9];']
        for i, b in enumerate(self.blocks):
            hl = highlight is not None and b.name == highlight
            out.append(f'  subgraph cluster_{i} {{ label="{_q(b.title)}"; fontsize=10; style=rounded; '
                       f'color="{"#d62728" if hl else "#9aa5b1"}"; penwidth={2 if hl else 1};')
            for nid, label in b.nodes:
                out.append(f'    {nid} [label="{_q(label)}"];')
            for src, dst, style, label in b.edges:
                attrs = []
                if style:
                    attrs.append(f"style={style}")
                if label:
                    attrs.append(f'label="{_q(label)}"')
                out.append(f"    {src} -> {dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
            out.append("  }")
        for src, dst in self.links:
            out.append(f"  {src} -> {dst};")
        out.append("}")
        return "\n".join(out)


def _q(s: str) -> str:
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def _k(v) -> str:
    k = v if isinstance(v, int) else v[0]
    return f"{k}×{k}"


def _shape(rows_by_name: dict, name: str):
    r = rows_by_name.get(name)
    return r.output_shape if r is not None else None


class _Builder:
    def __init__(self, rows: Sequence):
        self.rows = {r.name: r for r in rows}
        self.blocks: list[Block] = []
        self.links: list[tuple[str, str]] = []
        self.n = 0
        self.last: str | None = None   # the node the next block's input edge starts from

    def nid(self) -> str:
        self.n += 1
        return f"n{self.n}"

    def add(self, block: Block, first: str, last: str) -> None:
        if self.last is not None:
            self.links.append((self.last, first))
        self.blocks.append(block)
        self.last = last

    def chain(self, name: str, title: str, labels: list[str]) -> None:
        b = Block(name, title)
        ids = [self.nid() for _ in labels]
        b.nodes = list(zip(ids, labels))
        b.edges = [(a, c, "", "") for a, c in zip(ids, ids[1:])]
        self.add(b, ids[0], ids[-1])

    # -- the special blocks ------------------------------------------------------------------------
    def inception(self, name: str, m: L.Inception) -> None:
        b = Block(name, f"Inception {name}")
        src, cat = self.nid(), self.nid()
        inp = m.b1_1.in_channels
        b.nodes.append((src, f"input {inp}"))
        branches = [("1×1 conv", [m.b1_1]), ("1×1 → 3×3", [m.b2_1, m.b2_2]), ("1×1 → 5×5", [m.b3_1, m.b3_2]),
                    ("3×3 max pool → 1×1", [m.b4_1, m.b4_2])]
        outs = []
        for _, mods in branches:
            prev = src
            for mod in mods:
                nid = self.nid()
                if isinstance(mod, nn.Conv2d):
                    label = f"{_k(mod.kernel_size)} conv, {mod.out_channels}"
                else:
                    label = f"{_k(mod.kernel_size)} max pool"
                b.nodes.append((nid, label))
                b.edges.append((prev, nid, "", ""))
                prev = nid
            outs.append(mods[-1].out_channels)
        b.nodes.append((cat, f"concat {' + '.join(map(str, outs))} = {sum(outs)}"))
        # the last node of each branch feeds the concat
        lasts = []
        for nid, _ in b.nodes:
            if not any(src_ == nid for src_, _, _, _ in b.edges) and nid not in (src, cat):
                lasts.append(nid)
        b.edges += [(x, cat, "", "") for x in lasts]
        b.channels = {"branches": outs, "out": sum(outs)}
        self.add(b, src, cat)

    def residual(self, name: str, m: L.Residual) -> None:
        b = Block(name, f"Residual {name}")
        i, c1, c2, add = self.nid(), self.nid(), self.nid(), self.nid()
        cin, cout = m.conv1.in_channels, m.conv1.out_channels
        s = m.conv1.stride[0]
        b.nodes += [(i, f"input {cin}"), (c1, f"3×3 conv, {cout}" + (f", stride {s}" if s != 1 else "")),
                    (c2, f"3×3 conv, {cout}"), (add, "+  → ReLU" if m.shortcut else "ReLU (no shortcut)")]
        b.edges += [(i, c1, "", ""), (c1, c2, "", ""), (c2, add, "", "")]
        if m.conv3 is not None:
            sc = self.nid()
            b.nodes.append((sc, f"1×1 conv, {m.conv3.out_channels}" + (f", stride {s}" if s != 1 else "")))
            style = "" if m.shortcut else "dashed"
            b.edges += [(i, sc, style, ""), (sc, add, style, "shortcut" if m.shortcut else "off")]
        else:
            b.edges.append((i, add, "" if m.shortcut else "dashed", "shortcut" if m.shortcut else "off"))
        b.channels = {"in": cin, "out": cout, "conv1x1": m.conv3 is not None, "shortcut": bool(m.shortcut)}
        self.add(b, i, add)

    def dense(self, name: str, m: L.DenseBlock) -> None:
        b = Block(name, f"Dense block {name}")
        convs = list(m.net)
        k = [x for x in convs[0] if isinstance(x, nn.Conv2d)][-1].out_channels
        c0 = [x for x in convs[0] if isinstance(x, nn.Conv2d)][0].in_channels
        i0 = self.nid()
        b.nodes.append((i0, f"input c₀ = {c0}"))
        prev, chans = i0, [c0]
        for j in range(len(convs)):
            nid = self.nid()
            b.nodes.append((nid, f"conv block {j + 1}: {c0 + j * k} → +{k}, concat = {c0 + (j + 1) * k}"))
            b.edges.append((prev, nid, "", "concat"))
            prev = nid
            chans.append(c0 + (j + 1) * k)
        b.channels = {"c0": c0, "k": k, "out": chans[-1], "steps": chans}
        self.add(b, i0, prev)

    def transition(self, name: str, m: nn.Sequential) -> None:
        conv = [x for x in m if isinstance(x, nn.Conv2d)][0]
        theta = conv.out_channels / conv.in_channels
        self.chain(name, f"Transition {name}", [f"1×1 conv {conv.in_channels} → {conv.out_channels} (×θ = {theta:g})",
                                                "2×2 avg pool, /2"])
        self.blocks[-1].channels = {"in": conv.in_channels, "out": conv.out_channels, "theta": theta}

    def nin(self, name: str, m: nn.Sequential) -> None:
        convs = [x for x in m if isinstance(x, nn.Conv2d)]
        labels = [f"{_k(convs[0].kernel_size)} conv, {convs[0].out_channels}"] + \
                 [f"1×1 conv, {c.out_channels} (MLP)" for c in convs[1:]]
        self.chain(name, f"NiN block {name}", labels)
        self.blocks[-1].channels = {"out": convs[-1].out_channels}

    def separable(self, name: str, m: L.DepthwiseSeparable) -> None:
        dw = [x for x in m.depthwise if isinstance(x, nn.Conv2d)][0]
        pw = [x for x in m.pointwise if isinstance(x, nn.Conv2d)][0]
        s = dw.stride[0]
        self.chain(name, f"Depthwise separable {name}",
                   [f"{_k(dw.kernel_size)} depthwise, {dw.in_channels} (groups {dw.groups})"
                    + (f", stride {s}" if s != 1 else ""), f"1×1 pointwise {pw.in_channels} → {pw.out_channels}"])
        self.blocks[-1].channels = {"in": dw.in_channels, "out": pw.out_channels}

    def inverted(self, name: str, m: L.InvertedResidual) -> None:
        convs = [x for x in m.block.modules() if isinstance(x, nn.Conv2d)]
        se = [x for x in m.block if isinstance(x, L.SqueezeExcite)]
        se_convs = {id(se[0].fc1), id(se[0].fc2)} if se else set()
        main = [c for c in convs if id(c) not in se_convs]
        labels = []
        for c in main:
            if c.groups > 1:
                labels.append(f"{_k(c.kernel_size)} depthwise, {c.in_channels}"
                              + (f", stride {c.stride[0]}" if c.stride[0] != 1 else ""))
                if se:
                    labels.append(f"SE {se[0].fc1.in_channels} → {se[0].fc1.out_channels} → {se[0].fc2.out_channels}")
            elif c is main[-1]:
                labels.append(f"1×1 project {c.in_channels} → {c.out_channels} (linear)")
            else:
                labels.append(f"1×1 expand {c.in_channels} → {c.out_channels}")
        if m.use_res_connect:
            labels.append("+ input")
        self.chain(name, f"Inverted residual {name}", labels)
        self.blocks[-1].channels = {"in": main[0].in_channels, "out": main[-1].out_channels,
                                    "expanded": main[0].out_channels if len(main) == 3 else main[0].in_channels}

    # -- the walk ----------------------------------------------------------------------------------
    SPECIAL = (L.Inception, L.Residual, L.DenseBlock, L.DepthwiseSeparable, L.InvertedResidual)

    def special(self, name: str, m: nn.Module) -> bool:
        if isinstance(m, L.Inception):
            self.inception(name, m)
        elif isinstance(m, L.Residual):
            self.residual(name, m)
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
        else:
            return False
        return True

    def plain(self, name: str, m: nn.Module) -> None:
        shape = _shape(self.rows, name)
        kinds = []
        for x in (m if isinstance(m, nn.Sequential) else [m]):
            t = type(x).__name__
            if isinstance(x, nn.Conv2d):
                kinds.append(f"{_k(x.kernel_size)} conv {x.out_channels}")
            elif isinstance(x, nn.Linear):
                kinds.append(f"dense {x.out_features}")
            elif t.endswith("Pool2d"):
                kinds.append(t.replace("2d", "").replace("Adaptive", "global ").lower())
            elif t in ("Flatten", "Dropout") or "Norm" in t:
                kinds.append(t.lower())
        sh = "×".join(map(str, shape)) if shape else ""
        label = " · ".join(kinds[:4]) + (" …" if len(kinds) > 4 else "") or type(m).__name__
        self.chain(name, f"{name}", [f"{label}\n→ {sh}" if sh else label])

    def walk(self, model: nn.Module) -> None:
        for name, m in model.named_children():
            if self.special(name, m):
                continue
            kids = list(m.named_children()) if isinstance(m, nn.Sequential) else []
            if any(isinstance(c, self.SPECIAL) or _is_transition(c) for _, c in kids):
                for cname, c in kids:
                    full = f"{name}.{cname}"
                    if not self.special(full, c):
                        self.plain(full, c)
            else:
                self.plain(name, m)


def _is_transition(m: nn.Module) -> bool:
    if not isinstance(m, nn.Sequential) or len(m) != 4:
        return False
    return isinstance(m[2], nn.Conv2d) and m[2].kernel_size == (1, 1) and isinstance(m[3], nn.AvgPool2d)


def _is_nin(m: nn.Module) -> bool:
    if not isinstance(m, nn.Sequential):
        return False
    convs = [x for x in m if isinstance(x, nn.Conv2d)]
    return len(convs) == 3 and all(c.kernel_size == (1, 1) for c in convs[1:]) and convs[0].kernel_size != (1, 1)


def diagram(model: nn.Module, rows: Sequence) -> Diagram:
    """The block diagram of `model`; `rows` are the probe's layer rows (for shapes and row names)."""
    b = _Builder(rows)
    b.walk(model)
    return Diagram(b.blocks, b.links)
