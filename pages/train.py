"""Train: settings and presets → a background run (cnnlab.jobs) with streaming curves, progress, stop."""
import streamlit as st

from cnnlab.ui import train_view, tr

st.title(tr("train.title"))
left, right = st.columns([2, 3], gap="large")
with left:
    settings = train_view.settings()
    if settings["start"] and train_view.start(settings):
        st.toast(tr("train.started", id=st.session_state[train_view.K_PICK]))
with right:
    train_view.run_panel()
