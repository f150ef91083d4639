"""Teacher mode in the app: the sidebar's nickname and sign-in, and the Class page (every run, the class board,
assignments). Teacher mode exists only when CNNLAB_TEACHER_PASSWORD is set (cnnlab.teacher)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from .. import assignments, classroom, i18n, teacher
from ..presets import CPU_PRESETS, PRESETS
from . import figures
from .common import (K_SESSION, K_SIGNED_IN, TEACHER_COOKIE, arch_title, checkpoint_root, client_address, cookie,
                     executor, has_browser, lang, owner_id, plain, public_url, safe_label, text_of, set_cookies, signed_in)

K_PASSWORD, K_SIGN_IN, K_SIGN_OUT, K_NICK = "teacher_password", "teacher_sign_in", "teacher_sign_out", "nickname"
K_NICK_MSG = "_nickname_msg"
K_TOAST = "_teacher_toast"
K_PICK_SAVED = "_teacher_pick_saved"
BOARD_POLL_S = 2.0
BOARD_H = 330  # the board's two charts fit a projector's first screen (1024×700) under the title and the pick


def _save_nickname() -> None:
    try:
        kept = teacher.Nicknames(str(checkpoint_root())).set(owner_id(), st.session_state.get(K_NICK, ""))
        st.session_state[K_NICK_MSG] = ("ok", kept)
    except teacher.NicknameError as e:
        st.session_state[K_NICK_MSG] = ("error", text_of(e))


def _sign_in() -> None:
    guard, addr = teacher.GUARD, client_address()  # counted per address and server-wide, not per session
    given = st.session_state.get(K_PASSWORD, "")
    st.session_state[K_PASSWORD] = ""  # never kept in the session
    wait = guard.wait_s(addr)
    if wait > 0:  # the password is not even checked
        st.session_state[K_NICK_MSG] = ("error", i18n.t("teacher.wait", lang(), s=f"{wait:.0f}"))
        return
    if teacher.check_password(given):
        guard.succeeded(addr)
        st.session_state[K_SIGNED_IN] = True
        st.session_state[K_SESSION] = teacher.open_session(str(checkpoint_root()))
        teacher.server_token()
        st.session_state.pop(K_NICK_MSG, None)
    else:
        guard.failed(addr)
        st.session_state[K_NICK_MSG] = ("error", i18n.t("teacher.wrong", lang()))


def _sign_out() -> None:
    st.session_state[K_SIGNED_IN] = False
    teacher.close_session(str(checkpoint_root()), st.session_state.get(K_SESSION) or cookie(TEACHER_COOKIE))
    st.session_state[K_SESSION] = ""


def _keep_sign_in() -> None:
    """Put this session's sign-in into the browser's session cookie (or clear it after a sign-out)."""
    if not has_browser():
        return
    want = st.session_state.get(K_SESSION) if signed_in() else ""
    if want is None or (cookie(TEACHER_COOKIE) or "") == want:
        return
    set_cookies({TEACHER_COOKIE: (want, None if want else 0)})


def sidebar() -> None:
    """Nickname (everyone) and, with teacher mode on, the teacher's sign-in / sign-out."""
    L = lang()
    with st.sidebar:
        if K_NICK not in st.session_state:
            st.session_state[K_NICK] = teacher.Nicknames(str(checkpoint_root())).of_owner(owner_id()) or ""
        st.text_input(i18n.t("teacher.nickname", L), key=K_NICK, on_change=_save_nickname, max_chars=teacher.MAX_NICKNAME,
                      help=i18n.t("teacher.nickname_help", L))
        if teacher.enabled():
            if signed_in():
                st.caption(i18n.t("teacher.signed_in", L))
                st.button(i18n.t("teacher.sign_out", L), key=K_SIGN_OUT, on_click=_sign_out)
            else:
                st.text_input(i18n.t("teacher.password", L), type="password", key=K_PASSWORD, on_change=_sign_in,
                              max_chars=teacher.MAX_PASSWORD)
        msg = st.session_state.pop(K_NICK_MSG, None)
        if msg and msg[0] == "error":
            st.error(msg[1])
        if teacher.enabled():
            _keep_sign_in()


# -- the Class page ------------------------------------------------------------------------------------

def _picked() -> None:
    st.session_state[K_PICK_SAVED] = st.session_state.get("teacher_pick")


def _group_title(g: tuple[str, str], L: str, titles: dict) -> str:
    kind, val = g
    if kind == "assignment":
        return i18n.t("teacher.group_assignment", L, title=safe_label(titles.get(val) or val))
    if kind == "preset" and val in PRESETS:
        return i18n.t("teacher.group_preset", L, title=PRESETS[val].title(L))
    return i18n.t("teacher.group_arch", L, title=arch_title(val, L) if kind == "arch" else safe_label(val))


def _knobs_text(knobs: dict) -> str:
    return i18n.knobs_text(knobs, lang())[:120]


def _acc(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "—"


def runs_table(runs: list[classroom.ClassRun], L: str) -> None:
    rows = [{i18n.t("teacher.col_who", L): safe_label(text_of(r.who), 40), i18n.t("teacher.col_run", L): r.id,
             i18n.t("teacher.col_state", L): i18n.t(f"state.{r.state}", L) if f"state.{r.state}" in i18n.STRINGS
             else r.state,
             i18n.t("teacher.col_model", L): arch_title(r.arch, L) if r.arch != "?" else "?",
             i18n.t("teacher.col_knobs", L): _knobs_text(r.knobs),
             i18n.t("teacher.col_epochs", L): f"{r.epochs_done}/{r.epochs}",
             i18n.t("teacher.col_test_acc", L): _acc(r.test_acc),
             i18n.t("teacher.col_pinned", L): "📌" if r.pinned else ""} for r in runs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="teacher_runs_table")


def actions(runs: list[classroom.ClassRun], L: str) -> None:
    """Stop / pin / delete any run."""
    if not runs:
        return
    by_id = {r.id: r for r in runs}

    def label(i):
        state = by_id[i].state
        return f"{safe_label(text_of(by_id[i].who), 40)} · {i} · " + (
            i18n.t(f"state.{state}", L) if f"state.{state}" in i18n.STRINGS else state)

    # Streamlit matches a kept choice by its shown text: when the picked run's state (in that text) changes, the
    # box would jump to the first run. The pick is kept by id instead, and changed only by the teacher's own
    # choice (on_change; a state that changed while the teacher picked another run must not undo the pick).
    saved = st.session_state.get(K_PICK_SAVED)
    if saved in by_id:
        st.session_state["teacher_pick"] = saved
    pick = st.selectbox(i18n.t("teacher.pick_run", L), list(by_id), key="teacher_pick", format_func=label,
                        on_change=_picked)
    st.session_state[K_PICK_SAVED] = pick
    r = by_id[pick]
    c1, c2, c3 = st.columns(3)
    try:
        if c1.button(i18n.t("teacher.stop", L), key="teacher_stop", disabled=not r.active, width="stretch"):
            if classroom.stop(executor(), r):
                # the table above was drawn before the stop: draw the list again, now showing it stopped
                st.session_state[K_TOAST] = i18n.t("teacher.stopped", L, id=r.id)
                executor().wait(r.id, 5)
                st.rerun(scope="fragment")
        if c2.button(i18n.t("teacher.unpin" if r.pinned else "teacher.pin", L), key="teacher_pin",
                     disabled=not r.run_dir, width="stretch"):
            classroom.pin(r, not r.pinned)
            st.rerun()
        if c3.button(i18n.t("teacher.delete", L), key="teacher_delete", disabled=r.active, width="stretch"):
            classroom.delete(r, str(checkpoint_root()))
            st.toast(i18n.t("teacher.deleted", L, id=r.id))
            st.rerun()
        waiting = sum(r.state == "queued" for r in runs)
        theirs = sum(x.active for x in runs if r.owner and x.owner == r.owner)
        c4, c5 = st.columns(2)
        if c4.button(i18n.t("teacher.clear_queue", L, n=waiting), key="teacher_clear_queue", disabled=not waiting,
                     width="stretch"):
            n = classroom.clear_queue(executor(), runs)
            st.session_state[K_TOAST] = i18n.t("teacher.cleared", L, n=n)
            st.rerun(scope="fragment")
        if c5.button(i18n.t("teacher.stop_owner", L, who=safe_label(text_of(r.who), 40), n=theirs),
                     key="teacher_stop_owner", disabled=not theirs, width="stretch"):
            n = classroom.stop_owner(executor(), runs, r.owner)
            st.session_state[K_TOAST] = i18n.t("teacher.stopped_owner", L, n=n, who=safe_label(text_of(r.who), 40))
            st.rerun(scope="fragment")
    except classroom.ClassError as e:
        st.error(text_of(e))


def board(runs: list[classroom.ClassRun], L: str, titles: dict) -> None:
    """Pick a preset / assignment; all its runs: test accuracy and train loss overlaid, and a table."""
    gs = classroom.groups(runs)
    if not gs:
        st.info(i18n.t("teacher.no_runs", L))
        return
    g = st.selectbox(i18n.t("teacher.board_pick", L), gs, key="teacher_board_group",
                     format_func=lambda x: _group_title(x, L, titles))
    mine = [r for r in runs if r.group == g]
    c1, c2 = st.columns(2)
    with c1:
        st.plotly_chart(figures.compare_curves({f"{safe_label(text_of(r.who), 40)} · {r.id[-6:]}": r.curve for r in mine},
                                               i18n.t("fig.test_acc", L), L, y_range=[0, 1],
                                               height=BOARD_H),
                        key="teacher_board_acc", width="stretch")
    with c2:
        st.plotly_chart(figures.compare_curves({f"{safe_label(text_of(r.who), 40)} · {r.id[-6:]}": r.loss for r in mine},
                                               i18n.t("fig.train_loss", L), L, height=BOARD_H),
                        key="teacher_board_loss", width="stretch")
    ranked = sorted(mine, key=lambda r: -(r.test_acc if r.test_acc is not None else -1))
    st.dataframe(pd.DataFrame([{i18n.t("teacher.col_who", L): safe_label(text_of(r.who), 40),
                                i18n.t("teacher.col_test_acc", L): _acc(r.test_acc),
                                i18n.t("teacher.col_epochs", L): f"{r.epochs_done}/{r.epochs}",
                                i18n.t("teacher.col_state", L): i18n.t(f"state.{r.state}", L)
                                if f"state.{r.state}" in i18n.STRINGS else r.state,
                                i18n.t("teacher.col_knobs", L): _knobs_text(r.knobs)} for r in ranked]),
                 hide_index=True, width="stretch", key="teacher_board_table")


def _assignment_params(preset_id: str) -> dict[str, str]:
    """The Train page's URL parameters for a preset (what an assignment stores)."""
    from .widgets import url_params

    v = PRESETS[preset_id].values()
    out = url_params({"arch": v["arch"], "knobs": v["knobs"], "resolution": v["resolution"]})
    out.pop("in", None)
    out.pop("classes", None)
    out.update({"res": str(v["resolution"]), "ep": str(v["epochs"]), "lr": f"{v['lr']:g}",
                "bs": str(v["batch_size"]), "ntr": str(v["train_size"]), "nte": str(v["test_size"])})
    if v["optimizer"] != "sgd":
        out["opt"] = v["optimizer"]
    return out


def assignment_link(aid: str) -> str:
    """The full address a student opens for an assignment (a bare path works only with the app's address in
    front of it, which on a Space is not the huggingface.co page the teacher sees)."""
    return f"{public_url()}/training?assign={aid}"


def assignments_panel(L: str) -> None:
    root = str(checkpoint_root())
    with st.form("teacher_new_assignment", clear_on_submit=False):
        pid = st.selectbox(i18n.t("teacher.assign_preset", L), [p.id for p in CPU_PRESETS],
                           format_func=lambda i: PRESETS[i].title(L), key="teacher_assign_preset")
        title = st.text_input(i18n.t("teacher.assign_title", L), max_chars=assignments.MAX_TITLE,
                              key="teacher_assign_title")
        lockable = ["arch", "res", "ep", "lr", "bs", "ntr", "nte", "seed"]
        locked = st.multiselect(i18n.t("teacher.assign_locked", L), lockable, default=["arch", "res", "ep"],
                                placeholder=i18n.t("common.choose", L),
                                key="teacher_assign_locked", help=i18n.t("teacher.assign_locked_help", L))
        made = st.form_submit_button(i18n.t("teacher.assign_make", L))
    if made:
        params = _assignment_params(pid)
        params.setdefault("seed", "0")
        try:
            a = assignments.create(root, params, [x for x in locked if x in params], title=title or
                                   PRESETS[pid].title(L), preset=pid)
            st.success(i18n.t("teacher.assign_made", L, title=plain(a.title)))
            st.code(assignment_link(a.id), language=None)  # the full address, with Streamlit's copy button
        except assignments.AssignmentError as e:
            st.error(text_of(e))
    made_list = assignments.list_all(root)
    for a in made_list[:50]:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.markdown(f"{plain(a.title or a.id)} · `{assignment_link(a.id)}` · "
                    f"{i18n.t('teacher.assign_fixed', L)}: {plain(', '.join(a.locked) or '—')}")
        if c2.button(i18n.t("teacher.delete", L), key=f"teacher_assign_del_{a.id}"):
            assignments.delete(root, a.id)
            st.rerun()


def class_page() -> None:
    L = lang()
    st.title(i18n.t("teacher.title", L))
    if not teacher.enabled():
        st.info(i18n.t("teacher.off", L))
        return
    if not signed_in():
        st.info(i18n.t("teacher.sign_in_first", L))
        return
    views = ("board", "runs", "assign")
    pick = st.segmented_control(i18n.t("teacher.view", L), views, key="teacher_view", default="board",
                                format_func=lambda v: i18n.t(f"teacher.tab_{v}", L)) or "board"
    if pick == "assign":
        assignments_panel(L)
        return
    titles = {a.id: a.title for a in assignments.list_all(str(checkpoint_root()))}

    @st.fragment(run_every=BOARD_POLL_S)
    def live() -> None:  # the board and the run list redraw every few seconds (the class keeps training)
        note = st.session_state.pop(K_TOAST, None)
        if note:
            st.toast(note)
        runs = classroom.class_runs(executor(), str(checkpoint_root()))
        if pick == "board":
            board(runs, L, titles)
        else:
            st.caption(i18n.t("teacher.runs_caption", L, n=len(runs), active=sum(r.active for r in runs)))
            runs_table(runs, L)
            actions(runs, L)

    live()
