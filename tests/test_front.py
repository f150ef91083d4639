"""The Space's front (space/front.py): nginx serves Streamlit's static files, Streamlit the rest.

Checked here with Debian's nginx-light on this machine (`make test` installs it; CI never skips): the
config nginx accepts, then the real app behind a real nginx: the page and the health check pass through,
a bundle comes from disk byte for byte with a year's cache, a missing bundle is a 404 (not the app's
index.html), an upload larger than the app's limit is refused by Streamlit (not by nginx's 1 MB default),
SIGTERM stops both processes with status 0, and Streamlit dying takes the container's main process down.
The WebSocket path through nginx is used by every session of tests/test_load_small.py.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from space import front  # noqa: E402
from helpers import wait_port  # noqa: E402

if front.find_nginx() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's nginx-light for the front tests (make front)")
    pytest.skip("no nginx (apt-get install nginx-light, or `make front`)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_conf_names_ports_static_dir_and_upload_limit(tmp_path):
    static = front.streamlit_static_dir()
    assert (static / "index.html").is_file() and (static / "static" / "js").is_dir()
    conf = front.nginx_conf(listen_port=7860, streamlit_port=8501, static_dir=static, run_dir=tmp_path,
                            max_body_mb=front.max_upload_mb())
    assert "listen 0.0.0.0:7860;" in conf and "server 127.0.0.1:8501;" in conf
    assert f"alias {static / 'static'}/;" in conf
    # .streamlit/config.toml sets maxUploadSize = 5: nginx lets 6 MB through, Streamlit refuses over 5
    assert front.max_upload_mb() == 5 and "client_max_body_size 6m;" in conf
    assert f"pid {tmp_path / 'nginx.pid'};" in conf


def test_nginx_accepts_the_conf(tmp_path):
    conf = front.write_conf(tmp_path, listen_port=_free_port(), streamlit_port=_free_port(),
                            static_dir=front.streamlit_static_dir())
    check = subprocess.run([front.find_nginx(), "-e", "stderr", "-t", "-c", str(conf)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr


def test_max_upload_default_without_config(tmp_path):
    assert front.max_upload_mb(tmp_path) == 200   # Streamlit's own default


def _get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _put(url: str, size: int):
    req = urllib.request.Request(url, data=b"x" * size, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _wait(proc: subprocess.Popen, url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"space/front.py exited with {proc.returncode}"
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no answer on {url} within {timeout_s:.0f} s")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.fixture
def served(tmp_path):
    port, st_port = _free_port(), _free_port()
    env = {**os.environ, "PORT": str(port), "CNNLAB_STREAMLIT_PORT": str(st_port),
           "CNNLAB_FRONT_DIR": str(tmp_path / "front"), "CNNLAB_CHECKPOINTS": str(tmp_path / "runs"),
           "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(tmp_path / "front.log", "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "space" / "front.py")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(proc, f"http://127.0.0.1:{port}/_stcore/health")
        yield proc, port, st_port, tmp_path / "front.log"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_static_from_nginx_rest_from_streamlit_and_clean_stop(served):
    proc, port, st_port, log = served
    base = f"http://127.0.0.1:{port}"
    status, headers, page = _get(base + "/")
    assert status == 200 and b"<html" in page.lower()
    assert _get(base + "/_stcore/health")[2].strip() == b"ok"
    bundle = re.search(rb'src="\./(static/js/[^"]+\.js)"', page).group(1).decode()
    status, headers, body = _get(f"{base}/{bundle}")
    assert status == 200 and headers.get("Server", "").startswith("nginx")
    assert "immutable" in headers.get("Cache-Control", "")
    assert body == (front.streamlit_static_dir() / bundle).read_bytes()
    # a missing bundle is nginx's 404, not the app's index.html (Streamlit's SPA fallback)
    status, _, body = _get(f"{base}/static/js/no-such-bundle.js")
    assert status == 404 and b"<div id=\"root\"" not in body
    # a multipage URL still reaches Streamlit (its index.html, for the app's router)
    status, _, body = _get(base + "/Train")
    assert status == 200 and b'<div id="root"' in body
    # nginx lets an upload just over the app's 5 MB through to Streamlit, which answers it; 2 MB more is
    # refused by nginx before it buffers it
    nginx_413 = b"<center>nginx</center>"
    status, _, body = _put(base + "/_stcore/upload_file/no-session/no-file", 5 * 2**20 + 10)
    assert not (status == 413 and nginx_413 in body), status
    status, _, body = _put(base + "/_stcore/upload_file/no-session/no-file", 7 * 2**20)
    assert status == 413 and nginx_413 in body
    kids = _children(proc.pid)
    assert len(kids) == 2  # streamlit and nginx's master
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()[-2000:]
    time.sleep(0.5)
    alive = [k for k in kids if os.path.exists(f"/proc/{k}") and
             Path(f"/proc/{k}/stat").read_text().split(") ")[1][0] != "Z"]
    assert not alive, f"left running after SIGTERM: {alive}"


def test_streamlit_dying_stops_the_front(served):
    proc, port, st_port, log = served
    kids = _children(proc.pid)
    st = [k for k in kids if b"-m\0streamlit\0" in Path(f"/proc/{k}/cmdline").read_bytes()]
    assert len(st) == 1
    os.kill(st[0], signal.SIGKILL)
    rc = proc.wait(30)
    assert rc != 0, "the front must fail when Streamlit dies, so that the container stops"
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/_stcore/health")


def test_the_clients_scheme_and_host_pass_through_a_proxy_in_front(tmp_path):
    """#22 §3: HF's proxy says https; the front sent `X-Forwarded-Proto $scheme` (http) to Streamlit."""
    import http.server
    import json
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    port = _free_port()
    conf = front.write_conf(tmp_path, listen_port=port, streamlit_port=echo.server_address[1],
                            static_dir=front.streamlit_static_dir())
    nginx = front.start_nginx(conf)
    try:
        wait_port(port)

        def seen(headers: dict) -> dict:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/training", headers=headers)
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())

        behind = seen({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "teacher-cnnlab.hf.space"})
        assert behind["x-forwarded-proto"] == "https" and behind["x-forwarded-host"] == "teacher-cnnlab.hf.space"
        direct = seen({})
        assert direct["x-forwarded-proto"] == "http" and direct["x-forwarded-host"] == f"127.0.0.1:{port}"
    finally:
        nginx.terminate()
        nginx.wait(10)
        echo.shutdown()
