"""The browser half of scripts/space_smoke.sh (test-only: runs on the host with the venv's playwright).

Against the Space container at --url: opens every page in headless Chromium (Debian's) and fails on any
Streamlit exception box; trains a tiny LeNet run inside the container (`docker exec ... python3 -m cnnlab
train`), reloads Saved runs and finds the run there, with the note that says runs survive a restart.
Screenshots go to --artifacts; figures are appended to --figures. Exits non-zero on any failure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnnlab.i18n import t  # noqa: E402  (the page's own sentence, in English, the default language)

CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
# url paths of cnnlab/ui/shell.py's PAGES (the first page lives at /)
PAGES = (("architecture", "/"), ("train", "/training"), ("batchnorm", "/batch-norm"), ("runs", "/saved-runs"))


def idle(pg, settle_ms: int = 500, timeout_s: float = 180) -> None:
    """Wait for the app to render and its script to stop running (stable for `settle_ms`)."""
    pg.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    stable_since = None
    while time.time() < deadline:
        state = pg.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        busy = state == "running" or pg.locator('[data-testid="stSkeleton"]').count() > 0
        if state and not busy:
            stable_since = stable_since or time.time()
            if (time.time() - stable_since) * 1000 >= settle_ms:
                return
        else:
            stable_since = None
        pg.wait_for_timeout(100)
    raise AssertionError(f"the app was still running after {timeout_s} s")


def check_page(pg, name: str) -> None:
    boxes = pg.locator('[data-testid="stException"]')
    if boxes.count():
        raise AssertionError(f"{name}: exception box: {boxes.first.inner_text()[:800]}")
    errors = pg.locator('[data-testid="stAlertContentError"]')
    if errors.count():
        raise AssertionError(f"{name}: error message: {errors.first.inner_text()[:400]}")
    dialogs = pg.locator('[data-testid="stDialog"]')  # e.g. Streamlit's "Page not found"
    if dialogs.count():
        raise AssertionError(f"{name}: dialog: {dialogs.first.inner_text()[:300]}")
    if not pg.locator("h1").count():
        raise AssertionError(f"{name}: no page title rendered")


def open_page(pg, url: str, name: str, art: Path) -> float:
    t = time.perf_counter()
    pg.goto(url)
    # The page is drawn once its title is (a loaded machine can leave the shell idle for a while before the
    # script starts); then wait for the script to finish. No title within the timeout fails the check.
    pg.wait_for_selector('[data-testid="stMain"] h1')
    idle(pg)
    dt = time.perf_counter() - t
    check_page(pg, name)
    pg.screenshot(path=str(art / f"{name}.png"), full_page=True)
    return dt


def train_in_container(docker: str, container: str, runs: str) -> tuple[dict, float]:
    cmd = [docker, "exec", container, "python3", "-m", "cnnlab", "train", "lenet", "--epochs", "1",
           "--train-size", "512", "--test-size", "256", "--device", "cpu", "--out", runs, "--json"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise AssertionError(f"training in the container exited {p.returncode}:\n{p.stderr[-2000:]}")
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    end = [e for e in events if e.get("event") == "run_end"]
    if not end:
        raise AssertionError(f"no run_end event from the training run:\n{p.stdout[-2000:]}\n{p.stderr[-1000:]}")
    return end[-1], dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--container", required=True)
    ap.add_argument("--docker", default="/usr/bin/docker")
    ap.add_argument("--runs", required=True, help="run folder root inside the container")
    ap.add_argument("--host-runs", required=True, help="the same folder seen from the host (the /data mount)")
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--figures", required=True)
    a = ap.parse_args()
    art = Path(a.artifacts)
    art.mkdir(parents=True, exist_ok=True)
    figures = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.set_default_timeout(180_000)
        console_errors = []
        pg.on("pageerror", lambda e: console_errors.append(str(e)))
        loads = {}
        for name, path in PAGES:
            loads[name] = open_page(pg, a.url + path, name, art)
            print(f"[space-smoke] page {name} ({path}): {loads[name]:.1f} s, no exception", flush=True)
        # With /data mounted the page tells everyone that runs survive a restart (the folder itself is shown
        # to a signed-in teacher only).
        text = pg.locator('[data-testid="stMain"]').inner_text()
        kept = t("runs.where_server_persistent")
        if kept not in text:
            raise AssertionError(f"Saved runs does not say that runs are kept on persistent storage "
                                 f"({kept!r}):\n{text[:600]}")

        before = set(os.listdir(a.host_runs)) if os.path.isdir(a.host_runs) else set()
        end, train_s = train_in_container(a.docker, a.container, a.runs)
        run_dir = end.get("run_dir") or ""
        run_id = os.path.basename(run_dir.rstrip("/"))
        new = set(os.listdir(a.host_runs)) - before
        if run_id not in new:
            raise AssertionError(f"run {run_id!r} not in the /data mount on the host ({sorted(new)})")
        acc = end.get("test_acc")
        print(f"[space-smoke] trained LeNet in the container: {train_s:.1f} s, run {run_id}, test acc {acc}",
              flush=True)

        runs_s = open_page(pg, a.url + "/saved-runs", "runs_after_training", art)
        text = pg.locator('[data-testid="stMain"]').inner_text()
        if run_id not in text:
            raise AssertionError(f"run {run_id} not on Saved runs after reload:\n{text[:800]}")
        print(f"[space-smoke] Saved runs lists {run_id} ({runs_s:.1f} s)", flush=True)
        if console_errors:
            raise AssertionError(f"JavaScript errors in the page: {console_errors[:3]}")
        browser.close()
    figures.append("page loads (first visit, s): " + ", ".join(f"{k} {v:.1f}" for k, v in loads.items()))
    figures.append(f"tiny LeNet in the container (1 epoch, 512 train / 256 test, CPU; docker exec wall): "
                   f"{train_s:.1f} s, test acc {acc}")
    figures.append(f"Saved runs reload showing the new run: {runs_s:.1f} s")
    with open(a.figures, "a") as f:
        f.write("\n".join(figures) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # one readable failure line for the shell script, and a non-zero exit
        print(f"[space-smoke] FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
