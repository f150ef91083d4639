"""CNN Lab: `streamlit run app.py`. Page config, the language toggle and the page router; nothing else."""
import sys
from pathlib import Path

import streamlit as st

st.set_page_config(page_title="CNN Lab", page_icon=str(Path(__file__).with_name("assets") / "icon.png"),
                   layout="wide")  # a local icon: a :material/…: icon is fetched from a font host by the browser
_loading = None
if "cnnlab.ui.shell" not in sys.modules:  # the first run after a server start imports torch (a second or two)
    _loading = st.empty()
    _loading.caption("正在加载 CNN Lab…" if st.query_params.get("lang") == "zh" else "Loading CNN Lab…")

from cnnlab.ui import shell  # noqa: E402

if _loading is not None:
    _loading.empty()
    shell.freeze_startup_objects()
shell.sidebar()  # language toggle (zh / en); keeps the Train settings across pages
st.navigation(shell.pages()).run()
