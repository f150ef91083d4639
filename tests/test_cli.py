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


LAYER_KEYS = {"name", "type", "depth", "output_shape", "params", "macs", "input_shape", "kernel_size", "stride",
              "padding", "dilation", "groups", "receptive_field", "jump", "receptive_field_in", "jump_in"}


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
        assert set(layer) == LAYER_KEYS
        assert layer["depth"] >= 1 and len(layer["output_shape"]) in (1, 3)
        windowed = layer["type"] in ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")
        for key in ("kernel_size", "stride", "padding"):
            assert (layer[key] is not None) == windowed, (layer["name"], key)
        assert (layer["groups"] is not None) == (layer["type"] == "Conv2d")
        if len(layer["output_shape"]) == 1:  # flattened: no receptive field
            assert layer["receptive_field"] is None
        elif windowed:
            assert isinstance(layer["receptive_field"], int) and layer["receptive_field"] >= 1
    assert d["layers"][-1]["output_shape"] == [10]
    assert sum(layer["params"] for layer in d["layers"] if layer["depth"] == 1) == d["params"]


def test_trace_json_with_knobs_and_input(capsys):
    rc, out, _ = run_main(capsys, "trace", "mobilenet_v1", "--set", "alpha=0.5", "--set", "rho=0.5",
                          "--in-channels", "3", "--num-classes", "1000", "--resolution", "224", "--json")
    d = json.loads(out)
    assert rc == 0 and d["knobs"] == {"alpha": 0.5, "rho": 0.5, "activation": "relu", "separable": True}
    assert d["input"] == [3, 112, 112]  # ρ scales the resolution the network sees
    assert d["layers"][-1]["output_shape"] == [1000]


def test_trace_human_table(capsys):
    rc, out, _ = run_main(capsys, "trace", "lenet")
    assert rc == 0
    assert "Conv2d" in out and "16×5×5" in out and "params 61,706" in out
    # the second conv: kernel 5, stride 1, no padding; receptive field 6 + (5 − 1)·2 = 14 (worked by hand)
    line = next(ln for ln in out.splitlines() if ln.startswith("3 "))
    assert line.split()[1:5] == ["Conv2d", "16×10×10", "5/1/0", "14"]


def test_trace_json_alexnet_arithmetic(capsys):
    """AlexNet's first layers as d2l 8.1 prints them, with each layer's numbers and its receptive field
    worked out by hand: conv 11/4/1 → 11 px, max-pool 3/2 → 11 + 2·4 = 19, conv 5/1/2 → 19 + 4·8 = 51."""
    rc, out, _ = run_main(capsys, "trace", "alexnet", "--json")
    layers = {d["name"]: d for d in json.loads(out)["layers"]}
    assert rc == 0
    got = [(layers[n]["kernel_size"], layers[n]["stride"], layers[n]["padding"], layers[n]["groups"],
            layers[n]["output_shape"], layers[n]["receptive_field"]) for n in ("0", "2", "3")]
    assert got == [(11, 4, 1, 1, [96, 54, 54], 11), (3, 2, 0, None, [96, 26, 26], 19), (5, 1, 2, 1, [256, 26, 26], 51)]
    assert layers["1"]["kernel_size"] is None and layers["1"]["receptive_field"] == 11  # ReLU keeps the field
    assert layers["13"]["type"] == "Flatten" and layers["13"]["receptive_field"] is None


def test_trace_too_small_prints_the_trace_up_to_there(capsys):
    """AlexNet at 32 px: 32 → 6 → 2 → 2, then the 3×3 pool gets 2×2: ⌊(2 − 3 + 2·0)/2⌋ + 1 = 0. The partial
    trace goes to stdout, one line on stderr, exit 2."""
    rc, out, err = run_main(capsys, "trace", "alexnet", "--resolution", "32")
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("error: input too small: layer 5 (MaxPool2d) gets 2×2, ⌊(2 − 3 + 2·0)/2⌋ + 1 = 0")
    assert "resolution must be at least 65 for alexnet" in err
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines[2:8]] == ["0", "1", "2", "3", "4", "5"]
    assert "96×6×6" in lines[2] and "256×2×2" in lines[5] and "Linear" not in out
    assert lines[-1] == "5 (MaxPool2d): ⌊(2 − 3 + 2·0)/2⌋ + 1 = 0"
    rc, out, err = run_main(capsys, "trace", "alexnet", "--resolution", "32", "--json")
    d = json.loads(out)
    assert rc == 2 and err.count("\n") == 1
    assert d["too_small"] == {"layer": "5", "type": "MaxPool2d", "input_hw": [2, 2], "formula": "⌊(2 − 3 + 2·0)/2⌋ + 1 = 0"}
    assert [x["name"] for x in d["layers"]] == ["0", "1", "2", "3", "4", "5"]
    assert d["layers"][0]["output_shape"] == [96, 6, 6] and d["layers"][0]["macs"] is None


def test_trace_too_small_inside_a_block(capsys):
    """DenseNet at 20 px: the last transition's 2×2 average pool gets 1×1; the blocks still open have no output."""
    rc, out, err = run_main(capsys, "trace", "densenet", "--resolution", "20", "--json")
    d = json.loads(out)
    assert rc == 2 and "input too small: layer 6.3 (AvgPool2d) gets 1×1" in err
    last = d["layers"][-1]
    assert last["name"] == "6.3" and last["kernel_size"] == 2 and last["input_shape"][1:] == [1, 1]
    assert {x["name"]: x["output_shape"] for x in d["layers"]}["6"] is None  # the transition never finished


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
    must import without streamlit, torchinfo, plotly or tqdm; a config is measured there too (no MACs)."""
    code = ("import sys\n"
            "for m in ('streamlit', 'torchinfo', 'plotly', 'tqdm', 'PIL.ImageOps'): sys.modules[m] = None\n"
            "import cnnlab.engine, cnnlab.runs, cnnlab.runs.local, cnnlab.runs.admission, cnnlab.checkpoint, cnnlab.data, cnnlab.i18n\n"
            "from cnnlab.__main__ import build_parser\n"
            "build_parser()\n"
            "from cnnlab.measure import fitting, measure\n"
            "assert fitting('lenet').build() is not None\n"
            "m = measure(fitting('lenet'))\n"
            "assert m.fits and m.cost.macs is None and m.cost.params == 61706 and m.layers[-1].output_shape == [10]\n"
            "from cnnlab.__main__ import main\n"
            "assert main(['trace', 'lenet']) == 0\n"
            "print('ok')\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 0 and p.stdout.strip().splitlines()[-1] == "ok", p.stderr
    assert "MACs unknown (torchinfo is not installed)" in p.stdout   # the trace still prints, without MACs
