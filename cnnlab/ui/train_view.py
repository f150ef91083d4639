"""Train page pieces: settings (presets, model, hyper-parameters, device; kept in the URL), the estimate,
start, and the live panel of *this browser's* runs.

Runs train in the server's executor (cnnlab.runs: worker processes, never this process). Each run has an
owner (this browser's cookie token, see common.owner_id): the panel lists the owner's runs only, Stop acts on
them only, and other people's runs appear as counts (training / waiting), never with their settings. The
panel polls the executor from an ``st.fragment(run_every=...)`` while a run is active.
"""
from __future__ import annotations

import math

import streamlit as st

from .. import i18n
from ..device import app_report
from ..registry import KnobError, get_spec
from ..runs import QUEUED, RUNNING, RunRefused
from . import figures, presets, widgets
from .common import (arch_title, checkpoint_root, executor, fmt_seconds, lang, owner_id, registry,
                     remember_owner, resolve_config)

POLL_S = 1.0  # seconds between redraws of a live run (a Stop click redraws at once)
P = "train"  # widget key prefix
K_PRESET, K_DEVICE, K_EPOCHS, K_LR, K_BS = "train_preset", "train_device", "train_epochs", "train_lr", "train_bs"
K_OPT, K_WD, K_NTRAIN, K_NTEST, K_SEED = "train_opt", "train_wd", "train_n_train", "train_n_test", "train_seed"
K_START, K_STOP, K_PICK, K_CURVES = "train_start", "train_stop", "train_job_pick", "train_curves"
K_SAVED = "_train_job_saved"  # not a widget key: survives page switches
N_TRAIN, N_TEST = 60000, 10000
K_URL = "_train_url"  # the query parameters this page wrote last (anything else came from a link)

# recipe setting → (query parameter, widget key, type, lo, hi); the model is in ?arch=&<knob>=&res= (widgets)
RECIPE_URL = {"epochs": ("ep", K_EPOCHS, int, 1, 200), "lr": ("lr", K_LR, float, 0.0, 10.0),
              "batch_size": ("bs", K_BS, int, 1, 4096), "train_size": ("ntr", K_NTRAIN, int, 1, N_TRAIN),
              "test_size": ("nte", K_NTEST, int, 1, N_TEST), "weight_decay": ("wd", K_WD, float, 0.0, 1.0),
              "seed": ("seed", K_SEED, int, 0, 2**31 - 1)}
URL_DEFAULTS = {"wd": 0.0, "seed": 0}


def _fresh(spec):
    """A newly picked architecture starts at the book's training knobs and resolution."""
    return dict(spec.training.knobs), spec.training.resolution


def _book_values(arch: str) -> tuple[float, int]:
    spec = get_spec(arch)
    knobs = {**spec.defaults(), **dict(spec.training.knobs)}
    return float(spec.book_lr(knobs)), int(spec.training.batch_size)


def _on_arch_change() -> None:
    lr, bs = _book_values(st.session_state[f"{P}_arch"])
    st.session_state[K_LR], st.session_state[K_BS] = lr, bs
    st.session_state[K_PRESET] = "custom"


def _to_custom() -> None:
    st.session_state[K_PRESET] = "custom"


def _apply_preset() -> None:
    pid = st.session_state.get(K_PRESET)
    p = presets.PRESETS.get(pid)
    if p is None:
        return
    v = p.values()
    widgets.set_model(P, v["arch"], v["knobs"], v["resolution"])
    st.session_state[K_EPOCHS] = int(v["epochs"])
    st.session_state[K_LR] = float(v["lr"])
    st.session_state[K_BS] = int(v["batch_size"])
    st.session_state[K_NTRAIN] = int(v["train_size"])
    st.session_state[K_NTEST] = int(v["test_size"])


# -- the URL: the Train settings live in ?arch=...&ep=..., like the Architecture page's model ------------

def restore_url() -> list[str]:
    """Apply settings from the URL when it came from outside (a link, "Train this", an edited address);
    returns messages for values that were dropped."""
    qp = st.query_params.to_dict()
    # a Train link always has ?ep= (the Architecture page's own URL, kept across a page switch, has not)
    if not qp.get("arch") or "ep" not in qp or qp == st.session_state.get(K_URL):
        return []
    initial, errors = widgets.read_url(qp)
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
    for name, (q, key, typ, lo, hi) in RECIPE_URL.items():
        if q not in qp:
            continue
        try:
            v = typ(qp[q])
            if not lo <= v <= hi or (typ is float and v != v):
                raise ValueError
            st.session_state[key] = v
        except ValueError:
            errors.append(f"{name} must be a number in {lo}..{hi}, got {qp[q]!r}")
    if qp.get("opt") in ("sgd", "adam"):
        st.session_state[K_OPT] = qp["opt"]
    pid = qp.get("preset")
    st.session_state[K_PRESET] = pid if pid in presets.PRESETS else "custom"
    st.session_state[K_URL] = qp
    return errors


def sync_url(s: dict) -> None:
    """Write the settings into the URL (only when they changed; ?lang= is kept)."""
    try:
        want = widgets.url_params({"arch": s["arch"], "knobs": s["knobs"], "resolution": s["resolution"]})
    except Exception:  # noqa: BLE001 - raw knob text that does not parse yet: leave the URL as it is
        return
    for name, (q, _, typ, _, _) in RECIPE_URL.items():
        v = s[name]
        if q in URL_DEFAULTS and v == URL_DEFAULTS[q]:
            continue
        want[q] = f"{v:g}" if typ is float else str(v)
    if s["optimizer"] != "sgd":
        want["opt"] = s["optimizer"]
    if st.session_state.get(K_PRESET) in presets.PRESETS:
        want["preset"] = st.session_state[K_PRESET]
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
    """The memory and time this run needs here, before Start (and why it would be refused)."""
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
        st.warning(str(e))
        return
    except Exception:  # noqa: BLE001 - no estimate is no reason to hide the page
        return
    text = i18n.t("train.estimate", L, text=est.text())
    if est.seconds > limits.max_wall_s:
        text += " " + i18n.t("train.estimate_wall", L, min=f"{limits.max_wall_s / 60:g}")
    st.caption(text)


def _devices() -> list[str]:
    return ["cuda", "cpu"] if app_report().is_cuda else ["cpu"]


def settings() -> dict:
    """Draw the settings and the Start button; return the settings (raw, validated on Start) and
    whether Start was pressed (under "start")."""
    L = lang()
    gpu = app_report().name if app_report().is_cuda else None  # checked: driver, capability, a test kernel
    if gpu:
        st.caption(i18n.t("train.gpu_note", L, name=gpu))
    else:
        st.info(i18n.t("train.cpu_note", L))
        if app_report().reason:
            st.caption(i18n.t("train.gpu_why_not", L, reason=app_report().reason))
    plist = presets.for_device(bool(gpu))
    if K_PRESET not in st.session_state:  # first visit: the first preset for this machine
        st.session_state[K_PRESET] = plist[0].id
        _apply_preset()
    options = ["custom"] + [p.id for p in plist]
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.selectbox(i18n.t("train.preset", L), options, key=K_PRESET, on_change=_apply_preset,
                 format_func=lambda i: i18n.t("train.preset_custom", L) if i == "custom"
                 else presets.PRESETS[i].title(L))
    clicked = c2.button(i18n.t("train.start", L), key=K_START, type="primary", width="stretch")
    messages = st.container()  # errors from Start show here, next to the button
    with st.expander(i18n.t("train.model", L), expanded=True):
        choice = widgets.model_picker(P, None, dims=False, fresh=_fresh, on_arch_change=_on_arch_change)
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
    with st.expander(i18n.t("train.hparams", L), expanded=True):
        c1, c2 = st.columns(2)
        with c1:
            epochs = st.number_input(i18n.t("train.epochs", L), 1, 200, step=1, key=K_EPOCHS, on_change=_to_custom)
            try:
                book_lr = get_spec(arch).book_lr({**get_spec(arch).defaults(), **choice["knobs"]})
            except Exception:  # raw knob text that does not parse yet
                book_lr = lr0
            lr = st.number_input(i18n.t("train.lr", L), min_value=0.0, max_value=10.0, step=0.01, format="%.4g",
                                 key=K_LR, on_change=_to_custom, help=i18n.t("train.lr_help", L, lr=book_lr))
            bs = st.number_input(i18n.t("train.batch_size", L), 1, 4096, step=1, key=K_BS, on_change=_to_custom)
            opt = st.selectbox(i18n.t("train.optimizer", L), ["sgd", "adam"], key=K_OPT)
        with c2:
            n_train = st.number_input(i18n.t("train.train_size", L), 1, N_TRAIN, step=1000, key=K_NTRAIN, on_change=_to_custom)
            n_test = st.number_input(i18n.t("train.test_size", L), 1, N_TEST, step=500, key=K_NTEST, on_change=_to_custom)
            wd = st.number_input(i18n.t("train.weight_decay", L), min_value=0.0, max_value=1.0, step=1e-4,
                                 format="%.4g", key=K_WD)
            device = st.selectbox(i18n.t("train.device", L), devices, key=K_DEVICE)
        seed = st.number_input(i18n.t("train.seed", L), 0, 2**31 - 1, step=1, key=K_SEED)
    out = {**choice, "epochs": int(epochs), "lr": float(lr), "batch_size": int(bs), "optimizer": opt,
            "weight_decay": float(wd), "train_size": int(n_train), "test_size": int(n_test), "device": device,
            "seed": int(seed), "start": clicked, "messages": messages}
    sync_url(out)
    with messages:
        show_estimate(out)
    return out


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
        st.error(i18n.t("train.invalid", L, msg=e))
        return None
    except ImportError as e:
        st.error(i18n.t("train.no_engine", L, msg=e))
        return None
    cfg = tc.model
    label = (f"{arch_title(cfg.arch, 'en')} · {tc.epochs} ep · lr {tc.lr:g} · bs {tc.batch_size} · "
             f"{s['train_size']}/{s['test_size']} · {cfg.input_hw}² · {s['device']}")
    try:
        h = executor().submit(tc, owner_id(), label=label, out_dir=str(checkpoint_root()),
                              meta={"arch": cfg.arch, "knobs": cfg.to_dict()["knobs"], "resolution": cfg.resolution})
    except RunRefused as e:  # owner limit, queue full, admission: one sentence
        st.error(str(e))
        return None
    except KnobError as e:
        st.error(i18n.t("train.invalid", L, msg=e))
        return None
    st.session_state[K_PICK] = st.session_state[K_SAVED] = h.id
    return h.id


# -- the live panel ----------------------------------------------------------------------

def run_panel() -> None:
    """Pick one of *my* runs (newest first) and draw it; polls while it is queued or training."""
    L = lang()
    remember_owner()
    reg = registry()
    views = reg.jobs()
    others = reg.others()
    if others["running"] or others["queued"]:
        st.caption(i18n.t("train.others", L, **others))
    if not views:
        st.info(i18n.t("train.no_runs", L))
        return
    st.caption(i18n.t("train.my_runs", L))
    ids = [v.id for v in views]
    if st.session_state.get(K_PICK) not in ids:  # a new session (reload) or back from another page
        saved = st.session_state.get(K_SAVED)
        st.session_state[K_PICK] = saved if saved in ids else reg.latest().id
    labels = {v.id: f"{v.id} · {v.label}" for v in views}
    job_id = st.selectbox(i18n.t("train.run", L), ids, key=K_PICK, format_func=lambda i: labels.get(i, i))
    st.session_state[K_SAVED] = job_id
    first = reg.view(job_id)
    polling = bool(first and first.active)

    @st.fragment(run_every=POLL_S if polling else None)
    def panel():
        v = reg.view(job_id)
        if v is None:
            return
        draw_job(v)
        if polling and not v.active:
            st.rerun()  # the run ended: one full rerun stops the polling

    panel()


def draw_job(v) -> None:
    L = lang()
    reg = registry()
    c1, c2 = st.columns([3, 1])
    c1.markdown(f"**{i18n.t('train.state', L)}:** {i18n.t('state.' + v.state, L)}")
    c2.button(i18n.t("train.stop", L), key=K_STOP, on_click=reg.stop, args=(v.id,), disabled=not v.active,
              type="primary")
    if v.state == QUEUED:
        st.info(i18n.t("train.queued_ahead", L, pos=v.position, ahead=max(0, (v.position or 1) - 1)))
    elif v.state == RUNNING and not v.steps:
        st.info(i18n.t("train.waiting_data", L))
    last = v.last_step
    start = v.start
    if last is not None:
        st.progress(v.progress, text=i18n.t("train.progress", L, epoch=last.epoch, epochs=start.epochs if start else "?",
                                            step=last.step, total=last.total_steps))
    elif v.state == RUNNING:
        st.progress(0.0)
    m = st.columns(5)
    ep = v.epochs[-1] if v.epochs else None
    m[0].metric(i18n.t("train.speed", L), f"{last.examples_per_s:,.0f}" if last else "—")
    m[1].metric(i18n.t("train.eta", L), fmt_seconds(last.eta_s) if last and v.active else "—")
    m[2].metric(i18n.t("train.loss", L), f"{last.loss:.3f}" if last else "—")
    m[3].metric(i18n.t("train.train_acc", L), f"{(ep.train_acc if ep else last.acc):.3f}" if last else "—")
    m[4].metric(i18n.t("train.test_acc", L), f"{ep.test_acc:.3f}" if ep else "—")
    fig = figures.training_curves(v.steps, v.epochs, start.steps_per_epoch if start else None, L)
    st.plotly_chart(fig, key=K_CURVES, width="stretch")
    end = v.end
    if end is None:
        return
    if v.state == "done":
        st.success(i18n.t("train.done", L, acc=end.test_acc, epochs=end.epochs, wall=fmt_seconds(end.wall_s),
                          dir=end.run_dir or "—"))
    elif getattr(end, "reason", "") == "time_limit":
        st.warning(i18n.t("train.time_limit", L, msg=end.message, dir=v.run_dir or "—"))
    elif v.state in ("stopped", "cancelled"):
        st.warning(i18n.t("train.stopped", L, msg=end.message, dir=v.run_dir or "—"))
    else:
        st.error(i18n.t("train.failed", L, reason=end.reason, msg=end.message))
