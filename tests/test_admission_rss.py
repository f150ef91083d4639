"""Issue #23 §4: the admission estimate against a real worker's peak resident set (VmHWM), within 25 %.

Every CPU preset and three extreme in-range settings run in a fresh process that starts as a worker does
(cnnlab.runs.worker._warm: torch and cnnlab imported, Fashion-MNIST read, a few LeNet steps), then trains the run
through ``engine.run`` with its run folder: one epoch of two training batches, then the evaluation of the test set.
The sizes are reduced to keep the test short, and the estimate is made for the same reduced config, so every term
(data at the run's resolution, the resize work space, one training step, one evaluation batch) is the one the run
really has. ``pytest -s`` prints the table.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from cnnlab import engine
from cnnlab.presets import CPU_PRESETS
from cnnlab.registry import resolve
from cnnlab.runs import admission
from cnnlab.units import fmt_bytes

from helpers import needs_fmnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 0.25

CHILD = r"""
import json, sys, tempfile
from cnnlab.runs import worker
worker._warm(True)
from cnnlab import engine
from cnnlab.registry import resolve
c = json.loads(sys.argv[1])
tc = engine.TrainConfig(model=resolve(c["arch"], c["knobs"], resolution=c["resolution"]), epochs=1, lr=c["lr"],
                        batch_size=c["batch_size"], optimizer=c["optimizer"], train_size=c["train_size"],
                        test_size=c["test_size"], device="cpu")
last = None
for ev in engine.run(tc, out_dir=tempfile.mkdtemp(prefix="cnnlab-rss-")):
    last = ev
assert type(last).__name__ == "RunEnd", last
with open("/proc/self/status") as f:
    hwm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({"hwm": hwm}))
"""


def _preset_cases() -> list[tuple[str, dict]]:
    """Each CPU preset with two training batches and one evaluation batch (256 on the CPU) of its test set."""
    out = []
    for p in CPU_PRESETS:
        v = p.values()
        out.append((p.id, dict(arch=v["arch"], knobs=dict(v["knobs"]), resolution=v["resolution"], lr=v["lr"],
                               batch_size=v["batch_size"], optimizer=v["optimizer"],
                               train_size=min(v["train_size"], 2 * v["batch_size"]),
                               test_size=min(v["test_size"], 256))))
    return out


EXTREMES = [
    # the report's case: VGG at ratio 64 with the smallest dense layers, batch 1, at a large resolution; 768 test
    # images at 600² (1.1 GB as float) are kept as uint8, so each evaluation batch is a 368 MB float copy
    ("vgg_r64_fc16_600px_b1", dict(arch="vgg", knobs={"ratio": 64, "fc_width": 16}, resolution=600, lr=0.05,
                                   batch_size=1, optimizer="sgd", train_size=16, test_size=768)),
    # DenseNet at its largest growth rate (128: 576 channels after the first dense block)
    ("densenet_k128_64px", dict(arch="densenet", knobs={"growth_rate": 128}, resolution=64, lr=0.1, batch_size=32,
                                optimizer="sgd", train_size=64, test_size=256)),
    # MobileNet V2 at its widest (α 2.0)
    ("mobilenet_v2_a2_64px", dict(arch="mobilenet_v2", knobs={"alpha": 2.0}, resolution=64, lr=0.05, batch_size=64,
                                  optimizer="sgd", train_size=128, test_size=256)),
]


def _train_config(c: dict) -> engine.TrainConfig:
    return engine.TrainConfig(model=resolve(c["arch"], c["knobs"], resolution=c["resolution"]), epochs=1, lr=c["lr"],
                              batch_size=c["batch_size"], optimizer=c["optimizer"], train_size=c["train_size"],
                              test_size=c["test_size"], device="cpu")


def _peak(c: dict) -> tuple[int, float]:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(c)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": ROOT, "CNNLAB_LOAD_PROBE": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["hwm"], time.perf_counter() - t


@needs_fmnist
def test_the_memory_estimate_is_within_a_quarter_of_a_real_workers_peak():
    cases = _preset_cases() + EXTREMES
    estimates = {name: admission.estimate(_train_config(c).resolved(), "cpu") for name, c in cases}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:   # two at a time: each VmHWM is its own process's
        peaks = dict(zip([n for n, _ in cases], pool.map(_peak, [c for _, c in cases])))
    wall = time.perf_counter() - t0
    rows, bad = [], []
    for name, _ in cases:
        est, (peak, secs) = estimates[name], peaks[name]
        err = (est.mem_bytes - peak) / peak
        rows.append(f"{name:24s} {fmt_bytes(est.mem_bytes):>9s} {fmt_bytes(peak):>9s} {err * 100:+6.1f} %"
                    f" {secs:5.1f} s")
        if abs(err) > TOLERANCE:
            bad.append((name, est.parts, peak))
    print(f"\n{'case':24s} {'estimate':>9s} {'peak RSS':>9s}  error  wall")
    print("\n".join(rows))
    print(f"{len(cases)} runs, two at a time: {wall:.0f} s")
    assert not bad, "\n".join(f"{n}: peak {fmt_bytes(p)}, estimate " +
                              ", ".join(f"{k} {fmt_bytes(v)}" for k, v in parts.items()) for n, parts, p in bad)
