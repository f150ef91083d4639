import streamlit as st

st.title("batchnorm")
