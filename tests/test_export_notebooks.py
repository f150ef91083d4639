"""Exported notebooks run end to end (#25 §3, §5): one of each kind (the Architecture page's model, a saved run, an
exercise) executed by nbclient in a fresh kernel on a tiny subset of Fashion-MNIST, each within a minute; the run's
notebook loads model.pt with weights_only and reproduces the test accuracy the run reported."""
from __future__ import annotations

import json
import os
import re
import time

import pytest

from helpers import needs_fmnist, save_tiny_run

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

from cnnlab import exercises as X  # noqa: E402
from cnnlab.export.book import Recipe, exercise_export, model_export, run_export  # noqa: E402
from cnnlab.registry import resolve  # noqa: E402

LIMIT_S = 60
TRACE = re.compile(r"^(\w+) output shape:\t torch\.Size\(\[[0-9, ]+\]\)$", re.M)
EPOCH = re.compile(r"^epoch (\d+): loss ([0-9.]+), train acc ([0-9.]+), test acc ([0-9.]+)$", re.M)


@pytest.fixture(autouse=True)
def jupyter_env(monkeypatch):
    """The kernel inherits this process's environment: importing streamlit (another test module) sets
    MPLBACKEND=Agg, which a student's Jupyter does not have and which would keep the plots out of the outputs.
    The kernel gets Jupyter's own inline backend, named, so nothing run before in this process decides it."""
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def execute(export, folder) -> tuple[str, float]:
    """Run the export's notebook (as nbformat reads the .ipynb) in a fresh kernel in `folder`; return the text of
    every stream output and the wall time. A cell that raises fails the test with its traceback."""
    nb = nbformat.reads(export.ipynb(), as_version=4)
    nbformat.validate(nb)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=LIMIT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    wall = time.perf_counter() - t0
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    kinds = [(o.get("output_type"), sorted(o.get("data", {}))) for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if o.get("output_type") != "stream"]
    assert images >= 1, f"no curve was plotted; the outputs other than text: {kinds}"
    return text, wall


@needs_fmnist
def test_architecture_notebook_runs(tmp_path):
    cfg = resolve("lenet", {"batchnorm": "nn", "activation": "relu"}, resolution=32)
    text, wall = execute(model_export(cfg, "en", Recipe(lr=0.5, batch_size=64, num_epochs=2, train_size=512,
                                                        test_size=256)), tmp_path)
    assert len(TRACE.findall(text)) == len([m for m in cfg.build()]), text
    epochs = EPOCH.findall(text)
    assert [int(e[0]) for e in epochs] == [1, 2], text
    assert wall < LIMIT_S, wall


@needs_fmnist
def test_run_notebook_reproduces_the_reported_accuracy(tmp_path):
    """A finished run (BN-LeNet at 32×32: a resize; subsets of both splits) exported in Chinese: the notebook loads
    its model.pt and gets the run's own test accuracy, to the last digit; then trains again from scratch."""
    events = save_tiny_run(tmp_path / "runs", model=resolve("lenet", {"batchnorm": "nn"}, resolution=32),
                           epochs=2, train_size=600, test_size=300, batch_size=64, lr=0.5, seed=3)
    run_dir, reported = events[-1].run_dir, events[-1].test_acc
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["final"]["test_acc"] == pytest.approx(reported, abs=1e-7)
    assert reported != pytest.approx(0.1), "the run learned nothing: the check below would prove little"
    export = run_export(run_dir, "zh", weights=os.path.join(run_dir, "model.pt"))
    assert "weights_only=True" in export.py() and "从 CNN Lab 导出" in export.py()
    text, wall = execute(export, tmp_path)
    m = re.search(r"^test acc ([0-9.]+) \(epoch 2\); the run reported ([0-9.]+)$", text, re.M)
    assert m, text
    assert float(m.group(1)) == pytest.approx(reported, abs=1e-6)
    assert float(m.group(2)) == pytest.approx(reported, abs=1e-6)
    assert [int(e[0]) for e in EPOCH.findall(text)] == [1, 2], text  # trained again with the run's recipe
    assert wall < LIMIT_S, wall


@needs_fmnist
def test_exercise_notebook_runs_a_and_b(tmp_path):
    ex = X.get("lenet_relu")
    text, wall = execute(exercise_export(ex, "en", train_size=256, test_size=128, epochs=1, batch_size=64), tmp_path)
    params = re.findall(r"^([AB]) (\d+) parameters$", text, re.M)
    assert [p[0] for p in params] == ["A", "B"]
    assert len(EPOCH.findall(text)) == 2, text  # one epoch of A, one of B
    assert wall < LIMIT_S, wall


def test_notebook_packages_are_where_they_belong():
    """nbformat builds the .ipynb downloads: the app needs it (requirements.txt, the image); nbclient, ipykernel and
    matplotlib only run the exported notebooks in these tests (requirements-dev.txt), never in the image."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def names(f):
        with open(os.path.join(root, f)) as fh:
            return {re.split(r"[<>=!~\[ ;]", ln.split("#")[0].strip(), maxsplit=1)[0].lower()
                    for ln in fh if ln.split("#")[0].strip() and not ln.startswith("-")}

    runtime, dev = names("requirements.txt"), names("requirements-dev.txt")
    assert "nbformat" in runtime
    assert {"nbclient", "ipykernel", "matplotlib"} <= dev
    assert not runtime & {"nbclient", "ipykernel", "matplotlib"}
