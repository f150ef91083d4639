"""AppTest of the BatchNorm page: scratch-vs-nn equality demo, γ/β heat maps of saved and live BN runs."""
import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from helpers import open_page, save_tiny_run  # noqa: E402

pytest.importorskip("cnnlab.engine")

from cnnlab.runs.view import view  # noqa: E402
from cnnlab.ui.common import executor  # noqa: E402

TIMEOUT = 60


@pytest.fixture(scope="module")
def bn_runs(tmp_path_factory):
    """A saved BN-LeNet (scratch BatchNorm) run: 2 epochs on 1,000 images, snapshots every 2 steps."""
    root = tmp_path_factory.mktemp("ckpt_bn")
    save_tiny_run(root, knobs={"batchnorm": "scratch"}, log_every=2, bn_every=2)
    return root


def _bn_page(monkeypatch, root) -> AppTest:
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(root))
    return open_page("app_pages/batchnorm.py", TIMEOUT)


def test_no_runs_still_shows_the_equality_demo(monkeypatch, tmp_path):
    # a new session is a new owner: other tests' live runs are not listed
    at = _bn_page(monkeypatch, tmp_path / "empty")
    assert any("No run with batch normalization" in i.value for i in at.info)
    assert at.success and "Equal to within" in at.success[0].value
    diffs = [float(x) for x in at.dataframe[0].value.iloc[:, 2]]
    assert len(diffs) == 6 and max(diffs) < 1e-4
    at.number_input(key="bn_demo_channels").set_value(3).run()
    at.number_input(key="bn_demo_steps").set_value(5).run()
    assert not at.exception and at.success


def test_saved_run_heatmaps_and_statistics(monkeypatch, bn_runs):
    at = _bn_page(monkeypatch, bn_runs)
    src = at.selectbox(key="bn_source")
    saved = [o for o in src.options if o.startswith("saved")]
    assert saved, src.options
    src.set_value(saved[0])
    at.run()
    assert not at.exception
    layers = at.selectbox(key="bn_layer").options
    assert len(layers) == 4  # BN-LeNet: two BatchNorm2d-like, two BatchNorm1d-like layers
    heat = json.loads(at.get_by_key("bn_heat").proto.spec)["data"]
    gamma = heat[0]["z"]
    assert len(gamma) == 6 and len(gamma[0]) >= 2  # 6 channels × several snapshots
    assert any(abs(v - 1.0) > 1e-6 for row in gamma for v in row)  # γ moved away from its init of 1
    at.selectbox(key="bn_layer").set_value(at.selectbox(key="bn_layer").options[1]).run()
    heat = json.loads(at.get_by_key("bn_heat").proto.spec)["data"]
    assert len(heat[0]["z"]) == 16
    stats = json.loads(at.get_by_key("bn_stats").proto.spec)["data"]
    assert {d["name"] for d in stats} >= {"running mean", "batch mean", "running var", "batch var"}


def test_live_bn_run_from_the_train_page(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="train_preset").set_value("bn_lenet").run()
    at.number_input(key="train_n_train").set_value(512)
    at.number_input(key="train_n_test").set_value(128)
    at.number_input(key="train_epochs").set_value(1)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ex = executor()
    rid = at.session_state["train_job_pick"]
    try:
        assert ex.wait(rid, 90)
        at.switch_page("app_pages/batchnorm.py").run()
        assert not at.exception
        assert at.selectbox(key="bn_source").value == f"live:{rid}"
        heat = json.loads(at.get_by_key("bn_heat").proto.spec)["data"]
        assert len(heat[0]["z"]) == 6 and len(heat[0]["z"][0]) == len(view(ex, rid).bn)
        # the finished run's folder is the same run: listed once, and named BN-LeNet (not "LeNet")
        src = at.selectbox(key="bn_source")
        assert len(src.options) == 1, src.options
        assert "BN-LeNet (scratch)" in src.proto.options[0], src.proto.options
    finally:
        if ex.status(rid).active:
            ex.stop(rid, at.session_state["_owner"])
        ex.wait(rid, 30)


def test_gamma_beta_numbers_label_and_colour_bars(monkeypatch, bn_runs):
    at = _bn_page(monkeypatch, bn_runs)
    assert not at.exception
    code = [c.value for c in at.code if ".gamma = tensor([" in c.value]
    assert code and ".beta  = tensor([" in code[0], [c.value for c in at.code]
    assert code[0].count(",") >= 5  # all six channels of the first BN layer
    assert "BN-LeNet (scratch)" in str(at.selectbox(key="bn_source").proto.options)
    spec = json.loads(at.get_by_key("bn_heat").proto.spec)
    bar = spec["data"][0]["colorbar"]
    assert bar["x"] + 0.06 < spec["layout"]["xaxis2"]["domain"][0], (bar, spec["layout"]["xaxis2"]["domain"])
