"""AppTest of the Train page: presets, validation, a tiny real run that completes and plots, stop, queue.

Runs are real (cnnlab.engine on Fashion-MNIST) but tiny: LeNet on 256 training / 128 test images.
"""
import json
import os
import time

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from helpers import assert_no_exception, open_page  # noqa: E402

engine = pytest.importorskip("cnnlab.engine")

from cnnlab.ui.common import registry  # noqa: E402

TIMEOUT = 60


@pytest.fixture(autouse=True)
def ckpt_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    yield tmp_path / "ckpt"
    registry().stop_all(timeout=10)  # the registry is process-wide: leave nothing running


def _train_page() -> AppTest:
    return open_page("pages/train.py", TIMEOUT)


_ok = assert_no_exception


def _tiny(at, n_train=256, n_test=128, epochs=1):
    at.number_input(key="train_n_train").set_value(n_train)
    at.number_input(key="train_n_test").set_value(n_test)
    at.number_input(key="train_epochs").set_value(epochs)
    return at


def _job(at):
    return registry().get(at.session_state["train_job_pick"])


def _wait_steps(job, timeout=30):
    t = time.time()
    while not job.view().steps:
        assert time.time() - t < timeout, "no step within the timeout"
        assert job.view().state in ("queued", "running"), job.view().message
        time.sleep(0.05)


def test_page_renders_with_cpu_note_and_lenet_preset():
    at = _train_page()
    assert at.selectbox(key="train_preset").value == "lenet"
    assert at.selectbox(key="train_arch").value == "lenet"
    assert at.number_input(key="train_lr").value == pytest.approx(0.9)
    assert at.number_input(key="train_bs").value == 256
    assert any("CPU" in i.value for i in at.info)  # this machine has no GPU


def test_presets_and_arch_change_fill_book_values():
    at = _train_page()
    at.selectbox(key="train_preset").set_value("resnet_cpu").run()
    _ok(at)
    assert at.selectbox(key="train_arch").value == "resnet"
    assert at.number_input(key="train_res_resnet").value == 32
    assert at.number_input(key="train_n_train").value == 10000
    assert at.number_input(key="train_lr").value == pytest.approx(0.05)
    at.selectbox(key="train_arch").set_value("vgg").run()
    _ok(at)
    assert at.slider(key="train_k_vgg_ratio").value == 4  # the book trains VGG with ratio 4
    assert at.number_input(key="train_res_vgg").value == 224
    assert at.number_input(key="train_lr").value == pytest.approx(0.05)
    assert at.selectbox(key="train_preset").value == "custom"


def test_invalid_settings_show_error():
    at = _train_page()
    at.number_input(key="train_res_lenet").set_value(8)
    at.button(key="train_start").click().run()
    _ok(at)
    assert any("resolution must be at least 12" in e.value for e in at.error)
    assert "train_job_pick" not in at.session_state or not registry().get(at.session_state["train_job_pick"]) \
        or registry().get(at.session_state["train_job_pick"]).view().meta.get("resolution") != 8


def test_tiny_run_completes_plots_and_saves(ckpt_root):
    at = _tiny(_train_page())
    at.button(key="train_start").click().run()
    _ok(at)
    job = _job(at)
    assert job is not None and job.wait(60), "the tiny run did not finish in 60 s"
    at.run()
    _ok(at)
    assert at.success, [e.value for e in at.error]
    fig = json.loads(at.get_by_key("train_curves").proto.spec)
    names = [d["name"] for d in fig["data"]]
    assert "train loss" in names and "test acc" in names
    test_acc = [d for d in fig["data"] if d["name"] == "test acc"][0]
    assert len(test_acc["y"]) == 1 and 0.0 <= test_acc["y"][0] <= 1.0
    v = job.view()
    assert v.state == "done" and v.run_dir and os.path.isdir(v.run_dir)
    assert os.path.dirname(v.run_dir) == str(ckpt_root)
    assert os.path.isfile(os.path.join(v.run_dir, "model.pt"))
    assert not at.button(key="train_stop").proto.disabled is False  # stop is disabled once finished


def test_stop_ends_run_quickly_and_keeps_checkpoint():
    at = _tiny(_train_page(), n_train=4096, n_test=128, epochs=50)
    at.number_input(key="train_bs").set_value(32)
    at.button(key="train_start").click().run()
    _ok(at)
    job = _job(at)
    _wait_steps(job)
    at.run()
    assert at.button(key="train_stop").proto.disabled is False
    at.button(key="train_stop").click().run()
    assert job.wait(5)
    took = job.finished - job.stop_requested
    assert 0 <= took < 1.0, f"the run ended {took:.2f} s after the stop request"
    at.run()
    _ok(at)
    v = job.view()
    assert v.state == "stopped", v.state
    assert any("Stopped" in w.value for w in at.warning)
    assert v.run_dir and os.path.isfile(os.path.join(v.run_dir, "model.pt"))
    cfg = json.load(open(os.path.join(v.run_dir, "config.json")))
    assert cfg["status"] == "stopped"


def test_queue_position_and_run_survives_reload():
    at = _tiny(_train_page(), n_train=4096, n_test=128, epochs=50)
    at.number_input(key="train_bs").set_value(32)
    at.button(key="train_start").click().run()
    first = _job(at)
    at.button(key="train_start").click().run()
    _ok(at)
    second = _job(at)
    assert second.id != first.id
    assert any("position 1" in i.value for i in at.info)
    # a reload is a new session: the page shows the active run from the process-wide registry
    again = _train_page()
    assert again.selectbox(key="train_job_pick").value == first.id
    # and a page switch keeps the chosen run
    at.switch_page("pages/architecture.py").run()
    at.switch_page("pages/train.py").run()
    _ok(at)
    assert at.selectbox(key="train_job_pick").value == second.id
    at.button(key="train_stop").click().run()  # cancel the queued run
    assert second.wait(2) and second.view().state == "cancelled"
    registry().stop(first.id)
    assert first.wait(5)


def test_settings_survive_a_page_switch():
    at = _train_page()
    at.selectbox(key="train_preset").set_value("densenet_cpu").run()
    at.number_input(key="train_epochs").set_value(7).run()
    at.switch_page("pages/runs.py").run()
    at.switch_page("pages/train.py").run()
    _ok(at)
    assert at.selectbox(key="train_arch").value == "densenet"
    assert at.number_input(key="train_epochs").value == 7
    assert at.number_input(key="train_res_densenet").value == 32
    assert at.selectbox(key="train_preset").value == "custom"
