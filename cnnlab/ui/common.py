"""Shared app state: language, checkpoint folder, the process-wide run registry, cached probes."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import streamlit as st

from .. import i18n
from ..registry import Config, KnobError, get_spec, resolve

ROOT = Path(__file__).resolve().parents[2]
LANG_KEY = "lang"


def lang() -> str:
    v = st.session_state.get(LANG_KEY, "en")
    return v if v in i18n.LANGS else "en"


def tr(key: str, **fmt) -> str:
    """The string for `key` in the session's language."""
    return i18n.t(key, lang(), **fmt)


def arch_title(arch: str, language: str | None = None) -> str:
    try:
        spec = get_spec(arch)
    except KnobError:
        return arch
    return spec.title_zh if (language or lang()) == "zh" else spec.title_en


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


def checkpoint_note() -> str:
    """One line for people: where runs are saved, and whether they outlive a restart."""
    root, kind = checkpoint_where()
    return tr({"persistent": "runs.where_persistent", "temp": "runs.where_temp"}.get(kind, "runs.where"),
              root=root)


def freeze(knobs: Mapping[str, Any]) -> tuple:
    """A hashable, order-independent form of a knob dict (for cache keys)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in knobs.items()))


@st.cache_data(max_entries=512, show_spinner=False)
def _probe_cached(arch: str, knobs: tuple, in_channels: int, num_classes: int, resolution: int | None):
    from ..probe import probe

    cfg = resolve(arch, dict(knobs), in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    return cfg, probe(cfg)


def probe_config(arch: str, knobs: Mapping[str, Any], *, in_channels: int = 1, num_classes: int = 10,
                 resolution: int | None = None):
    """(Config, Probe) for these knobs, cached per (arch, knobs, input); raises KnobError for bad knobs."""
    return _probe_cached(arch, freeze(knobs), int(in_channels), int(num_classes),
                         None if resolution is None else int(resolution))


def resolve_config(arch: str, knobs: Mapping[str, Any], **dims) -> Config:
    return probe_config(arch, knobs, **dims)[0]


def show_error(exc: BaseException, key: str = "common.error") -> None:
    """One readable line for people, never a traceback."""
    msg = str(exc) or type(exc).__name__
    st.error(tr(key, msg=msg))


@st.cache_resource(show_spinner=False)
def _registry():
    from ..jobs import JobRegistry

    return JobRegistry(max_running=1, max_queued=8)


def registry():
    """The process-wide JobRegistry (survives page switches, reruns and browser reloads)."""
    return _registry()


def cuda_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # pragma: no cover - a broken driver is "no GPU" for the app
        return None


def fmt_seconds(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
