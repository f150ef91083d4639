"""Exercises page: the book's exercises as one-click A/B experiments (cnnlab.exercises). An exercise is a URL
(/exercises?ex=lenet_relu). Cost exercises compare the two ledgers at once; training exercises run A and B in the
server's executor with the same seed (same data order, same initial weights where the shapes allow), overlay their
curves and say in one line what came out."""
from __future__ import annotations

import os
import secrets

import pandas as pd
import streamlit as st

from .. import exercises as X
from .. import i18n
from ..probe import human
from ..registry import KnobError
from ..runs import RunRefused
from ..runs.view import view
from . import export_view, figures
from .common import client_address, executor, lang, my_runs, owner_id, plain, probe_config, remember_owner

K_PICK, K_RUN = "ex_pick", "ex_run"
POLL_S = 1.0


def _tiny() -> dict:
    """CNNLAB_EXERCISE_TINY=1 (tests, a quick look): every pair on 256 examples for one epoch."""
    if os.environ.get("CNNLAB_EXERCISE_TINY") == "1":
        return {"train_size": 256, "test_size": 128, "epochs": 1}
    return {}


def pick() -> X.Exercise:
    """The exercise picked (kept in ?ex=); a bad ?ex= gives one sentence and the first exercise."""
    L = lang()
    ids = [e.id for e in X.EXERCISES]
    want = st.query_params.get("ex")
    if want is not None and st.session_state.get("_ex_url") != want:
        st.session_state["_ex_url"] = want
        try:
            st.session_state[K_PICK] = X.get(want).id
        except KnobError as e:
            st.warning(i18n.t("ex.bad_link", L, msg=plain(i18n.text_of(e, L))))
    if st.session_state.get(K_PICK) not in ids:
        st.session_state[K_PICK] = ids[0]
    ex_id = st.selectbox(i18n.t("ex.pick", L), ids, key=K_PICK,
                         format_func=lambda i: f"{X.BY_ID[i].section_label(L)} · {X.BY_ID[i].text('title', L)}")
    if st.query_params.get("ex") != ex_id:
        st.query_params["ex"] = ex_id
        st.session_state["_ex_url"] = ex_id
    return X.BY_ID[ex_id]


def describe(ex: X.Exercise) -> None:
    L = lang()
    st.markdown(f"**{i18n.t('ex.question', L)}** {ex.text('question', L)}")
    st.markdown(f"**{i18n.t('ex.look', L)}** {ex.text('look', L)}")
    st.markdown(f"**{i18n.t('ex.reported', L)}** {ex.text('reported', L)}")


def _knobs(side: X.Side) -> str:
    return i18n.knobs_text(side.knobs, lang()) or "—"


def ledger(ex: X.Exercise) -> None:
    """A and B side by side: knobs, parameters, multiply-adds, and B against A."""
    L = lang()
    rows = []
    costs = []
    for side in (ex.a, ex.b):
        cfg = ex.config(side)
        _, pr = probe_config(cfg.arch, cfg.knobs, in_channels=cfg.in_channels, num_classes=cfg.num_classes,
                             resolution=cfg.resolution)
        costs.append(pr.cost)
        rows.append({i18n.t("ex.col_side", L): side.label(L), i18n.t("ex.col_knobs", L): _knobs(side),
                     i18n.t("ex.col_input", L): f"{cfg.in_channels}×{cfg.input_hw}×{cfg.input_hw}",
                     i18n.t("arch.params", L): human(pr.cost.params), i18n.t("arch.macs", L): human(pr.cost.macs)})
    a, b = costs
    rows.append({i18n.t("ex.col_side", L): i18n.t("ex.b_over_a", L), i18n.t("ex.col_knobs", L): "",
                 i18n.t("ex.col_input", L): "",
                 i18n.t("arch.params", L): f"×{b.params / a.params:.3f}" if a.params else "—",
                 i18n.t("arch.macs", L): f"×{b.macs / a.macs:.3f}" if a.macs else "—"})
    with st.container(key="ex_ledger"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _submit(ex: X.Exercise) -> bool:
    L = lang()
    ex_ = executor()
    ids = []
    pair_id = secrets.token_hex(4)
    try:
        for tag, side in (("A", ex.a), ("B", ex.b)):
            tc = ex.train_config(side, seed=0, **_tiny())
            cfg = tc.model
            label = f"{ex.id} {tag} · {side.label('en')} · {tc.epochs} ep"
            h = ex_.submit(tc, owner_id(), label=label, meta={"arch": cfg.arch, "knobs": cfg.to_dict()["knobs"],
                                                              "resolution": cfg.resolution, "preset": "custom",
                                                              "assignment": None, "exercise": ex.id, "side": tag,
                                                              "pair": pair_id, "client": client_address()})
            ids.append(h.id)
    except (RunRefused, KnobError) as e:
        for rid in ids:  # half a pair is no experiment
            ex_.stop(rid, owner_id())
        st.error(i18n.t("ex.refused", L, msg=plain(i18n.text_of(e, L))))
        return False
    return True


def current_pair(ex: X.Exercise) -> tuple[str, str] | None:
    """This owner's newest A/B pair of this exercise, as the server's executor keeps it: a pair belongs to its
    owner on the server, so it survives page switches and reloads (the runs carry exercise, side and pair)."""
    runs = [s for s in executor().list(owner_id()) if s.meta.get("exercise") == ex.id and s.meta.get("pair")]
    if not runs:
        return None
    newest = max(runs, key=lambda s: s.created).meta["pair"]
    sides = {s.meta.get("side"): s.id for s in runs if s.meta.get("pair") == newest}
    return (sides["A"], sides["B"]) if "A" in sides and "B" in sides else None


def pair(ex: X.Exercise) -> None:
    """The A/B training pair: budget, shared start, Run, overlaid curves, and a reading when both have ended."""
    L = lang()
    remember_owner()
    same, total = X.shared_init(ex)
    st.caption(X.budget_text(ex, L, same, total, executor()))  # the one time estimate (admission.expect_runs)
    ids = current_pair(ex)
    running = ids is not None and any(s is not None and s.active for s in map(executor().status, ids))
    # while this pair trains, a second press would only be refused by the per-owner limit: say what is going on
    if st.button(i18n.t("ex.run", L), key=K_RUN, type="primary", disabled=running) and _submit(ex):
        st.rerun()  # drawn again with the button off while the new pair trains
    if running:
        st.caption(i18n.t("ex.running", L))
    if not ids:
        return
    mine = my_runs()
    views = [mine.view(i) for i in ids]
    active = any(v is not None and v.active for v in views)

    @st.fragment(run_every=POLL_S if active else None)
    def live() -> None:
        vs = [mine.view(i) for i in ids]
        if any(v is None for v in vs):
            st.info(i18n.t("ex.gone", L))
            return
        names = [f"{ex.text('title', L)} · A · {ex.a.label(L)}", f"{ex.text('title', L)} · B · {ex.b.label(L)}"]
        acc = {n: [(e.epoch, e.test_acc) for e in v.epochs] for n, v in zip(names, vs)}
        loss = {}
        for n, v in zip(names, vs):
            spe = v.start.steps_per_epoch if v.start is not None and v.start.steps_per_epoch else None
            loss[n] = [(s.step / spe, s.loss) for s in v.steps] if spe else []
        st.caption(" · ".join(f"{n}: {i18n.t('state.' + v.state, L)}" for n, v in zip(names, vs)))
        c1, c2 = st.columns(2)
        with c1:
            st.plotly_chart(figures.compare_curves(acc, i18n.t("fig.test_acc", L), L, y_range=[0, 1]),
                            key="ex_acc", width="stretch")
        with c2:
            st.plotly_chart(figures.compare_curves(loss, i18n.t("fig.train_loss", L), L), key="ex_loss",
                            width="stretch")
        if all(v.state == "done" and v.epochs for v in vs):
            with st.container(key="ex_reading"):
                st.success(X.reading(ex, vs[0].epochs[-1].test_acc, vs[1].epochs[-1].test_acc, L))
        elif any(v.state in ("failed", "stopped", "cancelled") for v in vs):
            st.warning(i18n.t("ex.incomplete", L))

    live()


def page() -> None:
    L = lang()
    st.title(i18n.t("ex.title", L))
    st.caption(i18n.t("ex.intro", L))
    ex = pick()
    describe(ex)
    try:
        ledger(ex)
    except KnobError as e:  # an exercise that does not build is a bug: say so in one line
        st.error(plain(i18n.text_of(e, L)))
        return
    export_view.exercise_downloads(ex, _tiny())
    if ex.kind == "train":
        pair(ex)
