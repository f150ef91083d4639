"""Train page pieces: settings (presets, model, hyper-parameters, device; kept in the URL), the estimate,
start, and the live panel of *this browser's* runs.

Runs train in the server's executor (cnnlab.runs: worker processes, never this process). Each run has an
owner (this browser's cookie token, see common.owner_id): the panel lists the owner's runs only, Stop acts on
them only, and other people's runs appear as counts (training / waiting), never with their settings. The
panel polls the executor from an ``st.fragment(run_every=...)`` while a run is active.
"""
from __future__ import annotations

import math
import os

import streamlit as st

from .. import i18n, presets
from ..units import fmt_bytes
from ..device import app_report
from ..engine.config import BATCH, EPOCHS, LR, OPT, SEED, SIZE, WD
from ..registry import KnobError, format_value, get_spec
from ..runs import QUEUED, RUNNING, RunRefused, admission
from . import figures, widgets
from .common import (arch_title, checkpoint_root, client_address, executor, fmt_seconds, lang, my_runs, owner_id,
                     plain, remember_owner, resolve_config, safe_label)

POLL_S = 1.0  # seconds between redraws of a live run (a Stop click redraws at once)
P = "train"  # widget key prefix
K_PRESET, K_DEVICE, K_EPOCHS, K_LR, K_BS = "train_preset", "train_device", "train_epochs", "train_lr", "train_bs"
K_OPT, K_WD, K_NTRAIN, K_NTEST, K_SEED = "train_opt", "train_wd", "train_n_train", "train_n_test", "train_seed"
K_START, K_STOP, K_PICK, K_CURVES = "train_start", "train_stop", "train_job_pick", "train_curves"
K_SAVED = "_train_job_saved"  # not a widget key: survives page switches
N_TRAIN, N_TEST = 60000, 10000
K_URL = "_train_url"  # the query parameters this page wrote last (anything else came from a link)

# recipe setting → (query parameter, widget key, the engine's Knob that checks it, upper bound of the data or None);
# the model is in ?arch=&<knob>=&res= (widgets). The ranges are the knobs' (cnnlab.engine.config), as the widgets'.
RECIPE_URL = {"epochs": ("ep", K_EPOCHS, EPOCHS, None), "lr": ("lr", K_LR, LR, None),
              "batch_size": ("bs", K_BS, BATCH, None), "train_size": ("ntr", K_NTRAIN, SIZE, N_TRAIN),
              "test_size": ("nte", K_NTEST, SIZE, N_TEST), "weight_decay": ("wd", K_WD, WD, None),
              "seed": ("seed", K_SEED, SEED, None)}
URL_DEFAULTS = {"wd": 0.0, "seed": 0}


def _fresh(spec):
    """A newly picked architecture starts at the book's training knobs and resolution (its recipe)."""
    recipe = spec.recipe()
    return dict(recipe.knobs), recipe.resolution


def _book_values(arch: str) -> tuple[float, int]:
    recipe = get_spec(arch).recipe()
    return recipe.lr, recipe.batch_size


def _int_input(label: str, knob, key: str, hi: int | None = None, **kw):
    """A number input whose range is the knob's (engine.config), so the widget and the check agree."""
    return st.number_input(label, int(knob.lo), int(knob.hi if hi is None else min(hi, knob.hi)), step=1, key=key,
                           **kw)


def _on_arch_change() -> None:
    lr, bs = _book_values(st.session_state[f"{P}_arch"])
    st.session_state[K_LR], st.session_state[K_BS] = lr, bs


K_GUARD = "_train_preset_guard"  # not a widget key: the values a preset just set, and the ones it replaced
GUARD_RUNS = 2                    # script runs after a preset was applied in which stale values are undone


def _preset_keys(arch: str) -> list[str]:
    spec = get_spec(arch)
    return ([f"{P}_arch", widgets.res_key(P, arch)] + [widgets.knob_key(P, arch, k.name) for k in spec.knobs]
            + [K_EPOCHS, K_LR, K_BS, K_NTRAIN, K_NTEST, K_OPT])


def _apply_preset() -> None:
    pid = st.session_state.get(K_PRESET)
    p = presets.PRESETS.get(pid)
    if p is None:
        return
    v = p.values()
    keys = _preset_keys(v["arch"])
    before = {k: st.session_state.get(k) for k in keys}
    widgets.set_model(P, v["arch"], v["knobs"], v["resolution"])
    st.session_state[K_EPOCHS] = int(v["epochs"])
    st.session_state[K_LR] = float(v["lr"])
    st.session_state[K_BS] = int(v["batch_size"])
    st.session_state[K_NTRAIN] = int(v["train_size"])
    st.session_state[K_NTEST] = int(v["test_size"])
    st.session_state[K_OPT] = v["optimizer"]
    st.session_state[K_GUARD] = {"before": before, "after": {k: st.session_state.get(k) for k in keys}, "runs": 0}


def undo_stale_values() -> bool:
    """Choosing a preset always applies it. A browser that sends its next request (a Start click, another
    widget) before it has drawn the preset's values sends the *old* values back, and Streamlit takes them: the
    full run started instead of the preset's (seen under load). In the first script runs after a preset was
    applied, a setting that comes back exactly as it was before the preset, not as the preset set it, is such a
    stale echo: every setting the preset wrote is put back. Call before any settings widget is drawn."""
    g = st.session_state.get(K_GUARD)
    if not g:
        return False
    g["runs"] += 1
    if g["runs"] > GUARD_RUNS:
        st.session_state.pop(K_GUARD, None)
        return False
    before, after = g["before"], g["after"]
    stale = [k for k in after if st.session_state.get(k) != after[k] and st.session_state.get(k) == before[k]
             and before[k] is not None]
    if not stale:
        return False
    for k, v in after.items():
        st.session_state[k] = v
    return True


def preset_changes(s: dict, pid: str | None) -> list[str]:
    """What these settings change from the preset `pid` ("epochs 10 → 3"); [] when they are the preset's."""
    p = presets.PRESETS.get(pid or "")
    if p is None:
        return []
    v = p.values()
    out = []
    if s["arch"] != v["arch"]:
        return [f"{v['arch']} → {s['arch']}"]
    spec = get_spec(v["arch"])
    for k, want in v["knobs"].items():
        if k not in s.get("knobs", {}):
            continue
        raw, knob = s["knobs"][k], spec.knob(k)
        try:
            same = (knob.parse(raw) if isinstance(raw, str) else knob.validate(raw)) == knob.validate(want)
        except KnobError:  # raw text that does not parse yet
            same = False
        if not same:
            out.append(f"{k} {format_value(want)} → {format_value(raw)}")
    if int(s["resolution"] or 0) != int(v["resolution"]):
        out.append(f"res {v['resolution']} → {s['resolution']}")
    for k in ("epochs", "batch_size", "train_size", "test_size"):
        if int(s[k]) != int(v[k]):
            out.append(f"{k} {v[k]:g} → {s[k]:g}" if isinstance(v[k], float) else f"{k} {v[k]} → {s[k]}")
    if not math.isclose(float(s["lr"]), float(v["lr"]), rel_tol=1e-9):
        out.append(f"lr {v['lr']:g} → {s['lr']:g}")
    if s.get("optimizer", "sgd") != v["optimizer"]:
        out.append(f"{v['optimizer']} → {s['optimizer']}")
    return out


# -- the URL: the Train settings live in ?arch=...&ep=..., like the Architecture page's model ------------

def restore_url() -> list[str]:
    """Apply settings from the URL when it came from outside (a link, "Train this", an edited address);
    returns messages for values that were dropped. With ?assign=<id>, the teacher's assignment fills the
    settings and puts back any it locks (cnnlab.assignments.merge), whatever else the address says."""
    raw = qp = st.query_params.to_dict()
    if "assign" not in qp:
        st.session_state.pop(K_ASSIGN, None)
    elif assignment() is None or assignment().id != qp["assign"] or raw != st.session_state.get(K_URL):
        qp, errors = _with_assignment(qp)
        if errors:
            return errors
    # Every setting in a link applies, or gets one sentence. What is not a link: the address this page wrote
    # itself, and the Architecture page's own address, kept across a page switch.
    if not qp.get("arch") or raw == st.session_state.get(K_URL) or raw == st.session_state.get(widgets.K_WRITTEN):
        return []
    initial, errors = widgets.read_url(qp)
    errors += unknown_params(qp)
    if not initial:
        return errors
    arch = initial["arch"]
    spec = get_spec(arch)
    knobs = {**spec.defaults(), **initial.get("knobs", {})}
    widgets.set_model(P, arch, knobs, initial.get("resolution") or spec.book_resolution)
    try:
        book_lr = float(spec.book_lr(knobs))
    except Exception:  # noqa: BLE001
        book_lr = _book_values(arch)[0]
    st.session_state[K_LR], st.session_state[K_BS] = book_lr, int(spec.training.batch_size)
    for name, (q, key, knob, data_hi) in RECIPE_URL.items():
        if q not in qp:
            continue
        try:
            v = knob.parse(qp[q])
            if data_hi is not None and v > data_hi:
                raise KnobError(i18n.msg("msg.data_size", name=name, most=f"{data_hi:,}", got=v))
            st.session_state[key] = v
        except KnobError as e:
            errors.append(i18n.renamed(e, knob.name, name))
    if qp.get("opt") in ("sgd", "adam"):
        st.session_state[K_OPT] = qp["opt"]
    pid = qp.get("preset")
    st.session_state[K_PRESET] = pid if pid in presets.PRESETS else "custom"
    st.session_state[K_URL] = qp
    return errors


def unknown_params(qp: dict) -> list[str]:
    """One sentence for the names in a Train link that are no setting of this page (they are ignored)."""
    try:
        knobs = {k.name for k in get_spec(qp["arch"]).knobs}
    except KnobError:
        return []
    known = knobs | {"arch", "res", "opt", "preset", "assign", "lang"} | {q for q, *_ in RECIPE_URL.values()}
    bad = [k for k in qp if k not in known]
    return [i18n.msg("msg.url_unknown", names=", ".join(sorted(bad))[:120])] if bad else []


K_ASSIGN = "_train_assignment"  # not a widget key: the assignment this page follows (cnnlab.assignments)


def assignment():
    """The teacher's assignment this Train page follows (from ?assign=), or None."""
    return st.session_state.get(K_ASSIGN)


def _with_assignment(qp: dict) -> tuple[dict, list[str]]:
    """The address's settings with the assignment's filled in and its locked ones put back."""
    from .. import assignments

    aid = qp["assign"]
    a = assignment()
    if a is None or a.id != aid:
        try:
            a = assignments.load(checkpoint_root(), aid)
        except assignments.AssignmentError as e:
            st.session_state.pop(K_ASSIGN, None)
            st.query_params.pop("assign", None)
            return qp, [i18n.message_of(e)]
        st.session_state[K_ASSIGN] = a
        st.session_state.pop(K_URL, None)  # apply it even if the address did not change
    merged = assignments.merge(a, {k: v for k, v in qp.items() if k != "assign"})
    merged.setdefault("ep", str(EPOCHS.default))
    if a.preset in presets.PRESETS:
        merged.setdefault("preset", a.preset)
    merged["assign"] = a.id
    return merged, []


# assignment params that are not the model's (arch, res and knob names are the model picker's)
LOCKABLE = {q: key for _, (q, key, _, _) in RECIPE_URL.items()}


def locked_params() -> set[str]:
    """Every setting the assignment fixes (fixing the architecture fixes its knobs: assignments.fixed)."""
    from .. import assignments

    a = assignment()
    return set(assignments.fixed(a)) if a is not None else set()


SETTING_LABELS = {"arch": "arch.pick", "res": "train.resolution", "ep": "train.epochs", "lr": "train.lr",
                  "bs": "train.batch_size", "ntr": "train.train_size", "nte": "train.test_size",
                  "wd": "train.weight_decay", "seed": "train.seed", "opt": "train.optimizer"}


def _setting_label(name: str, arch: str, L: str) -> str:
    if name in SETTING_LABELS:
        return i18n.t(SETTING_LABELS[name], L)
    try:
        return i18n.knob_label(get_spec(arch).knob(name), L)
    except KnobError:
        return name


def fixed_and_free(arch: str, L: str) -> tuple[list[str], list[str]]:
    """What the assignment fixes ("epochs = 10") and what is left to the student, as people read them."""
    from .. import assignments

    a = assignment()
    fix = assignments.fixed(a) if a is not None else {}
    fixed = [f"{_setting_label(n, arch, L)} = {arch_title(v, L) if n == 'arch' else i18n.value_text(v, L)}"
             for n, v in fix.items()]
    names = ["arch"] + [k.name for k in get_spec(arch).knobs] + list(SETTING_LABELS)[1:]
    free = [_setting_label(n, arch, L) for n in dict.fromkeys(names) if n not in fix]
    return fixed, free + [i18n.t("train.device", L)]


def url_of(s: dict) -> dict | None:
    """The query parameters that say these settings (None while a knob's raw text does not parse)."""
    try:
        want = widgets.url_params({"arch": s["arch"], "knobs": s["knobs"], "resolution": s["resolution"]})
    except Exception:  # noqa: BLE001 - raw knob text that does not parse yet
        return None
    for name, (q, _, knob, _) in RECIPE_URL.items():
        v = s[name]
        if q in URL_DEFAULTS and v == URL_DEFAULTS[q]:
            continue
        want[q] = f"{v:g}" if knob.kind == "float" else str(v)
    return want


def full_params(s: dict) -> dict:
    """Every setting written out as in a link, defaults included (url_of leaves the book's defaults out: a
    resolution of 28 for LeNet is no `res` at all, which a lock on res=28 must still see as 28)."""
    out = dict(url_of(s) or {})
    spec = get_spec(s["arch"])
    for k in spec.knobs:
        v = s["knobs"].get(k.name, k.default)
        out.setdefault(k.name, v if isinstance(v, str) else format_value(v))
    out.setdefault("res", str(int(s["resolution"] or spec.book_resolution)))
    for q, v in URL_DEFAULTS.items():
        out.setdefault(q, str(v))
    out.setdefault("opt", s.get("optimizer", "sgd"))
    return out


def broken_locks(s: dict) -> list[str]:
    """Fixed settings whose value differs from the assignment's (Start refuses then)."""
    from .. import assignments

    a = assignment()
    return [] if a is None else assignments.broken(a, full_params(s))


def sync_url(s: dict) -> None:
    """Write the settings into the URL (only when they changed; ?lang= and ?assign= are kept)."""
    want = url_of(s)
    if want is None:
        return
    if s["optimizer"] != "sgd":
        want["opt"] = s["optimizer"]
    if s.get("preset", "custom") != "custom":
        want["preset"] = s["preset"]
    if assignment() is not None:
        want["assign"] = assignment().id
    if "lang" in st.query_params:
        want["lang"] = st.query_params["lang"]
    st.session_state[K_URL] = want
    if st.query_params.to_dict() != want:
        st.query_params.from_dict(want)


def link_params(choice: dict) -> dict:
    """Query parameters that open the Train page with this model choice (the Architecture page's "Train this")."""
    try:
        out = widgets.url_params(choice)
    except Exception:  # noqa: BLE001 - raw knob text that does not parse: the architecture alone
        out = {"arch": choice["arch"]}
    out["res"] = str(int(choice.get("resolution") or get_spec(choice["arch"]).book_resolution))
    out["ep"] = str(int(st.session_state.get(K_EPOCHS, 10)))
    out.pop("in", None)
    out.pop("classes", None)  # Fashion-MNIST: 1 channel, 10 classes
    if "lang" in st.query_params:
        out["lang"] = st.query_params["lang"]
    return out


def show_estimate(s: dict) -> None:
    """The memory and time this run needs here, before Start (and why it would be refused). The time is the one
    estimate the preset labels and the exercises show too (admission.expect): this model's measured pace, the load
    measured now and the runs ahead of it in this server's queue."""
    from ..runs import AdmissionRefused, Limits, admission

    L = lang()
    try:
        tc = train_config(s)
    except Exception:  # noqa: BLE001 - invalid settings: Start says why
        return
    device = "cuda" if str(s["device"]).startswith("cuda") else "cpu"
    limits = Limits.from_env()
    try:
        est = admission.check(tc, device, limits)
    except AdmissionRefused as e:
        st.warning(i18n.text_of(e, L))
        return
    except Exception:  # noqa: BLE001 - no estimate is no reason to hide the page
        return
    try:
        when = admission.expect(tc, device, executor(), owner=owner_id(), limits=limits)
        text = i18n.t("train.estimate", L, text=when.text(L, mem=fmt_bytes(est.mem_bytes),
                                                           dev="GPU" if device == "cuda" else "CPU"))
        run_s = when.run_s
    except Exception:  # noqa: BLE001 - no queue or load figure: the quiet estimate
        text, run_s = i18n.t("train.estimate", L, text=i18n.text_of(est.text(), L)), est.seconds
    if run_s > limits.max_wall_s:
        text += " " + i18n.t("train.estimate_wall", L, min=f"{limits.max_wall_s / 60:g}")
    st.caption(text)


def run_label(v, L: str) -> str:
    """A run as its owner sees it in the picker, in the page's language ("BN-LeNet (scratch) · 10 轮 · 学习率 1 ·
    批量 256"), from its settings (the label stored at submit is English)."""
    from .common import model_title

    from .common import exercise_tag

    meta, start = v.meta or {}, v.start
    if not meta.get("arch"):
        return v.label
    tag = exercise_tag(meta, L)
    parts = ([tag] if tag else []) + [model_title(meta["arch"], meta.get("knobs"), L)]
    if start is not None:
        parts += [i18n.t("train.label_epochs", L, n=start.epochs), i18n.t("train.label_lr", L, lr=f"{start.lr:g}"),
                  i18n.t("train.label_bs", L, n=start.batch_size), f"{start.train_size:,}/{start.test_size:,}"]
    if meta.get("resolution"):
        parts.append(f"{meta['resolution']}²")
    return " · ".join(parts)


def _my_run_active() -> bool:
    try:
        return any(s.active for s in executor().list(owner_id()))
    except Exception:  # noqa: BLE001 - no executor yet: nothing of mine trains
        return False


def _devices() -> list[str]:
    return ["cuda", "cpu"] if app_report().is_cuda else ["cpu"]


def settings() -> dict:
    """Draw the settings and the Start button; return the settings (raw, validated on Start) and
    whether Start was pressed (under "start")."""
    L = lang()
    gpu = app_report().name if app_report().is_cuda else None  # checked: driver, capability, a test kernel
    plist = presets.for_device(bool(gpu))
    if K_PRESET not in st.session_state:  # first visit: the first preset for this machine
        st.session_state[K_PRESET] = plist[0].id
        _apply_preset()
    undo_stale_values()
    options = ["custom"] + [p.id for p in plist]
    measured = presets.measured()
    # preset and Start each take the column's whole width: side by side they were cut to "S.." on a projector
    # on an assignment page the assignment is the preset: the box is shown but cannot change a fixed setting
    st.selectbox(i18n.t("train.preset", L), options, key=K_PRESET, on_change=_apply_preset,
                 disabled=assignment() is not None,
                 format_func=lambda i: i18n.t("train.preset_custom", L) if i == "custom"
                 else admission.preset_label(presets.PRESETS[i], L, measured))
    clicked = st.button(i18n.t("train.start", L), key=K_START, type="primary", width="stretch")
    messages = st.container()  # errors from Start show here, next to the button
    # the device note comes after Start: above it, it pushed Start to the bottom edge of a projector's screen
    if gpu:
        st.caption(i18n.t("train.gpu_note", L, name=gpu))
    else:
        st.caption(i18n.t("train.cpu_note", L))
        if app_report().reason:
            st.caption(i18n.t("train.gpu_why_not", L, reason=i18n.text_of(app_report().reason, L)))
    locked = locked_params()
    if assignment() is not None:
        a = assignment()
        fixed, free = fixed_and_free(st.session_state.get(f"{P}_arch") or a.params.get("arch", "lenet"), L)
        with st.container(key="train_assign_box"):
            st.info(i18n.t("train.assignment", L, title=plain(a.title or a.id), fixed="; ".join(fixed) or "—",
                           free=", ".join(free)))
    # while one of my runs trains, the settings fold away: on a phone (columns stacked) the curves then sit
    # right below Start instead of under two screens of settings
    unfolded = not _my_run_active()
    with st.expander(i18n.t("train.model", L), expanded=unfolded):
        choice = widgets.model_picker(P, None, dims=False, fresh=_fresh, on_arch_change=_on_arch_change,
                                      locked=locked)
    arch = choice["arch"]
    lr0, bs0 = _book_values(arch)
    widgets.seed(K_EPOCHS, 10)
    widgets.seed(K_LR, lr0)
    widgets.seed(K_BS, bs0)
    widgets.seed(K_OPT, "sgd")
    widgets.seed(K_WD, 0.0)
    widgets.seed(K_NTRAIN, N_TRAIN)
    widgets.seed(K_NTEST, N_TEST)
    widgets.seed(K_SEED, 0)
    devices = _devices()
    widgets.seed(K_DEVICE, devices[0])
    if st.session_state[K_DEVICE] not in devices:
        st.session_state[K_DEVICE] = devices[0]
    with st.expander(i18n.t("train.hparams", L), expanded=unfolded):
        c1, c2 = st.columns(2)
        with c1:
            epochs = _int_input(i18n.t("train.epochs", L), EPOCHS, K_EPOCHS, disabled="ep" in locked)
            try:
                book_lr = get_spec(arch).recipe(choice["knobs"]).lr
            except KnobError:  # raw knob text that does not parse yet
                book_lr = lr0
            lr = st.number_input(i18n.t("train.lr", L), min_value=float(LR.lo), max_value=float(LR.hi), step=0.01,
                                 format="%.4g", key=K_LR, disabled="lr" in locked,
                                 help=i18n.t("train.lr_help", L, lr=book_lr))
            bs = _int_input(i18n.t("train.batch_size", L), BATCH, K_BS, disabled="bs" in locked)
            opt = st.selectbox(i18n.t("train.optimizer", L), list(OPT.choices), key=K_OPT,
                               format_func=lambda c: i18n.value_text(c, L))
        with c2:
            n_train = _int_input(i18n.t("train.train_size", L), SIZE, K_NTRAIN, hi=N_TRAIN, disabled="ntr" in locked)
            n_test = _int_input(i18n.t("train.test_size", L), SIZE, K_NTEST, hi=N_TEST, disabled="nte" in locked)
            wd = st.number_input(i18n.t("train.weight_decay", L), min_value=float(WD.lo), max_value=float(WD.hi),
                                 step=1e-4, format="%.4g", key=K_WD, disabled="wd" in locked)
            device = st.selectbox(i18n.t("train.device", L), devices, key=K_DEVICE,
                                  format_func=lambda c: i18n.value_text(c, L))
        seed = _int_input(i18n.t("train.seed", L), SEED, K_SEED, disabled="seed" in locked)
    out = {**choice, "epochs": int(epochs), "lr": float(lr), "batch_size": int(bs), "optimizer": opt,
            "weight_decay": float(wd), "train_size": int(n_train), "test_size": int(n_test), "device": device,
            "seed": int(seed), "start": clicked, "messages": messages}
    out["assignment"] = assignment().id if assignment() is not None else None
    changes = preset_changes(out, st.session_state.get(K_PRESET))
    out["preset"] = "custom" if changes or st.session_state.get(K_PRESET) not in presets.PRESETS \
        else st.session_state[K_PRESET]
    sync_url(out)
    with messages:
        if changes:
            st.caption(i18n.t("train.preset_changed", L, changes=", ".join(changes[:6])))
        problem = settings_problem(out)
        if problem:  # as soon as the page opens (a link with ?res=8 for AlexNet), not only on Start
            st.warning(i18n.t("train.invalid", L, msg=problem))
        else:
            show_estimate(out)
    return out


def settings_problem(s: dict) -> str | None:
    """Why these settings cannot start (one sentence in the page's language), or None."""
    try:
        train_config(s)
    except KnobError as e:
        return i18n.text_of(e, lang())
    except Exception:  # noqa: BLE001 - no engine here: Start says so
        return None
    return None


def train_config(s: dict):
    """The engine's TrainConfig for these settings (raises KnobError for anything out of range)."""
    from .. import engine

    cfg = resolve_config(s["arch"], s["knobs"], in_channels=1, num_classes=10, resolution=s["resolution"])
    n_train = min(s["train_size"], N_TRAIN)
    steps = max(1, math.ceil(n_train / max(1, s["batch_size"])))
    tc = engine.TrainConfig(
        model=cfg, epochs=s["epochs"], lr=s["lr"], batch_size=s["batch_size"], optimizer=s["optimizer"],
        weight_decay=s["weight_decay"], train_size=None if n_train >= N_TRAIN else n_train,
        test_size=None if s["test_size"] >= N_TEST else s["test_size"], device=s["device"], seed=s["seed"],
        log_every=max(1, min(20, steps // 10)), bn_every=max(1, steps // 4))
    return tc.resolved()


def start(s: dict) -> str | None:
    """Submit a run; returns its id, or shows st.error (next to the Start button) and returns None."""
    with s.get("messages") or st.container():
        return _start(s)


def _start(s: dict) -> str | None:
    L = lang()
    try:
        tc = train_config(s)
    except KnobError as e:
        st.error(i18n.t("train.invalid", L, msg=i18n.text_of(e, L)))
        return None
    except ImportError as e:
        st.error(i18n.t("train.no_engine", L, msg=i18n.text_of(e, L)))
        return None
    broken = broken_locks(s)
    if broken:  # cannot happen through the widgets (they are disabled); a stale request could try
        st.error(i18n.t("train.assignment_broken", L, names=", ".join(broken)))
        return None
    from .. import owners

    if not owners.may_start(owner_id()):  # one of many owners made from one address within a minute
        st.error(i18n.text_of(i18n.msg("msg.new_owner_limit"), L))
        return None
    cfg = tc.model
    label = (f"{arch_title(cfg.arch, 'en')} · {tc.epochs} ep · lr {tc.lr:g} · bs {tc.batch_size} · "
             f"{s['train_size']}/{s['test_size']} · {cfg.input_hw}² · {s['device']}")
    try:
        h = executor().submit(tc, owner_id(), label=label, out_dir=str(checkpoint_root()),
                              meta={"arch": cfg.arch, "knobs": cfg.to_dict()["knobs"], "resolution": cfg.resolution,
                                    "preset": s.get("preset", "custom"), "assignment": s.get("assignment"),
                                    "client": client_address()})
    except RunRefused as e:  # owner limit, queue full, admission: one sentence
        st.error(i18n.text_of(e, L))
        return None
    except KnobError as e:
        st.error(i18n.t("train.invalid", L, msg=i18n.text_of(e, L)))
        return None
    st.session_state[K_PICK] = st.session_state[K_SAVED] = h.id
    return h.id


# -- the live panel ----------------------------------------------------------------------

def run_panel() -> None:
    """Pick one of *my* runs (newest first) and draw it; polls while it is queued or training."""
    L = lang()
    remember_owner()
    not_started_notes(L)
    mine = my_runs()
    views = mine.jobs()
    others = mine.others()
    if others["running"] or others["queued"]:
        st.caption(i18n.t("train.others", L, **others))
    if not views:
        st.info(i18n.t("train.no_runs", L))
        return
    st.caption(i18n.t("train.my_runs", L))
    ids = [v.id for v in views]
    if st.session_state.get(K_PICK) not in ids:  # a new session (reload) or back from another page
        saved = st.session_state.get(K_SAVED)
        st.session_state[K_PICK] = saved if saved in ids else mine.latest().id
    labels = {v.id: f"{v.id} · {run_label(v, L)}" for v in views}
    job_id = st.selectbox(i18n.t("train.run", L), ids, key=K_PICK, format_func=lambda i: labels.get(i, i))
    st.session_state[K_SAVED] = job_id
    first = mine.view(job_id)
    polling = bool(first and first.active)

    @st.fragment(run_every=POLL_S if polling else None)
    def panel():
        v = mine.view(job_id)
        if v is None:
            return
        draw_job(v)
        if polling and not v.active:
            st.rerun()  # the run ended: one full rerun stops the polling

    panel()


def not_started_notes(L: str) -> None:
    """My runs that were waiting when the server stopped (killed, or restarted) and so never started: each
    said once, until its owner dismisses it (cnnlab.runs.recovery keeps the queue as one record per run)."""
    from ..runs import recovery

    root = str(checkpoint_root())
    for rec in recovery.not_started(root, owner_id())[:5]:
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        meta = rec.get("meta") or {}
        what = run_label_of(meta, L) if meta.get("arch") else safe_label(rec.get("label", ""), 80)
        c1.warning(i18n.t("train.not_started", L, name=rec.get("id", "?"), what=what))
        c2.button(i18n.t("train.dismiss", L), key=f"train_dismiss_{rec.get('id')}",
                  on_click=recovery.dismiss_not_started, args=(root, owner_id(), rec.get("id")))


def run_label_of(meta: dict, L: str) -> str:
    from .common import exercise_tag, model_title

    tag = exercise_tag(meta, L)
    title = model_title(meta["arch"], meta.get("knobs"), L)
    return f"{tag} · {title}" if tag else title


def _time_left(v) -> float | None:
    """The run's time left, corrected as it goes (the plan at submit blended with the engine's measured ETA)."""
    from ..runs import admission

    if not v.active or v.last_step is None:
        return None
    try:
        left = admission.remaining_s(v)
    except Exception:  # noqa: BLE001 - the engine's own figure then
        left = None
    return v.last_step.eta_s if left is None else left


def draw_job(v) -> None:
    L = lang()
    mine = my_runs()
    c1, c2 = st.columns([3, 1])
    c1.markdown(f"**{i18n.t('train.state', L)}:** {i18n.t('state.' + v.state, L)}")
    c2.button(i18n.t("train.stop", L), key=K_STOP, on_click=mine.stop, args=(v.id,), disabled=not v.active,
              type="primary")
    if v.state == QUEUED:
        from ..runs import admission

        ahead = max(0, (v.position or 1) - 1)
        text = i18n.t("train.queued_next" if ahead == 0 else "train.queued_one" if ahead == 1
                      else "train.queued_many", L, ahead=ahead)
        wait = admission.expected_wait(executor(), v.id)
        if wait is not None:  # from the runs ahead, the load measured now and the executor's slots
            text += " " + i18n.t("train.expected_wait", L, time=admission.fmt_time(wait, L))
        st.info(text)
    elif v.state == RUNNING and not v.steps:
        st.info(i18n.t("train.waiting_data", L))
    last = v.last_step
    start = v.start
    if last is not None:
        st.progress(v.progress, text=i18n.t("train.progress", L, epoch=last.epoch, epochs=start.epochs if start else "?",
                                            step=last.step, total=last.total_steps))
    elif v.state == RUNNING:
        st.progress(0.0)
    ep = v.epochs[-1] if v.epochs else None
    m = st.columns(3) + st.columns(3)  # two rows of three: five in one row were cut to "43.0…" on a projector
    m[0].metric(i18n.t("train.loss", L), f"{last.loss:.3f}" if last else "—")
    m[1].metric(i18n.t("train.train_acc", L), f"{last.acc:.3f}" if last else "—")  # live, as the curve
    m[2].metric(i18n.t("train.test_acc", L), f"{ep.test_acc:.3f}" if ep else "—")
    m[3].metric(i18n.t("train.speed", L), f"{last.examples_per_s:,.0f}" if last else "—")
    left = _time_left(v)
    m[4].metric(i18n.t("train.eta", L), fmt_seconds(left) if left is not None else "—")
    fig = figures.training_curves(v.steps, v.epochs, start.steps_per_epoch if start else None, L)
    st.plotly_chart(fig, key=K_CURVES, width="stretch")
    end = v.end
    if end is None:
        return
    folder = v.run_dir or getattr(end, "run_dir", None)
    name = os.path.basename(os.path.normpath(folder)) if folder else None  # the run's name, never its path
    if (v.meta or {}).get("stopped_by") == "teacher":
        st.warning(i18n.t("train.by_teacher", L))
    if v.state == "done":
        st.success(i18n.t("train.done_1" if end.epochs == 1 else "train.done", L, acc=end.test_acc,
                          epochs=end.epochs, wall=fmt_seconds(end.wall_s), name=name or "—"))
    elif v.state in ("stopped", "cancelled") and name is None:  # cancelled in the queue: nothing was saved
        st.warning(i18n.t("train.cancelled", L))
    elif getattr(end, "reason", "") == "time_limit":
        st.warning(i18n.t("train.time_limit", L, msg=i18n.text_of(end.message, L), name=name))
    elif v.state in ("stopped", "cancelled"):
        st.warning(i18n.t("train.stopped", L, msg=i18n.text_of(end.message, L), name=name))
    else:
        st.error(i18n.t("train.failed", L, reason=i18n.t("reason." + str(end.reason), L) if "reason." + str(end.reason) in i18n.STRINGS else end.reason,
                            msg=plain(i18n.text_of(end.message, L))))
        if getattr(end, "detail", ""):  # the full traceback, for the person who reports the bug
            with st.expander(i18n.t("common.details", L), expanded=False):
                st.code(end.detail, language=None)
