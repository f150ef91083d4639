"""Architecture explorer: pick a network and its knobs → cost ledger, shape trace, layer table, layer arithmetic."""
import streamlit as st

from cnnlab.errors import InputTooSmall, KnobError
from cnnlab.ui import arch_view, cost_view, diagram_view, export_view, train_view, tr, widgets
from cnnlab.ui.common import plain, probe_config, text_of

st.title(tr("arch.title"))
st.caption(tr("arch.intro"))

initial, url_errors = widgets.restore("arch", st.query_params)
for msg in url_errors:
    st.warning(tr("arch.url_bad", msg=plain(text_of(msg))))

left, right = st.columns([1, 2], gap="large")
with left:
    choice = widgets.model_picker("arch", initial)
    st.button(tr("arch.reset"), key="arch_reset", on_click=widgets.reset_model, args=("arch", choice["arch"]))
    # "Train this": the Train page with the same model and knobs (its settings come from the link)
    st.page_link("app_pages/train.py", label=tr("arch.train_this"), icon=":material/monitoring:",
                 query_params=train_view.link_params(choice))
    comparing = cost_view.compare_toggle()
widgets.remember("arch", choice)

with right:
    try:
        cfg, pr = probe_config(choice["arch"], choice["knobs"], in_channels=choice["in_channels"],
                               num_classes=choice["num_classes"], resolution=choice["resolution"])
    except InputTooSmall as e:  # show the trace up to the layer where the size reaches zero
        arch_view.too_small(e)
        st.stop()
    except KnobError as e:
        st.error(tr("arch.invalid", msg=text_of(e)))
        st.stop()
    try:
        _, base = probe_config(choice["arch"], cfg.spec.defaults(), in_channels=choice["in_channels"],
                               num_classes=choice["num_classes"], resolution=choice["resolution"])
    except KnobError:
        base = None  # the defaults do not fit this input: no comparison
    st.subheader(tr("arch.cost"))
    arch_view.cost_ledger(pr, base)
    cost_view.kind_split(pr)
    arch_view.book_note(cfg)
    st.subheader(tr("arch.trace"))
    arch_view.draw_shape_trace(pr.layers, pr.input_shape)

st.subheader(tr("arch.diagram"))
block = diagram_view.panel(cfg)
st.subheader(tr("arch.table"))
arch_view.layer_table(pr.layers, block=block)
st.subheader(tr("arch.arith"))
explain, chart = st.columns([1, 1], gap="large")
with explain:
    arch_view.explain_layer(pr.layers)
with chart:
    arch_view.draw_receptive_field(pr.layers, pr.input_shape)
cost_view.block_costs(pr)
st.subheader(tr("export.code_title"))
export_view.code_panel(cfg)
if comparing:
    cost_view.compare(choice, pr)
