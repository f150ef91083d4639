"""Load test of a class: N headless Chromium sessions against one `streamlit run app.py` on loopback.

Every session opens the app on the Architecture page, changes a knob a few times (measuring the time from
the input to the new numbers in the cost ledger), and visits every page through the sidebar (measuring each
page's load). The first R sessions also start a tiny LeNet run on the Train page and, at the end, wait for it
to end. Meanwhile the server process and its children (training workers) are sampled from /proc.

    .venv/bin/python bench/load_test.py --sessions 30 --runs 4 --markdown load.md --assert

With --chromium-sessions K only the first K sessions are real Chromium tabs; the others speak Streamlit's
WebSocket protocol directly (bench/st_wire.py): the same script, the same requests, the same static files a
real Chromium fetched, but nothing drawn. On a 2-core machine thirty Chromium renderers use the cores the
server under test needs (in a class, each runs on its student's own machine); protocol sessions load the
server the same way at a fraction of the CPU. Their knob→ledger latency is the time to the first WebSocket
frame with a changed ledger element (the server's share); the Chromium sessions' is the DOM's (drawing
included, on this machine's cores). The table gives both, per kind.

The app is served as the Space image serves it (--front nginx, the default): nginx in front (space/front.py)
serving the static files, Streamlit behind it. And the machine is split (unless --no-split): the server side
(Streamlit, its training workers, nginx) on the first half of the CPUs, the class on the other half, since in
a class the browsers are on the students' machines; see split_cpus() for why lowering the browsers' priority
is not enough. On this 2-core machine the server side gets one core, half of what a 2-vCPU Space gives it.

Bounded: at most 40 sessions, every wait has a timeout, the whole test stops by itself after --max-seconds
and cleans up (browsers, the server and its process group, the temporary run folder).

Counted as an error: an exception box, Streamlit's "page not found" dialog, a page or knob change that does
not finish within --step-timeout, an HTTP status >= 400, a failed request, a WebSocket that errors or closes
while its session is still working, a traceback in the server's log. A refusal to start a run shown as a
plain sentence (e.g. a full queue) is not an error; it is counted as refused.

A run is *lost* when a session started it (Start clicked, no refusal shown) and by the end of the test it
neither shows as finished or stopped on that session's Train page nor has a folder with a final status
(finished / stopped) in CNNLAB_CHECKPOINTS (matched by its seed, unique per session). A run the test had to
stop at its deadline is counted as "stopped by the test", not lost, when it shows as stopped or has a folder.

Exit status: 0, or 1 with --assert when a goal is missed (errors, lost runs, p95 knob→ledger, server RSS),
2 for bad arguments or when the server or the browser cannot start.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "bench") not in sys.path:   # st_wire.py, the protocol client, lives beside this file
    sys.path.insert(0, str(ROOT / "bench"))
if str(ROOT) not in sys.path:   # space/front.py: the Space's nginx front, run here as the Space runs it
    sys.path.insert(0, str(ROOT))
from space import front  # noqa: E402

FRONTS = ("nginx", "none")
CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows", "--mute-audio"]
MAX_SESSIONS = 40
MAX_RUNS = 8

# The pages, by their url paths (cnnlab/ui/shell.py); the first one lives at "/". Each has a marker that
# shows it has drawn (a stable widget key where the page has one).
PAGES = (("explore", ".st-key-arch_cost"), ("training", ".st-key-train_start"),
         ("batch-norm", ".st-key-bn_demo_channels"), ("saved-runs", None))
# Knobs whose every change moves the cost ledger: (arch, widget key, how to change it).
KNOBS = (("vgg", "arch_k_vgg_ratio", "slider"), ("googlenet", "arch_k_googlenet_ratio", "slider"),
         ("resnet", "arch_k_resnet_residual", "toggle"), ("densenet", "arch_k_densenet_growth_rate", "slider"))

# Counts the app's finished script runs (data-test-script-state leaving "running"), so a step can wait for the
# rerun its own input caused instead of mistaking the quiet moment before that rerun for its end.
INIT_JS = """(() => {
  window.__cnnlabRunsDone = 0;
  new MutationObserver(ms => { for (const m of ms) {
      if (m.oldValue === 'running' && m.target.getAttribute('data-test-script-state') !== 'running')
        window.__cnnlabRunsDone++; } })
    .observe(document, {attributes: true, subtree: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state']});
})();"""
JS_RUNS_DONE = "() => window.__cnnlabRunsDone || 0"
JS_TITLE = "() => { const h = document.querySelector('h1'); return h ? h.innerText.trim() : null; }"
JS_STATE = """() => { const a = document.querySelector('[data-testid="stApp"]');
    return [a ? a.getAttribute('data-test-script-state') : null,
            document.querySelectorAll('[data-testid="stSkeleton"]').length > 0]; }"""
JS_TEXT_CHANGED = """([sel, old]) => { const e = document.querySelector(sel);
    return !!e && e.innerText.trim() !== '' && e.innerText !== old; }"""
# A run's end as its session's Train page shows it: the Stop button disabled and a success / warning box.
JS_RUN_END = """() => { const b = document.querySelector('.st-key-train_stop button');
    if (b && !b.disabled) return null;
    const ok = document.querySelector('[data-testid="stAlertContentSuccess"]');
    if (ok) return ['finished', ok.innerText];
    const w = document.querySelector('[data-testid="stAlertContentWarning"]');
    if (w) return ['stopped', w.innerText];
    const e = document.querySelector('[data-testid="stAlertContentError"]');
    if (e) return ['failed', e.innerText];
    return null; }"""
# Boxes a refusal to start a run may use (an error or a warning sentence), counted before and after Start.
JS_ALERTS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stAlertContentError"], [data-testid="stAlertContentWarning"]')).map(e => e.innerText.trim())"""
JS_RUN_ACTIVE = """() => { const b = document.querySelector('.st-key-train_stop button'); return !!b && !b.disabled; }"""


class Stuck(Exception):
    """A page did not get where it should within the step timeout."""


# -- measuring the server -----------------------------------------------------------------

def _read_stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, session id, utime+stime in seconds) from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()  # fields after "(comm)": state is rest[0] (field 3)
    return int(rest[1]), int(rest[3]), (int(rest[11]) + int(rest[12])) / _CLK_TCK


def _read_rss(pid: int) -> int:
    """VmRSS of a process in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcSampler(threading.Thread):
    """Samples the server's RSS and CPU time, and its workers', every `every` s. Workers are the processes
    descended from the server or in its session (the server leads a session of its own, so a worker that
    was re-parented to init still counts)."""

    def __init__(self, pid: int, every: float = 0.5, exclude_sids: tuple[int, ...] = (), by_session: bool = True):
        super().__init__(daemon=True, name="proc-sampler")
        self.pid, self.every = pid, every
        self.exclude_sids, self.by_session = set(exclude_sids), by_session
        self.stop_event = threading.Event()
        self.server_rss_peak = 0
        self.server_cpu0: float | None = None
        self.server_cpu_last = 0.0
        self.workers_rss_peak = 0          # the sum over live descendants, at its highest
        self.worker_rss_peak_one = 0       # the largest single descendant
        self.worker_cpu: dict[int, float] = {}  # last seen CPU seconds per descendant
        self.worker_pids: set[int] = set()
        self.samples = 0

    def _workers(self) -> set[int]:
        children: dict[int, list[int]] = {}
        out: set[int] = set()
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _read_stat(int(name))
                if st is not None and st[1] not in self.exclude_sids:
                    children.setdefault(st[0], []).append(int(name))
                    if self.by_session and st[1] == self.pid:
                        out.add(int(name))
        todo = [self.pid]
        while todo:
            for c in children.get(todo.pop(), []):
                out.add(c)
                todo.append(c)
        out.discard(self.pid)
        return out

    def sample(self) -> None:
        st = _read_stat(self.pid)
        if st is None:
            return
        self.samples += 1
        if self.server_cpu0 is None:
            self.server_cpu0 = st[2]
        self.server_cpu_last = st[2]
        self.server_rss_peak = max(self.server_rss_peak, _read_rss(self.pid))
        total = 0
        for pid in self._workers():
            wst = _read_stat(pid)
            if wst is None:
                continue
            rss = _read_rss(pid)
            total += rss
            self.worker_rss_peak_one = max(self.worker_rss_peak_one, rss)
            self.worker_cpu[pid] = wst[2]
            self.worker_pids.add(pid)
        self.workers_rss_peak = max(self.workers_rss_peak, total)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.every)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)
        self.sample()

    @property
    def server_cpu_s(self) -> float:
        return self.server_cpu_last - (self.server_cpu0 or 0.0)

    @property
    def workers_cpu_s(self) -> float:
        return sum(self.worker_cpu.values())


# -- the server ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on loopback in its own process group, runs saved under `ckpt_dir`.

    With `front="nginx"` it is served as the Space image serves it (space/front.py): nginx on `port` serves
    the static files and passes the rest to Streamlit on a port of its own. nginx runs in a session of its
    own too, so its CPU and memory are measured apart (`front_proc`)."""

    def __init__(self, workdir: Path, port: int | None = None, app_dir: Path = ROOT, front: str = "none",
                 cpus: set[int] | None = None):
        if front not in FRONTS:
            raise ValueError(f"front must be one of {', '.join(FRONTS)}, got {front!r}")
        self.app_dir = Path(app_dir)
        self.front = front
        self.cpus = cpus    # the CPUs the server, its workers and nginx may use (None: all)
        self.port = port or free_port()
        self.st_port = free_port() if front == "nginx" else self.port
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.ckpt_dir = workdir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "streamlit.log"
        self.front_log_path = workdir / "nginx.log"
        self.proc: subprocess.Popen | None = None
        self.front_proc: subprocess.Popen | None = None
        self.log_offset_at_end: int | None = None

    def start(self, timeout_s: float = 90) -> None:
        env = {**os.environ, "CNNLAB_CHECKPOINTS": str(self.ckpt_dir), "PYTHONPATH": str(self.app_dir),
               "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.st_port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
             "false", "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
            cwd=self.app_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=self._pin)
        log.close()
        deadline = time.monotonic() + timeout_s
        self._wait_health(f"http://127.0.0.1:{self.st_port}", self.proc, deadline, "streamlit", timeout_s)
        if self.front == "nginx":
            conf = front.write_conf(self.workdir / "front", listen_port=self.port, listen_host="127.0.0.1",
                                    streamlit_port=self.st_port, static_dir=front.streamlit_static_dir(),
                                    max_body_mb=front.max_upload_mb(self.app_dir))
            with open(self.front_log_path, "wb") as flog:
                self.front_proc = front.start_nginx(conf, stdout=flog, stderr=subprocess.STDOUT,
                                                    start_new_session=True, preexec_fn=self._pin)
            self._wait_health(self.base, self.front_proc, deadline, "nginx", timeout_s)

    def _pin(self) -> None:
        """In the child before exec: its CPUs, inherited by every thread and process it starts."""
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def _wait_health(self, base: str, proc: subprocess.Popen, deadline: float, what: str, timeout_s: float):
        if not front.wait_health(base, deadline - time.monotonic(), lambda: proc.poll() is None):
            log = self.log_tail() if what == "streamlit" else self.front_log_tail()
            raise RuntimeError(f"{what} did not start within {timeout_s:.0f} s:\n{log}")

    def front_log_tail(self, n: int = 3000) -> str:
        try:
            return self.front_log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 3000) -> str:
        return self.log_text()[-n:]

    def mark_end(self) -> None:
        """Tracebacks after this point (the teardown closing sockets) are not counted."""
        self.log_offset_at_end = len(self.log_text())

    def tracebacks(self) -> list[str]:
        text = self.log_text()
        if self.log_offset_at_end is not None:
            text = text[:self.log_offset_at_end]
        out, pos = [], 0
        while (i := text.find("Traceback (most recent call last)", pos)) >= 0:
            end = text.find("\n\n", i)
            chunk = text[i:end if end > 0 else i + 3000]
            out.append(chunk.strip().splitlines()[-1][:300] if chunk.strip() else "Traceback")
            pos = i + 10
        return out

    def stop(self) -> None:
        if self.front_proc is not None and self.front_proc.poll() is None:
            self.front_proc.terminate()     # nginx's fast shutdown; its workers leave with it
            try:
                self.front_proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.front_proc.pid, signal.SIGKILL)
                self.front_proc.wait()
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the server leads its own group (its workers are in it)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # workers that outlived the server (same group)
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def final_runs(ckpt_dir: Path) -> dict[int, str]:
    """{seed: status} for the run folders under ckpt_dir with a final status (finished / stopped / failed)."""
    out: dict[int, str] = {}
    if not ckpt_dir.is_dir():
        return out
    for cfg_path in ckpt_dir.glob("*/config.json"):
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError):
            continue
        seed = None
        for part in (cfg, cfg.get("train") or {}, cfg.get("config") or {}):
            if isinstance(part, dict) and isinstance(part.get("seed"), int):
                seed = part["seed"]
                break
        status = cfg.get("status")
        if seed is not None and status in ("finished", "stopped", "failed"):
            if out.get(seed) != "finished":
                out[seed] = status
    return out


# -- one session --------------------------------------------------------------------------

@dataclass
class Session:
    index: int
    runner: bool
    seed: int
    kind: str = "chromium"     # "chromium": a real headless browser; "wire": Streamlit's protocol (st_wire.py)
    page_loads: list[float] = field(default_factory=list)
    page_load_by: dict = field(default_factory=dict)  # url path → [seconds, ...]
    knob_latencies: list[float] = field(default_factory=list)
    wire_latencies: list[float] = field(default_factory=list)  # the knob's message sent → the ledger's reply
    wire_missing: int = 0      # knob changes whose reply frame could not be matched
    frames_in: list = field(default_factory=list)   # (monotonic time, payload) of WebSocket frames received
    frames_out: list = field(default_factory=list)  # monotonic times of WebSocket frames sent
    errors: list[str] = field(default_factory=list)
    console_errors: int = 0
    console_kinds: set = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # odd but not failures (e.g. settings that reverted)
    run_started: bool = False
    run_refused: str = ""
    run_end: str = ""          # finished / stopped / failed, as the page showed it
    run_end_text: str = ""
    run_stopped_by_test: bool = False
    finished: bool = False     # went through its whole script
    closing: bool = False      # the test is closing it: socket closes are expected

    def error(self, where: str, what: str) -> None:
        self.errors.append(f"session {self.index} · {where}: {what}"[:500])

    def page_load(self, where: str, seconds: float) -> None:
        self.page_loads.append(seconds)
        self.page_load_by.setdefault(where, []).append(seconds)


@dataclass
class Config:
    sessions: int = 6
    runs: int = 2
    max_seconds: float = 300
    knob_changes: int = 3
    rounds: int = 1
    browsers: int = 0               # 0: one per 12 sessions
    ramp_seconds: float = -1        # <0: 0.3 s per session
    think_seconds: float = 0.5
    step_timeout: float = 60
    run_train_size: int = 2000
    run_test_size: int = 500
    run_epochs: int = 1
    seed: int = 0
    port: int | None = None
    chromium: str = CHROMIUM
    keep: bool = False
    verbose: bool = False
    warmup: bool = True
    artifacts: str | None = None    # screenshots of stuck sessions go here
    app_dir: str | None = None      # the checkout whose app.py is served (default: this one)
    static_via_driver: bool = True  # static files through playwright's HTTP client (see Driver._static)
    browser_nice: int = 19          # the Chromiums run this much below the server's priority (0: the same)
    chromium_sessions: int = -1     # sessions in a real Chromium; the rest speak the protocol (-1: all Chromium)
    front: str = "nginx"            # "nginx": served as the Space serves it (space/front.py); "none": Streamlit alone
    split: bool = True              # the server side and the class on separate CPUs (see split_cpus)


class Driver:
    """The playwright side: one coroutine per session, all in one event loop, spread over a few browsers."""

    def __init__(self, cfg: Config, base: str, deadline: float):
        self.cfg, self.base, self.deadline = cfg, base, deadline
        self.log_lock = threading.Lock()
        self.static_paths: list[str] = []

    def log(self, msg: str) -> None:
        if self.cfg.verbose:
            with self.log_lock:
                print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def timeout(self) -> float:
        """This step's timeout in seconds: the step timeout, or less when the deadline is nearer."""
        return max(1.0, min(self.cfg.step_timeout, self.left()))

    async def think(self, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * self.cfg.think_seconds)

    async def idle(self, page, where: str, settle_s: float = 0.3) -> float:
        """Wait until the app's script is not running (and nothing is a skeleton) for `settle_s`;
        returns the monotonic time at which that quiet stretch began."""
        limit = time.monotonic() + self.timeout()
        since = None
        while time.monotonic() < limit:
            state, busy = await page.evaluate(JS_STATE)
            if state and state != "running" and not busy:
                since = since or time.monotonic()
                if time.monotonic() - since >= settle_s:
                    return since
            else:
                since = None
            await asyncio.sleep(0.08)
        raise Stuck(f"{where}: the app was still running after {self.timeout():.0f} s")

    async def rerun_done(self, page, n0: int, where: str, grace_s: float = 2.0) -> float:
        """After an input: wait (at most `grace_s`) for a script run to end after the count `n0` was taken, then
        for the app to be quiet; returns when the quiet stretch began. A fast rerun may never show as "running"
        in the DOM (React batches it away), hence the grace instead of an error."""
        try:
            await page.wait_for_function(f"() => (window.__cnnlabRunsDone || 0) > {int(n0)}",
                                         timeout=grace_s * 1000, polling=40)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: a quick rerun, or one not started yet
            pass
        return await self.idle(page, where)

    async def check(self, page, s: Session, where: str) -> None:
        found = await page.evaluate("""() => {
            const x = document.querySelector('[data-testid="stException"]');
            if (x) return 'exception: ' + x.innerText.slice(0, 300);
            const d = document.querySelector('[data-testid="stDialog"]');
            if (d) return 'dialog: ' + d.innerText.slice(0, 200);
            return null; }""")
        if found:
            s.error(where, found.replace("\n", " "))

    async def open_app(self, page, s: Session, arch: str) -> None:
        t0 = time.monotonic()
        await page.goto(f"{self.base}/?arch={arch}", timeout=self.timeout() * 1000, wait_until="domcontentloaded")
        await page.wait_for_selector(PAGES[0][1], timeout=self.timeout() * 1000)
        t1 = await self.idle(page, "open the app", settle_s=0.6)
        s.page_load("open", t1 - t0)
        await self.check(page, s, "open the app")

    async def nav(self, page, s: Session, url_path: str) -> None:
        """Click the page's sidebar link (the same session, like a person would) and time its load."""
        marker = dict(PAGES)[url_path]
        links = page.locator('[data-testid="stSidebarNav"] a')
        await links.first.wait_for(timeout=self.timeout() * 1000)
        hrefs = await links.evaluate_all("els => els.map(e => new URL(e.href).pathname.replace(/^\\/+|\\/+$/g, ''))")
        want = {url_path} | ({""} if url_path == PAGES[0][0] else set())
        idx = next((i for i, h in enumerate(hrefs) if h in want), None)
        if idx is None:
            raise Stuck(f"no sidebar link to /{url_path} (links: {hrefs})")
        old_title = await page.evaluate(JS_TITLE)
        t0 = time.monotonic()
        await links.nth(idx).click(timeout=self.timeout() * 1000)
        try:
            await page.wait_for_function(
                "([want]) => want.includes(location.pathname.replace(/^\\/+|\\/+$/g, ''))", arg=[sorted(want)],
                timeout=self.timeout() * 1000, polling=50)
            # every page has its own title: the new page has drawn once the h1 is another one
            await page.wait_for_function(f"([old]) => {{ const t = ({JS_TITLE})(); return !!t && t !== old; }}",
                                         arg=[old_title], timeout=self.timeout() * 1000, polling=50)
            if marker:
                await page.wait_for_selector(marker, timeout=self.timeout() * 1000)
        except Exception as e:  # noqa: BLE001 - playwright's TimeoutError
            raise Stuck(f"page /{url_path} did not draw within {self.timeout():.0f} s ({type(e).__name__}; "
                        f"title {await page.evaluate(JS_TITLE)!r}, url {page.url})") from None
        t1 = await self.idle(page, f"page /{url_path}")
        s.page_load(url_path, t1 - t0)
        self.log(f"session {s.index}: /{url_path} in {t1 - t0:.2f} s")
        await self.check(page, s, f"page /{url_path}")

    async def change_knob(self, page, s: Session, key: str, how: str, step: int) -> None:
        """Change one knob and time the input → new text in the cost ledger."""
        ledger = page.locator(".st-key-arch_cost")
        old = await ledger.inner_text(timeout=self.timeout() * 1000)
        if how == "slider":
            thumb = page.locator(f'.st-key-{key} [role="slider"], .st-key-{key} input[type="range"]').first
            await thumb.focus(timeout=self.timeout() * 1000)
            t0 = time.monotonic()
            await thumb.press("ArrowRight")
        else:
            target = page.locator(f".st-key-{key} label").first
            await target.wait_for(timeout=self.timeout() * 1000)
            t0 = time.monotonic()
            await target.click()
        try:
            await page.wait_for_function(JS_TEXT_CHANGED, arg=[".st-key-arch_cost", old],
                                         timeout=self.timeout() * 1000, polling=40)
        except Exception as e:  # noqa: BLE001 - playwright's TimeoutError
            raise Stuck(f"knob {key} change {step}: the cost ledger did not change ({type(e).__name__})") from None
        s.knob_latencies.append(time.monotonic() - t0)
        self.match_wire(s, t0, old, await ledger.inner_text(timeout=self.timeout() * 1000))
        await self.idle(page, f"knob {key} change {step}")
        await self.check(page, s, f"knob {key} change {step}")

    @staticmethod
    def match_wire(s: Session, t0: float, old: str, new: str) -> None:
        """The server's share of a knob change, as the browser's network layer saw it: from the first WebSocket
        frame sent after the input (the rerun request) to the first frame received that carries a line of the
        new ledger (a figure that was not there before). It leaves out the page's own JavaScript and drawing,
        which on a machine that also runs 30 browsers is most of the DOM latency."""
        old_lines = set(old.splitlines())
        tokens = [ln.strip() for ln in new.splitlines()
                  if ln.strip() not in old_lines and any(c.isdigit() for c in ln) and len(ln.strip()) >= 3]
        sent = next((t for t in s.frames_out if t >= t0), None)
        if sent is None or not tokens:
            s.wire_missing += 1
            return
        needles = [tok.encode() for tok in tokens]
        for t, payload in s.frames_in:
            if t < sent:
                continue
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            if any(n in data for n in needles):
                s.wire_latencies.append(t - sent)
                break
        else:
            s.wire_missing += 1
        s.frames_in.clear()
        s.frames_out.clear()

    async def set_number(self, page, key: str, value: int) -> None:
        box = page.locator(f".st-key-{key} input")
        n0 = await page.evaluate(JS_RUNS_DONE)
        await box.fill(str(value), timeout=self.timeout() * 1000)
        await box.press("Enter")
        await self.rerun_done(page, n0, f"train setting {key}")

    def run_settings(self, s: Session) -> dict[str, int]:
        """The Train page's inputs (widget keys) for this session's tiny run; its seed finds its folder later."""
        return {"train_n_train": self.cfg.run_train_size, "train_n_test": self.cfg.run_test_size,
                "train_epochs": self.cfg.run_epochs, "train_seed": s.seed}

    async def start_run(self, page, s: Session) -> None:
        """On the Train page: a tiny LeNet run with this session's seed; Start; a refusal is noted, not an error."""
        want = self.run_settings(s)
        for attempt in range(3):
            for key, value in want.items():
                if await page.locator(f".st-key-{key} input").count() == 0:
                    raise Stuck(f"the Train page has no {key} input")
                await self.set_number(page, key, value)
            shown = {k: await page.locator(f".st-key-{k} input").input_value() for k in want}
            wrong = {k: v for k, v in shown.items() if v.replace(",", "") != str(want[k])}
            if not wrong:
                break
            s.notes.append(f"train settings reverted after they were set (attempt {attempt + 1}): {wrong}")
        else:
            raise Stuck(f"the Train settings would not stay: {wrong}")
        before = await page.evaluate(JS_ALERTS)
        n0 = await page.evaluate(JS_RUNS_DONE)
        await page.locator(".st-key-train_start button").click(timeout=self.timeout() * 1000)
        await self.rerun_done(page, n0, "start a run")
        await self.check(page, s, "start a run")
        new_boxes = [t for t in await page.evaluate(JS_ALERTS) if t not in before]
        if new_boxes:
            s.run_refused = new_boxes[-1][:200]
            self.log(f"session {s.index}: run refused: {s.run_refused}")
            return
        s.run_started = True  # Start clicked and no refusal shown
        limit = time.monotonic() + min(10.0, self.timeout())
        while time.monotonic() < limit:  # the run panel shows it as queued / training, or already ended
            if await page.evaluate(JS_RUN_ACTIVE) or await page.evaluate(JS_RUN_END):
                break
            await asyncio.sleep(0.2)
        else:
            s.notes.append("after Start the Train page showed neither a refusal nor an active run for 10 s")
        self.log(f"session {s.index}: run started (seed {s.seed})")

    async def wait_run_end(self, page, s: Session, stop_at: float) -> None:
        """On the Train page: wait for this session's run to end; at `stop_at` press Stop and wait for it."""
        while True:
            end = await page.evaluate(JS_RUN_END)
            if end:
                s.run_end, s.run_end_text = end[0], end[1].strip()[:200]
                return
            if time.monotonic() >= stop_at and not s.run_stopped_by_test:
                stop = page.locator(".st-key-train_stop button")
                if await stop.count() and await stop.first.is_enabled():
                    s.run_stopped_by_test = True
                    self.log(f"session {s.index}: stopping its run at the deadline")
                    await stop.first.click(timeout=self.timeout() * 1000)
            if time.monotonic() >= stop_at + 30 or self.left() < 2:
                return
            await asyncio.sleep(0.5)

    async def session(self, browser, s: Session, start_delay: float) -> None:
        rng = random.Random(self.cfg.seed * 1000 + s.index)
        arch, key, how = KNOBS[s.index % len(KNOBS)]
        await asyncio.sleep(start_delay)
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = None
        try:
            await self.route_context(ctx)
            await ctx.add_init_script(INIT_JS)
            page = await ctx.new_page()
            page.set_default_timeout(self.cfg.step_timeout * 1000)
            self._watch(page, s)
            await self.open_app(page, s, arch)
            for r in range(self.cfg.rounds):
                for j in range(self.cfg.knob_changes):
                    await self.think(rng)
                    await self.change_knob(page, s, key, how, r * self.cfg.knob_changes + j + 1)
                for url_path, _ in PAGES[1:] + PAGES[:1]:
                    await self.think(rng)
                    await self.nav(page, s, url_path)
                    if url_path == "training" and s.runner and r == 0:
                        await self.start_run(page, s)
            if s.run_started:
                await self.nav(page, s, "training")
                # leave time to stop the run and see it stopped before the deadline
                await self.wait_run_end(page, s, stop_at=self.deadline - 40)
            await self.check(page, s, "end")
            s.finished = True
        except Stuck as e:
            s.error("stuck", str(e))
            await self.snapshot(page, s, "stuck")
        except asyncio.CancelledError:
            s.error("deadline", "the session had not finished when the test's time was up")
            raise
        except Exception as e:  # noqa: BLE001 - playwright errors (timeouts, closed pages)
            s.error("browser", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            await self.snapshot(page, s, "browser-error")
        finally:
            s.closing = True

    async def snapshot(self, page, s: Session, what: str) -> None:
        if not self.cfg.artifacts or page is None:
            return
        try:
            Path(self.cfg.artifacts).mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(Path(self.cfg.artifacts) / f"session{s.index:02d}-{what}.png"),
                                  full_page=True, timeout=15_000)
        except Exception:  # noqa: BLE001 - best effort
            pass

    async def _static(self, route) -> None:
        """Streamlit's JavaScript and CSS, fetched by playwright's own HTTP client instead of Chromium's: on a
        machine whose network interfaces change (Docker, VPN), Chromium aborts every request in flight with
        ERR_NETWORK_CHANGED, even on loopback, and the page's widgets stay skeletons. Same bytes, same server."""
        for attempt in range(3):
            try:
                resp = await route.fetch(timeout=self.timeout() * 1000)
                await route.fulfill(response=resp)
                return
            except Exception:  # noqa: BLE001 - retried; the page then waits and fails as stuck if it must
                await asyncio.sleep(0.5 * (attempt + 1))
        await route.abort()

    async def route_context(self, ctx) -> None:
        await ctx.route(lambda url: not url.startswith(self.base), self._block)
        if self.cfg.static_via_driver:
            await ctx.route(lambda url: url.startswith(self.base + "/static/"), self._static)

    @staticmethod
    async def _block(route) -> None:
        """Nothing outside the server is fetched (the favicon from fonts.gstatic.com): offline, deterministic."""
        await route.abort()

    def _watch(self, page, s: Session) -> None:
        def on_response(resp):
            if resp.status >= 400 and not s.closing and resp.url.startswith(self.base):
                s.error("http", f"{resp.status} {resp.url}")

        def on_failed(req):
            failure = req.failure or ""
            if s.closing or not req.url.startswith(self.base) or "ERR_ABORTED" in failure:
                return
            if "ERR_NETWORK_CHANGED" in failure:  # Chromium saw the host's interfaces change (docker, VPN):
                s.notes.append(f"host network change aborted {req.url}")  # the machine's doing, not the app's;
                return  # a page it leaves unfinished is still an error (stuck)
            s.error("request", f"{failure} {req.url}")

        def on_console(msg):
            if msg.type == "error":
                where = (msg.location or {}).get("url", "")
                if "ERR_FAILED" in msg.text and not where.startswith(self.base):
                    return  # an outside request this test blocked (the favicon)
                s.console_errors += 1
                s.console_kinds.add(msg.text[:120])
                self.log(f"session {s.index} console error: {msg.text[:200]}")

        def on_ws(ws):
            def got(payload):
                s.frames_in.append((time.monotonic(), payload))
                del s.frames_in[:-400]

            def sent(_payload):
                s.frames_out.append(time.monotonic())
                del s.frames_out[:-400]

            ws.on("framereceived", got)
            ws.on("framesent", sent)
            ws.on("socketerror", lambda err: None if s.closing else s.error("websocket", f"error {err}"))
            ws.on("close", lambda _ws: None if s.closing else s.error("websocket", "closed while the session was working"))

        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        page.on("console", on_console)
        page.on("websocket", on_ws)
        page.on("pageerror", lambda exc: s.error("page", f"uncaught {str(exc)[:200]}"))

    async def warm_up(self, browser) -> None:
        """Open the app once before the class arrives (as its teacher would), so that the server's first
        imports (torch, plotly, pandas) are not charged to the first student. Not measured; errors here are
        left to the sessions to find."""
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            await self.route_context(ctx)
            page = await ctx.new_page()
            page.on("request", lambda req: self._note_static(req.url))
            t0 = time.monotonic()
            await page.goto(self.base + "/", timeout=self.timeout() * 1000, wait_until="domcontentloaded")
            await page.wait_for_selector(PAGES[0][1], timeout=self.timeout() * 1000)
            await self.idle(page, "warm-up")
            self.log(f"warm-up: the app opened in {time.monotonic() - t0:.1f} s, "
                     f"{len(self.static_paths)} static files")
        except Exception as e:  # noqa: BLE001
            self.log(f"warm-up failed: {type(e).__name__}: {e}")
        finally:
            await ctx.close()

    def _note_static(self, url: str) -> None:
        """The static files a real Chromium fetched to draw the app: each protocol client fetches them once, as
        every student's browser does on its first visit."""
        if url.startswith(self.base + "/static/") or url == self.base + "/favicon.png":
            path = url[len(self.base):]
            if path not in self.static_paths:
                self.static_paths.append(path)

    # -- protocol sessions (bench/st_wire.py) --------------------------------------------------

    async def wire_session(self, s: Session, start_delay: float) -> None:
        """The same script as `session()`, over Streamlit's protocol instead of a browser."""
        from st_wire import WireError, WireSession

        rng = random.Random(self.cfg.seed * 1000 + s.index)
        arch, key, how = KNOBS[s.index % len(KNOBS)]
        await asyncio.sleep(start_delay)
        ws = WireSession(self.base, owner=secrets.token_urlsafe(18), on_error=s.error, timeout=self.timeout(),
                         static=self.static_paths)
        markers = {url: (sel[len(".st-key-"):] if sel else None) for url, sel in PAGES}
        try:
            t = await ws.open(f"arch={arch}", marker=markers[PAGES[0][0]])
            self.log(f"session {s.index} (wire): opened in {t:.2f} s ("
                     + ", ".join(f"{k} {v:.2f} s" for k, v in ws.open_stages.items()) + ")")
            s.page_load("open", t)
            for r in range(self.cfg.rounds):
                for j in range(self.cfg.knob_changes):
                    await self.think(rng)
                    ws.timeout = self.timeout()
                    where = f"knob {key} change {r * self.cfg.knob_changes + j + 1}"
                    hit, _ = await ws.set_and_watch(key, ws.step_up(key), "arch_cost", where)
                    s.knob_latencies.append(hit)
                    s.wire_latencies.append(hit)   # no drawing here: the latency is the server's share
                    self.log(f"session {s.index} (wire): {where} in {hit:.2f} s")
                for url_path, _ in PAGES[1:] + PAGES[:1]:
                    await self.think(rng)
                    ws.timeout = self.timeout()
                    home = url_path == PAGES[0][0] and url_path not in ws.pages   # the first page lives at "/"
                    t = await ws.goto("" if home else url_path, markers[url_path], f"page /{url_path}")
                    s.page_load(url_path, t)
                    self.log(f"session {s.index} (wire): /{url_path} in {t:.2f} s")
                    if url_path == "training" and s.runner and r == 0:
                        await self.wire_start_run(ws, s)
            if s.run_started:
                ws.timeout = self.timeout()
                t = await ws.goto("training", markers["training"], "page /training")
                s.page_load("training", t)
                await self.wire_wait_run_end(ws, s, stop_at=self.deadline - 40)
            s.finished = True
        except WireError as e:
            s.error("stuck", str(e))
        except asyncio.CancelledError:
            s.error("deadline", "the session had not finished when the test's time was up")
            raise
        except Exception as e:  # noqa: BLE001 - a bug in the client is an error too, not a crash of the test
            s.error("client", f"{type(e).__name__}: {e}")
        finally:
            s.closing = True
            await ws.close()

    async def wire_start_run(self, ws, s: Session) -> None:
        from st_wire import WireError

        want = self.run_settings(s)
        for key, value in want.items():
            if ws.find(key) is None:
                raise WireError(f"the Train page has no {key} input")
            await ws.set(key, value, f"train setting {key}")
        before = ws.alerts()
        await ws.click("train_start", "start a run")
        new_boxes = [body for kind, body in ws.alerts() if kind in ("error", "warning") and (kind, body) not in before]
        if new_boxes:
            s.run_refused = new_boxes[-1][:200]
            self.log(f"session {s.index} (wire): run refused: {s.run_refused}")
            return
        s.run_started = True
        self.log(f"session {s.index} (wire): run started (seed {s.seed})")

    @staticmethod
    def wire_can_stop(ws) -> bool:
        stop = ws.find("train_stop")
        return stop is not None and not stop[1].msg.disabled

    @staticmethod
    def wire_run_end(ws) -> tuple[str, str] | None:
        """As JS_RUN_END: the Stop button disabled and a success / warning / error box."""
        if Driver.wire_can_stop(ws):
            return None
        boxes = ws.alerts()
        for kind, end in (("success", "finished"), ("warning", "stopped"), ("error", "failed")):
            body = next((b for k, b in boxes if k == kind), None)
            if body is not None:
                return end, body
        return None

    async def wire_wait_run_end(self, ws, s: Session, stop_at: float) -> None:
        while True:
            end = self.wire_run_end(ws)
            if end:
                s.run_end, s.run_end_text = end[0], end[1].strip()[:200]
                return
            if time.monotonic() >= stop_at and not s.run_stopped_by_test:
                if self.wire_can_stop(ws):
                    s.run_stopped_by_test = True
                    self.log(f"session {s.index} (wire): stopping its run at the deadline")
                    ws.timeout = self.timeout()
                    await ws.click("train_stop", "stop the run")
            if time.monotonic() >= stop_at + 30 or self.left() < 2:
                return
            await asyncio.sleep(0.5)

    def ramp_delay(self, s: Session, n: int) -> float:
        ramp = self.cfg.ramp_seconds if self.cfg.ramp_seconds >= 0 else 0.3 * n
        return ramp * s.index / max(1, n)

    async def run_browsers(self, sessions: list[Session], n_all: int) -> None:
        """The Chromium sessions (and the warm-up, which finds the static files the protocol sessions fetch);
        sets `self.warm` when the class may start."""
        from playwright.async_api import async_playwright

        cfg = self.cfg
        n_browsers = cfg.browsers or max(1, math.ceil(len(sessions) / 12))
        try:
            async with async_playwright() as p:
                browsers = []
                try:
                    for _ in range(n_browsers):   # one at least: the warm-up finds the static files with it
                        browsers.append(await p.chromium.launch(executable_path=cfg.chromium, args=CHROMIUM_ARGS,
                                                                timeout=60_000))   # niced with this thread
                    if cfg.warmup:
                        await self.warm_up(browsers[0])
                    self.warm.set()
                    tasks = [asyncio.create_task(self.session(browsers[s.index % n_browsers], s,
                                                              self.ramp_delay(s, n_all))) for s in sessions]
                    await self._wait_all(tasks)
                finally:
                    for s in sessions:
                        s.closing = True
                    for b in browsers:
                        try:
                            await asyncio.wait_for(b.close(), 15)
                        except Exception:  # noqa: BLE001 - best effort; the playwright exit kills what is left
                            pass
        finally:
            self.warm.set()

    async def run_wire(self, sessions: list[Session], n_all: int) -> None:
        """The protocol sessions, once the warm-up is done."""
        await asyncio.to_thread(self.warm.wait, max(0.0, self.left()))
        tasks = [asyncio.create_task(self.wire_session(s, self.ramp_delay(s, n_all))) for s in sessions]
        await self._wait_all(tasks)

    async def _wait_all(self, tasks: list) -> None:
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=max(1.0, self.left()))
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)

    def run_all(self, sessions: list[Session]) -> float:
        """Both kinds at once, each in a thread with its own event loop: the browsers' thread at
        `browser_nice` (playwright's driver and the Chromiums it starts inherit it: they relay and draw every
        frame, and in a class they run on the students' machines), the protocol clients' at the server's
        priority (cheap; starved, they would add their own delays to what they measure). Returns the CPU
        seconds this process used meanwhile (the protocol clients and playwright's Python side)."""
        self.warm = threading.Event()
        chromium = [s for s in sessions if s.kind == "chromium"]
        wire = [s for s in sessions if s.kind == "wire"]
        errors: list[BaseException] = []

        def thread(fn, nice: int) -> threading.Thread:
            def body():
                try:
                    if nice > 0:
                        os.nice(nice)   # this thread only (Linux), and what it starts
                    asyncio.run(fn())
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(e)
                    self.warm.set()
            return threading.Thread(target=body, daemon=True)

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        threads = [thread(lambda: self.run_browsers(chromium, len(sessions)), self.cfg.browser_nice),
                   thread(lambda: self.run_wire(wire, len(sessions)), 0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        if errors:
            raise errors[0]
        return (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)


# -- the whole test -----------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def split_cpus(cpus: set[int]) -> tuple[set[int], set[int]] | None:
    """(server side, class side): the first half of the CPUs for the server, its training workers and nginx,
    the other half for the class (Chromium, playwright, the protocol clients, this script). None for one CPU.

    In a class the students' browsers run on their own machines; here they share the server's. Lowering their
    priority does not keep them off the server's CPU: with the kernel's autogroups (on by default) priorities
    only count inside one session, and the server leads a session of its own, so a nice-19 Chromium still got
    half the CPU the server wanted. Measured on this 2-core machine (4 Chromium + 26 protocol sessions): the
    server's share of knob→ledger at p95 was 3.4-5.6 s with the machine shared, 0.45-0.6 s with the split."""
    cpus = sorted(cpus)
    if len(cpus) < 2:
        return None
    half = (len(cpus) + 1) // 2
    return set(cpus[:half]), set(cpus[half:])


def _set_own_cpus(cpus: set[int]) -> dict[int, set[int]]:
    """Pin every thread of this process to `cpus` (threads and processes started later inherit it); returns
    what each had, for `_restore_own_cpus`."""
    before = {}
    for tid in map(int, os.listdir("/proc/self/task")):
        try:
            before[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except OSError:     # a thread that ended meanwhile
            pass
    return before


def _restore_own_cpus(before: dict[int, set[int]]) -> None:
    default = before.get(os.getpid()) or set(range(os.cpu_count() or 1))
    for tid in map(int, os.listdir("/proc/self/task")):
        try:
            os.sched_setaffinity(tid, before.get(tid, default))
        except OSError:
            pass


def run_load(cfg: Config) -> dict:
    """Start the server, drive the sessions, measure; returns the figures (see `table()`)."""
    if not 1 <= cfg.sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be in 1..{MAX_SESSIONS}, got {cfg.sessions}")
    if not -1 <= cfg.chromium_sessions <= cfg.sessions:
        raise ValueError(f"chromium-sessions must be in 0..{cfg.sessions} (or -1: all), got {cfg.chromium_sessions}")
    if not 0 <= cfg.runs <= min(cfg.sessions, MAX_RUNS):
        raise ValueError(f"runs must be in 0..{min(cfg.sessions, MAX_RUNS)}, got {cfg.runs}")
    if not 30 <= cfg.max_seconds <= 1800:
        raise ValueError(f"max-seconds must be in 30..1800, got {cfg.max_seconds:g}")
    if not (os.path.isfile(cfg.chromium) and os.access(cfg.chromium, os.X_OK)):
        raise RuntimeError(f"no chromium at {cfg.chromium}")
    if not (Path(cfg.app_dir or ROOT) / "app.py").is_file():
        raise ValueError(f"no app.py in {cfg.app_dir}")
    t_start = time.monotonic()
    deadline = t_start + cfg.max_seconds - 20  # keep 20 s to tear down
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="cnnlab-load-"))
    split = split_cpus(os.sched_getaffinity(0)) if cfg.split else None
    server = Server(workdir, cfg.port, Path(cfg.app_dir or ROOT), front=cfg.front, cpus=split[0] if split else None)
    sampler = client = front_sampler = None
    own_cpus = _set_own_cpus(split[1]) if split else None
    # the runners are spread over the class (and so over the start ramp), starting with session 0
    runner_ids = {k * cfg.sessions // cfg.runs for k in range(cfg.runs)} if cfg.runs else set()
    n_chromium = cfg.sessions if cfg.chromium_sessions < 0 else cfg.chromium_sessions
    sessions = [Session(i, i in runner_ids, seed=1000 + i, kind="chromium" if i < n_chromium else "wire")
                for i in range(cfg.sessions)]
    try:
        server.start(timeout_s=min(90, cfg.max_seconds / 3))
        server_cpus = sorted(os.sched_getaffinity(server.proc.pid))   # as the kernel has it, for the record
        sampler = ProcSampler(server.proc.pid)
        sampler.start()
        sids = (server.proc.pid,)
        if server.front_proc is not None:   # nginx's master leads its own session; its workers are its children
            front_sampler = ProcSampler(server.front_proc.pid, every=1.0)
            front_sampler.start()
            sids += (server.front_proc.pid,)
        # this process's own children but the server's sessions: playwright's driver and the Chromiums
        client = ProcSampler(os.getpid(), every=2.0, exclude_sids=sids, by_session=False)
        client.start()
        driver = Driver(cfg, server.base, deadline)
        own_cpu = driver.run_all(sessions)
        server.mark_end()
        wall = time.monotonic() - t_start
        for smp in (sampler, front_sampler, client):
            if smp is not None:
                smp.stop()
        folders = final_runs(server.ckpt_dir)
        tracebacks = server.tracebacks()
    finally:
        for smp in (sampler, front_sampler, client):
            if smp is not None and smp.is_alive():
                smp.stop()
        server.stop()
        if own_cpus is not None:
            _restore_own_cpus(own_cpus)
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    errors = [e for s in sessions for e in s.errors] + [f"server log: {t}" for t in tracebacks]
    started = [s for s in sessions if s.run_started]
    lost, finished, stopped_by_test, failed = [], 0, 0, 0
    for s in started:
        seen = s.run_end in ("finished", "stopped")
        folder = folders.get(s.seed)
        if s.run_end == "failed" or folder == "failed":
            failed += 1
        if not seen and folder not in ("finished", "stopped"):
            lost.append(f"session {s.index} (seed {s.seed}): page {s.run_end or 'no end seen'}, "
                        f"folder {folder or 'none'}")
        elif s.run_stopped_by_test:
            stopped_by_test += 1
        elif s.run_end == "finished" or folder == "finished":
            finished += 1
    loads = [x for s in sessions for x in s.page_loads]
    by_page: dict[str, list[float]] = {}
    for s in sessions:
        for k, v in s.page_load_by.items():
            by_page.setdefault(k, []).extend(v)
    knobs = [x for s in sessions for x in s.knob_latencies]
    by_kind = {}
    for kind in ("chromium", "wire"):
        mine = [s for s in sessions if s.kind == kind]
        if mine:
            ks = [x for s in mine for x in s.knob_latencies]
            ls = [x for s in mine for x in s.page_loads]
            by_kind[kind] = {"sessions": len(mine), "finished": sum(s.finished for s in mine),
                             "errors": sum(len(s.errors) for s in mine),
                             "knob_n": len(ks), "knob_p50": percentile(ks, 50), "knob_p95": percentile(ks, 95),
                             "page_load_p50": percentile(ls, 50), "page_load_p95": percentile(ls, 95)}
    wire = [x for s in sessions for x in s.wire_latencies]
    return {
        "sessions": cfg.sessions, "runs_asked": cfg.runs, "runs_started": len(started),
        "runs_refused": [s.run_refused for s in sessions if s.run_refused],
        "runs_finished": finished, "runs_stopped_by_test": stopped_by_test, "runs_failed": failed,
        "runs_lost": len(lost), "lost": lost,
        "page_load_n": len(loads), "page_load_p50": percentile(loads, 50), "page_load_p95": percentile(loads, 95),
        "page_load_by": {k: {"n": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95)}
                         for k, v in by_page.items()},
        "knob_n": len(knobs), "knob_p50": percentile(knobs, 50), "knob_p95": percentile(knobs, 95),
        "wire_n": len(wire), "wire_missing": sum(s.wire_missing for s in sessions),
        "wire_p50": percentile(wire, 50), "wire_p95": percentile(wire, 95), "browser_nice": cfg.browser_nice,
        "errors": len(errors), "error_list": errors,
        "sessions_finished": sum(s.finished for s in sessions),
        "console_errors": sum(s.console_errors for s in sessions),
        "console_kinds": sorted({k for s in sessions for k in s.console_kinds}),
        "notes": [f"session {s.index}: {n}" for s in sessions for n in s.notes],
        "server_rss_peak": sampler.server_rss_peak if sampler else 0,
        "server_cpu_s": sampler.server_cpu_s if sampler else 0.0,
        "workers": len(sampler.worker_pids) if sampler else 0,
        "workers_rss_peak": sampler.workers_rss_peak if sampler else 0,
        "worker_rss_peak_one": sampler.worker_rss_peak_one if sampler else 0,
        "workers_cpu_s": sampler.workers_cpu_s if sampler else 0.0,
        "front": cfg.front,
        "split": {"server": sorted(split[0]), "class": sorted(split[1])} if split else None,
        "server_cpus": server_cpus,
        "front_rss_peak": (front_sampler.server_rss_peak + front_sampler.workers_rss_peak) if front_sampler else 0,
        "front_cpu_s": (front_sampler.server_cpu_s + front_sampler.workers_cpu_s) if front_sampler else 0.0,
        "client_rss_peak": client.workers_rss_peak if client else 0,
        "client_cpu_s": own_cpu + (client.workers_cpu_s if client else 0.0),
        "by_kind": by_kind,
        "wall_s": wall, "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
        "workdir": str(workdir) if cfg.keep else None,
    }


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def _mb(x: int) -> str:
    from cnnlab.units import fmt_bytes

    return fmt_bytes(x)


def _cpus(c: list[int]) -> str:
    return ",".join(map(str, c)) if len(c) < 3 or c != list(range(c[0], c[-1] + 1)) else f"{c[0]}-{c[-1]}"


def table(r: dict) -> str:
    head = ("| sessions | runs started / finished / stopped by test / lost | page load p50 / p95 | "
            "knob→ledger p50 / p95 | of which the server (frames) p50 / p95 | errors | server peak RSS | server CPU "
            "| workers peak RSS (sum) | workers CPU |")
    row = (f"| {r['sessions']} | {r['runs_started']} / {r['runs_finished']} / {r['runs_stopped_by_test']} / "
           f"{r['runs_lost']} | {_s(r['page_load_p50'])} / {_s(r['page_load_p95'])} | "
           f"{_s(r['knob_p50'])} / {_s(r['knob_p95'])} | {_s(r['wire_p50'])} / {_s(r['wire_p95'])} | "
           f"{r['errors']} | {_mb(r['server_rss_peak'])} | "
           f"{r['server_cpu_s']:.0f} s | {_mb(r['workers_rss_peak'])} ({r['workers']} processes) | "
           f"{r['workers_cpu_s']:.0f} s |")
    lb, la = r["load_before"], r["load_after"]
    notes = (f"\n{r['page_load_n']} page loads, {r['knob_n']} knob changes, {r['sessions_finished']}/{r['sessions']} "
             f"sessions finished their script, wall {r['wall_s']:.0f} s on {r['cpus']} CPUs, the browsers' peak "
             f"RSS {_mb(r['client_rss_peak'])}; load average "
             f"before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}.")
    for kind, k in r.get("by_kind", {}).items():
        what = "in headless Chromium" if kind == "chromium" else "over Streamlit's protocol (bench/st_wire.py)"
        notes += (f"\n{k['sessions']} sessions {what}: {k['finished']} finished, {k['errors']} errors, "
                  f"knob→ledger p50 / p95 {_s(k['knob_p50'])} / {_s(k['knob_p95'])} ({k['knob_n']}), "
                  f"page load p50 / p95 {_s(k['page_load_p50'])} / {_s(k['page_load_p95'])}.")
    if r.get("split"):
        notes += (f"\nThe server side (Streamlit, its training workers, nginx) on CPU {_cpus(r['split']['server'])}, "
                  f"the class (browsers, playwright, protocol clients) on CPU {_cpus(r['split']['class'])}.")
    else:
        notes += "\nThe server and the class shared every CPU (--no-split)."
    if r.get("front") == "nginx":
        notes += (f"\nServed as the Space serves it: nginx in front (space/front.py) serving the static files, "
                  f"{r['front_cpu_s']:.1f} s of CPU, peak RSS {_mb(r['front_rss_peak'])} (master + worker).")
    else:
        notes += "\nStreamlit alone, no front (--front none): it serves the static files itself."
    notes += (f"\nThe class's side (browsers, playwright, protocol clients) used {r.get('client_cpu_s', 0):.0f} s "
              "of CPU.")
    if r["runs_refused"]:
        notes += f"\nRefused runs: {len(r['runs_refused'])} (\"{r['runs_refused'][0]}\")."
    notes += (f"\nThe server's share: from the knob's WebSocket message to the first frame carrying the new ledger, "
              f"{r['wire_n']} matched, {r['wire_missing']} not matched; browsers at nice {r['browser_nice']}.")
    return "\n".join([head, "|" + "---|" * 10, row]) + notes


def goals(r: dict, max_p95: float, max_rss_gb: float) -> list[str]:
    missed = []
    if r["errors"]:
        missed.append(f"{r['errors']} errors (goal 0)")
    if r["runs_lost"]:
        missed.append(f"{r['runs_lost']} lost runs (goal 0)")
    if r["runs_started"] + len(r["runs_refused"]) < r["runs_asked"]:
        missed.append(f"only {r['runs_started']} of {r['runs_asked']} runs were started")
    if r["knob_p95"] is None or r["knob_p95"] > max_p95:
        missed.append(f"p95 knob→ledger {_s(r['knob_p95'])} (goal ≤ {max_p95:g} s)")
    if r["server_rss_peak"] > max_rss_gb * 2**30:
        missed.append(f"server peak RSS {_mb(r['server_rss_peak'])} (goal ≤ {max_rss_gb:g} GB)")
    return missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=30, help=f"browser sessions, 1..{MAX_SESSIONS} (default 30)")
    ap.add_argument("--runs", type=int, default=4, help="sessions that start a tiny training run (default 4)")
    ap.add_argument("--max-seconds", type=float, default=300, help="the whole test stops by then (default 300)")
    ap.add_argument("--knob-changes", type=int, default=3, help="knob changes per session and round (default 3)")
    ap.add_argument("--rounds", type=int, default=1, help="times each session repeats knobs + pages (default 1)")
    ap.add_argument("--browsers", type=int, default=0, help="Chromium processes (default: one per 12 sessions)")
    ap.add_argument("--ramp-seconds", type=float, default=-1, help="sessions start over this time (default 0.3 s each)")
    ap.add_argument("--think-seconds", type=float, default=0.5, help="mean pause between actions (default 0.5)")
    ap.add_argument("--step-timeout", type=float, default=60, help="the longest any one wait may take (default 60)")
    ap.add_argument("--run-train-size", type=int, default=2000)
    ap.add_argument("--run-epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--chromium", default=CHROMIUM)
    ap.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    ap.add_argument("--json", metavar="FILE", help="also write every figure (and the error list) as JSON")
    ap.add_argument("--assert", dest="check", action="store_true",
                    help="exit 1 unless 0 errors, 0 lost runs, p95 knob→ledger and server RSS within the goals")
    ap.add_argument("--max-p95", type=float, default=2.0, help="goal for p95 knob→ledger in s (default 2)")
    ap.add_argument("--max-rss-gb", type=float, default=2.0, help="goal for the server's peak RSS (default 2 GB)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="do not open the app once before the sessions (its first imports then count)")
    ap.add_argument("--app", metavar="DIR", help="serve the app.py in DIR (another checkout; default this one)")
    ap.add_argument("--chromium-static", dest="static_via_driver", action="store_false",
                    help="let Chromium fetch the static files itself (default: playwright's client, immune to "
                         "ERR_NETWORK_CHANGED when the host's interfaces change)")
    ap.add_argument("--browser-nice", type=int, default=19,
                    help="run the Chromiums this many nice levels below the server (default 19; 0: the same)")
    ap.add_argument("--chromium-sessions", type=int, default=-1,
                    help="sessions in a real headless Chromium; the others speak Streamlit's WebSocket protocol "
                         "(bench/st_wire.py) at a fraction of a browser's CPU (default -1: all in Chromium)")
    ap.add_argument("--front", choices=FRONTS, default="nginx",
                    help="nginx (default): serve the app as the Space image does, nginx in front serving the "
                         "static files (space/front.py; needs Debian's nginx-light); none: Streamlit alone")
    ap.add_argument("--no-split", dest="split", action="store_false",
                    help="let the server and the class share every CPU (default: the server side on the first "
                         "half of the CPUs, the class on the other half; see split_cpus)")
    ap.add_argument("--artifacts", metavar="DIR", help="save a screenshot of every stuck session in DIR")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, run folders)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log each session's steps to stderr")
    a = ap.parse_args(argv)
    cfg = Config(sessions=a.sessions, runs=a.runs, max_seconds=a.max_seconds, knob_changes=a.knob_changes,
                 rounds=a.rounds, browsers=a.browsers, ramp_seconds=a.ramp_seconds, think_seconds=a.think_seconds,
                 step_timeout=a.step_timeout, run_train_size=a.run_train_size, run_epochs=a.run_epochs,
                 seed=a.seed, port=a.port, chromium=a.chromium, keep=a.keep, verbose=a.verbose,
                 warmup=a.warmup, artifacts=a.artifacts, app_dir=a.app, static_via_driver=a.static_via_driver,
                 browser_nice=a.browser_nice, chromium_sessions=a.chromium_sessions, front=a.front,
                 split=a.split)
    try:
        r = run_load(cfg)
    except ValueError as e:
        print(f"load_test: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"load_test: {e}", file=sys.stderr)
        return 2
    text = table(r)
    print(text)
    for e in r["error_list"][:20]:
        print(f"error: {e}")
    for n in r["notes"][:10]:
        print(f"note: {n}")
    for k in r["console_kinds"][:10]:
        print(f"browser console error ({r['console_errors']} in all): {k}")
    for l in r["lost"]:
        print(f"lost run: {l}")
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1, default=str) + "\n")
    if a.check:
        missed = goals(r, a.max_p95, a.max_rss_gb)
        for m in missed:
            print(f"goal missed: {m}", file=sys.stderr)
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
