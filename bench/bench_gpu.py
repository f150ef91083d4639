"""On one GPU: d2l's own `train_ch6` vs CNN Lab, for every d2l model at the book's resolution and recipe.

    python bench/bench_gpu.py [--models lenet,bn_lenet,...] [--epochs 10] [--quick] [--compile]
                              [--json-out bench-gpu.json] [--markdown table.md]

For each model both sides train one after the other, each in its own child process, on the same GPU,
with the same lr, batch, resolution and epochs (the recipe comes from cnnlab.registry, the single place it
is written down): the peer is d2l 1.0.3's `train_ch6` on the book's own model definition (written out below
as the book prints it, plain torch.nn) with d2l's `load_data_fashion_mnist` (DataLoader, PIL resize, 4
workers), as ../shared/bench/d2l_peer.py runs it; ours is `python -m cnnlab train ... --json --no-save`.
Wall seconds are the training loop's (per-epoch evaluation included, loading before it excluded), examples/s
= train examples × epochs / wall, accuracy the final test accuracy. The goal (issue #13): ours ≤ 1/20 of
d2l's wall at ≥ the book's accuracy. --quick trains 1 epoch on a 10,000/2,000 subset for a first look.

Results accumulate in --json-out (one row per model, side and mode; rows of earlier calls are kept), so a
session with a 10-minute limit per command can run the models a few at a time and print the whole table
with --table-only. The table goes to --markdown for the README, with the GPU's name and the date.

Needs only torch + torchvision in this process. On a machine without d2l (the lent GPU machines have torch
and torchvision only, and no network), carry d2l's wheel and the data in the ignored `data/` folder:

    mkdir -p data && cp /usr/share/datasets/fashion-mnist/*.gz data/
    .venv/bin/pip download --no-deps d2l==1.0.3 -d data/      # a pure-Python wheel, imported from the zip
    # then, with the device tool: carry ["data"], command
    python bench/bench_gpu.py --quick --json-out $OUT/bench-gpu.json --markdown $OUT/bench-gpu.md

d2l's module imports pandas, requests, IPython, matplotlib and scipy at the top; where they are missing
the peer stands in empty modules for them and replaces d2l's Animator (its live plot) with one that draws
nothing — the JSON row says so ("peer_plot": "stubbed"). That only makes the peer faster.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {  # bench name -> (cnnlab arch, cnnlab --set arguments, the book's model below)
    "lenet": ("lenet", [], "lenet"),
    "alexnet": ("alexnet", [], "alexnet"),
    "vgg": ("vgg", [], "vgg"),
    "nin": ("nin", [], "nin"),
    "googlenet": ("googlenet", [], "googlenet"),
    "bn_lenet": ("lenet", ["batchnorm=nn"], "bn_lenet"),
    "resnet": ("resnet", [], "resnet"),
    "densenet": ("densenet", [], "densenet"),
}
# the test accuracy the book reports after 10 epochs (issue #13's goal table; BN-LeNet's is its own, not LeNet's)
BOOK_ACC = {"lenet": 0.78, "alexnet": 0.88, "vgg": 0.92, "nin": 0.79, "googlenet": 0.89, "bn_lenet": 0.84,
            "resnet": 0.89, "densenet": 0.88}
QUICK_TRAIN, QUICK_TEST = 10000, 2000
GOAL_RATIO = 1 / 20


# -- the book's models, as d2l prints them (plain torch.nn) -------------------------------------------

def book_model(name: str):
    import torch
    from torch import nn
    from torch.nn import functional as F

    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    if name == "bn_lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))
    if name == "alexnet":
        return nn.Sequential(
            nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Flatten(), nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5), nn.Linear(4096, 10))
    if name == "vgg":
        def vgg_block(num_convs, in_channels, out_channels):
            layers = []
            for _ in range(num_convs):
                layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = out_channels
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            return nn.Sequential(*layers)
        ratio = 4
        conv_arch = [(n, c // ratio) for n, c in ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))]
        blocks, in_channels = [], 1
        for num_convs, out_channels in conv_arch:
            blocks.append(vgg_block(num_convs, in_channels, out_channels))
            in_channels = out_channels
        return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(out_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))
    if name == "nin":
        def nin_block(in_channels, out_channels, kernel_size, strides, padding):
            return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
                                 nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
                                 nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())
        return nn.Sequential(
            nin_block(1, 96, kernel_size=11, strides=4, padding=0), nn.MaxPool2d(3, stride=2),
            nin_block(96, 256, kernel_size=5, strides=1, padding=2), nn.MaxPool2d(3, stride=2),
            nin_block(256, 384, kernel_size=3, strides=1, padding=1), nn.MaxPool2d(3, stride=2), nn.Dropout(0.5),
            nin_block(384, 10, kernel_size=3, strides=1, padding=1), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    if name == "googlenet":
        class Inception(nn.Module):
            def __init__(self, in_channels, c1, c2, c3, c4):
                super().__init__()
                self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
                self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
                self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
                self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
                self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
                self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
                self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

            def forward(self, x):
                p1 = F.relu(self.p1_1(x))
                p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
                p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
                p4 = F.relu(self.p4_2(self.p4_1(x)))
                return torch.cat((p1, p2, p3, p4), dim=1)
        b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
                           nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        b2 = nn.Sequential(nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(), nn.Conv2d(64, 192, kernel_size=3, padding=1),
                           nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        b3 = nn.Sequential(Inception(192, 64, (96, 128), (16, 32), 32), Inception(256, 128, (128, 192), (32, 96), 64),
                           nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        b4 = nn.Sequential(Inception(480, 192, (96, 208), (16, 48), 64), Inception(512, 160, (112, 224), (24, 64), 64),
                           Inception(512, 128, (128, 256), (24, 64), 64), Inception(512, 112, (144, 288), (32, 64), 64),
                           Inception(528, 256, (160, 320), (32, 128), 128), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        b5 = nn.Sequential(Inception(832, 256, (160, 320), (32, 128), 128), Inception(832, 384, (192, 384), (48, 128), 128),
                           nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        return nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, 10))
    if name == "resnet":
        class Residual(nn.Module):
            def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
                super().__init__()
                self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
                self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
                self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
                              if use_1x1conv else None)
                self.bn1 = nn.BatchNorm2d(num_channels)
                self.bn2 = nn.BatchNorm2d(num_channels)

            def forward(self, X):
                Y = F.relu(self.bn1(self.conv1(X)))
                Y = self.bn2(self.conv2(Y))
                if self.conv3:
                    X = self.conv3(X)
                Y += X
                return F.relu(Y)

        def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
            return [Residual(input_channels, num_channels, use_1x1conv=True, strides=2) if i == 0 and not first_block
                    else Residual(num_channels, num_channels) for i in range(num_residuals)]
        b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(),
                           nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        return nn.Sequential(b1, nn.Sequential(*resnet_block(64, 64, 2, first_block=True)),
                             nn.Sequential(*resnet_block(64, 128, 2)), nn.Sequential(*resnet_block(128, 256, 2)),
                             nn.Sequential(*resnet_block(256, 512, 2)), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                             nn.Linear(512, 10))
    if name == "densenet":
        def conv_block(input_channels, num_channels):
            return nn.Sequential(nn.BatchNorm2d(input_channels), nn.ReLU(),
                                 nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1))

        class DenseBlock(nn.Module):
            def __init__(self, num_convs, input_channels, num_channels):
                super().__init__()
                self.net = nn.Sequential(*[conv_block(num_channels * i + input_channels, num_channels)
                                           for i in range(num_convs)])

            def forward(self, X):
                for blk in self.net:
                    Y = blk(X)
                    X = torch.cat((X, Y), dim=1)
                return X

        def transition_block(input_channels, num_channels):
            return nn.Sequential(nn.BatchNorm2d(input_channels), nn.ReLU(),
                                 nn.Conv2d(input_channels, num_channels, kernel_size=1), nn.AvgPool2d(kernel_size=2, stride=2))
        b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(),
                           nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        num_channels, growth_rate = 64, 32
        blks = []
        for i, num_convs in enumerate([4, 4, 4, 4]):
            blks.append(DenseBlock(num_convs, num_channels, growth_rate))
            num_channels += num_convs * growth_rate
            if i != 3:
                blks.append(transition_block(num_channels, num_channels // 2))
                num_channels = num_channels // 2
        return nn.Sequential(b1, *blks, nn.BatchNorm2d(num_channels), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
                             nn.Flatten(), nn.Linear(num_channels, 10))
    raise KeyError(name)


# -- the peer (a child process: python bench/bench_gpu.py --peer ...) ---------------------------------

_D2L_DEPS = ("pandas", "requests", "IPython", "IPython.display", "matplotlib", "matplotlib.pyplot",
             "matplotlib_inline", "matplotlib_inline.backend_inline", "scipy", "scipy.spatial")


class _Anything:
    """Stands in for anything d2l touches in a module that is not installed."""

    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        return _Anything()

    def __getattr__(self, name):
        return _Anything()


def _stub_missing(force: bool = False) -> list[str]:
    """Empty modules for d2l's plotting/data-science imports that are not installed (all with `force`)."""
    import importlib
    stubbed = []
    for name in _D2L_DEPS:
        if not force:
            try:
                importlib.import_module(name)
                continue
            except ImportError:
                pass
        mod = types.ModuleType(name)
        mod.__path__ = []  # a package, so that its stubbed submodules import

        def anything(attr):  # PEP 562: `from stub import anything` works; import machinery's dunders do not
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Anything()
        mod.__getattr__ = anything
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, mod)
        stubbed.append(name)
    return stubbed


class _QuietAnimator:
    """d2l.Animator without matplotlib: records the points, draws nothing."""

    def __init__(self, *a, **k):
        self.points = []

    def add(self, x, y):
        self.points.append((x, y))


def peer_main(argv) -> int:
    ap = argparse.ArgumentParser(prog="bench_gpu.py --peer")
    ap.add_argument("model")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--data-root", required=True, help="a folder with FashionMNIST/raw/ (decompressed files)")
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--test-size", type=int, default=None)
    ap.add_argument("--d2l-wheel", default=None)
    ap.add_argument("--stub-deps", action="store_true", help="stub d2l's plotting imports even if installed")
    a = ap.parse_args(argv)

    if a.d2l_wheel:
        sys.path.insert(0, os.path.abspath(a.d2l_wheel))  # a pure-Python wheel imports from the zip
    stubbed = _stub_missing(force=a.stub_deps)
    import torch
    from torch.utils import data as tud
    from d2l import torch as d2l
    if stubbed:
        d2l.Animator = _QuietAnimator
    else:
        import matplotlib
        matplotlib.use("Agg")

    # d2l reads ../data/FashionMNIST/raw relative to the working directory
    top = tempfile.mkdtemp(prefix="d2l_gpu_peer_")
    os.symlink(os.path.abspath(a.data_root), os.path.join(top, "data"))
    os.makedirs(os.path.join(top, "work"))
    os.chdir(os.path.join(top, "work"))

    torch.manual_seed(0)
    train_iter, test_iter = d2l.load_data_fashion_mnist(a.batch_size, resize=a.resolution)
    g = torch.Generator().manual_seed(0)
    if a.train_size:
        idx = torch.randperm(len(train_iter.dataset), generator=g)[:a.train_size].tolist()
        train_iter = tud.DataLoader(tud.Subset(train_iter.dataset, idx), a.batch_size, shuffle=True,
                                    num_workers=d2l.get_dataloader_workers())
    if a.test_size:
        idx = torch.randperm(len(test_iter.dataset), generator=g)[:a.test_size].tolist()
        test_iter = tud.DataLoader(tud.Subset(test_iter.dataset, idx), a.batch_size, shuffle=False,
                                   num_workers=d2l.get_dataloader_workers())
    net = book_model(a.model)
    device = d2l.try_gpu()
    t0 = time.perf_counter()
    d2l.train_ch6(net, train_iter, test_iter, a.epochs, a.lr, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    acc = d2l.evaluate_accuracy_gpu(net, test_iter)
    n = len(train_iter.dataset)
    print(json.dumps({"peer": "d2l.train_ch6", "model": a.model, "epochs": a.epochs, "device": str(device),
                      "wall_s": round(wall, 2), "test_acc": round(acc, 4),
                      "examples_per_s": round(n * a.epochs / wall, 1), "train_size": n,
                      "peer_plot": "stubbed" if stubbed else "matplotlib Agg", "stubbed": stubbed}))
    return 0


# -- the parent --------------------------------------------------------------------------------------

def recipe(model: str) -> dict:
    """lr, batch, resolution and the book's accuracy for a bench model, from cnnlab.registry."""
    sys.path.insert(0, ROOT)
    from cnnlab.registry import get_spec, parse_sets
    arch, sets, _ = MODELS[model]
    spec = get_spec(arch)
    r = spec.recipe({k: spec.knob(k).validate(v) for k, v in parse_sets(sets).items()})
    return {"arch": arch, "sets": sets, "knobs": dict(r.knobs), "lr": r.lr, "batch_size": r.batch_size,
            "resolution": r.resolution, "book_acc": BOOK_ACC.get(model, r.accuracy)}


def same_model_check(model: str) -> dict:
    """Parameter counts of the book's model (the peer's) and cnnlab's (ours): they must be equal."""
    sys.path.insert(0, ROOT)
    from cnnlab.registry import resolve
    arch, _, book = MODELS[model]
    rc = recipe(model)
    cfg = resolve(arch, rc["knobs"], resolution=rc["resolution"])  # the knobs ours trains with (VGG: ratio 4)
    ours = sum(p.numel() for p in cfg.build().parameters())
    peer = sum(p.numel() for p in book_model(book).parameters())
    return {"params_ours": ours, "params_peer": peer}


def _child_env() -> dict:
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_peer(model: str, rc: dict, epochs: int, data_root: str, wheel: str | None, sizes: tuple, stub: bool,
             timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--peer", MODELS[model][2], "--epochs", str(epochs),
           "--lr", str(rc["lr"]), "--batch-size", str(rc["batch_size"]), "--resolution", str(rc["resolution"]),
           "--data-root", data_root]
    if sizes[0]:
        cmd += ["--train-size", str(sizes[0]), "--test-size", str(sizes[1])]
    if wheel:
        cmd += ["--d2l-wheel", wheel]
    if stub:
        cmd += ["--stub-deps"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_child_env(), timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        return {"error": f"the d2l peer failed (exit {p.returncode}): {' | '.join(tail)}"}
    r = json.loads(lines[-1])
    r["process_s"] = round(time.perf_counter() - t0, 2)
    return r


def run_ours(model: str, rc: dict, epochs: int, device: str, sizes: tuple, compile_: bool, amp: str,
             timeout: float) -> dict:
    cmd = [sys.executable, "-m", "cnnlab", "train", rc["arch"]]
    for s in rc["sets"]:
        cmd += ["--set", s]
    cmd += ["--epochs", str(epochs), "--lr", str(rc["lr"]), "--batch-size", str(rc["batch_size"]),
            "--resolution", str(rc["resolution"]), "--device", device, "--amp", amp, "--json", "--no-save",
            "--log-every", "100"]
    if sizes[0]:
        cmd += ["--train-size", str(sizes[0]), "--test-size", str(sizes[1])]
    if compile_:
        cmd += ["--compile"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_child_env(), timeout=timeout)
    events = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not events or events[-1]["event"] != "run_end":
        last = events[-1] if events else (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"our run failed (exit {p.returncode}): {last}"}
    start, end = events[0], events[-1]
    compiles = [e for e in events if e["event"] == "compiling" and e.get("done")]
    return {"wall_s": round(end["wall_s"], 2), "test_acc": round(end["test_acc"], 4),
            "examples_per_s": round(start["train_size"] * epochs / end["wall_s"], 1), "device": start["device"],
            "amp": start.get("amp"), "compile_s": round(compiles[0]["wall_s"], 1) if compiles else None,
            "train_size": start["train_size"], "process_s": round(time.perf_counter() - t0, 2)}


def device_info(device: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "cnnlab", "devices", "--json", "--device", device], capture_output=True,
                       text=True, cwd=ROOT, env=_child_env(), timeout=300)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"device": "?", "reason": (p.stderr.strip().splitlines() or ["devices failed"])[-1]}


def _fmt(v, spec=""):
    return "—" if v is None else format(v, spec)


def markdown(rows: list[dict]) -> str:
    """The README table: one line per model and mode, d2l and ours side by side."""
    by_key: dict = {}
    for r in rows:
        by_key.setdefault((r["model"], r["mode"]), {})[r["side"]] = r
    gpus = sorted({r.get("gpu") or "?" for r in rows})
    dates = sorted({r.get("date", "?") for r in rows})
    out = [f"GPU: {', '.join(gpus)}; {', '.join(dates)}; torch {', '.join(sorted({r.get('torch', '?') for r in rows}))}",
           "",
           "| model | mode | res | batch | lr | d2l wall s | d2l ex/s | d2l acc | ours wall s | ours ex/s | ours acc "
           "| book acc | ours/d2l wall | goal |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = list(MODELS)
    for (model, mode), sides in sorted(by_key.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        d, o = sides.get("d2l", {}), sides.get("ours", {})
        any_ = d or o
        ratio = (o["wall_s"] / d["wall_s"]) if d.get("wall_s") and o.get("wall_s") else None
        goal = "—"
        if ratio is not None and mode.startswith("full"):
            acc_ok = o.get("test_acc") is not None and (any_.get("book_acc") is None or o["test_acc"] >= any_["book_acc"])
            goal = "met" if ratio <= GOAL_RATIO and acc_ok else "not met"
        out.append(f"| {model} | {mode} | {any_.get('resolution')} | {any_.get('batch_size')} | {any_.get('lr'):g} "
                   f"| {_fmt(d.get('wall_s'), '.1f')} | {_fmt(d.get('examples_per_s'), ',.0f')} | "
                   f"{_fmt(d.get('test_acc'), '.3f')} | {_fmt(o.get('wall_s'), '.1f')} | "
                   f"{_fmt(o.get('examples_per_s'), ',.0f')} | {_fmt(o.get('test_acc'), '.3f')} | "
                   f"{_fmt(any_.get('book_acc'), '.2f')} | {_fmt(ratio, '.3f')} | {goal} |")
    failed = [r for r in rows if r.get("error")]
    if failed:
        out.append("")
        out += [f"- {r['model']} ({r['mode']}), {r['side']}: {r['error'][:300]}" for r in failed]
    return "\n".join(out) + "\n"


def _load_rows(path: str | None) -> list[dict]:
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return []


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"bench_gpu: error: {message}\n")
        raise SystemExit(2)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--peer"]:
        return peer_main(argv[1:])
    ap = _Parser(prog="bench_gpu.py", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default 10; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help=f"1 epoch on {QUICK_TRAIN:,}/{QUICK_TEST:,} examples")
    ap.add_argument("--train-size", type=int, default=None, help="train on N examples (overrides --quick's)")
    ap.add_argument("--test-size", type=int, default=None, help="test on N examples (overrides --quick's)")
    ap.add_argument("--sides", default="d2l,ours", help="d2l,ours (default both)")
    ap.add_argument("--device", default="cuda", help="ours: cuda (default) | cuda:N | cpu | auto")
    ap.add_argument("--compile", action="store_true", help="ours with --compile")
    ap.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"), help="ours: --amp")
    ap.add_argument("--d2l-wheel", default=None, help="d2l's wheel if d2l is not installed (default: data/d2l-*.whl)")
    ap.add_argument("--stub-deps", action="store_true", help="peer: stub d2l's plotting imports even if installed")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per side and model")
    ap.add_argument("--json-out", default=None, help="JSON rows, merged with the file's earlier rows")
    ap.add_argument("--markdown", default=None, help="write the table (all rows of --json-out) as markdown")
    ap.add_argument("--table-only", action="store_true", help="print the table of --json-out; run nothing")
    args = ap.parse_args(argv)

    rows = _load_rows(args.json_out)
    if args.table_only:
        if not rows:
            ap.error("--table-only needs a --json-out file with rows")
        print(markdown(rows), end="")
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown model {bad[0]!r}; choose from {', '.join(MODELS)}")
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not sides or any(s not in ("d2l", "ours") for s in sides):
        ap.error(f"--sides takes d2l and/or ours, got {args.sides!r}")
    epochs = args.epochs or (1 if args.quick else 10)
    sizes = (args.train_size or (QUICK_TRAIN if args.quick else None),
             args.test_size or (QUICK_TEST if args.quick else None))
    if bool(sizes[0]) != bool(sizes[1]):
        sizes = (sizes[0] or 60000, sizes[1] or 10000)
    mode = f"{'quick' if sizes[0] else 'full'} {epochs} ep" + (" compile" if args.compile else "")
    wheel = args.d2l_wheel or next(iter(sorted(glob.glob(os.path.join(ROOT, "data", "d2l-*.whl")))), None)

    sys.path.insert(0, ROOT)
    from cnnlab.data import find_fashion_mnist
    data_root = find_fashion_mnist(download=False)
    info = device_info(args.device)
    import torch
    on_gpu = str(info.get("device", "")).startswith("cuda")
    stamp = {"gpu": info.get("name") if on_gpu else f"none ({info.get('reason') or 'CPU asked for'})",
             "date": dt.date.today().isoformat(), "torch": torch.__version__}
    print(f"device: {info.get('device')} {info.get('name', '')} {info.get('reason', '')}".rstrip(), file=sys.stderr)
    for m in models:
        rc = recipe(m)
        check = same_model_check(m)
        if check["params_ours"] != check["params_peer"]:
            print(f"[{m}] warning: parameter counts differ (ours {check['params_ours']:,}, book "
                  f"{check['params_peer']:,})", file=sys.stderr)
        for side in sides:
            print(f"[{m}] {side}: {mode}, lr {rc['lr']:g}, batch {rc['batch_size']}, {rc['resolution']}² ...",
                  file=sys.stderr, flush=True)
            try:
                if side == "d2l":
                    r = run_peer(m, rc, epochs, data_root, wheel, sizes, args.stub_deps, args.timeout)
                else:
                    r = run_ours(m, rc, epochs, args.device, sizes, args.compile, args.amp, args.timeout)
            except subprocess.TimeoutExpired:
                r = {"error": f"no result within {args.timeout:.0f} s"}
            row = {"model": m, "side": side, "mode": mode, **rc, **check, **stamp, **r}
            print(f"[{m}] {side}: {json.dumps(r)}", file=sys.stderr, flush=True)
            rows = [x for x in rows if (x["model"], x["side"], x["mode"]) != (m, side, mode)] + [row]
            if args.json_out:  # after every side, so a command cut off by a time limit keeps what it measured
                with open(args.json_out, "w", encoding="utf-8") as f:
                    json.dump(rows, f, indent=1)
    table = markdown(rows)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
