"""Two real app servers on one run store (#22 §2, #23 §6), walked in headless Chromium.

A Space's Storage Bucket mount has no locks and the last writer wins; two servers sharing one CNNLAB_CHECKPOINTS
folder are the same case on one machine. Students on both servers set nicknames at the same moment and start tiny
runs; a teacher publishes an assignment on each server. Nothing is lost and both servers show everything: each
Class page lists every student by nickname (each run once) and both assignments, an assignment published on one
server opens on the other, and the store holds every nickname and run.
"""
from __future__ import annotations

import contextlib
import re
import time

from test_e2e_browser import ARTIFACTS, People, chromium, idle, no_exception, streamlit_server, sync_api
from helpers import needs_fmnist

from cnnlab import assignments, teacher
from cnnlab import checkpoint as ckpt
from cnnlab.runs import recovery

PASSWORD = "projector-7"
RUN = "/training?arch=lenet&ep=1&ntr=256&nte=128"
BOARD_NAMES = """() => { const g = document.querySelector('.st-key-teacher_board_acc .js-plotly-plot');
    return g && g.data ? g.data.map(t => t.name || '') : []; }"""
ENTER_AT = """(at) => { const box = document.querySelector('.st-key-nickname input');
    setTimeout(() => box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 13,
                                                                     which: 13, bubbles: true})),
               Math.max(0, at - Date.now())); }"""
EVERYONE = """(nicks) => { const g = document.querySelector('.st-key-teacher_board_acc .js-plotly-plot');
    const names = g && g.data ? g.data.map(t => (t.name || '').split(' · ')[0]) : [];
    return nicks.every(n => names.includes(n)); }"""


def _open(pg, url: str) -> None:
    pg.goto(url)
    idle(pg)
    no_exception(pg, url)


def _main(pg) -> str:
    return pg.locator('[data-testid="stMain"]').inner_text()


def _sign_in(pg, base: str) -> None:
    _open(pg, base + "/class")
    box = pg.locator(".st-key-teacher_password input")
    box.fill(PASSWORD)
    box.press("Enter")
    idle(pg)
    assert "Signed in as teacher" in pg.locator('[data-testid="stSidebar"]').inner_text()
    pg.wait_for_function("() => document.cookie.includes('cnnlab_teacher=')", timeout=10_000)


def _view(pg, label: str) -> None:
    pg.locator(".st-key-teacher_view").get_by_text(label, exact=True).click()
    idle(pg)


def _publish(pg, title: str) -> str:
    """Publish the form's default preset under `title` (typed, not submitted by Enter); returns the link's path."""
    _view(pg, "Assignments")
    pg.locator(".st-key-teacher_assign_title input").fill(title)
    pg.get_by_role("button", name="Publish the assignment").click()
    idle(pg)
    no_exception(pg, "published " + title)
    m = re.search(r"/training\?assign=[A-Za-z0-9_-]+", _main(pg))
    assert m, _main(pg)[:2000]
    return m.group(0)


@needs_fmnist
def test_two_servers_on_one_folder_lose_nothing_and_show_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_TEACHER_PASSWORD", PASSWORD)
    monkeypatch.delenv("CNNLAB_TEACHER_TOKEN", raising=False)  # each server makes its own teacher token
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "ckpt"
    with contextlib.ExitStack() as stack:
        base_a, _ = stack.enter_context(streamlit_server(root, tmp_path / "a.log"))
        base_b, _ = stack.enter_context(streamlit_server(root, tmp_path / "b.log"))
        b = stack.enter_context(chromium())
        person = stack.enter_context(contextlib.closing(People(b)))  # a context each, closed at the end
        students = {"Ada A": base_a, "Alan A": base_a, "Grace B": base_b, "Edsger B": base_b}
        pages = {}
        for nick, base in students.items():
            pages[nick] = pg = person()
            _open(pg, base + RUN)
        # every student names themself at the same moment: fill every box, then Enter in every browser at one
        # instant (a timer in each page, all set to the same clock time; pressing in turn spreads them out)
        for nick, pg in pages.items():
            pg.locator(".st-key-nickname input").fill(nick)
        at = time.time() * 1000 + 1500
        for pg in pages.values():
            pg.evaluate(ENTER_AT, at)
        time.sleep(2.0)
        for nick, pg in pages.items():
            idle(pg)
            no_exception(pg, f"{nick} set a nickname")
        for nick, pg in pages.items():
            pg.locator(".st-key-train_start button").click()
        for nick, pg in pages.items():
            idle(pg)
            no_exception(pg, f"{nick} pressed Start")
            assert "Not started" not in _main(pg), (nick, _main(pg)[:1500])

        # a teacher on each server publishes an assignment
        t_a, t_b = person(), person()
        _sign_in(t_a, base_a)
        link_a = _publish(t_a, "Assignment from server A")
        _sign_in(t_b, base_b)
        link_b = _publish(t_b, "Assignment from server B")
        assert link_a != link_b

        # each server's Class page: both assignments, and every student's run under their nickname, once
        for name, t in (("A", t_a), ("B", t_b)):
            t.reload()  # the sign-in survives a reload; the page reads the store afresh
            idle(t)
            _view(t, "Assignments")
            text = _main(t)
            assert "Assignment from server A" in text and "Assignment from server B" in text, (name, text[:2000])
            assert link_a in text and link_b in text, (name, text[:2000])
            _view(t, "Class board")
            try:
                t.wait_for_function(EVERYONE, arg=list(students), timeout=120_000)
            except sync_api.TimeoutError:
                t.screenshot(path=str(ARTIFACTS / f"two-servers-board-{name}.png"), full_page=True)
            names = [n.split(" · ")[0] for n in t.evaluate(BOARD_NAMES)]
            assert sorted(n for n in names if n in students) == sorted(students), \
                f"server {name}'s class board lost a nickname: {names}"
            no_exception(t, f"server {name}'s Class page")
            t.screenshot(path=str(ARTIFACTS / f"two-servers-board-{name}.png"), full_page=True)

        # an assignment published on one server opens on the other (its record is in the shared store)
        pg = pages["Grace B"]
        _open(pg, base_b + link_a)
        assert "Fixed by your teacher" in pg.locator(".st-key-train_assign_box").inner_text()

    # the store itself: one record per nickname and per assignment, every run there with its owner
    look = teacher.Nicknames(str(root))
    runs = ckpt.list_runs(str(root))
    owners = sorted(look.get(recovery.run_owner(r.run_dir)) or "?" for r in runs)
    assert owners == sorted(students), owners
    assert sorted(a.title for a in assignments.list_all(root)) == ["Assignment from server A",
                                                                     "Assignment from server B"]
