"""A class at the queue: N students press Start on the same preset within a few seconds (#22 §4).

    .venv/bin/python bench/class_queue.py [--students 30] [--preset lenet_quick] [--within 10] [--train-size N]
                                          [--markdown FILE]

Each student is an owner of their own; every run goes through the server's executor with the limits the
server reads from its environment (Limits.from_env: what the Space image runs with), as the Train page submits
it. Prints how many were refused and why, how many finished, the time from the first Start until the last run
finished, and the waits, with the machine (CPUs, load) they were measured on.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "?"
    return f"{os.cpu_count()} CPUs ({model}), load {open('/proc/loadavg').read().split()[:3]}"


def class_at_the_queue(students: int, preset: str, within_s: float, train_size: int | None, out_dir: str,
                       seed: int = 0, test_size: int | None = None, wait: bool = True) -> dict:
    """Submit one run per student at random moments within `within_s`; wait for every run (or, with
    wait=False, stop them once all are in: the queue's admission alone). Returns figures."""
    from cnnlab import engine
    from cnnlab.presets import PRESETS
    from cnnlab.runs import RunRefused, get_executor
    from cnnlab.runs.base import Limits

    v = PRESETS[preset].values()
    cfg = engine.TrainConfig(model=v["arch"], knobs=v["knobs"], resolution=v["resolution"], epochs=v["epochs"],
                             lr=v["lr"], batch_size=v["batch_size"], optimizer=v["optimizer"], device="cpu",
                             train_size=train_size or (None if v["train_size"] >= 60000 else v["train_size"]),
                             test_size=test_size or (None if v["test_size"] >= 10000 else v["test_size"]))
    limits = Limits.from_env()
    ex = get_executor("local", limits=limits, out_dir=out_dir)
    rng = random.Random(seed)
    moments = sorted(rng.uniform(0, within_s) for _ in range(students))
    handles, refused, lock = [], [], threading.Lock()
    t0 = time.time()

    def press(i: int, at: float) -> None:
        time.sleep(max(0.0, t0 + at - time.time()))
        try:
            h = ex.submit(cfg, "student-" + secrets.token_hex(8), label=f"student {i}",
                          meta={"arch": v["arch"], "preset": preset})
            with lock:
                handles.append(h)
        except RunRefused as e:
            with lock:
                refused.append(str(e))

    threads = [threading.Thread(target=press, args=(i, at)) for i, at in enumerate(moments)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pressed = time.time() - t0
    if not wait:
        queued = sum(ex.status(h.id).state == "queued" for h in handles)
        for h in handles:
            ex.stop(h, h.owner)
    for h in handles:
        ex.wait(h, None)
    last = time.time() - t0
    states = [ex.status(h.id) for h in handles]
    ex.shutdown()
    waits = [s.started - s.created for s in states if s.started]
    runs = [s.finished - s.started for s in states if s.started and s.finished]
    return {"students": students, "preset": preset, "pressed_within_s": pressed, "refused": len(refused),
            "why": sorted(set(refused))[:3], "finished": sum(s.state == "done" for s in states),
            "failed": [s.message for s in states if s.state != "done"][:3], "last_finished_s": last,
            "wait_median_s": statistics.median(waits) if waits else None, "wait_max_s": max(waits, default=None),
            "run_median_s": statistics.median(runs) if runs else None, "queue_len": limits.queue_len,
            "cpu_slots": limits.cpu_slots, "machine": machine(), "queued": None if wait else queued}


def table(r: dict) -> str:
    m = lambda s: "—" if s is None else f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"  # noqa: E731
    return "\n".join([
        "| students | preset | pressed within | refused | finished | last finished after | wait median / max "
        "| one run (median) | queue_len · cpu_slots |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['students']} | {r['preset']} | {r['pressed_within_s']:.1f} s | {r['refused']} | {r['finished']} | "
        f"{m(r['last_finished_s'])} | {m(r['wait_median_s'])} / {m(r['wait_max_s'])} | {m(r['run_median_s'])} | "
        f"{r['queue_len']} · {r['cpu_slots']} |",
        "", f"Machine: {r['machine']}."])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--preset", default="lenet_quick")
    ap.add_argument("--within", type=float, default=10.0, help="seconds over which the Starts come (default 10)")
    ap.add_argument("--train-size", type=int, default=None, help="fewer training examples than the preset's")
    ap.add_argument("--markdown", metavar="FILE")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cnnlab-class-") as d:
        r = class_at_the_queue(a.students, a.preset, a.within, a.train_size, d)
    out = table(r)
    print(out)
    if r["why"]:
        print("refused: " + " | ".join(r["why"]))
    if r["failed"]:
        print("not done: " + " | ".join(map(str, r["failed"])))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(out + "\n")
    return 0 if r["refused"] == 0 and r["finished"] == r["students"] else 1


if __name__ == "__main__":
    sys.exit(main())
