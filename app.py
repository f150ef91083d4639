"""CNN Lab: `streamlit run app.py`. Page config, the language toggle and the page router; nothing else."""
import streamlit as st

from cnnlab.ui import shell

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")
shell.sidebar()  # language toggle (zh / en); keeps the Train settings across pages
st.navigation(shell.pages()).run()
