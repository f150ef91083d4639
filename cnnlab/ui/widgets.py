"""Knob → widget rendering and the model picker shared by the Architecture and Train pages.

Every widget has a stable key: ``{prefix}_arch``, ``{prefix}_k_{arch}_{knob}``, ``{prefix}_res_{arch}``,
``{prefix}_in``, ``{prefix}_classes``. Widgets never get a ``value=``: their state is seeded into
``st.session_state`` once (from the URL, a preset or the defaults), so reruns keep what the user chose.
Values are returned raw; :func:`cnnlab.registry.resolve` validates them and cnnlab.measure checks they fit
(KnobError → st.error).
"""
from __future__ import annotations

from typing import Any, Collection, Mapping

import streamlit as st

from .. import i18n
from ..registry import Knob, KnobError, arch_names, get_spec
from ..registry import format_value as _fmt
from .common import arch_title, lang

SLIDER_MAX_SPAN = 128  # int knobs with a wider range get a number input


def knob_key(prefix: str, arch: str, name: str) -> str:
    return f"{prefix}_k_{arch}_{name}"


def res_key(prefix: str, arch: str) -> str:
    return f"{prefix}_res_{arch}"


def _widget_kind(k: Knob) -> str:
    if k.kind == "bool":
        return "toggle"
    if k.kind == "choice":
        return "selectbox"
    if k.kind == "ints":
        return "text"
    if k.kind == "int":
        return "slider" if (k.hi - k.lo) <= SLIDER_MAX_SPAN else "number"
    return "number" if k.lo_open else "slider"


def widget_value(k: Knob, value: Any) -> Any:
    """The knob's canonical value in the form its widget holds (ints → '6,12,24,16')."""
    if k.kind == "ints":
        return value.strip() if isinstance(value, str) else _fmt(tuple(value))
    if k.kind == "float":
        return float(value)
    if k.kind == "int":
        return int(value)
    return value


def _help(k: Knob, L: str) -> str:
    return f"{k.help(L)}  \n{i18n.t('arch.range', L)}: {i18n.range_text(k, L)}"


def seed(key: str, value: Any) -> None:
    """Put a widget's starting value in session state unless the user already has one."""
    if key not in st.session_state:
        st.session_state[key] = value


def radio(label: str, options: list, key: str, format_func, **kw):
    """st.radio whose option texts depend on the page's language. Streamlit keeps a radio's choice by its shown
    text, so after a language switch it showed no choice at all. Here the choice is kept by value under `key`
    (seeded by the caller or the first option) and the widget has a key per language, seeded from it."""
    wkey = f"{key}__{lang()}"
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    if st.session_state.get(wkey) not in options:
        st.session_state[wkey] = st.session_state[key]

    def keep() -> None:
        st.session_state[key] = st.session_state[wkey]

    return st.radio(label, options, key=wkey, format_func=format_func, on_change=keep, **kw)


def _apply_preset(text_key: str, preset_key: str) -> None:
    choice = st.session_state.get(preset_key)
    if choice and choice != "—":
        st.session_state[text_key] = choice


def knob_widget(k: Knob, key: str, initial: Any = None, disabled: bool = False) -> Any:
    """Draw one knob as a widget (slider / number input / selectbox / toggle / text with presets)."""
    L = lang()
    seed(key, widget_value(k, k.default if initial is None else initial))
    label, help_ = i18n.knob_label(k, L), _help(k, L)
    kind = _widget_kind(k)
    if kind == "toggle":
        return st.toggle(label, key=key, help=help_, disabled=disabled)
    if kind == "selectbox":
        return st.selectbox(label, k.choices, key=key, help=help_, format_func=lambda c: i18n.value_text(c, L),
                            disabled=disabled)
    if kind == "text":
        if disabled:
            return st.text_input(label, key=key, help=help_, disabled=True)
        if k.suggestions:
            presets = ["—"] + [_fmt(tuple(s)) for s in k.suggestions]
            pkey = key + "__preset"
            st.selectbox(f"{label} · {i18n.t('arch.presets', L)}", presets, key=pkey,
                         on_change=_apply_preset, args=(key, pkey))
        return st.text_input(label, key=key, help=help_, placeholder=i18n.range_text(k, L))
    if k.kind == "int":
        lo, hi = int(k.lo), int(k.hi)
        step = int(k.step or 1)
        if kind == "slider":
            return st.slider(label, min_value=lo, max_value=hi, step=step, key=key, help=help_, disabled=disabled)
        return st.number_input(label, min_value=lo, max_value=hi, step=step, key=key, help=help_,
                               disabled=disabled)
    lo, hi, step = float(k.lo), float(k.hi), float(k.step or 0.05)
    if kind == "slider":
        return st.slider(label, min_value=lo, max_value=hi, step=step, key=key, help=help_, disabled=disabled)
    # open lower bound: a number input from lo, so 0 is rejected by the knob with a readable message
    return st.number_input(label, min_value=lo, max_value=hi, step=step, key=key, help=help_, format="%.3g",
                           disabled=disabled)


def _fits_widget(k: Knob, value: Any) -> bool:
    """Whether a (validated) value can be put in the knob's widget without a Streamlit range error."""
    if k.kind in ("int", "float"):
        return float(k.lo) <= float(value) <= float(k.hi)
    return True


def model_picker(prefix: str, initial: Mapping[str, Any] | None = None, *, dims: bool = True,
                 knob_columns: int = 2, on_arch_change=None, fresh=None, locked: Collection[str] = ()) -> dict:
    """Architecture selectbox + every knob + input size; returns {arch, knobs (raw), in_channels, ...}.

    `initial` ({arch, knobs, resolution, in_channels, num_classes}) seeds widgets that have no state yet.
    `fresh(spec) -> (knobs, resolution)` seeds the widgets of any other architecture (default: the knobs'
    defaults at the book's resolution; the Train page passes the book's training knobs and resolution).
    `locked` names what is shown but cannot be changed (an assignment): "arch", "res" and knob names.
    """
    L = lang()
    initial = dict(initial or {})
    names = arch_names()
    seed(f"{prefix}_arch", initial.get("arch") if initial.get("arch") in names else names[0])
    arch = st.selectbox(i18n.t("arch.pick", L), names, key=f"{prefix}_arch",
                        format_func=lambda a: arch_title(a, L), on_change=on_arch_change, disabled="arch" in locked)
    spec = get_spec(arch)
    same_arch = initial.get("arch") == arch
    fresh_knobs, fresh_res = fresh(spec) if fresh else ({}, spec.book_resolution)
    init_knobs = {**dict(fresh_knobs), **(dict(initial.get("knobs") or {}) if same_arch else {})}

    out: dict[str, Any] = {"arch": arch, "knobs": {}}
    if spec.knobs:
        st.markdown(f"**{i18n.t('arch.knobs', L)}**")
        cols = st.columns(knob_columns)
        for i, k in enumerate(spec.knobs):
            with cols[i % knob_columns]:
                out["knobs"][k.name] = knob_widget(k, knob_key(prefix, arch, k.name), init_knobs.get(k.name),
                                                   disabled=k.name in locked)

    seed(res_key(prefix, arch), int(initial.get("resolution") or fresh_res) if same_arch else int(fresh_res))
    if dims:
        st.markdown(f"**{i18n.t('arch.input', L)}**")
        c1, c2, c3 = st.columns(3)
        with c1:
            seed(f"{prefix}_in", int(initial.get("in_channels", 1)))
            out["in_channels"] = st.number_input(i18n.t("arch.in_channels", L), 1, 16, step=1, key=f"{prefix}_in")
        with c2:
            seed(f"{prefix}_classes", int(initial.get("num_classes", 10)))
            out["num_classes"] = st.number_input(i18n.t("arch.num_classes", L), 2, 10000, step=1,
                                                 key=f"{prefix}_classes")
        with c3:
            out["resolution"] = st.number_input(i18n.t("arch.resolution", L), 1, 1024, step=1,
                                                key=res_key(prefix, arch))
    else:
        out["in_channels"], out["num_classes"] = 1, 10
        out["resolution"] = st.number_input(i18n.t("train.resolution", L), 1, 1024, step=1, key=res_key(prefix, arch),
                                            disabled="res" in locked)
    return out


def reset_model(prefix: str, arch: str) -> None:
    """Forget the widget state of one architecture's knobs and resolution (they re-seed from defaults)."""
    spec = get_spec(arch)
    for k in spec.knobs:
        for key in (knob_key(prefix, arch, k.name), knob_key(prefix, arch, k.name) + "__preset"):
            st.session_state.pop(key, None)
    st.session_state.pop(res_key(prefix, arch), None)
    saved = st.session_state.get(f"_{prefix}_saved")
    if saved and saved.get("arch") == arch:  # or restore() would bring the old values back
        st.session_state[f"_{prefix}_saved"] = {"arch": arch, "knobs": {}}


def set_model(prefix: str, arch: str, knobs: Mapping[str, Any], resolution: int | None = None) -> None:
    """Put an architecture and knob values into the widgets' state (for presets; call from a callback)."""
    spec = get_spec(arch)
    st.session_state[f"{prefix}_arch"] = arch
    for k in spec.knobs:
        st.session_state[knob_key(prefix, arch, k.name)] = widget_value(k, knobs.get(k.name, k.default))
    if resolution is not None:
        st.session_state[res_key(prefix, arch)] = int(resolution)


# -- the URL ------------------------------------------------------------------------

URL_DIMS = {"res": "resolution", "in": "in_channels", "classes": "num_classes"}
K_WRITTEN = "_url_written"  # not a widget key: the query parameters a model picker page wrote last


def read_url(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """Parse ?arch=vgg&ratio=4&res=96 into {arch, knobs, resolution, ...}; bad values are dropped with a message."""
    errors: list[str] = []
    arch = params.get("arch")
    if not arch:
        return {}, errors
    try:
        spec = get_spec(arch)
    except KnobError as e:
        return {}, [i18n.message_of(e)]
    out: dict[str, Any] = {"arch": arch, "knobs": {}}
    for k in spec.knobs:
        if k.name in params:
            try:
                v = k.parse(params[k.name])
                if not _fits_widget(k, v):
                    raise k._bad(params[k.name])  # (cuts a long value, as every knob error does)
                out["knobs"][k.name] = v
            except KnobError as e:
                errors.append(i18n.message_of(e))
    bounds = {"resolution": (1, 1024), "in_channels": (1, 16), "num_classes": (2, 10000)}
    for short, name in URL_DIMS.items():
        if short in params:
            lo, hi = bounds[name]
            try:  # parsed as a knob: ASCII digits only, and a long value is not echoed in full
                out[name] = Knob(name, "int", lo, "", "", lo=lo, hi=hi).parse(params[short])
            except KnobError as e:
                errors.append(i18n.message_of(e))
    return out, errors


def url_params(choice: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters for a model choice: the arch, knobs that differ from the defaults, and input dims."""
    arch = choice["arch"]
    spec = get_spec(arch)
    out = {"arch": arch}
    for k in spec.knobs:
        v = choice["knobs"].get(k.name, k.default)
        if widget_value(k, v) != widget_value(k, k.default):
            out[k.name] = _fmt(v) if not isinstance(v, str) else v
    if int(choice.get("resolution") or spec.book_resolution) != spec.book_resolution:
        out["res"] = str(int(choice["resolution"]))
    if int(choice.get("in_channels", 1)) != 1:
        out["in"] = str(int(choice["in_channels"]))
    if int(choice.get("num_classes", 10)) != 10:
        out["classes"] = str(int(choice["num_classes"]))
    return out


def sync_url(choice: Mapping[str, Any], keep: tuple[str, ...] = ("lang",)) -> None:
    """Write the model choice into st.query_params (only when it changed, keeping e.g. ?lang=)."""
    want = url_params(choice)
    for k in keep:
        if k in st.query_params:
            want[k] = st.query_params[k]
    st.session_state[K_WRITTEN] = want  # the Train page tells this address (kept on a page switch) from a link
    if dict(st.query_params.to_dict()) != want:
        st.query_params.from_dict(want)


# -- keeping the choice across reloads and page switches -----------------------------------

def restore(prefix: str, params: Mapping[str, str] | None = None) -> tuple[dict, list[str]]:
    """Where the picker's widgets start when they have no state: the URL (a shared link or a reload),
    else the choice saved in this session (coming back from another page). Returns (initial, URL errors)."""
    if f"{prefix}_arch" in st.session_state:
        return dict(st.session_state.get(f"_{prefix}_saved") or {}), []
    if params is not None and params.get("arch"):
        return read_url(params)
    return dict(st.session_state.get(f"_{prefix}_saved") or {}), []


def remember(prefix: str, choice: Mapping[str, Any], url: bool = True) -> None:
    """Save the choice in the session (survives page switches) and, if `url`, in st.query_params."""
    st.session_state[f"_{prefix}_saved"] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in choice.items()}
    if url:
        sync_url(choice)
