"""Issue #11 in the app: crafted links and run folders give one clear line shown as plain text — never an
exception box, a blocked page, an image or a link the visitor did not write."""
import json
import os
import re
import time

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from helpers import APP, assert_no_exception, needs_fmnist, open_page  # noqa: E402
from test_hostile import edit_config, make_run  # noqa: E402

from cnnlab import checkpoint as ck  # noqa: E402

TIMEOUT = 60
EVIL = "![x](http://127.0.0.1:9/track.png) [Click here to log in](http://evil.example/login)"


def outside_code(md: str) -> str:
    """The markdown with its code spans removed (what Streamlit would interpret)."""
    return re.sub(r"(`+)(.+?)\1", "", md)


def assert_plain(md: str) -> None:
    """User text only inside code spans: no image, no link, no URL left for markdown to render."""
    rest = outside_code(md)
    assert "](" not in rest and "http" not in rest and "![" not in rest, md


def _arch(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def test_a_link_cannot_put_markdown_into_a_warning():
    at = _arch(arch=EVIL)
    assert_no_exception(at)
    assert at.warning, "the bad value should be reported"
    for w in at.warning:
        assert_plain(w.value)
    assert "Click here" in at.warning[0].value  # still shown, as text
    at = _arch(arch="vgg", ratio="[a](http://evil.example) " + "9" * 10_000)
    msg = at.warning[0].value
    assert_plain(msg)
    assert len(msg) < 400  # a 10 kB value is not echoed in full


def test_an_expensive_probe_link_is_refused_quickly_in_one_sentence():
    t = time.perf_counter()
    at = _arch(arch="densenet", block_config="64,64,64,64,64,61", growth_rate="126", res="3")
    took = time.perf_counter() - t
    assert_no_exception(at)
    assert any("at most 1,000 layers" in e.value for e in at.error), [e.value for e in at.error]
    assert took < 20, took  # the shape search alone took 22 s of CPU before


@pytest.mark.parametrize("value", ["٤", "４", "1_0"])
def test_non_ascii_and_underscored_numbers_in_a_link_are_refused(value):
    at = _arch(arch="vgg", ratio=value)
    assert_no_exception(at)
    assert at.warning and "ratio must be" in at.warning[0].value


# -- crafted run folders on the Saved runs and Batch normalization pages ---------------------------------------

@pytest.fixture()
def crafted(tmp_path):
    """A good LeNet run, and beside it: malformed config.json / metrics.jsonl, a FIFO config.json, a symlink to
    /dev/zero as BN history, a FIFO BN history, and a run whose arch is markdown (newest, picked by default)."""
    root = tmp_path / "runs"
    root.mkdir()
    good = make_run(root, name="20260101-000000-lenet-good")
    w = ck.RunWriter(good)
    from cnnlab.events import BNLayerStats, BNSnapshot
    for step in (1, 2):
        w.add_bn_snapshot(BNSnapshot(epoch=1, step=step, layers=(BNLayerStats("1", *([[0.5, 1.0]] * 6)),)))
    w.flush_bn(1)
    bad_epochs = make_run(root, name="20260102-000000-lenet-epochs")
    edit_config(bad_epochs, train={"epochs": "x"})
    bad_metrics = make_run(root, name="20260103-000000-lenet-metrics")
    open(os.path.join(bad_metrics, ck.METRICS), "w").write('{"epoch": 1, "test_acc": Infinity}\n')
    fifo_cfg = root / "20260104-000000-lenet-fifo"
    fifo_cfg.mkdir()
    os.mkfifo(fifo_cfg / ck.CONFIG)
    for name, make in (("20260105-000000-lenet-zero", lambda p: os.symlink("/dev/zero", p)),
                       ("20260106-000000-lenet-fifobn", os.mkfifo)):
        d = make_run(root, name=name)
        os.makedirs(os.path.join(d, ck.BN_DIR))
        make(os.path.join(d, ck.BN_DIR, "epoch-0001.jsonl"))
    evil = make_run(root, name="20260107-000000-evil")
    edit_config(evil, model__arch=EVIL, created="2026-12-31T00:00:00+00:00")
    return root


@needs_fmnist
def test_saved_runs_lists_bad_folders_with_reasons_and_shows_the_good_one(monkeypatch, crafted):
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(crafted))
    at = open_page("app_pages/runs.py", TIMEOUT)
    table = at.dataframe[0].value
    status = dict(zip(table["run"], table["status"]))
    assert status["20260101-000000-lenet-good"] == "finished"
    for name in ("20260102-000000-lenet-epochs", "20260103-000000-lenet-metrics", "20260104-000000-lenet-fifo"):
        assert status[name] == "unreadable", (name, status)
    errors = " ".join(table["error"])
    assert "train.epochs" in errors and "Infinity" in errors and "not a regular file" in errors
    assert any("cannot be read" in w.value for w in at.warning)
    # the markdown-named run is picked first: its error is one line of plain text
    assert at.selectbox(key="runs_pick").value.endswith("20260107-000000-evil")
    assert at.error
    for e in at.error:
        assert_plain(e.value)
    assert "cannot build" in at.error[0].value
    at.selectbox(key="runs_pick").set_value(os.path.join(str(crafted), "20260101-000000-lenet-good")).run()
    assert_no_exception(at)
    assert at.get_by_key("runs_grid")
    # the loaded run and its test images are held in the byte-bounded shared cache, not in st.cache_*
    from cnnlab import caches
    assert ("test_set", 28, 1, 500) in caches.CACHE and 0 < caches.CACHE.total <= caches.CACHE.max_bytes
    # the legend of the comparison never carries HTML from a run folder
    legend = [d["name"] for d in json.loads(at.get_by_key("runs_compare_fig").proto.spec)["data"]]
    assert legend and not any("<" in n or ">" in n for n in legend)


def test_batchnorm_page_survives_crafted_histories(monkeypatch, crafted):
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(crafted))
    at = open_page("app_pages/batchnorm.py", TIMEOUT)
    labels = " ".join(at.selectbox(key="bn_source").options)
    names = ("20260101-000000-lenet-good", "20260105-000000-lenet-zero", "20260106-000000-lenet-fifobn")
    assert all(n in labels for n in names), labels  # a run whose BN history cannot be read is still offered
    by_name = {n: f"saved:{crafted / n}" for n in names}
    assert at.expander and "cannot be read (3)" in at.expander[0].label
    for name, needle in (("20260105-000000-lenet-zero", "symbolic link"),
                         ("20260106-000000-lenet-fifobn", "not a regular file")):
        t = time.perf_counter()
        at.selectbox(key="bn_source").set_value(by_name[name]).run()
        assert time.perf_counter() - t < 20
        assert_no_exception(at)
        assert any(needle in e.value for e in at.error), [e.value for e in at.error]
        for e in at.error:
            assert_plain(e.value)
    at.selectbox(key="bn_source").set_value(by_name["20260101-000000-lenet-good"]).run()
    assert_no_exception(at)
    assert at.get_by_key("bn_heat") and not at.error
