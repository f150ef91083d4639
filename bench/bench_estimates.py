"""Time estimates against the clock, under load: real runs through the real LocalExecutor, some at once.

    PYTHONPATH=. .venv/bin/python bench/bench_estimates.py [--slots 1,2] [--scale 1.0] [--json out.json]
                                                           [--env OMP_WAIT_POLICY=PASSIVE]

For each executor setting (CNNLAB_CPU_SLOTS = 1: the app's default, runs queue; 2: two runs share the cores) the
bench starts a LocalExecutor (warm workers, a temporary run folder) and submits, a few seconds apart, by different
owners: the quick demo, LeNet, the VGG-11 preset, an exercise pair (A then B, one owner) and the AlexNet preset —
the CPU presets shrunk to small data (`--scale` multiplies the examples). Right before each submit it asks
`cnnlab.runs.admission.expect_runs` (what the Train page, the labels and the exercises show) when the run(s) will
have ended, queue wait included, and then measures the wall time from submit to the run's end. Side by side: the
old estimate (MACs × 3 × examples / the CPU's rate, no queue) and the table's quiet figure alone. Prints a
Markdown table and the median absolute % error of each; the goal is ≤ 30 % for `expect`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

# --env KEY=VALUE is set before torch is imported: OpenMP reads OMP_WAIT_POLICY once, when it starts, in this process
# (the load probe) and in the workers (spawned: they inherit the environment)
for _i, _arg in enumerate(sys.argv[:-1]):
    if _arg == "--env":
        _k, _, _v = sys.argv[_i + 1].partition("=")
        os.environ[_k] = _v

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_d2l import machine  # noqa: E402

from cnnlab import exercises as X  # noqa: E402
from cnnlab import presets  # noqa: E402
from cnnlab.runs import FINISHED, Limits, admission  # noqa: E402
from cnnlab.runs.local import LocalExecutor  # noqa: E402


def _load() -> float:
    return float(open("/proc/loadavg").read().split()[0])


def shrunk(pid: str, train: int, epochs: int | None = None, test: int = 1000):
    tc = presets.train_config(presets.PRESETS[pid])
    return dataclasses.replace(tc, train_size=train, test_size=test, epochs=epochs or tc.epochs).resolved()


def plan(scale: float) -> list[tuple[float, str, str, list]]:
    """(seconds after the start, owner, name, [configs]): what the class does."""
    n = lambda k: max(256, int(k * scale))  # noqa: E731
    ex = X.BY_ID["bn_scratch_nn"]
    pair = [dataclasses.replace(ex.train_config(s), train_size=n(15000), test_size=1000).resolved()
            for s in (ex.a, ex.b)]
    return [
        (0.0, "ann", "quick demo (BN-LeNet, 1 ep)", [shrunk("lenet_quick", n(30000))]),
        (2.0, "bob", "VGG-11 preset, 2 ep", [shrunk("vgg_cpu", n(5000), 2)]),
        (4.0, "cat", "LeNet, 2 ep", [shrunk("lenet", n(20000), 2)]),
        (8.0, "dan", "exercise pair bn_scratch_nn (A, B)", pair),
        (12.0, "eve", "AlexNet preset, 1 ep", [shrunk("alexnet_cpu", n(2500), 1)]),
        (16.0, "fay", "quick demo again", [shrunk("lenet_quick", n(30000))]),
    ]


_OLD_RATE: list[float] = []


def old_estimate(tc) -> float:
    """What the page said before #21 §4: MACs × 3 × training + MACs × test examples, per epoch, / the CPU's rate
    as the server measured it then (one small convolution, best of 10, × 0.2; measured once here, at the start)."""
    if not _OLD_RATE:
        _OLD_RATE.append(max(admission.MIN_CPU_RATE, admission._measure_cpu_rate()))
    macs = admission._probe_figures(tc.model)[1]
    n, m = admission._sizes(tc)
    return (macs * 3 * n + macs * m) * tc.epochs / _OLD_RATE[0]


def scenario(slots: int, scale: float) -> list[dict]:
    lim = Limits.from_env(cpu_slots=slots, max_active_per_owner=1, max_queued_per_owner=2, queue_len=16, workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        ex = LocalExecutor(limits=lim, out_dir=tmp, recover=False)
        try:
            ex.wait_ready(slots + 1, 300)
            time.sleep(1.0)
            rows, t0 = [], time.time()
            for delay, owner, name, tcs in plan(scale):
                time.sleep(max(0.0, t0 + delay - time.time()))
                te = admission.expect_runs(tcs, "cpu", ex, owner=owner)
                submitted = time.time()
                handles = [ex.submit(tc, owner, label=name, out_dir=tmp) for tc in tcs]
                rows.append({"slots": slots, "name": name, "submitted": submitted, "ids": [h.id for h in handles],
                             "ahead": te.ahead, "source": te.source, "load": round(te.load, 2),
                             "est_s": te.total_s, "est_wait_s": te.wait_s, "quiet_s": te.quiet_s,
                             "old_s": sum(old_estimate(tc) for tc in tcs), "load_avg": _load()})
            for r in rows:
                for rid in r["ids"]:
                    ex.wait(rid, 1800)
                sts = [ex.status(rid) for rid in r["ids"]]
                ok = all(s is not None and s.state in FINISHED for s in sts)
                r["state"] = ",".join(s.state for s in sts if s is not None)
                r["real_s"] = max(s.finished for s in sts) - r["submitted"] if ok else float("nan")
                r["real_wait_s"] = (min(s.started for s in sts if s.started) - r["submitted"]) if ok else float("nan")
        finally:
            ex.shutdown()
    return rows


def err(est: float, real: float) -> float:
    return abs(est - real) / real * 100


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slots", default="1,2", help="comma-separated CNNLAB_CPU_SLOTS settings to run (default 1,2)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every run's training examples")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="set in the workers' environment (e.g. OMP_WAIT_POLICY=PASSIVE, CNNLAB_THREADS=1)")
    a = ap.parse_args(argv)
    if a.env:  # set at import (above)
        print("workers' environment:", ", ".join(a.env))
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; threads per run "
          f"{admission.threads_per_run()}; load average at start {_load():.2f}", flush=True)
    rows = []
    for slots in [int(x) for x in a.slots.split(",") if x.strip()]:
        rows += scenario(slots, a.scale)
    print()
    print("| slots | run | ahead | load (source) | estimate: wait + run = total | real: wait + total | error "
          "| old estimate (error) | quiet table (error) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        real = r["real_s"]
        print(f"| {r['slots']} | {r['name']} | {r['ahead']} | {r['load']:.2f} ({r['source']}) | "
              f"{r['est_wait_s']:.0f} + {r['est_s'] - r['est_wait_s']:.0f} = {r['est_s']:.0f} s | "
              f"{r['real_wait_s']:.0f} + {real:.0f} s | {err(r['est_s'], real):.0f} % | "
              f"{r['old_s']:.0f} s ({err(r['old_s'], real):.0f} %) | {r['quiet_s']:.0f} s ({err(r['quiet_s'], real):.0f} %) "
              f"| {r['load_avg']:.1f} |")
    good = [r for r in rows if r["real_s"] == r["real_s"]]
    med = {k: statistics.median(err(r[k], r["real_s"]) for r in good) for k in ("est_s", "old_s", "quiet_s")}
    print()
    print(f"median absolute error over {len(good)} runs: expect {med['est_s']:.0f} % · old MAC estimate "
          f"{med['old_s']:.0f} % · quiet table alone {med['quiet_s']:.0f} % (goal for expect: ≤ 30 %)")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"machine": m, "rows": rows, "median_error_pct": med}, f, indent=1)
    failed = [r for r in rows if "done" not in r.get("state", "")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
