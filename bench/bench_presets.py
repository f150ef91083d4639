"""Every CPU preset trained end to end on this machine: its wall time and test accuracy, as the Train page's
labels state them ("≈ 40 s · test acc ≥ 0.75").

    PYTHONPATH=. .venv/bin/python bench/bench_presets.py [--only lenet_quick,vgg_cpu] [--seed 0] [--write]
    PYTHONPATH=. .venv/bin/python bench/bench_presets.py --reference-only --write   # the machine's figures only

Each preset runs in this process through `cnnlab.engine.run` (what a worker does), from data loading to the
last evaluation, with the preset's own settings (`cnnlab.presets.train_config`). `--write` stores the figures in
`cnnlab/presets_measured.json` (merged with the presets not run this time), with the machine, the date and the
load average before and after each preset: run it on a quiet machine, since other processes slow every figure
down. Prints a Markdown table. Exit 1 if a preset fails or ends at chance (test acc ≤ 0.15).

The machine's block also gets the two figures the time estimates (cnnlab.runs.admission) compare this machine
with: "cpu_gmacs" (the best of its CPU-rate measurements: another machine's estimates are scaled by it) and
"probe_ms" (the fastest median of its load probe's training step: the probe's quiet reference).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_d2l import machine  # noqa: E402

from cnnlab import presets  # noqa: E402
from cnnlab.engine import run  # noqa: E402
from cnnlab.events import RunEnd, RunFailed  # noqa: E402

CHANCE = 0.15


def _load() -> list[float]:
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def bench_one(p: presets.Preset, seed: int) -> dict:
    tc = presets.train_config(p, seed=seed, device="cpu")
    load0 = _load()
    t0 = time.perf_counter()
    end = None
    for ev in run(tc, out_dir=None):
        if isinstance(ev, (RunEnd, RunFailed)):
            end = ev
    wall = time.perf_counter() - t0
    if not isinstance(end, RunEnd):
        return {"error": getattr(end, "message", "no end event"), "wall_s": round(wall, 1)}
    n = (tc.train_size or 60000) * tc.epochs
    return {"wall_s": round(wall, 1), "train_s": round(end.wall_s, 1), "test_acc": round(end.test_acc, 4),
            "train_acc": round(end.train_acc, 4), "examples_per_s": round(n / max(end.wall_s, 1e-9)),
            "epochs": tc.epochs, "seed": seed, "load_before": load0, "load_after": _load()}


def reference(tries: int = 12) -> dict:
    """The machine's figures for cnnlab.runs.admission: the best CPU rate and the fastest probe step seen."""
    from cnnlab.runs import admission
    from cnnlab.runs.worker import worker_nice

    rate, step = 0.0, float("inf")
    for _ in range(tries):
        rate = max(rate, admission._measure_cpu_rate())
        step = min(step, admission._probe_step_s(worker_nice()))
        time.sleep(0.2)
    return {"cpu_gmacs": round(rate / 1e9, 1), "probe_ms": round(step * 1e3, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated preset ids (default: every CPU preset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help=f"store the figures in {presets.MEASURED_FILE}")
    ap.add_argument("--reference-only", action="store_true",
                    help="measure only the machine's cpu_gmacs and probe_ms (no preset is trained)")
    a = ap.parse_args(argv)
    if a.reference_only:
        old = presets.measured()
        ref = reference()
        print(f"cpu_gmacs {ref['cpu_gmacs']}, probe_ms {ref['probe_ms']} (load {_load()[0]:.1f})")
        if a.write:
            old.setdefault("machine", machine()).update(ref)
            with open(presets.MEASURED_FILE, "w", encoding="utf-8") as f:
                json.dump(old, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"written: {presets.MEASURED_FILE}")
        return 0
    ids = [p.id for p in presets.CPU_PRESETS]
    if a.only:
        want = [x.strip() for x in a.only.split(",") if x.strip()]
        bad = [x for x in want if x not in ids]
        if bad:
            print(f"bench_presets: unknown CPU preset {bad[0]} (one of {', '.join(ids)})", file=sys.stderr)
            return 2
        ids = want
    rows, ok = {}, True
    print("| preset | wall s (data → last eval) | training s | test acc | stated | examples/s | load before → after |")
    print("|---|---|---|---|---|---|---|")
    for pid in ids:
        r = bench_one(presets.PRESETS[pid], a.seed)
        rows[pid] = r
        if "error" in r or r["test_acc"] <= CHANCE:
            ok = False
            print(f"| {pid} | {r['wall_s']} | — | {r.get('test_acc', '—')} | FAILED: {r.get('error', 'at chance')} | | |")
        else:
            print(f"| {pid} | {r['wall_s']} | {r['train_s']} | {r['test_acc']:.3f} | "
                  f"≥ {presets.stated_accuracy(r['test_acc']):.2f} | {r['examples_per_s']:,} | "
                  f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |", flush=True)
    if a.write:
        old = presets.measured()
        data = {"machine": {**machine(), **reference()},
                "note": "bench/bench_presets.py: each CPU preset end to end on this machine",
                "presets": {**old.get("presets", {}), **{k: v for k, v in rows.items() if "error" not in v}}}
        with open(presets.MEASURED_FILE, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"written: {presets.MEASURED_FILE}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
