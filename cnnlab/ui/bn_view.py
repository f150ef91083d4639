"""BatchNorm page pieces: pick a run with BN (live or saved), γ/β heat maps, running vs batch statistics, and
the scratch-vs-nn equality demo."""
from __future__ import annotations

import os

import streamlit as st

from .. import caches, i18n
from . import analysis, figures
from ..runs.recovery import run_class
from .common import checkpoint_root, exercise_tag, lang, model_title, my_runs, plain, safe_label

MAX_COLUMNS = 60  # snapshots drawn in the heat map (evenly thinned beyond this)
K_SOURCE, K_LAYER = "bn_source", "bn_layer"
K_HEAT, K_LATEST, K_STATS = "bn_heat", "bn_latest", "bn_stats"
K_SAVED = "_bn_source_saved"
K_NUMBERS = "bn_numbers"


def _saved_runs() -> tuple[list, list]:
    """(runs with a BN history — or a BN folder that cannot be read, which shows its error when picked —,
    unreadable runs)."""
    from .. import checkpoint
    from .common import visible_runs

    out, bad = [], []
    for r in visible_runs():  # the owner filter: never another student's runs
        if r.status == "unreadable":
            bad.append(r)
            continue
        try:
            has = bool(checkpoint.bn_files(r.run_dir))
        except checkpoint.CheckpointError:
            has = True
        if has:
            out.append(r)
    return out, bad


def _stamp(run_dir: str) -> tuple:
    """When the BN history last changed (names, sizes and times of its files; lstat only, never opened)."""
    from .. import checkpoint

    out = []
    for path in checkpoint.bn_files(run_dir):
        try:
            st_ = os.lstat(path)
            out.append((os.path.basename(path), st_.st_size, st_.st_mtime_ns))
        except OSError:
            pass
    return tuple(out)


def _read_bn(run_dir: str):
    """The saved BN history, in caches.CACHE (bounded by bytes). Raises CheckpointError."""
    from .. import checkpoint

    return caches.CACHE.get_or_make(("bn", run_dir, _stamp(run_dir)), lambda: checkpoint.read_bn_history(run_dir))


def sources(saved: list | None = None) -> dict[str, str]:
    """{source id: label}: live runs with snapshots first (newest first), then saved runs with a BN history
    (`saved`: from saved_runs(), read again if not given)."""
    L = lang()
    out: dict[str, str] = {}
    live_dirs = set()
    for v in my_runs().jobs():
        if v.bn:
            title = model_title(v.meta.get("arch", "?"), v.meta.get("knobs"), L)
            tag = exercise_tag(v.meta, L)
            title = f"{tag} · {title}" if tag else title
            out[f"live:{v.id}"] = f"{i18n.t('bn.live', L)} · {v.id} · {title} · {i18n.t('state.' + v.state, L)}"
            if v.run_dir:
                live_dirs.add(os.path.abspath(v.run_dir))
    for r in (saved_runs()[0] if saved is None else saved):
        if os.path.abspath(r.run_dir) in live_dirs:  # each run once: a live run's folder is the same run
            continue
        acc = f" · {i18n.t('fig.test_acc', L)} {r.test_acc:.3f}" if isinstance(r.test_acc, (int, float)) else ""
        tag = exercise_tag(run_class(r.run_dir), L)
        out[f"saved:{r.run_dir}"] = safe_label(f"{i18n.t('bn.saved', L)} · {r.run_id} · {tag + ' · ' if tag else ''}"
                                               f"{model_title(r.arch, r.knobs, L)}{acc}")
    return out


def saved_runs() -> tuple[list, list]:
    """(saved runs with BN, unreadable runs); one bad folder never hides the others."""
    try:
        return _saved_runs()
    except Exception:  # noqa: BLE001 — the checkpoint folder itself cannot be read: live runs only
        return [], []


def snapshots(source: str) -> tuple[list, bool]:
    """(BN snapshots, still training?) for a source id. Raises CheckpointError for a saved run whose history
    cannot be read."""
    kind, _, ref = source.partition(":")
    if kind == "live":
        v = my_runs().view(ref)
        return (list(v.bn), v.active) if v else ([], False)
    return list(_read_bn(ref)), False


def _thin(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def unreadable_runs(bad: list) -> None:
    """The saved runs that cannot be read, each with its reason (as plain text), in a collapsed expander."""
    if bad:
        with st.expander(i18n.t("bn.unreadable", lang(), n=len(bad))):
            for r in bad:
                st.text(safe_label(f"{r.run_id}: {r.error}", 400))


def pick_source() -> str | None:
    L = lang()
    saved, bad = saved_runs()
    src = sources(saved)
    unreadable_runs(bad)
    if not src:
        st.info(i18n.t("bn.no_runs", L))
        return None
    ids = list(src)
    if st.session_state.get(K_SOURCE) not in ids:
        saved = st.session_state.get(K_SAVED)
        st.session_state[K_SOURCE] = saved if saved in ids else ids[0]
    choice = st.selectbox(i18n.t("bn.source", L), ids, key=K_SOURCE, format_func=lambda i: src.get(i, i))
    st.session_state[K_SAVED] = choice
    return choice


def draw(source: str) -> None:
    """The γ/β heat maps, latest values and statistics; polls while a live run trains."""
    from ..checkpoint import CheckpointError

    try:
        _, active = snapshots(source)
    except CheckpointError as e:
        st.error(i18n.t("bn.bad_history", lang(), msg=plain(i18n.text_of(e, lang()))))
        return

    @st.fragment(run_every=2.0 if active else None)
    def panel():
        L = lang()
        try:
            snaps_now, _ = snapshots(source)
        except CheckpointError as e:
            st.error(i18n.t("bn.bad_history", L, msg=plain(i18n.text_of(e, L))))
            return
        if not snaps_now:
            st.info(i18n.t("bn.no_snapshots", L))
            return
        names = [layer.name for layer in snaps_now[-1].layers]
        if st.session_state.get(K_LAYER) not in names:
            st.session_state[K_LAYER] = names[0]
        name = st.selectbox(i18n.t("bn.layer", L), names, key=K_LAYER,
                            format_func=lambda n: f"{n} · C = {len(_layer(snaps_now[-1], n).gamma)}")
        shown = _thin(snaps_now, MAX_COLUMNS)
        rows = [(s, _layer(s, name)) for s in shown]
        rows = [(s, layer) for s, layer in rows if layer is not None]
        st.markdown(f"**{i18n.t('bn.heat', L)}**")
        st.plotly_chart(figures.bn_heatmaps([layer.gamma for _, layer in rows], [layer.beta for _, layer in rows],
                                            [f"e{s.epoch}·s{s.step}" for s, _ in rows], L),
                        key=K_HEAT, width="stretch")
        last = _layer(snaps_now[-1], name)
        # the numbers, as the book prints net[1].gamma and net[1].beta
        with st.container(key=K_NUMBERS):
            st.code(f"{name}.gamma = {_vector(last.gamma)}\n{name}.beta  = {_vector(last.beta)}", language="python")
        c1, c2 = st.columns(2)
        with c1:
            st.markdown(f"**{i18n.t('bn.latest', L)}** (e{snaps_now[-1].epoch}·s{snaps_now[-1].step})")
            st.plotly_chart(figures.bn_latest(last.gamma, last.beta, L), key=K_LATEST, width="stretch")
        with c2:
            st.markdown(f"**{i18n.t('bn.stats', L)}**")
            st.plotly_chart(figures.bn_stats(last, L), key=K_STATS, width="stretch")

    panel()


def _vector(values, per_line: int = 8) -> str:
    """tensor([1.0234, 0.9981, …]) with every channel, 8 to a line."""
    vals = [f"{v:.4f}" for v in values]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return "tensor([" + ",\n                ".join(lines) + "])"


def _layer(snap, name):
    for layer in snap.layers:
        if layer.name == name:
            return layer
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _equivalence(channels: int, batch: int, steps: int, seed: int):
    return analysis.bn_equivalence(channels=channels, batch=batch, steps=steps, seed=seed)


def equivalence_demo(tol: float = 1e-4) -> None:
    L = lang()
    st.caption(i18n.t("bn.demo_intro", L))
    c = st.columns(4)
    ch = c[0].number_input(i18n.t("bn.demo_channels", L), 1, 64, value=8, step=1, key="bn_demo_channels")
    bs = c[1].number_input(i18n.t("bn.demo_batch", L), 2, 256, value=16, step=1, key="bn_demo_batch")
    steps = c[2].number_input(i18n.t("bn.demo_steps", L), 1, 20, value=3, step=1, key="bn_demo_steps")
    seed = c[3].number_input(i18n.t("bn.demo_seed", L), 0, 10_000, value=0, step=1, key="bn_demo_seed")
    rows = _equivalence(int(ch), int(bs), int(steps), int(seed))
    worst = max(r["max_abs_diff"] for r in rows)
    table = [{i18n.t("bn.demo_mode", L): r["mode"], i18n.t("bn.demo_quantity", L): r["quantity"],
              i18n.t("bn.demo_diff", L): f"{r['max_abs_diff']:.2e}"} for r in rows]
    st.dataframe(table, key="bn_demo_table", hide_index=True)
    if worst <= tol:
        st.success(i18n.t("bn.demo_equal", L, tol=tol))
    else:
        st.error(i18n.t("bn.demo_differ", L, tol=tol))
