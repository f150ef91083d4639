"""Runs benchmark: the app's responsiveness with the executor, and its training speed vs the in-process CLI.

    .venv/bin/python bench/bench_runs.py [--repeats 3] [--knob-changes 9] [--markdown FILE]

1. `streamlit run app.py` on a free loopback port, headless Chromium (Debian's /usr/bin/chromium):
   Start → first curve point on the Train page, for the first run after the server started and for a
   warm run after it (LeNet, full data).
2. While a run trains (browser context A), a knob change on the Architecture page in another session
   (context B: VGG ratio, keyboard) → the cost ledger's first value changes: median of N.
3. LeNet / BN-LeNet examples/s of one epoch through a LocalExecutor worker vs in-process engine.run (what
   `python -m cnnlab train` does), same config, alternated, in this process tree.
Prints a table and `uptime`'s load (other processes on the machine skew everything; say so with the figures).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
CURVE_JS = """(n) => { const g = document.querySelector('.st-key-train_curves .js-plotly-plot');
    return g && g.data && g.data.some(t => t.x && t.x.length >= n); }"""


def load() -> str:
    return open("/proc/loadavg").read().split()[:3].__str__()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ckpt: str):
    port = free_port()
    log = open(os.path.join(ckpt, "streamlit.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env={**os.environ, "CNNLAB_CHECKPOINTS": ckpt, "PYTHONPATH": ROOT}, stdout=log,
        stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    t = time.time()
    while time.time() - t < 120:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("streamlit did not start")


def idle(pg, settle_ms=300, timeout_s=120):
    pg.wait_for_selector('[data-testid="stApp"]')
    t = time.time()
    since = None
    while time.time() - t < timeout_s:
        state = pg.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        if state and state != "running":
            since = since or time.time()
            if (time.time() - since) * 1000 >= settle_ms:
                return
        else:
            since = None
        pg.wait_for_timeout(50)


def start_and_time(pg) -> float:
    """Click Start; seconds until the curve shows its first point."""
    t = time.perf_counter()
    pg.locator(".st-key-train_start button").click()
    pg.wait_for_function(CURVE_JS, arg=1, timeout=180_000, polling=20)
    return time.perf_counter() - t


def stop(pg):
    pg.locator(".st-key-train_stop button").click()
    pg.wait_for_selector('[data-testid="stAlertContentWarning"]', timeout=60_000)
    idle(pg)


class _Shown(dict):
    """A dict that prints each figure as it is measured (a later failure keeps the earlier ones on screen)."""

    def __setitem__(self, k, v):
        print(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}", flush=True)
        super().__setitem__(k, v)


def browser_part(n_knob: int) -> dict:
    from playwright.sync_api import sync_playwright

    out = _Shown()
    ckpt = tempfile.mkdtemp(prefix="cnnlab-bench-runs-")
    proc, base = start_server(ckpt)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
            a = b.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            a.set_default_timeout(120_000)
            # the very first request after a server start must be "/" (Streamlit's v1 page mode otherwise shows
            # "Page not found" over the page); then a Train link: LeNet on all 60,000 images, 10 epochs
            a.goto(base + "/")
            idle(a)
            a.goto(base + "/training?arch=lenet&ep=10&ntr=60000&nte=10000")
            idle(a)
            a.wait_for_selector(".st-key-train_start")
            out["first run after server start: Start → first curve point (s)"] = start_and_time(a)
            stop(a)
            warm = []
            for _ in range(2):
                warm.append(start_and_time(a))
                stop(a)
            out["warm run: Start → first curve point (s), median of 2"] = statistics.median(warm)
            # a run trains in A; B turns VGG's ratio on the Architecture page
            start_and_time(a)
            bp = b.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            bp.set_default_timeout(180_000)
            bp.goto(base + "/?arch=vgg")
            idle(bp, 800)
            bp.wait_for_selector(".st-key-arch_k_vgg_ratio")
            slider = bp.locator('.st-key-arch_k_vgg_ratio input[type="range"]')
            times = []
            for i in range(n_knob):
                before = bp.locator('[data-testid="stMetricValue"]').first.inner_text()
                slider.focus()
                t = time.perf_counter()
                slider.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
                bp.wait_for_function("""(b) => { const v = document.querySelector('[data-testid="stMetricValue"]');
                    return v && v.innerText.trim() !== b; }""", arg=before.strip(), timeout=30_000, polling=10)
                times.append(time.perf_counter() - t)
                idle(bp, 200)
            running = a.locator('[data-testid="stMain"]').inner_text()
            out[f"knob → ledger while a run trains (s), median of {n_knob}"] = statistics.median(times)
            out["(the run was still training during the knob test)"] = "yes" if "running" in running else "no"
            stop(a)
            b.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def speed_part(repeats: int, train_size: int) -> dict:
    from cnnlab import engine
    from cnnlab.events import EpochEnd
    from cnnlab.runs.local import LocalExecutor

    out = _Shown()
    ex = LocalExecutor(out_dir=None)
    ex.wait_ready(1, 180)
    try:
        for name, knobs in (("LeNet", {}), ("BN-LeNet", {"batchnorm": "scratch"})):
            tc = engine.TrainConfig(model="lenet", knobs=knobs, epochs=1, train_size=train_size, test_size=1000,
                                    device="cpu").resolved()
            inproc, viaex = [], []
            for _ in range(repeats):
                evs = list(engine.run(tc, out_dir=None))
                inproc.append(next(e for e in evs if isinstance(e, EpochEnd)).examples_per_s)
                h = ex.submit(tc, "bench", out_dir=tempfile.mkdtemp(prefix="cnnlab-bench-ex-"))
                ex.wait(h, 1800)
                viaex.append(next(e for e in ex.events(h) if isinstance(e, EpochEnd)).examples_per_s)
            i, x = statistics.median(inproc), statistics.median(viaex)
            out[f"{name} examples/s in-process (CLI), median of {repeats}"] = i
            out[f"{name} examples/s through the local executor, median of {repeats}"] = x
            out[f"{name} executor / in-process"] = x / i
    finally:
        ex.shutdown()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--knob-changes", type=int, default=9)
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--markdown", help="append the table as markdown to this file")
    args = ap.parse_args(argv)
    rows = {"load before (1/5/15 min)": load()}
    if not args.skip_browser:
        rows.update(browser_part(args.knob_changes))
    if not args.skip_speed:
        rows.update(speed_part(args.repeats, args.train_size))
    rows["load after (1/5/15 min)"] = load()
    width = max(len(k) for k in rows)
    lines = [f"{k:<{width}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows.items()]
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"\n| measure ({time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores) | value |\n|---|---|\n")
            for k, v in rows.items():
                f.write(f"| {k} | {v:.3f} |\n" if isinstance(v, float) else f"| {k} | {v} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
