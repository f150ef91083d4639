"""Architecture explorer: pick a network and its knobs → layer table, shape trace, cost ledger."""
import streamlit as st

from cnnlab.registry import KnobError
from cnnlab.ui import arch_view, tr, widgets
from cnnlab.ui.common import plain, probe_config

st.title(tr("arch.title"))
st.caption(tr("arch.intro"))

initial, url_errors = widgets.restore("arch", st.query_params)
for msg in url_errors:
    st.warning(tr("arch.url_bad", msg=plain(msg)))

left, right = st.columns([1, 2], gap="large")
with left:
    choice = widgets.model_picker("arch", initial)
    st.button(tr("arch.reset"), key="arch_reset", on_click=widgets.reset_model, args=("arch", choice["arch"]))
widgets.remember("arch", choice)

with right:
    try:
        cfg, pr = probe_config(choice["arch"], choice["knobs"], in_channels=choice["in_channels"],
                               num_classes=choice["num_classes"], resolution=choice["resolution"])
    except KnobError as e:
        st.error(tr("arch.invalid", msg=e))
        st.stop()
    try:
        _, base = probe_config(choice["arch"], cfg.spec.defaults(), in_channels=choice["in_channels"],
                               num_classes=choice["num_classes"], resolution=choice["resolution"])
    except KnobError:
        base = None  # the defaults do not fit this input: no comparison
    st.subheader(tr("arch.cost"))
    arch_view.cost_ledger(pr, base)
    arch_view.book_note(cfg)
    st.subheader(tr("arch.trace"))
    arch_view.shape_trace(pr)

st.subheader(tr("arch.table"))
arch_view.layer_table(pr)
