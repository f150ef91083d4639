"""Architecture page pieces: cost ledger, shape trace, layer table with each layer's arithmetic, the
"explain a layer" panel, the receptive-field chart and the "input too small" view."""
from __future__ import annotations

import streamlit as st

from .. import i18n
from ..probe import human, output_size_formula, receptive_field_formula, rows_from_steps
from . import figures, widgets
from .common import lang


def _ratio_delta(value: float, base: float | None, L: str, vs: str = "arch.vs_default") -> str | None:
    if base is None or base <= 0:
        return None
    r = value / base
    if abs(r - 1) < 5e-4:
        return None
    return f"{(r - 1) * 100:+.0f}% · {r:.2f}{i18n.t(vs, L)}"


def cost_ledger(probe, base_probe=None, key: str = "arch_cost", vs: str = "arch.vs_default") -> None:
    """Three metrics (params, MACs, activation memory) with the change against `base_probe` (the default knobs;
    in compare mode, A)."""
    L = lang()
    c, b = probe.cost, (base_probe.cost if base_probe is not None else None)
    with st.container(key=key):
        cols = st.columns(3)
        cols[0].metric(i18n.t("arch.params", L), human(c.params),
                       delta=_ratio_delta(c.params, b.params if b else None, L, vs), delta_color="inverse")
        cols[1].metric(i18n.t("arch.macs", L), human(c.macs),
                       delta=_ratio_delta(c.macs, b.macs if b else None, L, vs), delta_color="inverse")
        cols[2].metric(i18n.t("arch.act_mem", L), human(c.activation_bytes, "B"),
                       delta=_ratio_delta(c.activation_bytes, b.activation_bytes if b else None, L, vs),
                       delta_color="inverse")
        ch, h, w = probe.input_shape
        st.caption(i18n.t("arch.cost_note", L, c=ch, h=h, w=w))


def numbered(rows) -> list[tuple[int, object]]:
    """(number, row) pairs: a row's number is its 1-based position in the layer table, shown in the
    table's '#' column and on every chart bar, so the two always agree."""
    return list(enumerate(rows, start=1))


def chart_rows(rows, detail: str) -> list[tuple[int, object]]:
    """'blocks' = the top-level blocks; 'layers' = every leaf layer; each with its table number."""
    keep = (lambda r: r.depth == 1) if detail == "blocks" else (lambda r: r.is_leaf)
    return [(n, r) for n, r in numbered(rows) if keep(r)]


def draw_shape_trace(rows, input_shape, key: str = "arch_trace_fig", detail_key: str = "arch_trace_detail") -> None:
    L = lang()
    detail = widgets.radio(i18n.t("arch.trace_detail", L), ["blocks", "layers"], detail_key, horizontal=True,
                           format_func=lambda d: i18n.t("arch.detail_blocks" if d == "blocks" else "arch.detail_layers",
                                                        L))
    st.caption(i18n.t("arch.trace_note", L))
    fig = figures.shared(rows, "shape_trace", lambda: figures.shape_trace_figure(chart_rows(rows, detail), input_shape,
                                                                                 L), detail, tuple(input_shape), L)
    st.plotly_chart(fig, key=key, width="stretch")


def _num(v) -> str:
    """A window number for the table: 3, '3×5' (height × width), or '' for a layer without it."""
    if v is None:
        return ""
    return "×".join(map(str, v)) if isinstance(v, list) else str(v)


def in_block(name: str, block) -> bool:
    """Whether a row belongs to the block picked on the diagram (every row when none is): one of the rows the
    block draws (a LeNet "conv 1" is its conv and its sigmoid), or a row inside one of them."""
    if block is None:
        return True
    return any(name == r or name.startswith(r + ".") for r in (block.rows or [block.name]))


def layer_rows(rows, L: str, block=None) -> list[dict]:
    """The layer table as records, numbered as the whole table even when filtered to one `block`; dilation gets
    a column only when some layer dilates."""
    dilated = any(r.dilation not in (None, 1) for r in rows)
    out = []
    for n, r in numbered(rows):
        if not in_block(r.name, block):
            continue
        d = {i18n.t("col.num", L): n,
             i18n.t("col.layer", L): ("\u2003" * (r.depth - 1)) + (r.name or "—"),
             i18n.t("col.type", L): r.type,
             i18n.t("col.shape", L): figures.shape_str(r.output_shape) if r.output_shape is not None else "—",
             i18n.t("col.kernel", L): _num(r.kernel_size),
             i18n.t("col.stride", L): _num(r.stride),
             i18n.t("col.padding", L): _num(r.padding),
             i18n.t("col.groups", L): _num(r.groups)}
        if dilated:
            d[i18n.t("col.dilation", L)] = _num(r.dilation)
        d[i18n.t("col.rf", L)] = _num(r.receptive_field)
        d[i18n.t("col.params", L)] = r.params
        d[i18n.t("col.macs", L)] = r.macs
        out.append(d)
    return out


def layer_table(rows, key: str = "arch_table", block=None) -> None:
    """The layer table; `block` (a cnnlab.diagram.Block picked on the diagram) filters it to that block's rows."""
    L = lang()
    records = layer_rows(rows, L, block)
    if block is not None:
        st.caption(i18n.t("arch.table_block", L, block=block.title, n=len(records)))
    st.dataframe(records, key=key, hide_index=True, width="stretch",
                 height=min(420, 35 * (len(records) + 1) + 3),  # a short (partial) table without empty rows
                 column_config={i18n.t("col.params", L): st.column_config.NumberColumn(format="localized"),
                                i18n.t("col.macs", L): st.column_config.NumberColumn(format="localized")})
    st.caption(i18n.t("arch.table_note", L))


def _explain_row(n: int, r, L: str) -> None:
    """One layer's output size and receptive-field step, each with its own numbers (from cnnlab.probe)."""
    st.text(figures.row_label(n, r))
    size = output_size_formula(r)
    if size is not None:
        st.caption(i18n.t("arch.explain_size", L))
        st.latex(output_size_formula(r, latex=True))
        st.text(size)
    rf = receptive_field_formula(r) if not r.too_small else None  # no output: no field to work out
    if rf is not None:
        st.caption(i18n.t("arch.explain_rf", L))
        st.latex(receptive_field_formula(r, latex=True))
        st.text(rf)


def explain_layer(rows, key: str = "arch_explain") -> None:
    """A selectbox of the conv/pool layers; the chosen one's formulas, worked out with its own numbers."""
    L = lang()
    choices = [(n, r) for n, r in numbered(rows) if r.has_window]
    if not choices:
        st.caption(i18n.t("arch.explain_none", L))
        return
    labels = {n: figures.row_label(n, r) for n, r in choices}
    if st.session_state.get(key) not in labels:
        st.session_state[key] = choices[0][0]
    n = st.selectbox(i18n.t("arch.explain", L), list(labels), key=key, format_func=labels.get)
    _explain_row(n, rows[n - 1], L)


def draw_receptive_field(rows, input_shape, key: str = "arch_rf_fig", detail_key: str = "arch_trace_detail") -> None:
    """Receptive field per block or per layer (the shape trace's detail), against the input size."""
    L = lang()
    st.caption(i18n.t("arch.rf_note", L))
    detail = st.session_state.get(detail_key, "blocks")
    fig = figures.shared(rows, "receptive_field", lambda: figures.receptive_field_figure(
        chart_rows(rows, detail), int(input_shape[-2]), L), detail, int(input_shape[-2]), L)
    st.plotly_chart(fig, key=key, width="stretch")


def too_small(err) -> None:
    """'Input too small': the error, the trace up to the layer where the size reaches zero, and that
    layer's formula with its own numbers."""
    L = lang()
    st.error(i18n.t("arch.too_small", L, msg=i18n.text_of(err, L)))
    rows = rows_from_steps(err.steps or [])
    if not rows:
        return
    st.caption(i18n.t("arch.too_small_trace", L))
    layer_table(rows, key="arch_table_too_small")
    last = len(rows)
    with st.container(key="arch_too_small_layer"):
        _explain_row(last, rows[-1], L)


def book_note(cfg) -> None:
    """The book's training recipe for this model (lr, batch size, epochs, resolution, accuracy) and the source."""
    L = lang()
    spec = cfg.spec
    r = spec.recipe(cfg.knobs)
    acc = i18n.t("arch.book_acc", L, acc=r.accuracy) if r.accuracy else ""
    st.caption(i18n.t("arch.book", L, lr=r.lr, bs=r.batch_size, epochs=r.epochs,
                      res=r.resolution, acc=acc) + f"  \n{i18n.t('arch.source', L)}: "
               f"{spec.source_zh if L == 'zh' and spec.source_zh else spec.source}")
