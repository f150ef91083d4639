"""AppTest of the Runs page: compare curves, load a run, predict on test images and uploads, feature maps,
confusion matrix — on two tiny saved LeNet runs."""
import io
import os
import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from helpers import assert_no_exception, open_page, save_tiny_run  # noqa: E402

pytest.importorskip("cnnlab.engine")

TIMEOUT = 60


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt_runs")
    for act in ("sigmoid", "relu"):
        save_tiny_run(root, knobs={"activation": act}, lr=0.9 if act == "sigmoid" else 0.1, log_every=5)
    return root


def _runs_page(monkeypatch, root) -> AppTest:
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(root))
    return open_page("app_pages/runs.py", TIMEOUT)


_ok = assert_no_exception


def _fig(at, key):
    return json.loads(at.get_by_key(key).proto.spec)


def _png(size=(40, 30), color=200) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_no_runs(monkeypatch, tmp_path):
    at = _runs_page(monkeypatch, tmp_path / "none")
    assert any("No saved runs" in i.value for i in at.info)


def test_compare_two_runs_on_one_chart(monkeypatch, saved):
    at = _runs_page(monkeypatch, saved)
    assert len(at.multiselect(key="runs_compare").value) == 2
    data = _fig(at, "runs_compare_fig")["data"]
    assert len(data) == 2 and all(len(d["x"]) == 2 for d in data)  # two runs × two epochs
    at.radio(key="runs_metric__en").set_value("train_loss").run()
    _ok(at)
    assert all(max(d["y"]) > 0.1 for d in _fig(at, "runs_compare_fig")["data"])


def test_load_predict_feature_maps_confusion(monkeypatch, saved):
    at = _runs_page(monkeypatch, saved)
    assert at.selectbox(key="runs_pick").value
    grid = _fig(at, "runs_grid")["data"]
    assert len(grid) == 16 and len(grid[0]["z"]) == 28
    assert at.selectbox(key="runs_conv").options == ["0 · Conv2d 1→6, 5×5", "3 · Conv2d 6→16, 5×5"]
    at.selectbox(key="runs_conv").set_value("3").run()  # set by value, shown with its label
    _ok(at)
    assert any(c.value.startswith("3: 16×10×10") for c in at.caption)
    at.number_input(key="runs_conf_n").set_value(200).run()
    _ok(at)
    conf = _fig(at, "runs_confusion")["data"][0]["z"]
    assert len(conf) == 10 and sum(map(sum, conf)) == 200
    assert any(c.value.startswith("accuracy on these images") for c in at.caption)


def test_upload_good_and_bad_images(monkeypatch, saved):
    at = _runs_page(monkeypatch, saved)
    at.file_uploader(key="runs_upload").upload("shirt.png", _png(), "image/png").run()
    _ok(at)
    assert not at.error
    probs = _fig(at, "runs_upload_probs")["data"][0]["x"]
    assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-4
    assert len(_fig(at, "runs_upload_input")["data"][0]["z"]) == 28  # converted to the model's 28×28 input
    at.file_uploader(key="runs_upload").set_value(("notes.png", b"this is not a picture", "image/png")).run()
    _ok(at)
    assert any("not an image" in e.value for e in at.error)
    at.file_uploader(key="runs_upload").set_value(("huge.png", b"\x89PNG" + b"0" * (6 * 1024 * 1024),
                                                   "image/png")).run()
    _ok(at)
    assert any("the limit is" in e.value for e in at.error)


def test_corrupt_run_folder_is_listed_not_fatal(monkeypatch, saved, tmp_path):
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(saved, root)
    bad = root / "broken-run"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    at = _runs_page(monkeypatch, root)
    table = at.dataframe[0].value
    assert "unreadable" in set(table["status"])
    assert at.get_by_key("runs_grid")


def test_legend_dash_for_missing_accuracy_and_confusion_size_reset_per_run(monkeypatch, saved, tmp_path):
    import shutil

    root = tmp_path / "ckpt"
    shutil.copytree(saved, root)
    started = save_tiny_run(root, epochs=1, train_size=256, test_size=128)[-1].run_dir
    os.remove(os.path.join(started, "metrics.jsonl"))  # a run with no finished epoch yet: no accuracy
    at = _runs_page(monkeypatch, root)
    _ok(at)
    table = at.dataframe[0].value
    accs = list(table["test acc"])
    assert "—" in accs and "None" not in map(str, accs) and not any(a is None for a in accs), accs
    assert any("✗ prediction (truth)" in c.value for c in at.caption)
    at.number_input(key="runs_conf_n").set_value(200).run()
    _ok(at)
    current = at.selectbox(key="runs_pick").value
    other = [str(root / n) for n in sorted(os.listdir(root)) if not n.startswith(".") and str(root / n) != current][0]
    at.selectbox(key="runs_pick").set_value(other).run()
    _ok(at)
    assert at.selectbox(key="runs_pick").value == other
    assert at.number_input(key="runs_conf_n").value != 200  # back to the new run's own default
