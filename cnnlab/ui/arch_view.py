"""Architecture page pieces: cost ledger, shape trace figure, layer table."""
from __future__ import annotations

import streamlit as st

from .. import i18n
from ..probe import human
from . import figures
from .common import lang


def _ratio_delta(value: float, base: float | None, L: str) -> str | None:
    if base is None or base <= 0:
        return None
    r = value / base
    if abs(r - 1) < 5e-4:
        return None
    return f"{(r - 1) * 100:+.0f}% · {r:.2f}{i18n.t('arch.vs_default', L)}"


def cost_ledger(probe, base_probe=None, key: str = "arch_cost") -> None:
    """Three metrics (params, MACs, activation memory) with the change against the default knobs."""
    L = lang()
    c, b = probe.cost, (base_probe.cost if base_probe is not None else None)
    with st.container(key=key):
        cols = st.columns(3)
        cols[0].metric(i18n.t("arch.params", L), human(c.params),
                       delta=_ratio_delta(c.params, b.params if b else None, L), delta_color="inverse")
        cols[1].metric(i18n.t("arch.macs", L), human(c.macs),
                       delta=_ratio_delta(c.macs, b.macs if b else None, L), delta_color="inverse")
        cols[2].metric(i18n.t("arch.act_mem", L), human(c.activation_bytes, "B"),
                       delta=_ratio_delta(c.activation_bytes, b.activation_bytes if b else None, L),
                       delta_color="inverse")
        ch, h, w = probe.input_shape
        st.caption(i18n.t("arch.cost_note", L, c=ch, h=h, w=w))


def trace_rows(probe, detail: str):
    """'blocks' = the top-level blocks; 'layers' = every leaf layer (the shape trace)."""
    if detail == "blocks":
        return [r for r in probe.layers if r.depth == 1]
    return [r for r in probe.layers if r.is_leaf]


def shape_trace(probe, key: str = "arch_trace_fig", detail_key: str = "arch_trace_detail") -> None:
    L = lang()
    if detail_key not in st.session_state:
        st.session_state[detail_key] = "blocks"
    detail = st.radio(i18n.t("arch.trace_detail", L), ["blocks", "layers"], key=detail_key, horizontal=True,
                      format_func=lambda d: i18n.t("arch.detail_blocks" if d == "blocks" else "arch.detail_layers", L))
    st.caption(i18n.t("arch.trace_note", L))
    fig = figures.shape_trace(trace_rows(probe, detail), probe.input_shape, L)
    st.plotly_chart(fig, key=key, width="stretch")


def layer_rows(probe, L: str) -> list[dict]:
    return [{i18n.t("col.layer", L): ("\u2003" * (r.depth - 1)) + (r.name or "—"),
             i18n.t("col.type", L): r.type,
             i18n.t("col.shape", L): figures.shape_str(r.output_shape),
             i18n.t("col.params", L): r.params,
             i18n.t("col.macs", L): r.macs} for r in probe.layers]


def layer_table(probe, key: str = "arch_table") -> None:
    L = lang()
    st.dataframe(layer_rows(probe, L), key=key, hide_index=True, width="stretch", height=420,
                 column_config={i18n.t("col.params", L): st.column_config.NumberColumn(format="localized"),
                                i18n.t("col.macs", L): st.column_config.NumberColumn(format="localized")})


def book_note(cfg) -> None:
    """The book's training recipe for this model (lr, batch size, epochs, resolution, accuracy) and the source."""
    L = lang()
    spec = cfg.spec
    tr_ = spec.training
    acc = i18n.t("arch.book_acc", L, acc=tr_.accuracy) if tr_.accuracy else ""
    st.caption(i18n.t("arch.book", L, lr=spec.book_lr(cfg.knobs), bs=tr_.batch_size, epochs=tr_.epochs,
                      res=tr_.resolution, acc=acc) + f"  \n{i18n.t('arch.source', L)}: {spec.source}")
