"""bench/st_wire.py, the load test's browserless Streamlit client, against a real `streamlit run` of a tiny app:
it must see what a browser would (a changed figure, a page switch, an exception box, a fragment that
refreshes itself) and must not see a change where there is none."""
from __future__ import annotations

import asyncio
import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("websockets", reason="websockets (installed with Streamlit's uvicorn) is missing")

APP = textwrap.dedent('''
    import time
    import streamlit as st

    def home():
        st.title("Home")
        v = st.slider("n", 0, 10, 1, key="n")
        st.toggle("a toggle nothing reads", key="t")
        st.image(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                               "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
        with st.container(key="out"):
            st.metric("square", v * v)
            st.write("a line that never changes")
        if st.button("boom", key="boom"):
            raise RuntimeError("boom on purpose")

        @st.fragment(run_every=0.3)
        def ticker():
            st.session_state.ticks = st.session_state.get("ticks", 0) + 1
            with st.container(key="ticks"):
                st.write(f"tick {st.session_state.ticks}")
        ticker()

    def other():
        st.title("Other")
        st.button("a button", key="other_marker")

    st.navigation([st.Page(home, title="Home", default=True), st.Page(other, title="Other", url_path="other")]).run()
''')


def _load(name: str, file: str | None = None):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{file or name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    lt = _load("cnnlab_load_test_w", "load_test")
    app_dir = tmp_path_factory.mktemp("tiny_app")
    (app_dir / "app.py").write_text(APP)
    srv = lt.Server(tmp_path_factory.mktemp("work"), app_dir=app_dir)
    srv.start(timeout_s=60)
    yield srv
    srv.stop()


def test_the_protocol_client_sees_what_a_browser_would(server):
    w = _load("st_wire")
    errors: list[tuple[str, str]] = []

    async def scenario():
        s = w.WireSession(server.base, owner="x" * 24, on_error=lambda where, what: errors.append((where, what)),
                          timeout=30, static=["/_stcore/health"] * 8)
        try:
            await s.open(marker="out")
            await asyncio.sleep(0.3)   # the image's request runs beside the script runs
            assert len(s.media) == 1 and s.stats.http_requests == 1 + 8 + 2 + 1 and not errors, (s.stats, errors)
            assert s.value("n") == [1.0]
            assert s.step_up("n") == [2.0]
            hit, done = await s.set_and_watch("n", s.step_up("n"), "out", "n to 2")
            assert 0 < hit <= done
            metric = next(n.msg for p, n in s.tree.items() if n.kind == "metric")
            assert metric.body == "4" and s.value("n") == [2.0]
            # a toggle that changes nothing under "out": no change may be reported
            with pytest.raises(w.WireError, match="nothing under 'out' changed"):
                await s.set_and_watch("t", s.step_up("t"), "out", "the toggle")
            # the fragment keeps itself fresh through auto-reruns, full runs in between or not
            def ticks() -> int:
                return next(int(n.msg.body.split()[1]) for n in s.tree.values()
                            if n.kind == "markdown" and n.msg.body.startswith("tick"))
            t0 = ticks()
            await asyncio.sleep(1.8)    # 0.3 s apart: about 6 fragment runs, none of them a full run
            assert ticks() >= t0 + 3, (t0, ticks())
            # a page switch: the old page's elements are gone, the new page's marker is there
            assert set(s.pages) >= {"other"}
            await s.goto("other", "other_marker", "to Other")
            assert s.find("out") is None and s.find("n") is None
            home = next(p for p in s.pages if p != "other")
            await s.goto(home, "out", "back home")
            assert not errors, errors
            # an exception box is an error
            await s.click("boom", "boom")
            assert any(where == "exception" and "boom on purpose" in what for where, what in errors), errors
        finally:
            await s.close()

    asyncio.run(scenario())
    assert not [e for e in errors if e[0] != "exception"], errors
