"""How long a knob change takes to reach the cost ledger, without the browser: resolve + measure, cache cold.

The Architecture page calls `registry.resolve` (the knobs validated) and `measure.measure` (the model built
and walked once on the meta device, torchinfo counting the MACs) for a knob value it has not seen; this times
exactly that for every architecture at the book's resolution, with the shared cache cleared before each try,
and prints the median
and the worst of --repeats tries against the 0.3 s target. (bench/bench_runs.py and bench/load_test.py
measure the same in a real browser, with the server's other work.)

    PYTHONPATH=. .venv/bin/python bench/bench_probe.py [--repeats 5] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cnnlab import registry  # noqa: E402
from cnnlab.caches import CACHE  # noqa: E402
from cnnlab.measure import measure  # noqa: E402

TARGET_S = 0.3


def time_one(arch: str) -> float:
    CACHE.clear()
    t = time.perf_counter()
    measure(registry.resolve(arch)).check()
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--markdown", help="append the table to this file")
    args = ap.parse_args(argv)
    for arch in registry.arch_names():  # warm the imports (torchinfo, the model files) once, untimed
        time_one(arch)
    load = os.getloadavg()[0]
    rows = ["| model | median s | worst s | ≤ 0.3 s |", "|---|---|---|---|"]
    for arch in registry.arch_names():
        ts = [time_one(arch) for _ in range(args.repeats)]
        med = statistics.median(ts)
        rows.append(f"| {arch} | {med:.3f} | {max(ts):.3f} | {'yes' if med <= TARGET_S else 'no'} |")
    text = "\n".join(rows) + f"\n\n(load average at the start: {load:.2f}; {os.cpu_count()} CPUs)\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
