"""Train: settings and presets (kept in the URL) → a run in the server's executor (cnnlab.runs), owned by this
browser, with streaming curves, progress, queue position and stop."""
import streamlit as st

from cnnlab.ui import export_view, train_view, tr
from cnnlab.ui.common import text_of

st.title(tr("train.title"))
for msg in train_view.restore_url():
    st.warning(tr("arch.url_bad", msg=text_of(msg)))
# on a phone (columns stacked) the run panel comes first, right above the preset and Start (shell.CSS)
left, right = st.container(key="train_layout").columns([2, 3], gap="large")
with left:
    settings = train_view.settings()
    if settings["start"] and train_view.start(settings):
        st.toast(tr("train.started", id=st.session_state[train_view.K_PICK]))
    export_view.train_downloads(settings)
with right:
    train_view.run_panel()
