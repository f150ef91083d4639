"""Architecture page: where the parameters live (by layer kind) and MobileNet's block arithmetic with each block's
own numbers (cnnlab.costs)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .. import costs, i18n
from ..probe import human
from ..registry import KnobError
from . import figures
from .common import lang

COLORS = {"conv": "#1f77b4", "linear": "#ff7f0e", "norm": "#2ca02c", "other": "#9467bd"}


def kind_split_figure(probe, L: str) -> go.Figure:
    k = costs.by_kind(probe.layers, probe.cost.params, probe.cost.macs)
    ys = [i18n.t("arch.params", L), i18n.t("arch.macs", L)]
    bars = [dict(type="bar", y=ys, x=[k[kind]["params_share"] * 100, k[kind]["macs_share"] * 100], orientation="h",
                 name=i18n.t(f"cost.kind_{kind}", L), marker=dict(color=COLORS[kind]),
                 text=[f"{human(k[kind]['params'])} · {k[kind]['params_share']:.0%}",
                       f"{human(k[kind]['macs'])} · {k[kind]['macs_share']:.0%}"],
                 textposition="inside", insidetextanchor="middle")
            for kind in costs.KINDS if k[kind]["params"] or k[kind]["macs"]]
    # one validated step from dicts (see figures._figure): this chart is redrawn on every knob change
    return go.Figure(dict(data=bars, layout=dict(
        barmode="stack", height=170, margin=dict(l=10, r=10, t=10, b=30),
        xaxis=dict(title=dict(text=i18n.t("cost.share", L)), range=[0, 100]),
        legend=dict(orientation="h", y=-0.45), uniformtext=dict(minsize=9, mode="hide"))))


def kind_split(probe, key: str = "arch_kinds") -> None:
    """Two stacked bars (parameters, MACs) split by layer kind: NiN is all conv, AlexNet's parameters sit in its
    dense layers."""
    L = lang()
    fig = figures.shared(probe, "kind_split", lambda: kind_split_figure(probe, L), L)
    with st.container(key=key):
        st.caption(i18n.t("cost.by_kind", L))
        st.plotly_chart(fig, key=key + "_fig", width="stretch")


def block_costs(probe) -> bool:
    """The block arithmetic panel for MobileNet (separable or inverted-residual blocks); False if none."""
    L = lang()
    sep = costs.separable_blocks(probe.layers)
    inv = costs.inverted_blocks(probe.layers)
    if not sep and not inv:
        return False
    st.subheader(i18n.t("cost.blocks_title", L))
    if sep:
        st.caption(i18n.t("cost.separable_note", L))
        names = [b.block for b in sep]
        pick = st.selectbox(i18n.t("cost.pick_block", L), names, key="arch_sep_block",
                            format_func=lambda n: f"{n} · {sep[names.index(n)].M}→{sep[names.index(n)].N}, "
                                                  f"{sep[names.index(n)].H}²")
        b = sep[names.index(pick)]
        f = b.formulas()
        with st.container(key="arch_sep_panel"):
            st.markdown(f"- {i18n.t('cost.standard', L)}: `{f['standard']}`\n"
                        f"- {i18n.t('cost.depthwise', L)}: `{f['depthwise']}`\n"
                        f"- {i18n.t('cost.pointwise', L)}: `{f['pointwise']}`\n"
                        f"- {i18n.t('cost.ratio', L)}: ({b.depthwise:,} + {b.pointwise:,}) / {b.standard:,} = "
                        f"{b.ratio:.4f} = `{f['ratio']}`\n"
                        f"- {i18n.t('cost.ledger', L, n=f'{b.ledger:,}', ok='=' if b.ledger == b.separable else '≠')}")
        st.dataframe(pd.DataFrame([{i18n.t("cost.col_block", L): x.block, "M": x.M, "N": x.N, "D_F": x.H,
                                    i18n.t("cost.standard", L): x.standard, i18n.t("cost.separable", L): x.separable,
                                    i18n.t("cost.ratio", L): round(x.ratio, 4)} for x in sep]),
                     hide_index=True, width="stretch")
    if inv:
        st.caption(i18n.t("cost.inverted_note", L))
        names = [b.block for b in inv]
        pick = st.selectbox(i18n.t("cost.pick_block", L), names, key="arch_inv_block",
                            format_func=lambda n: f"{n} · {inv[names.index(n)].M}→{inv[names.index(n)].E}→"
                                                  f"{inv[names.index(n)].N}, k={inv[names.index(n)].k}")
        b = inv[names.index(pick)]
        with st.container(key="arch_inv_panel"):
            st.markdown("\n".join(
                f"- {i18n.t('cost.role_' + p.role, L)}: `{p.formula}` · "
                + i18n.t("cost.ledger_part", L, macs=f"{p.ledger_macs:,}", params=f"{p.ledger_params:,}")
                for p in b.parts))
    return True


K_COMPARE = "arch_compare"


def compare_toggle() -> bool:
    L = lang()
    return st.toggle(i18n.t("cost.compare", L), key=K_COMPARE, help=i18n.t("cost.compare_help", L))


def compare(choice: dict, pr_a) -> None:
    """Compare mode: a second architecture or knob setting (B) beside the one above (A): ledgers with B against
    A, shape traces and layer tables side by side."""
    from ..errors import InputTooSmall
    from . import arch_view, widgets
    from .common import probe_config

    L = lang()
    st.subheader(i18n.t("cost.compare_title", L))
    with st.expander(i18n.t("cost.compare_b", L), expanded=True):
        choice_b = widgets.model_picker("cmp", {"arch": choice["arch"], "knobs": choice["knobs"],
                                                "resolution": choice["resolution"],
                                                "in_channels": choice["in_channels"],
                                                "num_classes": choice["num_classes"]})
    try:
        _, pr_b = probe_config(choice_b["arch"], choice_b["knobs"], in_channels=choice_b["in_channels"],
                               num_classes=choice_b["num_classes"], resolution=choice_b["resolution"])
    except (KnobError, InputTooSmall) as e:
        st.error(i18n.t("arch.invalid", L, msg=i18n.text_of(e, L)))
        return
    a, b = st.columns(2, gap="large")
    with a:
        st.markdown(f"**A** · {choice['arch']}")
        arch_view.cost_ledger(pr_a, None, key="cmp_cost_a")
        kind_split(pr_a, key="cmp_kinds_a")
        arch_view.draw_shape_trace(pr_a.layers, pr_a.input_shape, key="cmp_trace_a", detail_key="cmp_detail_a")
        arch_view.layer_table(pr_a.layers, key="cmp_table_a")
    with b:
        st.markdown(f"**B** · {choice_b['arch']} ({i18n.t('cost.against_a', L)})")
        arch_view.cost_ledger(pr_b, pr_a, key="cmp_cost_b", vs="cost.vs_a")
        kind_split(pr_b, key="cmp_kinds_b")
        arch_view.draw_shape_trace(pr_b.layers, pr_b.input_shape, key="cmp_trace_b", detail_key="cmp_detail_b")
        arch_view.layer_table(pr_b.layers, key="cmp_table_b")
