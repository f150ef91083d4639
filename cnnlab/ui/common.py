"""Shared app state: language, checkpoint folder, the process-wide run registry, cached probes."""
from __future__ import annotations

import os
import re
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


def checkpoint_root() -> Path:
    """Where runs are saved: $CNNLAB_CHECKPOINTS, else checkpoints/ next to app.py."""
    env = os.environ.get("CNNLAB_CHECKPOINTS")
    return Path(env) if env else ROOT / "checkpoints"


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


def show_error(exc: BaseException | str, key: str = "common.error") -> None:
    """One readable line for people, never a traceback; the message is shown as plain text (see `plain`)."""
    msg = str(exc) or type(exc).__name__
    st.error(tr(key, msg=plain(msg)))


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
