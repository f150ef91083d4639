"""From picture to code (#25): the Architecture page's Code panel and the downloads (.py, .ipynb; a run's model.pt)
on the Architecture, Train, Saved runs and Exercises pages. The text comes from cnnlab.export in the page's
language; the files are built when a button is pressed (a callable), not on every rerun."""
from __future__ import annotations

import importlib.util
import os
from typing import Callable

import streamlit as st

from .. import i18n
from .common import lang, plain

PY_MIME, IPYNB_MIME = "text/x-python", "application/x-ipynb+json"


def _buttons(make: Callable[[], object], name: str, key: str, note: str | None = None) -> None:
    """Two download buttons, .py and .ipynb, side by side: `name`.py and `name`.ipynb, built by `make()` (an
    Export) when a button is pressed, not on every rerun."""
    L = lang()
    with st.container(key=key):
        if note:
            st.caption(note)
        c1, c2 = st.columns(2)
        if importlib.util.find_spec("nbformat") is None:  # in requirements.txt; an image without it still runs
            c2.caption(i18n.t("export.no_nbformat", L))
        else:
            c2.download_button(i18n.t("export.dl_ipynb", L), data=lambda: make().ipynb(), file_name=f"{name}.ipynb",
                               mime=IPYNB_MIME, key=f"{key}_ipynb", on_click="ignore", icon=":material/book_2:",
                               width="stretch")
        c1.download_button(i18n.t("export.dl_py", L), data=lambda: make().py(), file_name=f"{name}.py",
                           mime=PY_MIME, key=f"{key}_py", on_click="ignore", icon=":material/code:",
                           width="stretch")


def code_panel(cfg) -> None:
    """The model of `cfg` as book-style PyTorch (st.code carries a copy button), then its downloads."""
    from ..export import model_code
    from ..export.book import model_export

    L = lang()
    with st.container(key="arch_code"):
        st.caption(i18n.t("export.code_note", L))
        st.code(model_code(cfg, L).script(), language="python", height=420)
    _buttons(lambda: model_export(cfg, L), cfg.arch, "arch_dl")


def train_downloads(settings: dict) -> None:
    """The Train page's settings as a notebook: the model and the run's recipe (nothing while they are invalid;
    the page already says why)."""
    from ..export.book import train_export
    from ..registry import KnobError
    from .train_view import train_config

    L = lang()
    try:
        tc = train_config(settings)
    except (KnobError, ImportError):
        return
    with st.expander(i18n.t("export.dl_title", L), expanded=False):
        _buttons(lambda: train_export(tc, L), f"{tc.model.arch}-train", "dl_train", i18n.t("export.train_note", L))


def run_downloads(run) -> None:
    """A loaded run as a notebook that loads its model.pt (weights_only), and the model.pt itself."""
    from .. import checkpoint
    from ..export.book import run_export

    L = lang()
    weights = os.path.join(run.run_dir, checkpoint.WEIGHTS)

    def read_weights() -> bytes:  # on a press; a regular file only, never through a link (checkpoint's rule)
        f, _size = checkpoint._open_regular(weights)
        with f:
            return f.read()

    try:
        name = run_export(run.run_dir, L).name  # reads config.json again: the folder may have changed since
    except Exception as e:  # noqa: BLE001 — a folder changed since it was loaded: one sentence
        st.caption(i18n.t("export.unavailable", L, msg=plain(i18n.text_of(e, L))))
        return
    with st.expander(i18n.t("export.dl_title", L), expanded=False):
        _buttons(lambda: run_export(run.run_dir, L), name, "runs_dl", i18n.t("export.run_note", L))
        st.download_button(i18n.t("export.dl_weights", L), data=read_weights, file_name=checkpoint.WEIGHTS,
                           mime="application/octet-stream", key="runs_dl_weights", on_click="ignore",
                           icon=":material/download:")


def exercise_downloads(ex, over: dict | None = None) -> None:
    """An exercise's A and B as one notebook, with the seed and data order the page's pair uses."""
    from ..export.book import exercise_export

    L = lang()
    kw = dict(over or {})
    with st.expander(i18n.t("export.dl_title", L), expanded=False):
        _buttons(lambda: exercise_export(ex, L, seed=0, **kw), f"exercise-{ex.id}", "ex_dl",
                 i18n.t("export.ex_note", L))
