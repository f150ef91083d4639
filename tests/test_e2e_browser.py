"""End to end in a real headless Chromium: `streamlit run app.py` on a free loopback port, every page opened,
the VGG ratio changed, a LeNet run started, its curve seen, stopped, the language switched.

Screenshots go to tests/artifacts/ (git-ignored). No page may show a Streamlit exception box.
Needs Debian's chromium (/usr/bin/chromium) and pip's playwright (CI installs both); skipped without them.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

@contextlib.contextmanager
def streamlit_server(checkpoints, log_path, env: dict | None = None):
    """`streamlit run app.py` on a free loopback port, saving runs under `checkpoints`; yields (base URL, process).
    `env` adds to the server's environment (None removes a variable). Its output goes to `log_path`; a traceback
    in it is printed when the server stops."""
    port = _free_port()
    log = open(log_path, "w+")
    env = {**os.environ, "CNNLAB_CHECKPOINTS": str(checkpoints), "PYTHONPATH": str(ROOT), **(env or {})}
    env = {k: v for k, v in env.items() if v is not None}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--server.runOnSave", "false"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
            time.sleep(0.3)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        tail = log.read()[-4000:]
        log.close()
        if "Traceback" in tail:
            print("streamlit log:\n" + tail)


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Debian's, driven by Playwright) for a module's fixture or one test; closed after. A
    module's, never the session's: a Playwright left running in a test process breaks the next module's own
    (sync or asyncio)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


WIDE = {"width": 1440, "height": 1000}


class People:
    """The people of a flow, each a browser context of their own (own cookies) with one tab: ``people(viewport)``
    brings one in, ``people.leave(pg)`` sends them away. A context that is left is handed to the next person with
    its tab on about:blank (the app's session ends, as when a tab closes) and its cookies and storage cleared: the
    cookies are all the app knows of a browser, so the next person is a stranger to it. What is kept is the
    browser's cache and its renderer process: a new context costs a new renderer and a fresh compile of the app's
    JavaScript, measured at ~2.7 CPU-s and ~1.5 s per person on 2 cores. A context that framed the app from another
    site is closed, not handed on. Tests that watch what the page fetches use fresh contexts."""

    def __init__(self, browser):
        self.browser = browser
        self._made: dict[int, tuple] = {}  # id(context) → (context, made with is_mobile)
        self._free: list = []               # tabs handed back, on about:blank

    def __call__(self, viewport: dict | None = None, mobile: bool = False):
        viewport = viewport or WIDE
        pg = next((p for p in self._free if self._made[id(p.context)][1] == mobile), None)
        if pg is not None:
            self._free.remove(pg)
            pg.set_viewport_size(viewport)
        else:
            pg = self.browser.new_context(viewport=viewport, is_mobile=mobile).new_page()
            self._made[id(pg.context)] = (pg.context, mobile)
        pg.set_default_timeout(60_000)
        return pg

    def leave(self, pg) -> None:
        ctx = pg.context
        sites = {f.url.split("/")[2] for f in pg.frames if f.url.startswith("http")}
        if len(sites) > 1 or len(ctx.pages) > 1 or id(ctx) not in self._made:
            self._made.pop(id(ctx), None)
            ctx.close()
            return
        with contextlib.suppress(sync_api.Error):  # storage of the app's origin (about:blank has none)
            pg.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        pg.goto("about:blank")  # first: a page still drawing could set its cookie again
        ctx.clear_cookies()
        assert not ctx.cookies()
        self._free.append(pg)

    def close(self) -> None:
        """Close every context made here, the ones still in use too (a test that failed before its people left)."""
        for ctx, _ in self._made.values():
            ctx.close()
        self._made.clear()
        self._free.clear()


@pytest.fixture(scope="module")
def server(plain_app):
    """The app on a free loopback port, saving runs to a temporary folder (tests/conftest.py: shared with the
    diagram tests)."""
    return plain_app


@pytest.fixture(scope="module")
def browser(plain_app):
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def page(browser):
    pg = browser.new_page(viewport={"width": 1440, "height": 1000})
    pg.set_default_timeout(60_000)
    yield pg

# True once the app has drawn, its script is not running and no skeleton is left, and that has held for `settle`
# ms. It runs inside the page (one wait, no round trip to the test process every 100 ms: that polling cost ~0.1
# CPU-seconds per second of waiting across the test process, Playwright's driver and the page).
IDLE = """(settle) => { const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    const now = performance.now();
    if (!state || state === 'running' || document.querySelector('[data-testid="stSkeleton"]')) {
        window.__cnnlabIdleSince = null; return false; }
    window.__cnnlabIdleSince = window.__cnnlabIdleSince || now;
    return now - window.__cnnlabIdleSince >= settle; }"""


def idle(pg, settle_ms: int = 400, timeout_s: float = 60) -> None:
    """Wait for the app to render and its script to stop running (stable for `settle_ms`); `pg` is a Page or a
    Frame."""
    deadline = time.time() + timeout_s
    while True:
        try:
            pg.wait_for_selector('[data-testid="stApp"]', timeout=max(1, deadline - time.time()) * 1000)
            pg.evaluate("() => { window.__cnnlabIdleSince = null; }")
            pg.wait_for_function(IDLE, arg=settle_ms, polling=100, timeout=max(1, deadline - time.time()) * 1000)
            return
        except sync_api.TimeoutError:
            raise AssertionError(f"the app was still running after {timeout_s} s") from None
        except sync_api.Error as e:  # the page navigated meanwhile (its context went): wait in the new one
            if "context was destroyed" not in str(e) or time.time() > deadline:
                raise

def no_exception(pg, where: str) -> None:
    boxes = pg.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{where}: {boxes.first.inner_text()[:800]}"
    dialogs = pg.locator('[data-testid="stDialog"]')  # e.g. Streamlit's "Page not found"
    assert dialogs.count() == 0, f"{where}: {dialogs.first.inner_text()[:300]}"

def shot(pg, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

NAV = ("explore", "training", "batch-norm", "saved-runs")  # sidebar order; the first page lives at /


def goto_page(pg, url_path: str) -> None:
    """Click the sidebar link (same session, like a person would)."""
    pg.locator('[data-testid="stSidebarNav"] a').nth(NAV.index(url_path)).click()
    idle(pg)

def metric_values(pg) -> list[str]:
    return [m.inner_text() for m in pg.locator('[data-testid="stMetricValue"]').all()]

def test_every_page_train_stop_and_language(server, page, browser):
    pg = page
    # 1. a shared link opened in a new tab: the Architecture page (the default, at /) with VGG
    pg.goto(server + "/?arch=vgg")
    idle(pg, settle_ms=800)
    pg.wait_for_selector(".st-key-arch_k_vgg_ratio")
    no_exception(pg, "architecture")
    assert pg.locator('[data-testid="stSidebar"] .st-key-lang').count() == 1  # the shell ran
    assert metric_values(pg)[0] == "128.81 M"
    shot(pg, "01-architecture-vgg")

    # 2. the VGG ratio 1 → 4 with the keyboard: params and URL follow
    # one key press at a time: while a rerun redraws the page, the old slider can stay in the DOM beside the new
    # one until the run ends, so each press waits for the page to settle and finds the slider again
    for _ in range(3):
        slider = pg.locator('.st-key-arch_k_vgg_ratio input[type="range"]').last
        slider.focus()
        slider.press("ArrowRight")
        idle(pg)
    pg.wait_for_function("() => location.search.includes('ratio=4')", timeout=15_000)
    idle(pg)
    pg.wait_for_function("""() => { const v = document.querySelector('[data-testid="stMetricValue"]');
                                    return v && v.innerText.trim() !== '128.81 M'; }""", timeout=15_000)
    no_exception(pg, "architecture ratio=4")
    assert "× the default" in pg.locator('[data-testid="stMetricDelta"]').first.inner_text()
    assert pg.locator(".st-key-arch_trace_fig .js-plotly-plot").count() == 1
    shot(pg, "02-architecture-vgg-ratio4")

    # 3. Train: LeNet on a subset, watch the curve, stop
    goto_page(pg, "training")
    no_exception(pg, "train")
    pg.wait_for_selector(".st-key-train_start")
    for key, value in (("train_n_train", "20000"), ("train_n_test", "500"), ("train_epochs", "20"),
                       ("train_bs", "32")):
        box = pg.locator(f".st-key-{key} input")
        box.fill(value)
        box.press("Enter")
        idle(pg)
    pg.locator(".st-key-train_start button").click()
    try:
        pg.wait_for_function("""() => { const g = document.querySelector('.st-key-train_curves .js-plotly-plot');
            return g && g.data && g.data.some(t => t.x && t.x.length >= 3); }""", timeout=180_000)
    except Exception:  # the first run after a server start also waits for the worker processes to warm up
        shot(pg, "03-train-no-curve")
        raise
    no_exception(pg, "train running")
    shot(pg, "03-train-running")
    # another person (a second browser context: its own cookies) sees neither the run's settings nor a Stop
    other = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        op = other.new_page()
        op.set_default_timeout(60_000)
        op.goto(server + "/training")
        idle(op, settle_ms=800)
        op.wait_for_selector(".st-key-train_start")
        no_exception(op, "train, second person")
        body = op.locator('[data-testid="stMain"]').inner_text()
        assert "Other people: 1 training" in body, body[-600:]
        assert "No run yet" in body
        assert op.locator(".st-key-train_stop").count() == 0
        assert op.locator(".st-key-train_curves").count() == 0
        shot(op, "03b-train-second-person")
    finally:
        other.close()
    # a browser reload is a new session with the same owner cookie: the run goes on and the page finds it
    pg.reload()
    idle(pg)
    pg.wait_for_function("""() => { const g = document.querySelector('.st-key-train_curves .js-plotly-plot');
        return g && g.data && g.data.some(t => t.x && t.x.length >= 3); }""", timeout=60_000)
    no_exception(pg, "train after reload")
    t0 = time.time()
    pg.locator(".st-key-train_stop button").click()
    pg.wait_for_selector('[data-testid="stAlertContentWarning"]', timeout=15_000)
    stopped_after = time.time() - t0
    assert "Stopped" in pg.locator('[data-testid="stAlertContentWarning"]').first.inner_text()
    assert stopped_after < 5, f"the stop showed after {stopped_after:.1f} s"
    no_exception(pg, "train stopped")
    shot(pg, "04-train-stopped")

    # 4. BatchNorm and Runs pages (the stopped run is saved and loadable)
    goto_page(pg, "batch-norm")
    no_exception(pg, "batchnorm")
    assert pg.locator('[data-testid="stAlertContentSuccess"]').count() >= 1  # scratch BatchNorm == nn
    shot(pg, "05-batchnorm")
    goto_page(pg, "saved-runs")
    pg.wait_for_selector(".st-key-runs_grid .js-plotly-plot")
    no_exception(pg, "runs")
    shot(pg, "06-runs")

    # 5. 中文
    pg.locator('[data-testid="stSidebar"] .st-key-lang label').filter(has_text="中文").click()
    idle(pg)
    pg.wait_for_function("() => document.querySelector('h1') && document.querySelector('h1').innerText.includes('已保存的训练')",
                         timeout=15_000)
    no_exception(pg, "runs zh")
    shot(pg, "07-runs-zh")
    goto_page(pg, "explore")
    no_exception(pg, "architecture zh")
    assert "网络结构浏览器" in pg.locator("h1").first.inner_text()
    shot(pg, "08-architecture-zh")


def test_an_exercise_link_opens_that_exercise(server, browser):
    """A teacher hands out /exercises?ex=nin_vs_alexnet: the page opens on it, with both ledgers."""
    pg = browser.new_page(viewport={"width": 1440, "height": 1000})
    pg.set_default_timeout(60_000)
    try:
        pg.goto(server + "/exercises?ex=nin_vs_alexnet")
        idle(pg)
        no_exception(pg, "exercise link")
        main = pg.locator('[data-testid="stMain"]').inner_text()
        assert "NiN drops the dense layers" in main, main[:800]
        assert "ex=nin_vs_alexnet" in pg.url
        assert pg.locator(".st-key-ex_ledger").count() == 1
        shot(pg, "06-exercise-link")
    finally:
        pg.close()
