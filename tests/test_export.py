"""The export's fidelity contract (#25 §2), for every registered architecture, at its defaults and at knob settings
drawn from the registry's ranges; and the CLI `python -m cnnlab export` (§4).

The exported code runs in ONE fresh interpreter (`python -I`, cnnlab and torchvision made unimportable), every case
in its own namespace. Each case must define `net` (an nn.Module) that takes CNN Lab's state_dict with strict=True,
gives the same eval outputs on the same input, and prints a shape trace that agrees with the app's (cnnlab.probe's
top-level rows). At the book's resolution with the default knobs (big models: VGG-11 at 224×224 has 129 M
parameters) the code runs on the meta device: its trace, and its state_dict's names and shapes, against the app's.
"""
from __future__ import annotations

import functools
import json
import math
import os
import random
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from cnnlab.export import model_code
from cnnlab.layers import bn_layers
from cnnlab.measure import fitting, measure, smallest_input
from cnnlab.errors import InputTooSmall
from cnnlab.registry import ARCHS, KnobError, arch_names, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRAWS = (0, 1, 2)                 # drawn knob settings per architecture (fixed seeds)
MAX_PARAMS = 25_000_000           # a drawn case is redrawn above this (ResNet-34 has 21 M whatever its knobs)
TRACE_LINE = re.compile(r"^(\w+) output shape:\t torch\.Size\(\[([0-9, ]*)\]\)$")

RUNNER = textwrap.dedent('''
    import contextlib, io, json, sys, traceback
    sys.modules["cnnlab"] = None          # torch alone: importing these fails
    sys.modules["torchvision"] = None
    import torch
    from torch import nn
    cases = json.load(open(sys.argv[1]))
    results = {}
    for case in cases:
        r = results[case["id"]] = {}
        try:
            code = open(case["code"], encoding="utf-8").read()
            ns = {"__name__": "__main__"}
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                if case["meta"]:
                    with torch.device("meta"):
                        exec(compile(code, case["code"], "exec"), ns)
                else:
                    exec(compile(code, case["code"], "exec"), ns)
            r["trace"] = out.getvalue()
            net = ns.get("net")
            r["is_module"] = isinstance(net, nn.Module)
            if case["meta"]:
                r["state"] = {k: list(v.shape) for k, v in net.state_dict().items()}
                continue
            net.load_state_dict(torch.load(case["state"], weights_only=True), strict=True)
            net.eval()
            with torch.no_grad():
                y = net(torch.load(case["input"], weights_only=True))
            torch.save(y, case["output"])
        except Exception:
            r["error"] = traceback.format_exc()
    results["_imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ("cnnlab", "torchvision")
                                  and sys.modules[m] is not None)
    json.dump(results, open(sys.argv[2], "w"))
''')


# -- drawing knob settings from the registry's ranges --------------------------------------------------------------

def _int_in(rng: random.Random, lo: float, hi: float) -> int:
    """An int in [lo, hi]; log-uniform over wide ranges (fc_width 16..8192), so small and large both come up."""
    lo, hi = int(lo), int(hi)
    if hi - lo <= 16:
        return rng.randint(lo, hi)
    return min(hi, max(lo, int(math.exp(rng.uniform(math.log(max(lo, 1)), math.log(hi + 1))))))


def draw_knob(knob, rng: random.Random, seed: int):
    """A value from the knob's range. Booleans and choices take turns over the seeds (from a drawn start), so the
    draws of an architecture meet every value of a knob with at most len(DRAWS) of them; numbers are drawn."""
    if knob.kind in ("bool", "choice"):
        values = (False, True) if knob.kind == "bool" else knob.choices
        return values[(seed + random.Random(f"{knob.name}").randrange(len(values))) % len(values)]
    if knob.kind == "int":
        return _int_in(rng, knob.lo, knob.hi)
    if knob.kind == "float":
        v = rng.uniform(knob.lo, knob.hi)
        return v if not (knob.lo_open and v <= knob.lo) else knob.hi
    n = rng.randint(knob.min_len, min(knob.max_len, knob.min_len + 3))
    return tuple(_int_in(rng, knob.lo, knob.hi) for _ in range(n))


def _small(cfg) -> bool:
    with torch.device("meta"):
        return sum(p.numel() for p in cfg.build().parameters()) <= MAX_PARAMS


@functools.lru_cache(maxsize=None)
def small_default(arch: str):
    """The default knobs, numerically at the book's resolution where the model is small enough to run here (all but
    AlexNet and VGG, whose 47 M and 129 M parameters go to a small resolution that fits; the meta-device case
    covers their book size)."""
    cfg = resolve(arch, {})
    if _small(cfg):
        return cfg
    return resolve(arch, {}, resolution=max(smallest_input(cfg) or 1, 32))


@functools.lru_cache(maxsize=None)
def drawn_config(arch: str, seed: int):
    """Knobs, input channels, classes and a resolution drawn from the registry's ranges (seeded); redrawn until the
    model is small enough to run here. The resolution is drawn near the defaults' smallest; where the drawn knobs
    need more (more DenseNet transitions), just above what they need."""
    rng = random.Random(f"{arch}:{seed}")
    spec = ARCHS[arch]
    low = smallest_input(resolve(arch, {})) or 1
    for _ in range(100):
        knobs = {k.name: draw_knob(k, rng, seed) for k in spec.knobs}
        dims = dict(in_channels=(1, 3)[seed % 2], num_classes=rng.randint(2, 12))  # grey and RGB in turn
        try:
            cfg = fitting(arch, knobs, resolution=rng.randint(low, low + 24), **dims)
        except InputTooSmall:
            need = smallest_input(resolve(arch, knobs, **dims))
            if need is None or need > 256:
                continue
            cfg = fitting(arch, knobs, resolution=need + rng.randint(0, 7), **dims)
        except KnobError:  # a probe-cost limit: too big
            continue
        if _small(cfg):
            return cfg
    raise AssertionError(f"no drawn setting of {arch} fits the test's budget in 100 tries")


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial BN state (running statistics, γ, β), so eval mode uses every number the export must match."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in bn_layers(model):
            c = m.running_mean.numel()
            m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            m.weight.copy_(0.5 + torch.rand(c, generator=g))
            m.bias.copy_(0.1 * torch.randn(c, generator=g))


def _cases():
    out = []
    for arch in arch_names():
        out.append((arch, "book", "meta"))
        out.append((arch, "default", "small"))
        out += [(arch, f"draw{s}", "small") for s in DRAWS]
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every case written, run in one fresh interpreter; returns {case id: (cfg, model, input, result)}."""
    tmp = tmp_path_factory.mktemp("export")
    jobs, keep = [], {}
    for i, (arch, name, mode) in enumerate(CASES):
        cid = f"{arch}-{name}"
        try:
            if name == "book":
                cfg = resolve(arch, {})
            elif name == "default":
                cfg = small_default(arch)
            else:
                cfg = drawn_config(arch, int(name[4:]))
        except Exception as e:  # noqa: BLE001 — reported by the case's own test
            keep[cid] = (None, None, None, {"error": f"setting up: {e!r}"})
            continue
        code = model_code(cfg, "zh" if i % 2 else "en").script()
        (tmp / f"{cid}.py").write_text(code, encoding="utf-8")
        job = {"id": cid, "code": str(tmp / f"{cid}.py"), "meta": mode == "meta"}
        model = X = None
        if mode == "small":
            torch.manual_seed(i)
            model = cfg.build()
            _randomise(model, i)
            model.eval()
            X = torch.rand(2, *cfg.input_shape, generator=torch.Generator().manual_seed(i))
            torch.save(model.state_dict(), tmp / f"{cid}.state.pt")
            torch.save(X, tmp / f"{cid}.in.pt")
            job.update(state=str(tmp / f"{cid}.state.pt"), input=str(tmp / f"{cid}.in.pt"),
                       output=str(tmp / f"{cid}.out.pt"))
        jobs.append(job)
        keep[cid] = (cfg, model, X, None)
    (tmp / "cases.json").write_text(json.dumps(jobs))
    (tmp / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", str(tmp / "runner.py"), str(tmp / "cases.json"),
                           str(tmp / "results.json")], cwd=str(tmp), env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp / "results.json").read_text())
    assert results.pop("_imported") == [], "the exported code imported cnnlab or torchvision"
    out = {}
    for cid, (cfg, model, X, err) in keep.items():
        r = err or results[cid]
        if "output" not in r and not err and (tmp / f"{cid}.out.pt").exists():
            r["output"] = torch.load(tmp / f"{cid}.out.pt", weights_only=True)
        out[cid] = (cfg, model, X, r)
    return out


def _trace_rows(text: str) -> list[tuple[str, list[int]]]:
    rows = []
    for line in text.splitlines():
        m = TRACE_LINE.match(line)
        assert m, f"not a trace line in the book's style: {line!r}"
        rows.append((m.group(1), [int(x) for x in m.group(2).split(",")]))
    return rows


def _check_trace(cfg, text: str) -> None:
    app = [(r.type, [1, *r.output_shape]) for r in measure(cfg).layers if r.depth == 1]
    assert _trace_rows(text) == app


@pytest.mark.parametrize("arch,name,mode", CASES, ids=[f"{a}-{n}" for a, n, _ in CASES])
def test_exported_code_keeps_the_contract(exported, arch, name, mode):
    cfg, model, X, r = exported[f"{arch}-{name}"]
    assert "error" not in r, r["error"]
    assert r["is_module"], "the exported code does not define `net` as an nn.Module"
    _check_trace(cfg, r["trace"])
    if mode == "meta":  # the book's size: names and shapes of every parameter and buffer, as load_state_dict checks
        with torch.device("meta"):
            app = {k: list(v.shape) for k, v in cfg.build().state_dict().items()}
        assert r["state"] == app
        return
    with torch.no_grad():
        want = model(X)
    got = r["output"]
    assert got.shape == want.shape
    scale = float(want.abs().max()) or 1.0
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * scale), float((got - want).abs().max())


def test_drawn_settings_leave_the_defaults():
    """The draws are not the defaults in disguise: across each architecture's draws every value of a boolean or a
    choice comes up (VGG's four conv_archs: three of them), and every number takes a value other than its default
    (a knob the export ignored would show)."""
    for arch in arch_names():
        cfgs = [drawn_config(arch, s) for s in DRAWS]
        for k in ARCHS[arch].knobs:
            seen = [c.knobs[k.name] for c in cfgs]
            if k.kind in ("bool", "choice"):
                values = (False, True) if k.kind == "bool" else k.choices
                assert len(set(seen)) == min(len(values), len(DRAWS)), (arch, k.name, seen)
            else:
                assert any(v != k.default for v in seen), (arch, k.name, seen)
        assert any(c.in_channels != 1 for c in cfgs) and any(c.num_classes != 10 for c in cfgs)


# -- the command line (#25 §4) -------------------------------------------------------------------------------------

def _cli(capsys, *argv):
    from cnnlab.__main__ import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_py_goes_to_stdout_with_the_knobs_at_the_top(capsys):
    rc, out, err = _cli(capsys, "export", "vgg", "--set", "ratio=8", "--set", "batchnorm=on", "--resolution", "64",
                        "--in-channels", "3", "--num-classes", "5")
    assert rc == 0, err
    compile(out, "export.py", "exec")
    assert out.startswith("# %% [markdown]")
    cfg = resolve("vgg", {"ratio": 8, "batchnorm": True}, in_channels=3, num_classes=5, resolution=64)
    mc = model_code(cfg)
    assert mc.header + "\n" + mc.body in out  # the model cell is the model's code, knobs at its top
    for line in ("ratio = 8", "batchnorm = True", "in_channels, num_classes, resolution = 3, 5, 64"):
        assert any(x.startswith(line) for x in out.splitlines()), line


def test_cli_model_only_is_the_code_panel_and_loads_the_apps_weights(capsys):
    rc, out, err = _cli(capsys, "export", "densenet", "--set", "growth_rate=12", "--set", "block_config=2,3",
                        "--resolution", "40", "--model-only", "--lang", "zh")
    assert rc == 0, err
    cfg = resolve("densenet", {"growth_rate": 12, "block_config": (2, 3)}, resolution=40)
    assert out == model_code(cfg, "zh").script()
    assert "growth_rate = 12" in out and "稠密块" in out
    ns: dict = {}
    exec(compile(out, "export.py", "exec"), ns)  # noqa: S102 — our own output
    capsys.readouterr()
    ns["net"].load_state_dict(cfg.build().state_dict(), strict=True)


def test_cli_writes_a_notebook_for_a_run(capsys, tmp_path):
    """A run trained on a tiny synthetic set (the notebook itself runs in tests/test_export_notebooks.py)."""
    nbformat = pytest.importorskip("nbformat")
    from cnnlab import engine
    from cnnlab.data import synthetic

    tc = engine.TrainConfig(model=resolve("lenet", {"batchnorm": "scratch"}), epochs=1, device="cpu", seed=5)
    events = list(engine.run(tc, out_dir=str(tmp_path / "runs"), data=synthetic(64, 32)))
    assert type(events[-1]).__name__ == "RunEnd", events[-1]
    target = tmp_path / "run.ipynb"
    rc, out, err = _cli(capsys, "export", "--run", events[-1].run_dir, "-o", str(target))
    assert rc == 0, err
    assert out == "" and str(target) in err
    nb = nbformat.read(str(target), as_version=4)
    nbformat.validate(nb)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "batchnorm = 'scratch'" in code and "seed = 5" in code
    assert "weights_only=True" in code and os.path.join(events[-1].run_dir, "model.pt") in code


@pytest.mark.parametrize("train,says", [
    ({"lr": "0.1; import os"}, "lr must be"),
    ({"optimizer": "sgd'); import os; ('"}, "optimizer must be one of"),
    ({"init": "xavier\nimport os"}, "init must be one of xavier | keep"),
    ({"batch_size": -4}, "batch_size must be"),
])
def test_cli_a_run_folder_from_anywhere_is_checked_not_pasted(capsys, tmp_path, train, says):
    """config.json may be crafted: a recipe value the engine would refuse is refused in one line, never written
    into the exported code; the folder's name is the only text of it the notebook shows."""
    import json as _json

    from cnnlab import engine
    from cnnlab.data import synthetic

    events = list(engine.run(engine.TrainConfig(model="lenet", epochs=1, device="cpu"), out_dir=str(tmp_path),
                             data=synthetic(32, 16)))
    run_dir = events[-1].run_dir
    path = os.path.join(run_dir, "config.json")
    with open(path, encoding="utf-8") as f:
        cfg = _json.load(f)
    rc, out, err = _cli(capsys, "export", "--run", run_dir)
    assert rc == 0 and "lr, batch_size, num_epochs = " in out, err
    cfg["train"].update(train)
    with open(path, "w", encoding="utf-8") as f:
        _json.dump(cfg, f)
    rc, out, err = _cli(capsys, "export", "--run", run_dir)
    assert rc == 2 and out == "" and says in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv,says", [
    (["export", "vgg", "--set", "ratio=0"], "ratio must be an integer in 1..64"),
    (["export", "nosuch"], "nosuch"),
    (["export"], "export takes one of ARCH, --run RUN_DIR or --exercise ID"),
    (["export", "lenet", "--exercise", "lenet_relu"], "got ARCH and --exercise"),
    (["export", "--run", "/no/such/run"], "/no/such/run"),
    (["export", "--exercise", "lenet_relu", "--set", "ratio=2"], "--set cannot be used with --exercise"),
    (["export", "lenet", "--model-only", "--format", "ipynb"], "--model-only writes a .py"),
    (["export", "lenet", "--format", "docx"], "invalid choice"),
    (["export", "alexnet", "--resolution", "8"], "alexnet"),
    (["export", "lenet", "-o", "/no/such/folder/x.py"], "cannot write /no/such/folder/x.py"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, says):
    try:
        rc = _cli(capsys, *argv)
    except SystemExit as e:  # argparse's own errors (one line too, through the CLI's parser)
        rc = (e.code, *capsys.readouterr())
    code, out, err = rc
    assert code == 2
    assert says in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert out == ""
