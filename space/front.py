"""The Space's front: nginx serves Streamlit's static files and passes everything else to Streamlit.

A class opening the app at once asks for ~144 static files per student (the frontend's JS/CSS/fonts).
Streamlit's Python server spends ~0.35 s of CPU per student on them, on the same cores that run the
students' scripts; nginx serves them from disk for almost nothing. So the Space image runs

    nginx on $PORT  ──  /static/*          → files from streamlit/static/static (precompressed .gz when present)
                    └─  everything else   → Streamlit on 127.0.0.1:$CNNLAB_STREAMLIT_PORT (HTTP and WebSocket)

`python3 space/front.py` starts both (Streamlit first, nginx once Streamlit answers its health check), stops
both on SIGTERM, and exits when either exits, so the container stops instead of serving half an app.
`CNNLAB_FRONT=none` (or no nginx installed) runs Streamlit alone on $PORT, as before.

`nginx_conf()` is also what `bench/load_test.py` runs in front of its server, so the load test measures the
configuration the Space ships. Only the standard library is imported here.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 7860
DEFAULT_STREAMLIT_PORT = 8501
# One year, as Streamlit itself sends for its content-hashed bundles.
STATIC_MAX_AGE_S = 365 * 24 * 3600


def streamlit_static_dir() -> Path:
    """The folder Streamlit serves `/` from (index.html, and the bundles under static/), found without
    importing streamlit (its import takes a second)."""
    spec = importlib.util.find_spec("streamlit")
    if spec is None or not spec.origin:
        raise RuntimeError("streamlit is not installed in this Python")
    return Path(spec.origin).parent / "static"


def max_upload_mb(app_dir: Path = APP_DIR) -> int:
    """`server.maxUploadSize` from the app's .streamlit/config.toml (Streamlit's default 200 when unset)."""
    import tomllib
    try:
        cfg = tomllib.loads((app_dir / ".streamlit" / "config.toml").read_text())
        return int(cfg.get("server", {}).get("maxUploadSize", 200))
    except (OSError, ValueError, TypeError):
        return 200


def nginx_conf(*, listen_port: int, streamlit_port: int, static_dir: Path, run_dir: Path,
               listen_host: str = "0.0.0.0", max_body_mb: int = 200) -> str:
    """nginx.conf for the front. `run_dir` holds the pid file and nginx's temp folders (it must be writable
    by the user nginx runs as: uid 1000 in the Space). nginx runs in the foreground, logs errors to stderr
    and keeps no access log."""
    bundles = Path(static_dir) / "static"
    run = Path(run_dir)
    temp = "\n".join(f"    {kind}_temp_path {run / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""# Written by space/front.py; see its docstring.
daemon off;
worker_processes 1;
pid {run / 'nginx.pid'};
error_log stderr warn;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
{temp}
    # Streamlit refuses larger uploads itself (server.maxUploadSize); nginx lets them reach it, one MB over.
    client_max_body_size {max_body_mb + 1}m;

    # WebSocket upgrade for /_stcore/stream; an empty Connection header otherwise, so that the connections
    # to Streamlit are kept alive between requests.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    # HF's own proxy in front of the Space already says the client's scheme (https) and host: pass them
    # through; only a request without them gets this server's own ($scheme was http for every HF visitor).
    map $http_x_forwarded_proto $forwarded_proto {{
        default $http_x_forwarded_proto;
        ''      $scheme;
    }}
    map $http_x_forwarded_host $forwarded_host {{
        default $http_x_forwarded_host;
        ''      $http_host;
    }}

    upstream streamlit {{
        server 127.0.0.1:{streamlit_port};
        keepalive 16;
    }}

    server {{
        listen {listen_host}:{listen_port};

        # The frontend's content-hashed bundles, straight from disk.
        location /static/ {{
            alias {bundles}/;
            gzip_static on;
            add_header Cache-Control "public, immutable, max-age={STATIC_MAX_AGE_S}";
        }}

        location / {{
            proxy_pass http://streamlit;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $forwarded_proto;
            proxy_set_header X-Forwarded-Host $forwarded_host;
            # A student's WebSocket stays open for the whole lesson.
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
            proxy_buffering off;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def write_conf(run_dir: Path, **kw) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "nginx.conf"
    path.write_text(nginx_conf(run_dir=run_dir, **kw))
    return path


def start_nginx(conf: Path, **popen_kw) -> subprocess.Popen:
    """Start nginx on `conf` (after `nginx -t` says it is valid); raises RuntimeError with nginx's own words."""
    nginx = find_nginx()
    if nginx is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    # -e: the error log before the config is read (nginx would otherwise open /var/log/nginx/error.log).
    base = [nginx, "-e", "stderr", "-c", str(conf)]
    check = subprocess.run(base + ["-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejected {conf}: {(check.stderr or check.stdout).strip()}")
    return subprocess.Popen(base, **popen_kw)


def wait_health(base: str, timeout_s: float, alive=lambda: True) -> bool:
    """True once `base`/_stcore/health answers "ok"; False after `timeout_s` or as soon as `alive()` is false."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--print-conf", action="store_true", help="print the nginx.conf it would use and exit")
    args, streamlit_args = ap.parse_known_args(argv)
    port = int(os.environ.get("PORT", DEFAULT_PORT))
    st_port = int(os.environ.get("CNNLAB_STREAMLIT_PORT", DEFAULT_STREAMLIT_PORT))
    run_dir = Path(os.environ.get("CNNLAB_FRONT_DIR", f"/tmp/cnnlab-front-{os.getuid()}"))
    conf_kw = dict(listen_port=port, streamlit_port=st_port, static_dir=streamlit_static_dir(),
                   max_body_mb=max_upload_mb())
    if args.print_conf:
        print(nginx_conf(run_dir=run_dir, **conf_kw), end="")
        return 0

    use_front = os.environ.get("CNNLAB_FRONT", "nginx") != "none"
    if use_front and find_nginx() is None:
        print("[front] nginx not found: Streamlit serves everything itself", file=sys.stderr, flush=True)
        use_front = False
    st_cmd = [sys.executable, "-m", "streamlit", "run", str(APP_DIR / "app.py"),
              "--server.port", str(st_port if use_front else port),
              "--server.address", "127.0.0.1" if use_front else "0.0.0.0", *streamlit_args]
    if not use_front:
        os.chdir(APP_DIR)
        os.execv(sys.executable, st_cmd)

    procs: list[subprocess.Popen] = []
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if signum is None else signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    streamlit = subprocess.Popen(st_cmd, cwd=APP_DIR)
    procs.append(streamlit)
    if not wait_health(f"http://127.0.0.1:{st_port}", 300, lambda: streamlit.poll() is None and not stopping):
        stop()
        return streamlit.wait() or 1
    try:
        conf = write_conf(run_dir, **conf_kw)
        procs.append(start_nginx(conf))
    except (OSError, RuntimeError) as e:
        print(f"[front] {e}", file=sys.stderr, flush=True)
        stop()
        streamlit.wait()
        return 1
    print(f"[front] nginx on :{port} → Streamlit on 127.0.0.1:{st_port}; static files from "
          f"{conf_kw['static_dir']}", file=sys.stderr, flush=True)
    # Whichever ends first ends the other: the container stops rather than serving half an app.
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    first = next(p for p in procs if p.poll() is not None)
    stop()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return 0 if stopping and first.returncode in (0, -signal.SIGTERM) else (first.returncode or 1)


if __name__ == "__main__":
    sys.exit(main())
