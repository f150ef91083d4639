"""Saved runs: compare curves, load one, predict (test images and an upload), feature maps, confusion matrix."""
import streamlit as st

from cnnlab.ui import checkpoint_root, export_view, runs_view, show_error, tr
from cnnlab.ui.common import checkpoint_note, shows_paths

st.title(tr("runs.title"))
st.caption(checkpoint_note())
try:
    runs = runs_view.list_runs()
except Exception as e:  # an unreadable checkpoints folder must not break the page
    show_error(e)
    st.stop()
if not runs:
    st.info(tr("runs.none", root=checkpoint_root()) if shows_paths() else tr("runs.none_here"))
    st.stop()

st.subheader(tr("runs.table"))
runs_view.runs_table(runs)
st.subheader(tr("runs.compare"))
runs_view.compare(runs)

st.subheader(tr("runs.load"))
run_dir = runs_view.pick_run(runs)
if run_dir is None:
    st.stop()
try:
    run = runs_view.load(run_dir)
    cfg = run.model_config
    data = runs_view.test_set(cfg.input_hw, cfg.in_channels, runs_view.view_images(cfg))
except Exception as e:  # CheckpointError, DataError: one line, no traceback
    show_error(e, "runs.load_failed")
    st.stop()
export_view.run_downloads(run)

# keyed: the tab stays picked across reruns (an upload reran the page and showed the first tab, hiding its result)
tabs = st.tabs([tr("runs.predict"), tr("runs.upload"), tr("runs.features"), tr("runs.confusion")], key="runs_tabs")
with tabs[0]:
    runs_view.test_predictions(run, data)
with tabs[1]:
    runs_view.upload_prediction(run)
with tabs[2]:
    runs_view.feature_maps(run, data)
with tabs[3]:
    runs_view.confusion(run)
