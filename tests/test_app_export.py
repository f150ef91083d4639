"""AppTest of the export (#25 §1, §3): the Architecture page's Code panel follows the knobs and the language, and
the downloads on the Architecture, Train, Saved runs and Exercises pages serve what cnnlab.export builds.

A download's file is made when its button is pressed (a callable): the test records what each page hands to
Streamlit's media file manager and calls it, as a press would."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit")
nbformat = pytest.importorskip("nbformat")
from streamlit.runtime.media_file_manager import MediaFileManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from helpers import APP, assert_no_exception, open_page, save_tiny_run  # noqa: E402

from cnnlab.export import model_code  # noqa: E402
from cnnlab.registry import resolve  # noqa: E402

TIMEOUT = 60


@pytest.fixture
def served(monkeypatch):
    """{file name: the file's text} for every download a page drew (its callable run, as a press runs it)."""
    files: dict[str, object] = {}
    add_deferred = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, *args, **kw):
        files[file_name] = (data_callable, mimetype)
        return add_deferred(self, data_callable, mimetype, coordinates, file_name, *args, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)

    class Files:
        def names(self):
            return set(files)

        def text(self, name):
            make, _ = files[name]
            out = make()
            return out.decode() if isinstance(out, bytes) else out

        def raw(self, name):
            return files[name][0]()

        def mime(self, name):
            return files[name][1]

        def clear(self):
            files.clear()

    return Files()


def _code(at) -> str:
    assert len(at.code) >= 1, "no code panel"
    return at.code[-1].value


def _notebook(text: str):
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    return nb


def test_code_panel_follows_the_knobs_and_offers_both_files(served):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_no_exception(at)
    assert at.get_by_key("arch_code") is not None
    code = _code(at)
    assert code == model_code(resolve("lenet", {}), "en").script().rstrip("\n")  # st.code drops the last newline
    assert at.code[-1].language == "python"  # st.code draws its copy button
    assert {"lenet.py", "lenet.ipynb"} <= served.names()
    compile(served.text("lenet.py"), "lenet.py", "exec")
    assert served.mime("lenet.ipynb") == "application/x-ipynb+json"
    nb = _notebook(served.text("lenet.ipynb"))
    assert any(c.cell_type == "markdown" and "d2l 7.6 LeNet" in c.source for c in nb.cells)

    served.clear()
    at.selectbox(key="arch_arch").set_value("vgg").run()
    at.slider(key="arch_k_vgg_ratio").set_value(4).run()
    assert_no_exception(at)
    code = _code(at)
    assert any(ln.startswith("ratio = 4  # ") for ln in code.splitlines())
    assert "def vgg_block(num_convs, in_channels, out_channels):" in code
    assert code == model_code(resolve("vgg", {"ratio": 4}), "en").script().rstrip("\n")
    assert "ratio = 4" in served.text("vgg.py")


def test_code_panel_comments_follow_the_language(served):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["lang"] = "zh"
    at.run()
    assert_no_exception(at)
    code = _code(at)
    assert "# 形状变化" in code and "# Shape trace" not in code
    assert "# 从 CNN Lab 导出" not in code  # the panel is the model only; the notebook carries the text cells
    nb = _notebook(served.text("lenet.ipynb"))
    assert any("d2l-zh 6.6 LeNet" in c.source for c in nb.cells if c.cell_type == "markdown")


def test_train_page_downloads_carry_the_recipe(served):
    at = open_page("app_pages/train.py", TIMEOUT)
    at.number_input(key="train_epochs").set_value(3).run()
    at.number_input(key="train_seed").set_value(7).run()
    assert_no_exception(at)
    names = {n for n in served.names() if n and n.endswith("-train.py")}
    assert names, served.names()
    text = served.text(names.pop())
    compile(text, "train.py", "exec")
    assert any(ln.startswith("lr, batch_size, num_epochs = ") and ln.endswith(", 3") for ln in text.splitlines())
    assert "seed = 7" in text.splitlines()


def test_saved_run_downloads_the_notebook_and_its_weights(served, monkeypatch, tmp_path):
    import torch

    save_tiny_run(tmp_path, epochs=1, train_size=200, test_size=100)
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path))
    at = open_page("app_pages/runs.py", TIMEOUT)
    assert at.get_by_key("runs_dl_weights") is not None
    run_id = at.selectbox(key="runs_pick").value.rstrip("/").split("/")[-1]
    nb = _notebook(served.text(f"{run_id}.ipynb"))
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "torch.load(weights, map_location='cpu', weights_only=True)" in code
    assert "weights = 'model.pt'" in code  # next to the notebook: the page downloads both
    import io

    saved = torch.load(io.BytesIO(served.raw("model.pt")), weights_only=True)
    net_code = model_code(resolve("lenet", {}), "en").script()
    ns: dict = {}
    exec(compile(net_code, "model.py", "exec"), ns)  # noqa: S102 — our own export
    ns["net"].load_state_dict(saved["state_dict"], strict=True)


def test_exercise_downloads_a_and_b(served):
    at = open_page("app_pages/exercises.py", TIMEOUT)
    at.selectbox(key="ex_pick").set_value("bn_position").run()
    assert_no_exception(at)
    assert "exercise-bn_position.ipynb" in served.names(), served.names()
    nb = _notebook(served.text("exercise-bn_position.ipynb"))
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "net_a = net" in code and "net_b = net" in code
    assert "bn_position = 'before_act'" in code and "bn_position = 'after_act'" in code
    assert code.count("torch.manual_seed(seed)") >= 3  # the recipe, then A and B from the same seed
    assert json.loads(served.text("exercise-bn_position.ipynb"))["nbformat"] == 4


def test_without_nbformat_the_page_says_so_and_keeps_the_py(served, monkeypatch):
    """nbformat is a runtime requirement; an image that lacks it still draws the page: the .py and one sentence."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name == "nbformat"
                        else real(name, *a, **k))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_no_exception(at)
    assert served.names() == {"lenet.py"}
    assert any("needs nbformat" in c.value for c in at.caption)
