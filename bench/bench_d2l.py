"""Side by side: d2l's own `train_ch6` vs the CNN Lab engine, same model, data, epochs, lr and batch.

    bench/setup_peer.sh                        # once: the scratch venv with d2l (not an app dependency)
    PYTHONPATH=. .venv/bin/python bench/bench_d2l.py [--models lenet,bn_lenet] [--epochs 10] [--seeds 0,1,2]

Both sides run as child processes of this one, one after the other, on the full Fashion-MNIST
(60,000 train / 10,000 test images, 28×28) with the book's lr and batch 256. The peer is
../shared/bench/d2l_peer.py (d2l 1.0.3, DataLoader with 4 workers, per-epoch test accuracy);
ours is `python -m cnnlab train ... --json --no-save`. For both, wall seconds are those of the
training loop (per-epoch evaluation included, data loading before it excluded), and
examples/s = 60,000 × epochs / wall. The table also shows our training-only examples/s; the
JSON also has each process's total time (imports and data loading included) and the load average.
With several --seeds each side runs once per seed (the peer through a wrapper that changes only
its torch.manual_seed), alternating, and the table shows means and the accuracy range.
Prints a table and one JSON object; --markdown FILE appends the table as markdown.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEER = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "d2l_peer.py"))
OURS = {"lenet": [], "bn_lenet": ["--set", "batchnorm=nn"], "bn_lenet_scratch": ["--set", "batchnorm=scratch"]}
PEER_NAME = {"lenet": "lenet", "bn_lenet": "bn_lenet", "bn_lenet_scratch": "bn_lenet"}
N_TRAIN = 60000


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


# d2l_peer.py seeds with torch.manual_seed(0); this wrapper runs it unchanged with another seed.
_SEEDED_PEER = """
import runpy, sys, torch
script, seed = sys.argv[1], int(sys.argv[2])
_manual_seed = torch.manual_seed
torch.manual_seed = lambda _ignored: _manual_seed(seed)
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name="__main__")
"""


def run_peer(python: str, script: str, model: str, epochs: int, data_dir: str, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    load0 = _load()
    p = subprocess.run([python, "-c", _SEEDED_PEER, script, str(seed), PEER_NAME[model], str(epochs), data_dir],
                       capture_output=True, text=True, cwd=ROOT)
    total = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"the d2l peer failed (exit {p.returncode}): {' | '.join(tail)}")
    r = json.loads(lines[-1])
    return {"wall_s": r["wall_s"], "test_acc": r["test_acc"], "examples_per_s": r["train_examples_per_s"],
            "process_s": round(total, 2), "load_before": load0, "load_after": _load()}


def run_ours(model: str, epochs: int, threads: int | None, seed: int = 0) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if threads:
        env["CNNLAB_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "cnnlab", "train", "lenet", *OURS[model], "--epochs", str(epochs),
           "--batch-size", "256", "--seed", str(seed), "--json", "--no-save", "--log-every", "100"]
    t0 = time.perf_counter()
    load0 = _load()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    total = time.perf_counter() - t0
    events = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not events or events[-1]["event"] != "run_end":
        last = events[-1] if events else (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"our run failed (exit {p.returncode}): {last}")
    end = events[-1]
    epochs_ev = [e for e in events if e["event"] == "epoch_end"]
    start = events[0]
    train_only = sum(e["examples_per_s"] for e in epochs_ev) / len(epochs_ev)
    return {"wall_s": round(end["wall_s"], 2), "test_acc": round(end["test_acc"], 4),
            "examples_per_s": round(start["train_size"] * epochs / end["wall_s"], 1),
            "train_only_examples_per_s": round(train_only, 1), "process_s": round(total, 2),
            "lr": start["lr"], "batch_size": start["batch_size"], "load_before": load0, "load_after": _load()}


def machine() -> dict:
    import torch
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "date": dt.date.today().isoformat()}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"bench: error: {message}\n")
        raise SystemExit(2)


def main(argv=None) -> int:
    ap = _Parser(prog="bench_d2l.py", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="lenet,bn_lenet", help="comma-separated: " + ", ".join(OURS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; each side runs once per seed")
    ap.add_argument("--peer-python", default=os.path.join(ROOT, ".peer-venv", "bin", "python"))
    ap.add_argument("--peer-script", default=DEFAULT_PEER)
    ap.add_argument("--data-dir", default=None, help="folder with the four Fashion-MNIST files for the peer "
                                                     "(default: the one CNN Lab finds)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for ours (default: the engine's choice)")
    ap.add_argument("--markdown", default=None, help="append the table as markdown to this file")
    ap.add_argument("--json-out", default=None, help="write the JSON result to this file")
    args = ap.parse_args(argv)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    bad = [m for m in models if m not in OURS]
    if bad:
        ap.error(f"unknown model {bad[0]!r}; choose from {', '.join(OURS)}")
    if not os.path.isfile(args.peer_python):
        ap.error(f"no peer Python at {args.peer_python}; run bench/setup_peer.sh first")
    if not os.path.isfile(args.peer_script):
        ap.error(f"no peer script at {args.peer_script}")
    sys.path.insert(0, ROOT)
    from cnnlab.data import find_fashion_mnist
    data_dir = args.data_dir or os.path.join(find_fashion_mnist(download=False), "FashionMNIST", "raw")

    runs = []
    for m in models:
        for seed in seeds:
            tag = f"[{m} seed {seed}]"
            print(f"{tag} d2l train_ch6, {args.epochs} epochs ...", file=sys.stderr, flush=True)
            peer = run_peer(args.peer_python, args.peer_script, m, args.epochs, data_dir, seed)
            print(f"{tag}   {peer}", file=sys.stderr, flush=True)
            print(f"{tag} cnnlab engine, {args.epochs} epochs ...", file=sys.stderr, flush=True)
            ours = run_ours(m, args.epochs, args.threads, seed)
            print(f"{tag}   {ours}", file=sys.stderr, flush=True)
            runs.append({"model": m, "seed": seed, "epochs": args.epochs, "d2l": peer, "cnnlab": ours,
                         "speedup": round(ours["examples_per_s"] / peer["examples_per_s"], 2)})

    def mean(xs):
        return sum(xs) / len(xs)

    rows = []
    for m in models:
        rs = [r for r in runs if r["model"] == m]
        summary = {"model": m, "epochs": args.epochs, "seeds": seeds}
        for side in ("d2l", "cnnlab"):
            accs = [r[side]["test_acc"] for r in rs]
            summary[side] = {"examples_per_s": round(mean([r[side]["examples_per_s"] for r in rs]), 1),
                             "wall_s": round(mean([r[side]["wall_s"] for r in rs]), 2),
                             "test_acc": round(mean(accs), 4), "test_acc_min": min(accs), "test_acc_max": max(accs)}
        summary["cnnlab"]["train_only_examples_per_s"] = round(
            mean([r["cnnlab"]["train_only_examples_per_s"] for r in rs]), 1)
        summary["speedup"] = round(summary["cnnlab"]["examples_per_s"] / summary["d2l"]["examples_per_s"], 2)
        summary["speedup_min"] = min(r["speedup"] for r in rs)
        summary["acc_delta"] = round(summary["cnnlab"]["test_acc"] - summary["d2l"]["test_acc"], 4)
        rows.append(summary)

    def acc(side):
        if side["test_acc_min"] == side["test_acc_max"]:
            return f"{side['test_acc']:.3f}"
        return f"{side['test_acc']:.3f} ({side['test_acc_min']:.3f}–{side['test_acc_max']:.3f})"

    info = machine()
    head = ("| model | epochs × seeds | d2l examples/s | d2l wall s | d2l test acc | CNN Lab examples/s "
            "(training only) | CNN Lab wall s | CNN Lab test acc | speed-up (lowest) |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        p, o = r["d2l"], r["cnnlab"]
        lines.append(f"| {r['model']} | {r['epochs']} × {len(seeds)} | {p['examples_per_s']:,.0f} | {p['wall_s']:.1f} | "
                     f"{acc(p)} | {o['examples_per_s']:,.0f} ({o['train_only_examples_per_s']:,.0f}) | "
                     f"{o['wall_s']:.1f} | {acc(o)} | **{r['speedup']:.2f}×** ({r['speedup_min']:.2f}×) |")
    note = (f"Measured {info['date']} on {info['cpu']} ({info['cores']} cores, CPU only), torch {info['torch']}, "
            f"Python {info['python']}; full Fashion-MNIST, book lr, batch 256, seeds {','.join(map(str, seeds))}; "
            f"both sides in one `bench/bench_d2l.py` run, means over seeds (accuracy range in brackets).")
    print("\n".join(lines))
    print(note)
    result = {"machine": info, "rows": rows, "runs": runs}
    print(json.dumps(result))
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n\n" + note + "\n")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
