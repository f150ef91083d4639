"""`python -m cnnlab archs | trace`: documented JSON for every architecture; bad input exits 2 in one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnlab.__main__ import main
from cnnlab.registry import arch_names, get_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("arch", arch_names())
def test_trace_json_schema(capsys, arch):
    rc, out, err = run_main(capsys, "trace", arch, "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d) == {"arch", "knobs", "input", "params", "trainable_params", "macs", "activation_bytes", "layers"}
    spec = get_spec(arch)
    assert d["arch"] == arch and set(d["knobs"]) == {k.name for k in spec.knobs}
    assert d["input"][0] == 1 and d["input"][1] == d["input"][2] > 0
    assert d["params"] >= d["trainable_params"] > 0 and d["macs"] > 0 and d["activation_bytes"] > 0
    assert d["layers"], "layers lists every module"
    for layer in d["layers"]:
        assert set(layer) == {"name", "type", "depth", "output_shape", "params", "macs"}
        assert layer["depth"] >= 1 and len(layer["output_shape"]) in (1, 3)
    assert d["layers"][-1]["output_shape"] == [10]
    assert sum(layer["params"] for layer in d["layers"] if layer["depth"] == 1) == d["params"]


def test_trace_json_with_knobs_and_input(capsys):
    rc, out, _ = run_main(capsys, "trace", "mobilenet_v1", "--set", "alpha=0.5", "--set", "rho=0.5",
                          "--in-channels", "3", "--num-classes", "1000", "--resolution", "224", "--json")
    d = json.loads(out)
    assert rc == 0 and d["knobs"] == {"alpha": 0.5, "rho": 0.5, "activation": "relu"}
    assert d["input"] == [3, 112, 112]  # ρ scales the resolution the network sees
    assert d["layers"][-1]["output_shape"] == [1000]


def test_trace_human_table(capsys):
    rc, out, _ = run_main(capsys, "trace", "lenet")
    assert rc == 0
    assert "Conv2d" in out and "16×5×5" in out and "params 61,706" in out


def test_archs_json_lists_every_knob(capsys):
    rc, out, _ = run_main(capsys, "archs", "--json")
    d = {a["name"]: a for a in json.loads(out)}
    assert rc == 0 and list(d) == arch_names()
    ratio = {k["name"]: k for k in d["vgg"]["knobs"]}["ratio"]
    assert ratio["range"] == "an integer in 1..64" and ratio["help_zh"]


@pytest.mark.parametrize("argv,msg", [
    (["trace", "vgg", "--set", "ratio=0"], "ratio must be an integer in 1..64, got '0'"),
    (["trace", "vgg", "--set", "ratio"], "--set takes KNOB=VALUE"),
    (["trace", "densenet", "--set", "compression=2"], "compression must be a number in (0, 1]"),
    (["trace", "alexnet", "--resolution", "32"], "resolution must be at least 65 for alexnet"),
    (["trace", "nosuchnet"], "unknown architecture 'nosuchnet'"),
    (["trace", "vgg", "--set", "depth=3"], "unknown knob 'depth' for vgg"),
    (["trace", "lenet", "--resolution", "0"], "resolution must be an integer in 1..1024"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, msg):
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2 and out == ""
    assert msg in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["trace", "vgg", "--set", "ratio=x"], ["trace", "lenet", "--resolution", "abc"],
                                  ["frobnicate"]])
def test_subprocess_never_shows_a_traceback(argv):
    p = subprocess.run([sys.executable, "-m", "cnnlab", *argv], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_core_imports_with_torch_alone():
    """The GPU machine has torch and torchvision only: the engine, the executor, checkpoints and the CLI parser
    must import without streamlit, torchinfo, plotly or tqdm."""
    code = ("import sys\n"
            "for m in ('streamlit', 'torchinfo', 'plotly', 'tqdm', 'PIL.ImageOps'): sys.modules[m] = None\n"
            "import cnnlab.engine, cnnlab.runs, cnnlab.runs.local, cnnlab.runs.admission, cnnlab.checkpoint, cnnlab.data, cnnlab.i18n\n"
            "from cnnlab.__main__ import build_parser\n"
            "build_parser()\n"
            "from cnnlab.registry import build\n"
            "build('lenet')\n"
            "print('ok')\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
