"""The first page after a server start, in a real headless Chromium (#12 §3):

- no raw page file names ("app", "batchnorm", "runs", …) in the sidebar: with a pages/ folder, the first script
  run after a server start was in Streamlit's file-based multipage mode and showed them for about two seconds;
- a deep link opened as that first request (an assignment or exercise link) draws its page with no
  "Page not found" dialog over it;
- the page says it is loading, then draws its content;
- nothing is fetched from outside the server on any page (the :material/…: page icon was fetched from a font
  host, and failed offline).
"""
from __future__ import annotations

import time
from urllib.parse import urlparse

from test_e2e_browser import chromium, idle, no_exception, streamlit_server

RAW_NAMES = {"app", "architecture", "batchnorm", "runs", "train"}
PAGES = ("/", "/training", "/batch-norm", "/saved-runs")


def _nav_items(pg) -> list[str]:
    try:
        items = pg.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
    except Exception:  # noqa: BLE001 - the page is being replaced
        return []
    # a Material icon name is drawn as its ligature text before the title ("account_tree\n\nArchitecture")
    return [t.strip().splitlines()[-1].strip() for t in items if t.strip()]


def test_first_page_after_start_has_no_raw_names_and_nothing_external(tmp_path):
    with streamlit_server(tmp_path / "ckpt", tmp_path / "streamlit.log") as (base, _):
        with chromium() as b:
            pg = b.new_page(viewport={"width": 1024, "height": 700})
            pg.set_default_timeout(60_000)
            requests: list[str] = []
            pg.on("request", lambda r: requests.append(r.url))
            t0 = time.time()
            pg.goto(base + "/", wait_until="commit")
            seen: set[str] = set()
            drawn_at = None
            while time.time() - t0 < 60:
                seen.update(_nav_items(pg))
                if pg.locator(".st-key-arch_cost").count() > 0:
                    drawn_at = time.time() - t0
                    break
                pg.wait_for_timeout(50)
            assert drawn_at is not None, "the Architecture page did not draw its cost ledger within 60 s"
            assert not (seen & RAW_NAMES), f"raw page file names shown in the sidebar: {sorted(seen & RAW_NAMES)}"
            assert "Architecture" in seen
            idle(pg)
            for path in PAGES[1:]:
                pg.goto(base + path)
                idle(pg)
                no_exception(pg, path)
            icon = pg.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href")
            host = urlparse(base).netloc
            outside = sorted({u for u in requests + [icon]
                              if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != host})
            assert not outside, f"fetched from outside the server: {outside[:5]}"
            assert urlparse(icon).netloc == host, icon


def test_a_deep_link_as_the_first_request_after_a_start_has_no_page_not_found_dialog(tmp_path):
    with streamlit_server(tmp_path / "ckpt", tmp_path / "streamlit.log") as (base, _):
        with chromium() as b:
            pg = b.new_page(viewport={"width": 1440, "height": 1000})
            pg.set_default_timeout(60_000)
            pg.goto(base + "/training?arch=lenet&ep=3&ntr=512&nte=256")
            idle(pg)
            pg.wait_for_selector(".st-key-train_start")
            no_exception(pg, "a deep link as the first request")  # also fails on any dialog
            assert pg.locator(".st-key-train_epochs input").input_value() == "3"
