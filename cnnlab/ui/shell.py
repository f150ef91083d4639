"""The app shell: language toggle (sidebar, kept in ?lang=) and the four pages for st.navigation."""
from __future__ import annotations

import gc
import threading

# pandas is imported here, before any page runs, on purpose: plotly looks pandas up in sys.modules without
# importing it, so a session drawing its first chart while another session's thread was still importing pandas
# got a half-initialised module ("partially initialized module 'pandas' has no attribute 'Series'", an exception
# box on the Architecture page; found by bench/load_test.py with two sessions opening the app at once). Every
# script run imports this module first, and Python makes it wait until this import has finished.
import pandas  # noqa: F401
import streamlit as st

from .. import i18n
from .common import LANG_KEY, lang

_FROZEN = threading.Lock()
_frozen = False


def freeze_startup_objects() -> bool:
    """Once per server: import what every page needs, collect, then move every object that exists now
    (modules, classes, torch's and plotly's tables) out of the garbage collector's reach (gc.freeze), so the
    collections that happen while a class uses the app walk only what the sessions made. True the first time."""
    global _frozen
    with _FROZEN:
        if _frozen:
            return False
        import plotly.graph_objects  # noqa: F401

        import torchinfo  # noqa: F401  (imported by the first measurement otherwise)

        from .. import measure  # noqa: F401  (torch, every model registered, the measuring code)
        gc.collect()
        gc.freeze()
        _frozen = True
        return True

# The page scripts live in app_pages/, not pages/: with a pages/ folder next to app.py, Streamlit runs the first
# script run after a server start in its file-based multipage mode. That run showed the raw file names as a
# menu for a second or two, and a deep link (/training?assign=…) opened as that first request got a "Page not
# found" dialog over the page. Without a pages/ folder every run goes through app.py's st.navigation. The
# default page lives at "/", so a shared Architecture link is /?arch=vgg&ratio=4. Icons are Material (bundled
# font): emoji need system fonts.
PAGES = (("app_pages/architecture.py", "page.architecture", "explore", ":material/account_tree:"),
         ("app_pages/train.py", "page.train", "training", ":material/monitoring:"),
         ("app_pages/batchnorm.py", "page.batchnorm", "batch-norm", ":material/tune:"),
         ("app_pages/runs.py", "page.runs", "saved-runs", ":material/folder_open:"),
         ("app_pages/exercises.py", "page.exercises", "exercises", ":material/school:"))


def _lang_changed() -> None:
    st.query_params["lang"] = st.session_state[LANG_KEY]
    # A selectbox shows the text of its choice as it was drawn: after the switch it kept "sigmoid" while its
    # options read "sigmoid 函数". Setting each widget's value again makes the browser draw it anew. Only
    # values that a choice can hold (a text or a number): buttons (True/False) may not be set at all, and a
    # toggle shows no text.
    for k in list(st.session_state.keys()):
        v = st.session_state[k]
        if isinstance(k, str) and not k.startswith("_") and k != LANG_KEY and \
                isinstance(v, (str, int, float, list)) and not isinstance(v, bool):
            st.session_state[k] = v


def language_toggle() -> str:
    """A zh / en switch in the sidebar; a link with ?lang=zh opens in Chinese."""
    if LANG_KEY not in st.session_state:
        st.session_state[LANG_KEY] = st.query_params.get("lang") if st.query_params.get("lang") in i18n.LANGS \
            else "en"
    with st.sidebar:
        st.markdown(f"### {i18n.t('app.title', lang())}")
        st.radio(i18n.t("app.language", lang()), i18n.LANGS, key=LANG_KEY, horizontal=True,
                 format_func=lambda c: i18n.LANG_NAMES[c], on_change=_lang_changed)
        st.caption(i18n.t("app.caption", lang()))
    if lang() != "en" and st.query_params.get("lang") != lang():  # a page switch drops the query: put it back
        st.query_params["lang"] = lang()
    return lang()


KEEP_PREFIXES = ("train_", "ex_pick")  # settings worth keeping when a person visits another page and comes back
NOT_KEPT = ("train_start", "train_stop", "train_job_pick")  # buttons cannot be set; the run pick has its own


def keep_settings() -> None:
    """Streamlit forgets a widget's value when a run does not draw it (another page). Writing the value back
    through the Session State API on every run keeps the Train page's settings across page switches."""
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and k.startswith(KEEP_PREFIXES) and k not in NOT_KEPT:
            st.session_state[k] = st.session_state[k]


# Readable on a projector (1024×700 with the sidebar open) and a phone: metric values shrink with the window
# instead of being cut to "43.0…", and metric labels wrap instead of ending in "…". On a phone the Train page's
# columns stack with the run panel first, so the curves sit right above the preset and Start (not under two
# screens of settings).
CSS = """<style>
[data-testid="stMetricValue"] { font-size: clamp(1.05rem, 1.8vw, 2.25rem); }
[data-testid="stMetricValue"] > div { overflow: visible; text-overflow: clip; }
[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div { white-space: normal; overflow: visible;
  text-overflow: clip; }
[data-testid="stMetricDelta"] { max-width: 100%; }
[data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"], [data-testid="stMetricDelta"] p {
  white-space: normal; overflow: visible; text-overflow: clip; min-width: 0; }
/* columns of widgets wrap instead of squeezing a label to "f." or "conv_arc h" (a projector, 1024 px with the
   sidebar open): each keeps room for a label, and the rest move to the next row */
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stWidgetLabel"]) { flex-wrap: wrap; }
[data-testid="stColumn"]:has([data-testid="stWidgetLabel"]) { min-width: min(10rem, 100%); }
[data-testid="stWidgetLabel"] p { overflow-wrap: normal; word-break: normal; }
@media (max-width: 640px) {
  .st-key-train_layout > div > [data-testid="stHorizontalBlock"] { flex-direction: column-reverse; }
  /* the prediction grid keeps a desktop width on a phone and scrolls sideways: 8 images a row stay readable */
  .st-key-runs_grid { overflow-x: auto; }
  .st-key-runs_grid > div { min-width: 960px; }
}
</style>"""


def style() -> None:
    st.markdown(CSS, unsafe_allow_html=True)


def _start_executor() -> None:
    """The server's executor is made by the first script run of any page (once: it is cached), and with it
    the runs a killed server left "running" are marked interrupted — on start-up, not when someone happens to
    open the Train page (Saved runs showed "running 2/50" for a dead run until then)."""
    from .common import executor

    try:
        executor()
    except Exception:  # noqa: BLE001 - the page that needs it says why in one line
        pass


def sidebar() -> str:
    """The shell's per-run work before the page: language toggle, kept settings, nickname and teacher sign-in."""
    from . import runs_key_view, teacher_view
    from .common import remember_owner

    keep_settings()
    style()
    _start_executor()
    L = language_toggle()
    teacher_view.sidebar()
    with st.sidebar:
        remember_owner()  # on every page: a nickname set on Architecture is this browser's after a reload too
    runs_key_view.notice_and_key()
    return L


TEACHER_PAGE = ("app_pages/teacher.py", "page.teacher", "class", ":material/groups:")


def pages() -> list:
    """The pages; the Class page only where teacher mode is on (CNNLAB_TEACHER_PASSWORD)."""
    from .. import teacher

    L = lang()
    listed = PAGES + ((TEACHER_PAGE,) if teacher.enabled() else ())
    return [st.Page(path, title=i18n.t(title, L), url_path=url, icon=icon, default=(i == 0))
            for i, (path, title, url, icon) in enumerate(listed)]
