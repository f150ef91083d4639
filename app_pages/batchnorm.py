"""Batch normalization (批量规范化): learned γ/β per channel over time, running vs batch statistics,
and the book's scratch BatchNorm against nn.BatchNorm2d."""
import streamlit as st

from cnnlab.ui import bn_view, tr

st.title(tr("bn.title"))
st.caption(tr("bn.intro"))
source = bn_view.pick_source()
if source:
    bn_view.draw(source)
st.subheader(tr("bn.demo"))
bn_view.equivalence_demo()
