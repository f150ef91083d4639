"""Projector and phone layouts in a real headless Chromium (#12 §2):

- 1024×700 with the sidebar open (a classroom projector): the cost ledger's numbers and labels, the Train page's
  metrics and the Start button are shown whole (they were cut to "43.0…" and "S..");
- 390×844 (a phone): while a run trains, its curves are near the Start button (they were below two screens of
  settings).
"""
from __future__ import annotations

from test_e2e_browser import ARGS, ARTIFACTS, CHROMIUM, idle, no_exception, streamlit_server, sync_api
from helpers import needs_fmnist

# every metric value/label and the Start button: [text, scrollWidth, clientWidth, right edge]
CUT = """() => [...document.querySelectorAll(
    '[data-testid="stMetricValue"] > div, [data-testid="stMetricLabel"] p, .st-key-train_start button p')]
  .map(e => [e.innerText, e.scrollWidth, e.clientWidth, Math.round(e.getBoundingClientRect().right)])"""
CURVE = """() => { const g = document.querySelector('.st-key-train_curves .js-plotly-plot');
    return g && g.data && g.data.some(t => t.x && t.x.length >= 2); }"""
RUN = "/training?arch=lenet&ep=20&ntr=20000&nte=256&bs=32"


def _whole(pg, width: int, where: str) -> list:
    items = pg.evaluate(CUT)
    cut = [i for i in items if i[1] > i[2] + 1 or i[3] > width]
    assert not cut, f"{where}: cut or outside the window: {cut}"
    return items


@needs_fmnist
def test_projector_and_phone_layouts(tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(tmp_path / "ckpt", tmp_path / "streamlit.log") as (base, _):
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                pg = b.new_context(viewport={"width": 1024, "height": 700}).new_page()
                pg.set_default_timeout(60_000)
                pg.goto(base + "/?arch=densenet")
                idle(pg)
                assert pg.locator('[data-testid="stSidebar"]').is_visible()
                items = _whole(pg, 1024, "ledger at 1024×700")
                assert len([i for i in items if i[0]]) >= 6  # three figures with their labels
                pg.screenshot(path=str(ARTIFACTS / "layout-1024-architecture.png"))
                pg.goto(base + RUN)
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

                phone = b.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
                phone.set_default_timeout(60_000)
                phone.goto(base + RUN)
                idle(phone)
                phone.locator(".st-key-train_start button").click()
                phone.wait_for_function(CURVE, timeout=180_000)
                idle(phone)
                no_exception(phone, "train on a phone")
                _whole(phone, 390, "Train metrics at 390×844")
                start = phone.locator(".st-key-train_start").bounding_box()
                curve = phone.locator(".st-key-train_curves").bounding_box()
                gap = max(curve["y"] - (start["y"] + start["height"]), start["y"] - (curve["y"] + curve["height"]))
                phone.screenshot(path=str(ARTIFACTS / "layout-390-train.png"), full_page=True)
                assert gap <= 422, f"the curves are {gap:.0f} px away from Start on a phone (half a screen at most)"
                phone.locator(".st-key-train_stop button").click()
                idle(phone)
            finally:
                b.close()


# the prediction grid on Saved runs: each image's width in px, and the subplot titles' boxes [left, right, top]
GRID = """() => { const g = document.querySelector('.st-key-runs_grid .js-plotly-plot');
    if (!g || !g._fullLayout) return null;
    const widths = Object.keys(g._fullLayout).filter(k => /^xaxis\\d*$/.test(k)).map(k => g._fullLayout[k]._length);
    const titles = [...g.querySelectorAll('.annotation-text')].map(e => { const r = e.getBoundingClientRect();
        return [r.left, r.right, Math.round(r.top)]; });
    return [widths, titles]; }"""


@needs_fmnist
def test_the_prediction_grid_is_readable_on_a_phone(tmp_path):
    from helpers import save_tiny_run

    save_tiny_run(tmp_path / "ckpt", train_size=256, test_size=128, epochs=1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(tmp_path / "ckpt", tmp_path / "streamlit.log") as (base, _):
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                phone = b.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
                phone.set_default_timeout(60_000)
                phone.goto(base + "/saved-runs")
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
            finally:
                b.close()
