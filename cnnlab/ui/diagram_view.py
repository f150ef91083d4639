"""Architecture page: the block diagram (cnnlab.diagram, drawn by st.graphviz_chart in the browser) with a row of
block chips above it, named as the book names the blocks: picking a block outlines it in the diagram and filters
the layer table to its rows.

The diagram is drawn at its own size (width="content"), and scaled down by the browser only where it is wider
than its panel: cnnlab.diagram wraps it into rows that keep its text readable at 1024 px; no scroll box."""
from __future__ import annotations

import streamlit as st
import torch

from .. import i18n
from ..diagram import Diagram, diagram
from .common import lang

K_BLOCK = "arch_block"


@st.cache_data(show_spinner=False, max_entries=64)
def _diagram(arch: str, knobs: tuple, in_channels: int, num_classes: int, resolution: int, lang: str) -> Diagram:
    from .common import probe_config

    cfg, pr = probe_config(arch, dict(knobs), in_channels=in_channels, num_classes=num_classes,
                           resolution=resolution)
    with torch.device("meta"):  # the structure only: no weights allocated
        model = cfg.build()
    return diagram(model, pr.layers, lang)


def panel(cfg):
    """Draw the diagram; returns the picked block (a cnnlab.diagram.Block: its book name and the layer-table rows
    it draws), or None for every row."""
    from ..measure import config_key

    L = lang()
    d = _diagram(*config_key(cfg), L)   # (arch, knobs, in_channels, num_classes, resolution)
    names = [b.name for b in d.blocks]
    titles = {b.name: b.title for b in d.blocks}
    if st.session_state.get(K_BLOCK) not in names:
        st.session_state.pop(K_BLOCK, None)
    pick = st.pills(i18n.t("arch.diagram_pick", L), names, key=K_BLOCK, selection_mode="single",
                    format_func=lambda n: titles[n])
    with st.container(key="arch_diagram"):
        st.graphviz_chart(d.to_dot(highlight=pick), width="content")
    return next((b for b in d.blocks if b.name == pick), None)
