"""Runs page pieces: the saved-run table, curves of several runs on one chart, and one loaded run:
predictions on test images and on an uploaded image, feature maps of a conv layer, confusion matrix."""
from __future__ import annotations

import os

import streamlit as st

from .. import budget, caches, i18n
from ..measure import measure
from ..registry import KnobError, format_value, get_spec
from . import analysis, figures, widgets
from .common import arch_title, checkpoint_root, lang, plain, safe_label

K_TABLE, K_COMPARE, K_METRIC, K_COMPARE_FIG = "runs_table", "runs_compare", "runs_metric", "runs_compare_fig"
K_PICK, K_N, K_OFFSET, K_GRID = "runs_pick", "runs_n_images", "runs_offset", "runs_grid"
K_UPLOAD, K_INVERT, K_UP_IMG, K_UP_PROBS = "runs_upload", "runs_invert", "runs_upload_input", "runs_upload_probs"
K_CONV, K_FM_IMAGE, K_FM = "runs_conv", "runs_fm_image", "runs_feature_maps"
K_CONF_N, K_CONF = "runs_conf_n", "runs_confusion"
K_UPLOADED = "_runs_uploaded"  # not a widget key: (run folder, model input, preview) of the uploaded image
K_FM_SOURCE = "runs_fm_source"
K_CONF_RUN = "_runs_conf_run"  # not a widget key: the run the confusion size was set for
METRICS = {"test_acc": "fig.test_acc", "train_acc": "fig.train_acc", "train_loss": "fig.train_loss"}
VIEW_IMAGES = 500            # test images kept for the prediction grid and the feature maps ...
VIEW_BYTES = 128 << 20       # ... but at most this many bytes of them (32 images at 1024×1024)
CONF_PIXEL_CAP = 64 << 20    # at most this many input pixels for the confusion matrix (memory)
CONF_MAC_BUDGET = 1e11       # default confusion-matrix size: about this many multiply-adds (seconds on a CPU)


def list_runs() -> list:
    """The saved runs this browser may see (common.visible_runs: the one owner filter)."""
    from .common import visible_runs

    return visible_runs()


def _knobs_text(knobs: dict) -> str:
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in knobs.items())


def _changed_knobs(r) -> str:
    """The knobs that differ from the architecture's defaults, e.g. 'batchnorm=scratch'."""
    try:
        defaults = get_spec(r.arch).defaults()
    except (KnobError, TypeError):
        return ""
    return i18n.knobs_text({k: v for k, v in r.knobs.items()
                            if k in defaults and format_value(v) != format_value(defaults[k])}, lang())


def run_label(r, L: str) -> str:
    """A run as people see it in a list or a legend (text from the run folder made safe: see safe_label)."""
    from ..runs.recovery import run_class
    from .common import exercise_tag

    acc = f" · {r.test_acc:.3f}" if isinstance(r.test_acc, (int, float)) else ""
    changed = _changed_knobs(r)
    tag = exercise_tag(run_class(r.run_dir), L) if r.run_dir else ""
    return safe_label(f"{r.run_id} · {tag + ' · ' if tag else ''}{arch_title(r.arch, L)}"
                      f"{f' ({changed})' if changed else ''}{acc}")


def status_text(status: str, L: str) -> str:
    """A run folder's status in words ("interrupted (server restarted)" for runs a killed server left)."""
    key = f"runs.status.{status}"
    text = i18n.t(key, L)
    return status if text == key else text


def runs_table(runs) -> None:
    L = lang()
    c = {k: i18n.t(f"runs.col_{k}", L) for k in ("run", "arch", "knobs", "status", "epochs", "created", "error")}
    rows = [{c["run"]: r.run_id, c["arch"]: arch_title(r.arch, L), c["knobs"]: safe_label(_knobs_text(r.knobs), 300),
             c["status"]: status_text(r.status, L), c["epochs"]: f"{r.epochs_done}/{r.epochs}",
             i18n.t("fig.test_acc", L): _acc(r.test_acc), i18n.t("fig.train_acc", L): _acc(r.train_acc),
             c["created"]: r.created, c["error"]: r.error or ""} for r in runs]
    bad = [r for r in runs if r.error]
    if not bad:
        for row in rows:
            del row[c["error"]]
    st.dataframe(rows, key=K_TABLE, hide_index=True, width="stretch")
    if bad:
        st.warning(i18n.t("runs.unreadable", L, n=len(bad)))


def _acc(v) -> str:
    """An accuracy for the table: 0.812, or "—" for a run that has none yet (never "None")."""
    return f"{v:.3f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "—"


def compare(runs) -> None:
    L = lang()
    with_metrics = [r for r in runs if r.epochs_done > 0]
    by_id = {r.run_dir: r for r in with_metrics}
    if K_COMPARE not in st.session_state:
        st.session_state[K_COMPARE] = [r.run_dir for r in with_metrics[:2]]
    st.session_state[K_COMPARE] = [d for d in st.session_state[K_COMPARE] if d in by_id]
    picked = st.multiselect(i18n.t("runs.compare_pick", L), list(by_id), key=K_COMPARE,
                            format_func=lambda d: run_label(by_id[d], L),  # Streamlit's own text is English
                            placeholder=i18n.t("common.choose" if by_id else "common.no_options", L))
    metric = widgets.radio(i18n.t("runs.metric", L), list(METRICS), K_METRIC, horizontal=True,
                           format_func=lambda m: i18n.t(METRICS[m], L))
    if len(picked) < 2:
        st.caption(i18n.t("runs.compare_hint", L))
    from .. import checkpoint

    series = {}
    for d in picked:
        try:
            rows = checkpoint.read_metrics(d)
        except checkpoint.CheckpointError as e:  # changed since it was listed
            st.error(i18n.t("runs.load_failed", L, msg=plain(i18n.text_of(e, L))))
            continue
        series[run_label(by_id[d], L)] = [(row["epoch"], row.get(metric)) for row in rows if row.get(metric) is not None]
    if not series:
        return
    fig = figures.compare_curves(series, i18n.t(METRICS[metric], L), L,
                                 y_range=[0, 1] if metric != "train_loss" else None)
    st.plotly_chart(fig, key=K_COMPARE_FIG, width="stretch")


# -- one loaded run ---------------------------------------------------------------------------------

# Test images live in caches.CACHE, shared by every session and bounded by bytes ($CNNLAB_CACHE_MB), not by a
# number of entries: one set at 1024×1024 can weigh as much as a hundred small ones. Loaded runs: LOADS, below.

def _stamp(run_dir: str) -> tuple:
    try:
        from ..checkpoint import WEIGHTS
        st_ = os.lstat(os.path.join(run_dir, WEIGHTS))
        return (st_.st_mtime_ns, st_.st_size)
    except OSError:
        return (0, 0)


# Loaded runs: one byte budget ($CNNLAB_LOAD_BUDGET_MB) for every browser session together: the runs being
# loaded, the ones kept, and the ones a session still holds. Five sessions each loading its own 471 MB run took the
# server to 7.1 GB (#23 §4); now a load waits for room (a few seconds) or is refused in one sentence.
LOADS = caches.ByteBudget(caches.load_budget_bytes)


def load(run_dir: str):
    """The LoadedRun (shared per run folder and weights file time). Raises CheckpointError, or LimitError when
    the server's loaded runs leave no room for it (after a short wait) or it is larger than the whole budget."""
    from .. import checkpoint

    stamp = _stamp(run_dir)
    cost = stamp[1]  # the weights file's size; better, the most load_run will read for the model it names:
    try:
        fp = measure(checkpoint.model_config_of(checkpoint.read_config(run_dir))).check().footprint
        cost = fp.weight_bytes * 9 // 8 + (1 << 20)  # load_weights refuses a file that would unpack to more
    except Exception:  # noqa: BLE001 — an unreadable folder: load_run says why, in one sentence
        pass
    return LOADS.get_or_make(("run", run_dir, stamp), cost, lambda: checkpoint.load_run(run_dir, device="cpu"))


def view_images(cfg) -> int:
    """How many test images to keep for the prediction grid and the feature maps at this input size."""
    return int(max(8, min(VIEW_IMAGES, VIEW_BYTES // (cfg.input_hw * cfg.input_hw * 4))))


def test_set(resolution: int, in_channels: int, n: int):
    """n stratified Fashion-MNIST test images at the model's input size (train split left tiny). Raises DataError."""
    from ..data import load_fashion_mnist

    return caches.CACHE.get_or_make(
        ("test_set", int(resolution), int(in_channels), int(n)),
        lambda: load_fashion_mnist(resolution, device="cpu", train_size=10, test_size=n, seed=0,
                                   in_channels=in_channels))


def _batch(run) -> int:
    """An inference batch for this run's model whose activations fit 1/16 of the load budget (64 MB by default),
    not half of what the memory budget leaves beside the weights (778 MB per session beside a 491 MB VGG)."""
    try:
        fp = measure(run.model_config).check().footprint
    except KnobError:
        return 1
    room = max(1, LOADS.max_bytes // 16)
    return budget.batch_for(fp, budget=min(budget.budget_bytes(), fp.weight_bytes + 2 * room))


def _class_names(n: int, L: str) -> list[str]:
    names = list(i18n.labels(L))
    return names[:n] if n <= len(names) else names + [str(i) for i in range(len(names), n)]


def pick_run(runs) -> str | None:
    L = lang()
    loadable = [r for r in runs if r.has_weights and r.status != "unreadable"]
    if not loadable:
        return None
    by_dir = {r.run_dir: r for r in loadable}
    if st.session_state.get(K_PICK) not in by_dir:
        st.session_state[K_PICK] = loadable[0].run_dir
    return st.selectbox(i18n.t("runs.pick", L), list(by_dir), key=K_PICK,
                        format_func=lambda d: run_label(by_dir[d], L))


def test_predictions(run, data) -> None:
    L = lang()
    names = _class_names(run.model_config.num_classes, L)
    c1, c2 = st.columns(2)
    n = c1.number_input(i18n.t("runs.n_images", L), 1, 32, value=16, step=1, key=K_N)
    off = c2.number_input(i18n.t("runs.offset", L), 0, max(0, data.num_test - 1), value=0, step=1, key=K_OFFSET)
    X = data.prepare(data.X_test[int(off):int(off) + int(n)])
    y = data.y_test[int(off):int(off) + int(n)]
    probs = analysis.predict_proba(run.model, X, batch_size=_batch(run))
    pred = probs.argmax(dim=1)
    titles = [f"{'✓' if p == t else '✗'} {names[p]}" + ("" if p == t else f" ({names[t]})")
              for p, t in zip(pred.tolist(), y.tolist())]
    images = [x.mean(0).tolist() for x in X]
    st.caption(i18n.t("runs.grid_legend", L))
    st.plotly_chart(figures.image_grid(images, titles, cols=8, zmin=0, zmax=1), key=K_GRID, width="stretch")


def upload_prediction(run) -> None:
    L = lang()
    cfg = run.model_config
    mb = analysis.MAX_UPLOAD_BYTES // (1024 * 1024)
    up = st.file_uploader(i18n.t("runs.upload_label", L, mb=mb), type=list(analysis.UPLOAD_TYPES), key=K_UPLOAD)
    invert = st.selectbox(i18n.t("runs.invert", L), ["auto", "on", "off"], key=K_INVERT)
    if up is None:
        st.session_state.pop(K_UPLOADED, None)
        return
    try:
        prep = analysis.prepare_upload(up.getvalue(), size=cfg.input_hw, in_channels=cfg.in_channels,
                                       invert={"auto": None, "on": True, "off": False}[invert])
    except analysis.ImageError as e:
        st.error(i18n.t("runs.bad_image", L, msg=plain(i18n.text_of(e, L))))
        return
    st.session_state[K_UPLOADED] = (run.run_dir, prep.tensor, prep.preview)  # for the feature maps too
    probs = analysis.predict_proba(run.model, prep.tensor)[0].tolist()
    names = _class_names(len(probs), L)
    best = max(range(len(probs)), key=lambda i: probs[i])
    c1, c2 = st.columns([1, 2])
    with c1:
        st.plotly_chart(figures.image_grid([prep.preview], [f"{i18n.t('runs.model_input', L)} "
                                                            f"{cfg.input_hw}×{cfg.input_hw}"], cols=1, zmin=0,
                                           zmax=1, height_per_row=260), key=K_UP_IMG, width="stretch")
    with c2:
        st.markdown(f"**{i18n.t('runs.prediction', L)}: {names[best]}** ({probs[best]:.1%})")
        st.plotly_chart(figures.probabilities(probs, names, L), key=K_UP_PROBS, width="stretch")


def feature_maps(run, data, max_maps: int = 16) -> None:
    L = lang()
    convs = analysis.conv_layers(run.model)
    if not convs:
        st.info(i18n.t("runs.no_conv", L))
        return
    if st.session_state.get(K_CONV) not in convs:
        st.session_state[K_CONV] = convs[0]
    c1, c2 = st.columns(2)
    mods = dict(run.model.named_modules())

    def conv_label(name):
        m = mods[name]
        return f"{name} · Conv2d {m.in_channels}→{m.out_channels}, {m.kernel_size[0]}×{m.kernel_size[1]}" \
               f"{f', stride {m.stride[0]}' if m.stride[0] > 1 else ''}"

    layer = c1.selectbox(i18n.t("runs.conv", L), convs, key=K_CONV, format_func=conv_label)
    uploaded = st.session_state.get(K_UPLOADED)
    if uploaded is not None and uploaded[0] != run.run_dir:
        uploaded = None  # an image prepared for another run's input size
    source = "test"
    if uploaded is not None:
        with c2:
            source = widgets.radio(i18n.t("runs.fm_source", L), ["test", "upload"], K_FM_SOURCE, horizontal=True,
                                   format_func=lambda s: i18n.t({"test": "runs.fm_test", "upload": "runs.fm_upload"}[s],
                                                                L))
    if source == "upload":
        X, preview = uploaded[1], uploaded[2]
    else:
        idx = c2.number_input(i18n.t("runs.image_index", L), 0, max(0, data.num_test - 1), value=0, step=1,
                              key=K_FM_IMAGE)
        X = data.prepare(data.X_test[int(idx):int(idx) + 1])
        preview = X[0].mean(0).tolist()
    fm = analysis.feature_maps(run.model, layer, X)
    maps = [fm[i].tolist() for i in range(min(max_maps, fm.shape[0]))]
    titles = [f"{i18n.t('bn.channel', L)} {i}" for i in range(len(maps))]
    st.caption(f"{layer}: {fm.shape[0]}×{fm.shape[1]}×{fm.shape[2]}")
    st.plotly_chart(figures.image_grid([preview] + maps,
                                       [i18n.t("runs.model_input", L)] + titles, cols=9,
                                       colorscale=["gray"] + ["Viridis"] * len(maps)),
                    key=K_FM, width="stretch")


@st.cache_data(max_entries=16, show_spinner=False)  # a small matrix and a number per entry
def _confusion(run_dir: str, stamp: tuple, n: int):
    run = load(run_dir)
    cfg = run.model_config
    data = test_set(cfg.input_hw, cfg.in_channels, n)
    return analysis.confusion_matrix(run.model, data.prepare(data.X_test), data.y_test, cfg.num_classes,
                                     batch_size=_batch(run))


def confusion_sizes(cfg) -> tuple[int, int]:
    """(default, max) number of test images for the confusion matrix: bounded by memory and by compute."""
    hw = cfg.input_hw
    most = int(max(100, min(10000, CONF_PIXEL_CAP // (hw * hw * cfg.in_channels))))
    try:
        from .common import probe_config

        macs = probe_config(cfg.arch, cfg.knobs, in_channels=cfg.in_channels, num_classes=cfg.num_classes,
                            resolution=cfg.resolution)[1].cost.macs
    except Exception:  # the probe is only for a sensible default
        macs = 0
    default = most if macs <= 0 else int(min(most, max(100, CONF_MAC_BUDGET // macs)))
    return default, most


def confusion(run) -> None:
    L = lang()
    default, most = confusion_sizes(run.model_config)
    # the test size is reset for every run picked (a big net's size was kept for the next, tiny, one)
    if (K_CONF_N not in st.session_state or st.session_state[K_CONF_N] > most
            or st.session_state.get(K_CONF_RUN) != run.run_dir):
        st.session_state[K_CONF_N] = min(default, most)
        st.session_state[K_CONF_RUN] = run.run_dir
    n = st.number_input(i18n.t("runs.conf_n", L), 10, most, step=100, key=K_CONF_N)
    matrix, acc = _confusion(run.run_dir, _stamp(run.run_dir), int(n))
    st.caption(i18n.t("runs.accuracy", L, acc=acc))
    st.plotly_chart(figures.confusion(matrix, _class_names(len(matrix), L), L), key=K_CONF, width="stretch")
