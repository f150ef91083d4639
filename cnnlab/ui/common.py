"""Shared app state: language, checkpoint folder, the server's executor and this browser's owner id, probes."""
from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any, Mapping

import streamlit as st

from .. import i18n
from ..measure import measure
from ..registry import Config, KnobError, get_spec, resolve

ROOT = Path(__file__).resolve().parents[2]
LANG_KEY = "lang"


def lang() -> str:
    v = st.session_state.get(LANG_KEY, "en")
    return v if v in i18n.LANGS else "en"


def tr(key: str, **fmt) -> str:
    """The string for `key` in the session's language."""
    return i18n.t(key, lang(), **fmt)


def text_of(x: Any) -> str:
    """A library sentence (an error, a refusal, a stop message, a reason: a Message, or an exception carrying
    one) in the session's language; other text as it is."""
    return i18n.text_of(x, lang())


def arch_title(arch: str, language: str | None = None) -> str:
    try:
        spec = get_spec(arch)
    except KnobError:
        return arch
    return spec.title_zh if (language or lang()) == "zh" else spec.title_en


def model_title(arch: str, knobs: Mapping[str, Any] | None, language: str | None = None) -> str:
    """The architecture's title, saying BN-LeNet (d2l 8.5) for LeNet with batch norm (scratch or nn)."""
    bn = (knobs or {}).get("batchnorm")
    if arch == "lenet" and bn not in (None, "off"):
        return f"BN-LeNet ({bn})"
    return arch_title(arch, language)


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def checkpoint_where() -> tuple[Path, str]:
    """Where runs are saved, and which case it is (for the note on the Saved runs page):

    - ``default``: checkpoints/ next to app.py ($CNNLAB_CHECKPOINTS unset);
    - ``set``: $CNNLAB_CHECKPOINTS, taken as given;
    - ``persistent`` / ``temp``: with $CNNLAB_CHECKPOINTS_FALLBACK set too (the Space image sets
      /data/cnnlab-runs and /tmp/cnnlab-runs): $CNNLAB_CHECKPOINTS when it can be created and written
      (the Space has persistent storage at /data), else the fallback folder (an empty value means
      <temp dir>/cnnlab-runs), whose runs are lost when the container restarts.
    """
    env = os.environ.get("CNNLAB_CHECKPOINTS")
    if not env:
        return ROOT / "checkpoints", "default"
    if "CNNLAB_CHECKPOINTS_FALLBACK" not in os.environ:
        return Path(env), "set"
    if _writable_dir(Path(env)):
        return Path(env), "persistent"
    fallback = os.environ["CNNLAB_CHECKPOINTS_FALLBACK"]
    root = Path(fallback) if fallback else Path(tempfile.gettempdir()) / "cnnlab-runs"
    _writable_dir(root)  # a failure shows up where runs are listed or saved, as one line
    return root, "temp"


def checkpoint_root() -> Path:
    """Where runs are saved: see checkpoint_where()."""
    return checkpoint_where()[0]


def shows_paths() -> bool:
    """Whether this person may see the server's folders: a signed-in teacher, or whoever runs the app on their
    own machine (no teacher mode, runs in the default folder). Students on a shared server never do."""
    from .. import teacher

    return signed_in() or (not teacher.enabled() and checkpoint_where()[1] == "default")


def checkpoint_note() -> str:
    """One line for people: where runs are kept, and whether they outlive a restart (the folder itself only to
    those who may see the server's folders: shows_paths)."""
    root, kind = checkpoint_where()
    if shows_paths():
        return tr({"persistent": "runs.where_persistent", "temp": "runs.where_temp"}.get(kind, "runs.where"),
                  root=root)
    return tr({"persistent": "runs.where_server_persistent", "temp": "runs.where_server_temp"}.get(
        kind, "runs.where_server"))


def probe_config(arch: str, knobs: Mapping[str, Any], *, in_channels: int = 1, num_classes: int = 10,
                 resolution: int | None = None):
    """(Config, Measurement) for these knobs: the measurement from cnnlab.measure's shared cache. Raises KnobError
    for bad knobs, InputTooSmall (with the steps up to where the input gets too small) or LimitError."""
    cfg = resolve(arch, dict(knobs), in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    return cfg, measure(cfg).check()


def resolve_config(arch: str, knobs: Mapping[str, Any], **dims) -> Config:
    return probe_config(arch, knobs, **dims)[0]


def plain(text: Any, limit: int = 300) -> str:
    """Text that came from outside (a link, a run folder, an upload, an error quoting them) as a markdown
    code span: shown literally, never as a link, an image or formatting; one line, at most `limit` characters."""
    s = str(text).strip().splitlines()[0] if str(text).strip() else ""
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    fence = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if not s or s[0] == "`" or s[-1] == "`" else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def safe_label(text: Any, limit: int = 120) -> str:
    """Text from a run folder for a widget option or a chart legend: one line, no angle brackets (plotly
    draws a little HTML, links included), at most `limit` characters."""
    s = " ".join(str(text).split())
    s = "".join(ch for ch in s if ch.isprintable()).replace("<", "‹").replace(">", "›")
    return s if len(s) <= limit else s[:limit - 1] + "…"


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def client_address() -> str:
    """Who is asking, for limits per client (the teacher's password tries): the connection's address, or,
    when it comes from this machine's front (nginx, on loopback), the address the front saw, which it appends
    to X-Forwarded-For — CNNLAB_PROXY_HOPS (default 1) counts the proxies of ours from the right (2 behind
    HF's proxy and the front). A header from anywhere else is not trusted. "local" without a request."""
    try:
        ip = st.context.ip_address
        xff = st.context.headers.get("X-Forwarded-For") or ""
    except Exception:  # noqa: BLE001 - AppTest: one local client
        return "local"
    ip = ip if isinstance(ip, str) else None          # (AppTest: a mock)
    xff = xff if isinstance(xff, str) else ""
    hops = os.environ.get("CNNLAB_PROXY_HOPS", "1")
    hops = int(hops) if hops.isdigit() else 1
    parts = [p.strip() for p in xff.split(",") if p.strip()]
    if (ip is None or ip in _LOOPBACK) and parts and hops > 0:
        return parts[-min(hops, len(parts))][:64]
    return (ip or "local")[:64]


_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")


def public_url() -> str:
    """The address students open: $CNNLAB_PUBLIC_URL when set, else the one this request came to (the host
    and scheme a proxy in front says — on a Space, https://<owner>-<space>.hf.space —, else the Host header).
    Shown to the teacher (assignment links) and to a student whose browser keeps no cookie here; never trusted
    for anything else."""
    env = os.environ.get("CNNLAB_PUBLIC_URL", "").strip().rstrip("/")
    if env:
        return env
    try:
        h = st.context.headers
        host = (h.get("X-Forwarded-Host") or h.get("Host") or "").split(",")[0].strip()
        proto = (h.get("X-Forwarded-Proto") or "http").split(",")[0].strip().lower()
    except Exception:  # noqa: BLE001 - no request (AppTest)
        host, proto = "", "http"
    if not _HOST.fullmatch(host):
        return ""
    return f"{proto if proto in ('http', 'https') else 'http'}://{host}"


def show_error(exc: BaseException | str, key: str = "common.error") -> None:
    """One readable line for people, never a traceback; the message is shown as plain text (see `plain`)."""
    st.error(tr(key, msg=plain(text_of(exc))))


@st.cache_resource(show_spinner=False)
def _executor():
    import atexit

    from ..runs import get_executor
    from ..teacher import server_token

    server_token()  # with teacher mode on, the executor's Limits.teacher (read from the environment) is set now
    ex = get_executor(None, out_dir=str(checkpoint_root()))
    atexit.register(ex.shutdown)
    return ex


def executor():
    """The server's one executor (cnnlab.runs: local worker processes, or Ray when CNNLAB_RAY_ADDRESS is set).
    It survives page switches, reruns and reloads; every run in it has an owner."""
    return _executor()


# -- who is this browser? -----------------------------------------------------------------
OWNER_COOKIE = "cnnlab_owner"
K_OWNER = "_owner"
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def owner_id() -> str:
    """This browser's owner token: minted by this server and signed by it (cnnlab.owners), kept in a cookie (all
    tabs of one browser are one owner; it survives reruns, page switches and reloads, and is never part of a
    URL, so a shared link never carries it). A cookie the server did not sign — any string a client makes up —
    is not an owner: the browser gets a new token. Minting is counted per client address (owners.Minter)."""
    from .. import owners

    tok = st.session_state.get(K_OWNER)
    if not tok:
        root, have = str(checkpoint_root()), cookie(OWNER_COOKIE)  # (no request, as in AppTest: None)
        tok = have if owners.valid(root, have) else owners.mint(root, client_address())
        st.session_state[K_OWNER] = tok
    return tok


def cookie(name: str) -> str | None:
    """A cookie the browser sent with this session's request (None when absent, or without a browser)."""
    try:
        v = st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 - no request (AppTest)
        return None
    return v if isinstance(v, str) else None


def has_browser() -> bool:
    """Whether this session has a browser to write cookies in (AppTest has none)."""
    try:
        have = st.context.cookies.get(OWNER_COOKIE)
    except Exception:  # noqa: BLE001
        return False
    return have is None or isinstance(have, str)


# The cookie's attributes are chosen in the browser: inside a cross-site frame (a Space page on huggingface.co
# frames *.hf.space) Chromium keeps a cookie only when it is `SameSite=None; Secure; Partitioned`, and only in
# a secure context (https, or a loopback origin); at top level the strict form.
_COOKIE_JS = ("<script>(function(){{var framed;try{{framed=window.parent!==window.parent.parent;}}"
              "catch(e){{framed=true;}}var a=(framed&&window.isSecureContext)?'; SameSite=None; Secure; Partitioned'"
              ":'; SameSite=Strict';{sets}}})();</script>")


def set_cookies(values: Mapping[str, tuple[str, int | None]]) -> None:
    """Write cookies in the browser ({name: (value, max-age seconds or None for the browser session)}) with a
    tiny same-origin script; names and values are ours ([A-Za-z0-9_-] only), never user text."""
    written = st.session_state.setdefault("_cookies_written", {})  # once per browser session and value
    sets = []
    for name, (value, max_age) in values.items():
        assert _TOKEN_CHARS.fullmatch(name) and (value == "" or _TOKEN_CHARS.fullmatch(value)), name
        if written.get(name) == value:
            continue
        written[name] = value
        age = "" if max_age is None else f"; max-age={int(max_age)}"
        sets.append(f"document.cookie='{name}={value}; path=/{age}'+a;")
    if sets:
        st.iframe(_COOKIE_JS.format(sets="".join(sets)), height=1)


def remember_owner() -> None:
    """Write the owner cookie in the browser if the request did not carry it (call once per page run)."""
    tok = owner_id()
    if has_browser() and cookie(OWNER_COOKIE) != tok:
        set_cookies({OWNER_COOKIE: (tok, 31536000)})


def exercise_tag(meta: Mapping[str, Any] | None, language: str | None = None) -> str:
    """"ResNet without the shortcut · A" for one side of an exercise pair ("" for any other run): how such a run
    is labelled on every page (Train, Exercises, Saved runs, Batch normalization)."""
    from .. import exercises

    meta = meta or {}
    ex, side = meta.get("exercise"), meta.get("side")
    if not isinstance(ex, str) or ex not in exercises.BY_ID or side not in ("A", "B"):
        return ""
    return f"{exercises.BY_ID[ex].text('title', language or lang())} · {side}"


def visible_runs() -> list:
    """The saved runs this browser may see, for every page that lists runs (Saved runs, Batch normalization):
    its own (by the `.owner` digest) and the ones no browser owns (made with the CLI); a signed-in teacher sees
    every run. Students never see other students' runs: this is the one place that decides it."""
    from .. import checkpoint
    from ..runs.recovery import owner_digest, run_owner

    rows = checkpoint.list_runs(str(checkpoint_root()))
    if signed_in():
        return rows
    me = owner_digest(owner_id())
    return [r for r in rows if run_owner(r.run_dir) in (None, me)]


class MyRuns:
    """This session's owner's view of the executor: only their runs, as RunViews; stop acts on theirs only."""

    def __init__(self, ex, owner: str):
        self.ex, self.owner = ex, owner

    def jobs(self):
        from ..runs.view import view

        return [v for v in (view(self.ex, s.id) for s in self.ex.list(self.owner)) if v is not None]

    def view(self, run_id: str | None):
        from ..runs.view import view

        if not run_id:
            return None
        st_ = self.ex.status(run_id)
        if st_ is None or st_.owner != self.owner:
            return None
        return view(self.ex, run_id)

    def stop(self, run_id: str) -> bool:
        from ..runs import NotOwner

        try:
            return self.ex.stop(run_id, self.owner)
        except NotOwner:
            return False

    def latest(self):
        views = self.jobs()
        for state in ("running", "queued"):
            for v in views:
                if v.state == state:
                    return v
        return views[0] if views else None

    def others(self) -> dict:
        """How many runs other people have training and waiting (counts only, never their settings)."""
        out = {"running": 0, "queued": 0}
        for s in self.ex.list():
            if s.owner != self.owner and s.state in out:
                out[s.state] += 1
        return out

    def ahead(self, run_id: str) -> int | None:
        """Runs ahead of this queued run (anyone's)."""
        s = self.ex.status(run_id)
        return None if s is None or s.position is None else max(0, s.position - 1)


def my_runs() -> MyRuns:
    """This browser's runs in the server's executor."""
    return MyRuns(executor(), owner_id())


def fmt_seconds(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


# -- the teacher's sign-in, kept for the browser session ---------------------------------------------------------
K_SIGNED_IN = "_teacher_signed_in"   # not widget keys
K_SESSION = "_teacher_session"       # the server-side session token this browser's cookie carries
TEACHER_COOKIE = "cnnlab_teacher"


def signed_in() -> bool:
    """Whether this browser session is the teacher's: signed in here, or carrying a live sign-in cookie (a
    server-side session token, never the password) from an earlier page load of this browser session."""
    from .. import teacher

    if not teacher.enabled():
        return False
    if st.session_state.get(K_SIGNED_IN):
        return True
    tok = cookie(TEACHER_COOKIE)
    if tok and st.session_state.get(K_SIGNED_IN) is None:  # checked once per browser session
        ok = teacher.session_valid(str(checkpoint_root()), tok)
        st.session_state[K_SIGNED_IN] = ok
        if ok:
            st.session_state[K_SESSION] = tok
        return ok
    return False
