"""Teacher mode in a real headless Chromium: a student (one browser context) sets a nickname and starts a run;
the teacher (another context, own cookies) signs in, sees the run on the class board under the nickname,
stops it from the list of all runs, and the student's page shows it stopped."""
from __future__ import annotations

import pytest

from test_e2e_browser import ARGS, ARTIFACTS, CHROMIUM, idle, no_exception, streamlit_server, sync_api
from helpers import needs_fmnist

PASSWORD = "projector-7"
CURVE = """() => { const g = document.querySelector('.st-key-train_curves .js-plotly-plot');
    return g && g.data && g.data.some(t => t.x && t.x.length >= 2); }"""


def _type(pg, key: str, value: str) -> None:
    box = pg.locator(f".st-key-{key} input")
    box.fill(value)
    box.press("Enter")
    idle(pg)


@needs_fmnist
def test_teacher_sees_a_students_run_by_nickname_and_stops_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_TEACHER_PASSWORD", PASSWORD)
    monkeypatch.delenv("CNNLAB_TEACHER_TOKEN", raising=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(tmp_path / "ckpt", tmp_path / "streamlit.log") as (base, _):
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                student = b.new_context(viewport={"width": 1440, "height": 1000}).new_page()
                student.set_default_timeout(60_000)
                student.goto(base + "/training?arch=lenet&ep=20&ntr=20000&nte=256&bs=32")
                idle(student)
                _type(student, "nickname", "Ada L")
                student.locator(".st-key-train_start button").click()
                student.wait_for_function(CURVE, timeout=180_000)
                no_exception(student, "student training")

                teacher = b.new_context(viewport={"width": 1440, "height": 1000}).new_page()
                teacher.set_default_timeout(60_000)
                teacher.goto(base + "/")
                idle(teacher)
                _type(teacher, "teacher_password", "not it")
                assert "Wrong teacher password" in teacher.locator('[data-testid="stSidebar"]').inner_text()
                _type(teacher, "teacher_password", PASSWORD)
                assert "Signed in as teacher" in teacher.locator('[data-testid="stSidebar"]').inner_text()
                # the sign-in lives in this session: go through the sidebar (a new address is a new session)
                teacher.locator('[data-testid="stSidebarNav"] a', has_text="Class").click()
                idle(teacher)
                try:
                    teacher.wait_for_function("""() => { const g = document.querySelector('.st-key-teacher_board_acc .js-plotly-plot');
                        return g && g.data && g.data.some(t => (t.name || '').startsWith('Ada L')); }""", timeout=30_000)
                except Exception:
                    teacher.screenshot(path=str(ARTIFACTS / "teacher-00-no-nickname.png"))
                    raise
                no_exception(teacher, "class board")
                teacher.screenshot(path=str(ARTIFACTS / "teacher-01-board.png"))
                teacher.locator(".st-key-teacher_view").get_by_text("All runs", exact=True).click()
                idle(teacher)
                teacher.locator(".st-key-teacher_stop button").click()
                idle(teacher)
                no_exception(teacher, "teacher clicked Stop")
                student.wait_for_selector('[data-testid="stAlertContentWarning"]', timeout=30_000)
                warned = student.locator('[data-testid="stAlertContentWarning"]').all_inner_texts()
                assert "Your teacher stopped this run." in warned and any("Stopped" in w for w in warned), warned
                no_exception(teacher, "teacher stopped a run")
                no_exception(student, "student's run stopped")
                teacher.screenshot(path=str(ARTIFACTS / "teacher-02-stopped.png"))
                # a student never sees the Class page's content, nor other students' runs
                other = b.new_context().new_page()
                other.goto(base + "/class")
                idle(other)
                assert "Sign in as teacher" in other.locator('[data-testid="stMain"]').inner_text()
                assert "Ada L" not in other.locator('[data-testid="stMain"]').inner_text()
            finally:
                b.close()
