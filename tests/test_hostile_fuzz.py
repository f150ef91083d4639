"""Issue #11, fuzzed: random config.json, metrics.jsonl, BN history and URL query values give a clear error
(one sentence) or a working result — never another exception, never a blocked call, never more memory than
the budget. Hypothesis, a few hundred cases each, bounded time."""
import json
import os
import shutil
import tempfile
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_hostile import MB, make_run, peak_rss_delta  # noqa: E402

from cnnlab import checkpoint as ck  # noqa: E402
from cnnlab import budget  # noqa: E402
from cnnlab.measure import fitting  # noqa: E402
from cnnlab.registry import ARCHS, KnobError  # noqa: E402

# New random examples on every run (no derandomize), with Hypothesis's health checks on: a failure prints the
# example that failed and the seed to replay it (pytest --hypothesis-seed=N).
FUZZ = settings(max_examples=300, deadline=None, database=None)
BUDGET = budget.budget_bytes()

scalars = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.sampled_from(["lenet", "vgg", "densenet", "x" * 300, "![x](http://e.x)"]))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                      max_leaves=10)
CONFIG_PATHS = ["format", "version", "run_id", "created", "status", "model", "model.arch", "model.knobs",
                "model.knobs.activation", "model.knobs.batchnorm", "model.resolution", "model.in_channels",
                "model.num_classes", "train", "train.epochs", "final", "final.epochs", "final.test_acc", "params",
                "failure", "data"]


def _one_sentence(msg: str) -> None:
    assert msg and "\n" not in msg and len(msg) <= 500 and "Traceback" not in msg, msg


class _Folder:
    """One temporary root with a good run and a fuzzed one, made once per test and rewritten per example."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="cnnlab-fuzz-")
        from pathlib import Path
        self.good = make_run(Path(self.root), name="20260101-000000-lenet-good")
        self.bad = make_run(Path(self.root), name="20260102-000000-lenet-fuzz")
        self.config = open(os.path.join(self.bad, ck.CONFIG)).read()
        self.metrics = open(os.path.join(self.bad, ck.METRICS)).read()

    def check(self):
        """list_runs shows both; the good one intact; the fuzzed one readable or unreadable with a reason;
        load_run and read_bn_history end in a result or one CheckpointError."""
        runs = {r.run_dir: r for r in ck.list_runs(self.root)}
        assert set(runs) == {self.good, self.bad}
        assert runs[self.good].status == "finished" and runs[self.good].test_acc == 0.7
        bad = runs[self.bad]
        if bad.status == "unreadable":
            _one_sentence(bad.error)
        else:  # what the pages use is typed as they expect
            assert isinstance(bad.created, str) and isinstance(bad.arch, str) and isinstance(bad.knobs, dict)
            assert isinstance(bad.epochs, int) and isinstance(bad.epochs_done, int)
            assert bad.test_acc is None or isinstance(bad.test_acc, (int, float))
        for fn in (ck.load_run, ck.read_bn_history, ck.read_metrics):
            try:
                fn(self.bad)
            except ck.CheckpointError as e:
                _one_sentence(str(e))

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def folder():
    f = _Folder()
    yield f
    f.close()


def _set(obj: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    for p in parents:
        if not isinstance(obj.get(p), dict):
            obj[p] = {}
        obj = obj[p]
    obj[last] = value
    return obj


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(CONFIG_PATHS), values), min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 400)), whole=st.one_of(st.none(), values))
def _config_case(folder, changes, cut, whole):
    cfg = json.loads(folder.config)
    for path, value in changes:
        _set(cfg, path, value)
    text = json.dumps(whole if whole is not None else cfg)  # NaN and Infinity written as JSON does not allow
    if cut is not None:
        text = text[:cut]
    open(os.path.join(folder.bad, ck.CONFIG), "w").write(text)
    folder.check()


@FUZZ
@given(lines=st.lists(st.one_of(values.map(json.dumps), st.text(max_size=40),
                                st.fixed_dictionaries({"epoch": scalars, "test_acc": scalars,
                                                       "train_acc": scalars}).map(json.dumps)),
                      max_size=5))
def _metrics_case(folder, lines):
    open(os.path.join(folder.bad, ck.CONFIG), "w").write(folder.config)
    open(os.path.join(folder.bad, ck.METRICS), "w").write("\n".join(lines) + "\n")
    folder.check()


@FUZZ
@given(rows=st.lists(st.one_of(values, st.fixed_dictionaries({
    "epoch": scalars, "step": scalars,
    "layers": st.lists(st.fixed_dictionaries({"name": scalars, **{k: st.lists(scalars, max_size=3)
                                                                  for k in ck._BN_VECTORS}}), max_size=2)})),
    max_size=3))
def _bn_case(folder, rows):
    open(os.path.join(folder.bad, ck.METRICS), "w").write(folder.metrics)
    os.makedirs(os.path.join(folder.bad, ck.BN_DIR), exist_ok=True)
    open(os.path.join(folder.bad, ck.BN_DIR, "epoch-0001.jsonl"), "w").write(
        "".join(json.dumps(r) + "\n" for r in rows))
    folder.check()
    try:
        for snap in ck.read_bn_history(folder.bad):
            assert isinstance(snap.epoch, int) and all(isinstance(v, float) for layer in snap.layers
                                                       for v in layer.gamma)
    except ck.CheckpointError:
        pass


@pytest.mark.parametrize("case", [_config_case, _metrics_case, _bn_case], ids=["config", "metrics", "bn_history"])
def test_fuzzed_run_files_give_a_result_or_one_sentence(folder, case):
    t = time.perf_counter()
    out, grew = peak_rss_delta(lambda: case(folder))
    if isinstance(out, BaseException):
        raise out
    assert time.perf_counter() - t < 120
    assert grew is None or grew < BUDGET, f"grew by {grew / MB:.0f} MB"


# -- URL query values --------------------------------------------------------------------------------------------

KNOB_NAMES = sorted({k.name for spec in ARCHS.values() for k in spec.knobs})
url_text = (st.text(max_size=30) | st.sampled_from(["٤", "４", "1_0", "4,,4", "64,64,64,64,64,61", "126", "1024", "3",
                                                     "1e308", "nan", "-inf", "0x10", "[4,4]", "on", "maybe",
                                                     "![x](http://127.0.0.1:9/t.png)", "9" * 5000])
            | st.integers(-10, 10_000).map(str))
url_params = st.fixed_dictionaries(
    {"arch": st.sampled_from(sorted(ARCHS)) | st.text(max_size=12)},
    optional={**{k: url_text for k in KNOB_NAMES}, "res": url_text, "in": url_text, "classes": url_text})


@settings(FUZZ, max_examples=200)
@given(params=url_params)
def _url_case(params):
    pytest.importorskip("streamlit")
    from cnnlab.ui import widgets

    t = time.perf_counter()
    initial, errors = widgets.read_url(params)
    for e in errors:
        _one_sentence(e)
    if not initial:
        return
    for v in [*initial["knobs"].values(), *(initial.get(k) for k in ("resolution", "in_channels", "num_classes"))]:
        assert not isinstance(v, str) or v.isascii() or not v  # numbers are ASCII numbers
    try:
        cfg = fitting(initial["arch"], initial["knobs"], in_channels=initial.get("in_channels", 1),
                      num_classes=initial.get("num_classes", 10), resolution=initial.get("resolution"))
    except KnobError as e:
        _one_sentence(str(e))
    else:
        try:
            budget.check_model(cfg)
        except budget.LimitError as e:
            _one_sentence(str(e))
    assert time.perf_counter() - t < 30  # a probe is bounded before it runs


def test_fuzzed_url_values_give_a_model_or_one_sentence():
    t = time.perf_counter()
    out, grew = peak_rss_delta(_url_case)
    if isinstance(out, BaseException):
        raise out
    assert time.perf_counter() - t < 180
    assert grew is None or grew < BUDGET, f"grew by {grew / MB:.0f} MB"


@settings(max_examples=6, deadline=None, database=None)
@given(params=url_params)
def test_fuzzed_links_render_the_architecture_page(params):
    """The page itself, for a handful of links: rendered, no exception box, warnings as plain text."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    from helpers import APP
    from test_hostile_app import assert_plain

    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for w in (*at.warning, *at.error):
        assert_plain(w.value)
        assert len(w.value) < 600
