"""Issue #11 in a real browser against a real server: a crafted link renders no image and no link, an upload
over the stated limit is refused, and crafted run folders neither break a page nor grow the server's memory."""
from __future__ import annotations

import os

import pytest

from test_e2e_browser import chromium, goto_page, idle, no_exception, streamlit_server
from test_hostile import edit_config, make_run

MB = 1 << 20
EVIL = "![x](http://127.0.0.1:9/track.png) [Click here to log in](http://evil.example/login)"


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise KeyError("VmRSS")


@pytest.fixture(scope="module")
def crafted_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_e2e")
    make_run(root, name="20260101-000000-lenet-good")
    big = make_run(root, name="20260102-000000-vgg-big")
    edit_config(big, model={"arch": "vgg", "knobs": {"ratio": 4, "fc_width": 8192}, "resolution": 1024})
    zero = make_run(root, name="20260103-000000-lenet-zero")
    os.makedirs(os.path.join(zero, "bn_history"))
    os.symlink("/dev/zero", os.path.join(zero, "bn_history", "epoch-0001.jsonl"))
    fifo = make_run(root, name="20260104-000000-lenet-fifo")
    os.makedirs(os.path.join(fifo, "bn_history"))
    os.mkfifo(os.path.join(fifo, "bn_history", "epoch-0001.jsonl"))
    bad = make_run(root, name="20260105-000000-lenet-bad")
    edit_config(bad, train=[])
    return root


@pytest.fixture(scope="module")
def server(crafted_root, tmp_path_factory):
    with streamlit_server(crafted_root, tmp_path_factory.mktemp("hostile_log") / "streamlit.log") as (base, proc):
        yield base, proc


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_a_crafted_link_renders_no_image_and_no_link(server, browser):
    base, _ = server
    pg = browser.new_page()
    pg.set_default_timeout(60_000)
    fetched = []
    pg.on("request", lambda r: fetched.append(r.url)
          if r.url.startswith(("http://127.0.0.1:9/", "http://evil.example")) else None)
    from urllib.parse import quote
    pg.goto(base + "/?arch=" + quote(EVIL))
    idle(pg, settle_ms=800)
    no_exception(pg, "architecture")
    alert = pg.locator('[data-testid="stAlert"]').first
    assert "Click here to log in" in alert.inner_text()  # shown, as text
    assert pg.locator('img[src*="127.0.0.1:9"]').count() == 0
    assert pg.locator('a[href*="evil.example"]').count() == 0
    assert not fetched, fetched
    pg.close()


def test_crafted_run_folders_break_no_page_and_grow_no_memory(server, browser, crafted_root):
    base, proc = server
    pg = browser.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(base + "/")
    idle(pg, settle_ms=800)
    before = _rss(proc.pid)
    for path in ("saved-runs", "batch-norm"):
        goto_page(pg, path)
        idle(pg, settle_ms=800, timeout_s=120)
        no_exception(pg, path)
        if path == "saved-runs":
            assert "cannot be read" in pg.locator('[data-testid="stApp"]').inner_text()
    text = pg.locator('[data-testid="stApp"]').inner_text()
    assert "Runs that cannot be read (1)" in text
    # pick the /dev/zero and the FIFO histories: one error line each, the page finishes
    for name, needle in (("zero", "symbolic link"), ("fifo", "not a regular file")):
        pg.locator(".st-key-bn_source").click()
        pg.get_by_role("option").filter(has_text=f"20260103-000000-lenet-{name}" if name == "zero"
                                        else "20260104-000000-lenet-fifo").first.click()
        idle(pg, settle_ms=800, timeout_s=60)
        no_exception(pg, f"batch-norm {name}")
        assert needle in pg.locator('[data-testid="stAlert"]').all_inner_texts().__str__()
    grew = _rss(proc.pid) - before
    print(f"server RSS {before / MB:.0f} MB -> {_rss(proc.pid) / MB:.0f} MB")
    assert grew < 300 * MB, f"the server grew by {grew / MB:.0f} MB"
    pg.close()


def test_an_upload_over_the_stated_limit_is_refused(server, browser, tmp_path):
    """A 6 MB file on the Saved runs page: refused by Streamlit itself (server.maxUploadSize = 5), which also
    rejects such a request body on the server (413 by Content-Length or while streaming), so the app never
    holds it in memory."""
    base, proc = server
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (6 * MB))
    pg = browser.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(base + "/")
    idle(pg, settle_ms=800)
    goto_page(pg, "saved-runs")  # a deep link as the first request lands on the main page
    idle(pg, settle_ms=800, timeout_s=120)
    no_exception(pg, "saved-runs")
    before = _rss(proc.pid)
    pg.get_by_role("tab").nth(1).click()
    pg.locator('.st-key-runs_upload input[type="file"]').set_input_files(str(big))
    pg.wait_for_selector("text=or smaller", timeout=30_000)
    text = pg.locator(".st-key-runs_upload").inner_text()
    assert "5" in text and "or smaller" in text, text
    assert "5 MB" in pg.locator('[data-testid="stApp"]').inner_text()  # the label says the same limit
    idle(pg)
    no_exception(pg, "upload")
    assert _rss(proc.pid) - before < 100 * MB
    pg.close()
