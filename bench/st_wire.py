"""A Streamlit client without a browser: it speaks the app's WebSocket protocol (BackMsg / ForwardMsg protobufs)
the way Streamlit's own frontend does, for load tests that need many sessions on one small machine.

What a browser tab does, and what this does the same way:
- it fetches the page's HTML and static files (the list a real Chromium fetched; one tab, one copy each) and
  ``/_stcore/health`` and ``/_stcore/host-config``, then opens ``/_stcore/stream`` with the ``streamlit``
  subprotocol and the app's owner cookie;
- it asks for script runs with a ``rerun_script`` message carrying the query string, the page and the widget
  values it has set; it keeps the element tree the server sends (delta paths) and drops, at the end of each
  full run, the elements that run did not send again, as the frontend does;
- it keeps the fragment auto-reruns the server asks for (``auto_rerun``) and clears them when a full run
  starts, so a Train page with a live run polls the executor as a browser's does;
- it fetches the images (``/media/...``) the page shows, once each.

What it does not do: draw anything (no layout, no JavaScript, no plotly), keep the frontend's message cache
(it never says it has a message cached, so the server always sends the full message), or send
``context_info``. It finds an app's exception boxes, "page not found", compile errors and unexpected socket
closes, and reports them as errors.

Only the standard library, ``websockets`` (installed with uvicorn, Streamlit's server) and ``streamlit.proto``.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED_OK, FINISHED_COMPILE_ERROR, FINISHED_EARLY, FINISHED_FRAGMENT = 0, 1, 2, 3
ALERT_KIND = {1: "error", 2: "warning", 3: "info", 4: "success"}


class WireError(Exception):
    """The session could not go on (a timeout, a closed socket)."""


@dataclass
class Node:
    kind: str            # element kind ("slider", "markdown", ...) or "block"
    msg: object          # the element's own proto (e.g. Slider), or the Block
    raw: bytes           # the element's serialized bytes, to see whether a rerun changed it
    gen: int             # the full run that last sent it


@dataclass
class Stats:
    frames: int = 0
    bytes_in: int = 0
    http_bytes: int = 0
    http_requests: int = 0


def key_of(widget_id: str) -> str:
    """The user key of a widget or block id ("$$ID-<hash>-arch_cost" → "arch_cost"); "" when it has none."""
    m = re.match(r"\$\$ID-[0-9a-f]+-(.*)$", widget_id or "")
    return m.group(1) if m else ""


class WireSession:
    """One browser tab's worth of protocol. Errors go to `on_error(where, what)`; nothing here raises for
    the app's own errors, only `WireError` when the session cannot go on."""

    def __init__(self, base: str, owner: str, on_error, timeout: float = 60.0, static: list[str] | None = None):
        self.base = base.rstrip("/")
        self.ws_url = "ws" + self.base[len("http"):] + "/_stcore/stream"
        self.owner, self.on_error, self.timeout = owner, on_error, timeout
        self.static = list(static or [])
        self.tree: dict[tuple, Node] = {}
        self.pages: dict[str, str] = {}        # url path ("" for the main page) → page_script_hash
        self.page_hash = ""
        self.query = ""
        self.widgets: dict[str, WidgetState] = {}   # widget id → the value this tab has set
        self.auto: dict[str, asyncio.Task] = {}      # fragment id → its auto-rerun loop
        self.gen = 0
        self.run_started_at = 0.0     # when the last full run's new_session arrived
        self.last_done: tuple[float, float, int] | None = None   # (that run's start, its end, status)
        self.changed = asyncio.Event()
        self.watch: tuple[tuple, dict, float] | None = None    # (a block path, its old bytes, since) → first change
        self.watch_hit: float | None = None
        self.media: set[str] = set()
        self.stats = Stats()
        self.open_stages: dict[str, float] = {}   # seconds: the HTTP requests, the socket, the first script run
        self.closing = False
        self.ws = None
        self._reader: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    # -- HTTP ------------------------------------------------------------------------------
    # A browser's HTTP/1.1: keep-alive connections, at most 6 at once per tab, gzip accepted. (On the event loop,
    # not in threads: 30 tabs' worth of urllib threads cost the client more CPU than the server spent.)
    async def _fetch(self, conn: list, path: str) -> None:
        if not conn:
            host, port = self.base.split("//", 1)[1].rsplit(":", 1)
            conn.extend(await asyncio.wait_for(asyncio.open_connection(host, int(port)), self.timeout))
        reader, writer = conn
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.base.split('//', 1)[1]}\r\n"
                     "Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        h = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in head[1:] if ":" in ln}
        n = 0
        if status in (204, 304) or status < 200:
            pass    # no body
        elif "content-length" in h:
            n = len(await reader.readexactly(int(h["content-length"])))
        elif h.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
                n += len(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
        else:   # the body runs to the end of the connection
            n = len(await reader.read())
            h["connection"] = "close"
        if h.get("connection", "").lower() == "close":
            writer.close()
            conn.clear()
        self.stats.http_requests += 1
        self.stats.http_bytes += n
        if status >= 400:
            raise WireError(f"HTTP {status}")

    async def get_all(self, paths: list[str], where: str, parallel: int = 6) -> None:
        todo = list(paths)

        async def one_connection():
            conn: list = []
            try:
                while todo:
                    path = todo.pop(0)
                    try:
                        await asyncio.wait_for(self._fetch(conn, path), self.timeout)
                    except Exception as e:  # noqa: BLE001 - a refused / reset / timed-out request, an HTTP error
                        self.on_error("http", f"{where}: GET {path}: {type(e).__name__}: {e}")
                        if conn:
                            conn[1].close()
                            conn.clear()
            finally:
                if conn:
                    conn[1].close()

        await asyncio.gather(*[one_connection() for _ in range(min(parallel, len(todo)))])

    async def get(self, path: str, where: str) -> None:
        await self.get_all([path], where)

    # -- the socket ------------------------------------------------------------------------
    async def open(self, query: str = "", marker: str | None = None) -> float:
        """Load the page as a browser does; returns the seconds from the first request to the end of the
        first script run (with `marker`, a widget or block key, on the page)."""
        t0 = time.monotonic()
        await self.get("/" + (f"?{query}" if query else ""), "open")
        await self.get_all(self.static, "static file")
        await self.get_all(["/_stcore/health", "/_stcore/host-config"], "open")
        self.open_stages["http"] = time.monotonic() - t0
        try:
            self.ws = await asyncio.wait_for(websockets.connect(
                self.ws_url, subprotocols=["streamlit"], max_size=None,
                additional_headers={"Cookie": f"cnnlab_owner={self.owner}"}), self.timeout)
        except Exception as e:  # noqa: BLE001
            raise WireError(f"the WebSocket did not open: {type(e).__name__}: {e}") from None
        self._reader = asyncio.create_task(self._read())
        self.query = query
        self.open_stages["socket"] = time.monotonic() - t0 - self.open_stages["http"]
        self.open_stages["first run"] = await self.rerun_and_wait("open the app", marker=marker)
        return time.monotonic() - t0

    async def close(self) -> None:
        self.closing = True
        for t in [*self.auto.values(), *self._background]:
            t.cancel()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001
                pass
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(raw, time.monotonic())
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - websockets' ConnectionClosed and friends
            if not self.closing:
                self.on_error("websocket", f"{type(e).__name__}: {e}")
        else:
            if not self.closing:
                self.on_error("websocket", "closed while the session was working")
        finally:
            self.closing = True
            self.changed.set()

    def _handle(self, raw: bytes, now: float) -> None:
        self.stats.frames += 1
        self.stats.bytes_in += len(raw)
        f = ForwardMsg()
        f.ParseFromString(raw)
        kind = f.WhichOneof("type")
        if kind == "new_session" and f.metadata.run.fragment_ids:
            pass    # a fragment's run: the page around it stays as it is
        elif kind == "new_session":
            self.gen += 1
            self.run_started_at = now
            self.page_hash = f.new_session.page_script_hash
            for t in self.auto.values():   # a full run starts: the frontend clears its auto-reruns
                t.cancel()
            self.auto.clear()
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in f.navigation.app_pages}
            if f.navigation.page_script_hash:
                self.page_hash = f.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = f.page_info_changed.query_string
        elif kind == "delta":
            self._delta(tuple(f.metadata.delta_path), f.delta, now)
        elif kind == "script_finished":
            status = f.script_finished
            if status in (FINISHED_OK, FINISHED_COMPILE_ERROR):
                if status == FINISHED_OK:   # what this full run did not send again is gone from the page
                    self.tree = {p: n for p, n in self.tree.items() if n.gen >= self.gen}
                else:
                    self.on_error("script", "the script did not compile")
                self.last_done = (self.run_started_at, now, status)
        elif kind == "auto_rerun":
            fid, every = f.auto_rerun.fragment_id, max(0.2, f.auto_rerun.interval)
            if fid in self.auto:
                self.auto[fid].cancel()
            self.auto[fid] = asyncio.create_task(self._auto(fid, every))
        elif kind == "page_not_found":
            self.on_error("page", f"page not found: {f.page_not_found.page_name!r}")
        elif kind == "session_event" and f.session_event.HasField("script_compilation_exception"):
            self.on_error("script", f"compile error: {f.session_event.script_compilation_exception.message[:200]}")
        elif kind == "ref_hash":
            self.on_error("protocol", "a cached-message reference arrived though none was announced")
        self.changed.set()

    def _delta(self, path: tuple, delta, now: float) -> None:
        dk = delta.WhichOneof("type")
        if dk == "add_block":
            node = Node("block", delta.add_block, b"", self.gen)
        elif dk == "new_element":
            el = delta.new_element
            ek = el.WhichOneof("type")
            node = Node(ek, getattr(el, ek), el.SerializeToString(), self.gen)
            if ek == "exception":
                x = node.msg
                self.on_error("exception", f"{x.type}: {x.message}"[:300])
            elif ek == "imgs":
                for img in node.msg.imgs:
                    url = img.url
                    if url.startswith("/media/") and url not in self.media:
                        self.media.add(url)
                        task = asyncio.get_running_loop().create_task(self.get(url, "image"))
                        self._background.add(task)   # (the loop keeps only weak references to tasks)
                        task.add_done_callback(self._background.discard)
        else:
            return
        self.tree[path] = node
        if self.watch is not None and self.watch_hit is None:
            prefix, old, since = self.watch
            if path[:len(prefix)] == prefix and now >= since and node.kind != "block" and old.get(path) != node.raw:
                self.watch_hit = now

    # -- script runs -----------------------------------------------------------------------
    async def _send(self, *, page_hash: str | None = None, fragment_id: str = "", auto: bool = False,
                    triggers: dict[str, WidgetState] | None = None, page_name: str = "") -> float:
        m = BackMsg()
        cs = m.rerun_script
        cs.query_string = self.query
        cs.page_script_hash = page_hash if page_hash is not None else self.page_hash
        cs.page_name = page_name
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        shown = {n.msg.id for n in self.tree.values() if n.kind != "block" and getattr(n.msg, "id", "")}
        states = {i: w for i, w in self.widgets.items() if i in shown}
        states.update(triggers or {})
        cs.widget_states.widgets.extend(states.values())
        t = time.monotonic()
        try:
            await self.ws.send(m.SerializeToString())
        except Exception as e:  # noqa: BLE001
            raise WireError(f"could not send: {type(e).__name__}: {e}") from None
        return t

    async def _auto(self, fragment_id: str, every: float) -> None:
        try:
            while not self.closing:
                await asyncio.sleep(every)
                await self._send(fragment_id=fragment_id, auto=True)
        except (asyncio.CancelledError, WireError):
            pass

    async def wait_run(self, since: float, where: str) -> None:
        """Wait for the end of a full script run that started after `since`."""
        limit = time.monotonic() + self.timeout
        while not (self.last_done and self.last_done[0] >= since):
            if self.closing:
                raise WireError(f"{where}: the socket closed")
            left = limit - time.monotonic()
            if left <= 0:
                raise WireError(f"{where}: no script run ended within {self.timeout:.0f} s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def rerun_and_wait(self, where: str, marker: str | None = None, **send) -> float:
        """Ask for a full run and wait for its end; returns the seconds it took."""
        t0 = await self._send(**send)
        await self.wait_run(t0, where)
        if marker and self.find(marker) is None:
            raise WireError(f"{where}: the page has no {marker!r} after its run")
        return time.monotonic() - t0

    # -- the page --------------------------------------------------------------------------
    def find(self, key: str) -> tuple[tuple, Node] | None:
        for path, n in self.tree.items():
            ident = n.msg.id if n.kind == "block" or hasattr(n.msg, "id") else ""
            if key_of(ident) == key:
                return path, n
        return None

    def alerts(self) -> list[tuple[str, str]]:
        return [(ALERT_KIND.get(n.msg.format, "?"), n.msg.body) for _, n in sorted(self.tree.items())
                if n.kind == "alert"]

    def _widget(self, key: str) -> Node:
        found = self.find(key)
        if found is None or found[1].kind == "block":
            raise WireError(f"no widget {key!r} on the page")
        return found[1]

    def value(self, key: str):
        """A widget's value as this tab shows it: what it set, else what the server last said."""
        n = self._widget(key)
        w = self.widgets.get(n.msg.id)
        if n.kind == "slider":
            return list(w.double_array_value.data) if w else list(n.msg.value if n.msg.set_value else n.msg.default)
        if n.kind == "checkbox":
            return w.bool_value if w else (n.msg.value if n.msg.set_value else n.msg.default)
        if n.kind == "number_input":
            if w:
                return w.int_value if w.HasField("int_value") else w.double_value
            return n.msg.value if n.msg.set_value else n.msg.default
        raise WireError(f"{key!r} is a {n.kind}, not a widget this client sets")

    def _set_state(self, key: str, value) -> None:
        """What this tab sends for the widget from now on."""
        n = self._widget(key)
        w = WidgetState(id=n.msg.id)
        if n.kind == "slider":
            w.double_array_value.data.extend(value)
        elif n.kind == "checkbox":
            w.bool_value = bool(value)
        elif n.kind == "number_input":
            if n.msg.data_type == 0:
                w.int_value = int(value)
            else:
                w.double_value = float(value)
        else:
            raise WireError(f"{key!r} is a {n.kind}, not a widget this client sets")
        self.widgets[w.id] = w

    def step_up(self, key: str):
        """The value after one press of → on a slider, or a click on a toggle."""
        n = self._widget(key)
        if n.kind == "slider":
            cur = self.value(key)
            return [min(n.msg.max, cur[0] + n.msg.step)] + cur[1:]
        if n.kind == "checkbox":
            return not self.value(key)
        raise WireError(f"{key!r} is a {n.kind}")

    async def set_and_watch(self, key: str, value, block_key: str, where: str) -> tuple[float, float]:
        """Set a widget; returns (seconds to the first changed element under the block `block_key`, seconds to
        the end of the run)."""
        found = self.find(block_key)
        if found is None:
            raise WireError(f"{where}: no {block_key!r} on the page")
        prefix = found[0]
        old = {p: n.raw for p, n in self.tree.items() if p[:len(prefix)] == prefix}
        self._set_state(key, value)
        self.watch_hit = None
        self.watch = (prefix, old, time.monotonic())   # set before sending: the reply may come during the send
        t0 = await self._send()
        try:
            await self.wait_run(t0, where)
        finally:
            self.watch = None
        if self.watch_hit is None:
            raise WireError(f"{where}: nothing under {block_key!r} changed")
        return self.watch_hit - t0, time.monotonic() - t0

    async def set(self, key: str, value, where: str) -> float:
        self._set_state(key, value)
        return await self.rerun_and_wait(where)

    async def click(self, key: str, where: str) -> float:
        found = self.find(key)
        if found is None or found[1].kind != "button":
            raise WireError(f"{where}: no button {key!r} on the page")
        if found[1].msg.disabled:
            raise WireError(f"{where}: the button {key!r} is disabled")
        return await self.rerun_and_wait(where, triggers={found[1].msg.id: WidgetState(id=found[1].msg.id,
                                                                                       trigger_value=True)})

    async def goto(self, url_path: str, marker: str | None, where: str) -> float:
        """Click a sidebar link: the page's hash, no query string (a page switch clears it)."""
        if url_path not in self.pages:
            raise WireError(f"{where}: no page /{url_path} in the navigation ({sorted(self.pages)})")
        self.query = ""
        return await self.rerun_and_wait(where, marker=marker, page_hash=self.pages[url_path])
