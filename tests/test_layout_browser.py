"""Projector and phone layouts in a real headless Chromium (#12 §2):

- 1024×700 with the sidebar open (a classroom projector): the cost ledger's numbers and labels, the Train page's
  metrics and the Start button are shown whole (they were cut to "43.0…" and "S..");
- 390×844 (a phone): while a run trains, its curves are near the Start button (they were below two screens of
  settings).

One app server, shared with the class tests (tests/conftest.py), and one browser; each person is a browser context
of their own, handed to the next person cleared (test_e2e_browser.People).
"""
from __future__ import annotations

import pytest

from test_e2e_browser import ARTIFACTS, People, chromium, idle, no_exception
from helpers import CLASS_PASSWORD as PASSWORD, needs_fmnist

# every metric value/label and the Start button: [text, scrollWidth, clientWidth, right edge]
CUT = """() => [...document.querySelectorAll(
    '[data-testid="stMetricValue"] > div, [data-testid="stMetricLabel"] p, .st-key-train_start button p')]
  .map(e => [e.innerText, e.scrollWidth, e.clientWidth, Math.round(e.getBoundingClientRect().right)])"""
CURVE = """() => { const g = document.querySelector('.st-key-train_curves .js-plotly-plot');
    return g && g.data && g.data.some(t => t.x && t.x.length >= 2); }"""
BOXES = """() => { const b = ['.st-key-train_start', '.st-key-train_curves'].map(s => {
    const e = document.querySelector(s); if (!e) return null; const r = e.getBoundingClientRect();
    return r.height > 0 ? {y: r.top + window.scrollY, height: r.height} : null; });
    return b.every(x => x) ? b : null; }"""
RUN = "/training?arch=lenet&ep=20&ntr=20000&nte=256&bs=32"


def _whole(pg, width: int, where: str) -> list:
    items = pg.evaluate(CUT)
    cut = [i for i in items if i[1] > i[2] + 1 or i[3] > width]
    assert not cut, f"{where}: cut or outside the window: {cut}"
    return items


@pytest.fixture(scope="module")
def app(class_app):
    """The lesson server (tests/conftest.py: teacher mode on, shared with the class tests) with one saved tiny run
    for the grid and the class board (no owner: every browser sees it)."""
    from helpers import have_fashion_mnist, save_tiny_run

    base, root = class_app
    if have_fashion_mnist():
        save_tiny_run(root, train_size=256, test_size=128, epochs=1)
    return base


@pytest.fixture(scope="module")
def people(class_app):
    """The module's browser and its people (test_e2e_browser.People: a context each, handed on cleared)."""
    with chromium() as b:
        crowd = People(b)
        yield crowd
        crowd.close()


# the prediction grid on Saved runs: each image's width in px, and the subplot titles' boxes [left, right, top]
GRID = """() => { const g = document.querySelector('.st-key-runs_grid .js-plotly-plot');
    if (!g || !g._fullLayout) return null;
    const widths = Object.keys(g._fullLayout).filter(k => /^xaxis\\d*$/.test(k)).map(k => g._fullLayout[k]._length);
    const titles = [...g.querySelectorAll('.annotation-text')].map(e => { const r = e.getBoundingClientRect();
        return [r.left, r.right, Math.round(r.top)]; });
    return [widths, titles]; }"""


@needs_fmnist
def test_the_prediction_grid_is_readable_on_a_phone(app, people):
    phone = people({"width": 390, "height": 844}, mobile=True)
    phone.goto(app + "/saved-runs")
    phone.wait_for_selector(".st-key-runs_grid .js-plotly-plot")
    idle(phone)
    no_exception(phone, "saved runs on a phone")
    phone.locator(".st-key-runs_grid").scroll_into_view_if_needed()
    phone.screenshot(path=str(ARTIFACTS / "layout-390-runs-grid.png"))
    widths, titles = phone.evaluate(GRID)
    assert len(widths) == 16 and min(widths) >= 90, f"grid images {widths} px wide on a phone"
    rows: dict = {}
    for left, right, top in titles:
        rows.setdefault(top, []).append((left, right))
    for top, boxes in rows.items():
        boxes.sort()
        overlaps = [(a, b2) for a, b2 in zip(boxes, boxes[1:]) if a[1] > b2[0] + 1]
        assert not overlaps, f"titles overlap in the row at y={top}: {overlaps}"
    assert len(titles) == 16, titles
    people.leave(phone)


@needs_fmnist
def test_projector_and_phone_layouts(app, people):
    pg = people({"width": 1024, "height": 700})
    pg.goto(app + "/?arch=densenet")
    idle(pg)
    assert pg.locator('[data-testid="stSidebar"]').is_visible()
    items = _whole(pg, 1024, "ledger at 1024×700")
    assert len([i for i in items if i[0]]) >= 6  # three figures with their labels
    pg.screenshot(path=str(ARTIFACTS / "layout-1024-architecture.png"))
    pg.goto(app + RUN)
    idle(pg)
    _whole(pg, 1024, "Train at 1024×700")
    pg.locator(".st-key-train_start button").click()
    pg.wait_for_function(CURVE, timeout=180_000)
    idle(pg)
    no_exception(pg, "train at 1024")
    items = _whole(pg, 1024, "Train metrics at 1024×700")
    assert len(items) >= 11, items  # Start + five metrics with labels
    pg.screenshot(path=str(ARTIFACTS / "layout-1024-train.png"))
    pg.locator(".st-key-train_stop button").click()
    idle(pg)

    phone = people({"width": 390, "height": 844}, mobile=True)
    phone.goto(app + RUN)
    idle(phone)
    phone.locator(".st-key-train_start button").click()
    phone.wait_for_function(CURVE, timeout=180_000)
    idle(phone)
    no_exception(phone, "train on a phone")
    _whole(phone, 390, "Train metrics at 390×844")
    # both boxes in one read: a live run redraws its panel, and a box read between two draws is empty
    start, curve = phone.wait_for_function(BOXES).json_value()
    gap = max(curve["y"] - (start["y"] + start["height"]), start["y"] - (curve["y"] + curve["height"]))
    phone.screenshot(path=str(ARTIFACTS / "layout-390-train.png"), full_page=True)
    assert gap <= 422, f"the curves are {gap:.0f} px away from Start on a phone (half a screen at most)"
    phone.locator(".st-key-train_stop button").click()
    idle(phone)
    people.leave(pg)
    people.leave(phone)


# Every widget label, metric value, label and delta: [text, overflows?, a word wider than its box?, right edge]
LABELS = """() => { const c = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stWidgetLabel"] p, '
      + '[data-testid="stMetricValue"] > div, [data-testid="stMetricLabel"] p, [data-testid="stMetricDelta"]')]
    .filter(e => e.offsetParent !== null && e.innerText.trim())
    .map(e => { const s = getComputedStyle(e); c.font = s.fontWeight + ' ' + s.fontSize + ' ' + s.fontFamily;
      const widest = Math.max(...e.innerText.split(/\\s+/).map(w => c.measureText(w).width));
      const box = e.getBoundingClientRect().width;
      return [e.innerText, e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1, widest > box + 1,
              Math.round(e.getBoundingClientRect().right)]; }); }"""


def _readable(pg, width: int, where: str) -> list:
    items = pg.evaluate(LABELS)
    bad = [i for i in items if i[1] or i[2] or i[3] > width or "…" in i[0]]
    assert not bad, f"{where}: cut labels or numbers: {bad}"
    return items


def _first_screen(pg, key: str, height: int, where: str) -> None:
    box = pg.locator(f".st-key-{key}").bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= height, f"{where}: {key} at {box} (screen {height})"


@needs_fmnist
def test_a_projector_and_a_phone_read_every_label_and_find_start(app, people):
    """#21 §6: at 1024×700 the knob labels were cut ("f.", "conv_arc h"), the ledger showed "-67% · 0.33…",
    Start sat at the bottom edge, and the class board's charts were below the fold with unnamed curves."""
    for w, h, mobile in ((1024, 700, False), (390, 844, True)):
        pg = people({"width": w, "height": h}, mobile=mobile)
        for path in ("/?arch=vgg&ratio=2", "/?arch=densenet", "/?arch=mobilenet_v3"):
            pg.goto(app + path)
            idle(pg)
            no_exception(pg, path)
            _readable(pg, w, f"Architecture {path} at {w}×{h}")
        pg.goto(app + "/training?arch=vgg&ep=1")
        idle(pg)
        pg.screenshot(path=str(ARTIFACTS / f"layout-{w}-train-first-screen.png"))
        _readable(pg, w, f"Train at {w}×{h}")
        _first_screen(pg, "train_start", h, f"Train at {w}×{h}")
        people.leave(pg)
    teacher = people({"width": 1024, "height": 700})
    teacher.goto(app + "/class")
    idle(teacher)
    box = teacher.locator(".st-key-teacher_password input")
    box.fill(PASSWORD)
    box.press("Enter")
    idle(teacher)
    teacher.wait_for_selector(".st-key-teacher_board_acc .js-plotly-plot")
    idle(teacher)
    teacher.screenshot(path=str(ARTIFACTS / "layout-1024-class-board.png"))
    _first_screen(teacher, "teacher_board_acc", 700, "class board at 1024×700")
    names = teacher.evaluate("""() => [...document.querySelectorAll(
        '.st-key-teacher_board_acc .legendtext')].map(e => e.textContent)""")
    assert names, "the board's curves have no names"
    people.leave(teacher)