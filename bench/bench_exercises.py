"""Each training exercise's A/B pair end to end on this machine, as the Exercises page runs it (A, then B):
the wall time the page states as the pair's CPU budget, and both test accuracies.

    PYTHONPATH=. .venv/bin/python bench/bench_exercises.py [--only lenet_relu,bn_lr]

Run it on a quiet machine; prints a Markdown table (wall s per pair, test accuracies, the one-line reading).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cnnlab import exercises as X  # noqa: E402
from cnnlab.engine import run  # noqa: E402
from cnnlab.events import RunEnd  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated exercise ids (default: every training exercise)")
    a = ap.parse_args(argv)
    todo = [e for e in X.EXERCISES if e.kind == "train"]
    if a.only:
        want = set(a.only.split(","))
        todo = [e for e in todo if e.id in want]
    print("| exercise | pair wall s | stated budget s | A test acc | B test acc | reading |")
    print("|---|---|---|---|---|---|")
    ok = True
    for ex in todo:
        t0 = time.perf_counter()
        accs = []
        for side in (ex.a, ex.b):
            end = [e for e in run(ex.train_config(side, seed=0), out_dir=None) if isinstance(e, RunEnd)]
            accs.append(end[0].test_acc if end else float("nan"))
        wall = time.perf_counter() - t0
        ok &= wall <= ex.budget_s
        print(f"| {ex.id} | {wall:.1f} | {ex.budget_s} | {accs[0]:.3f} | {accs[1]:.3f} | {X.reading(ex, *accs)} |",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
