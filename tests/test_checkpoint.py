"""cnnlab.checkpoint: round trip, atomic saves, clear errors for corrupt or foreign files."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnnlab import checkpoint as ck
from cnnlab.events import BNLayerStats, BNSnapshot
from cnnlab.registry import resolve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _make_run(root, arch="lenet", knobs=None, epochs_done=2, seed=0):
    cfg = resolve(arch, knobs or {})
    torch.manual_seed(seed)
    model = cfg.build()
    run_dir = ck.new_run_dir(str(root), arch)
    w = ck.RunWriter(run_dir)
    w.write_config({"run_id": os.path.basename(run_dir), "created": f"2026-01-0{seed + 1}T00:00:00+00:00",
                    "model": cfg.to_dict(), "train": {"epochs": 3, "lr": 0.9}, "status": "running"})
    for e in range(1, epochs_done + 1):
        w.save_weights(model, e)
        w.append_metrics({"event": "epoch_end", "epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5,
                          "test_acc": 0.4 + e / 10})
    return run_dir, model


def test_round_trip(tmp_path):
    run_dir, model = _make_run(tmp_path, knobs={"batchnorm": "scratch"})
    loaded = ck.load_run(run_dir)
    assert loaded.model_config == resolve("lenet", {"batchnorm": "scratch"})
    assert loaded.epoch == 2 and [m["epoch"] for m in loaded.metrics] == [1, 2]
    sd, sd2 = model.state_dict(), loaded.model.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert not loaded.model.training
    x = torch.rand(3, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), loaded.model(x))
    # the weights file path works as well as the folder
    assert ck.load_run(os.path.join(run_dir, ck.WEIGHTS)).epoch == 2
    assert oct(os.stat(os.path.join(run_dir, ck.CONFIG)).st_mode & 0o777) != "0o600"


def test_bn_history_round_trip(tmp_path):
    w = ck.RunWriter(str(tmp_path / "r"))
    snaps = [BNSnapshot(epoch=1, step=s, layers=(BNLayerStats("1", [1.0, 2.0], [0.0, 0.5], [0.1, 0.2], [1.0, 1.5],
                                                               [0.3, 0.4], [0.9, 1.1]),)) for s in (5, 10)]
    for s in snaps:
        w.add_bn_snapshot(s)
    w.flush_bn(1)
    w.add_bn_snapshot(BNSnapshot(epoch=2, step=15, layers=snaps[0].layers))
    w.flush_bn(2)
    got = ck.read_bn_history(str(tmp_path / "r"))
    assert [s.step for s in got] == [5, 10, 15] and got[0] == snaps[0]


def test_list_runs_newest_first_and_unreadable_listed(tmp_path):
    a, _ = _make_run(tmp_path, seed=0)
    b, _ = _make_run(tmp_path, arch="lenet", knobs={"activation": "relu"}, seed=1, epochs_done=1)
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / ck.CONFIG).write_text("{not json")
    (tmp_path / "not-a-run").mkdir()
    runs = ck.list_runs(str(tmp_path))
    by_dir = {r.run_dir: r for r in runs}
    assert set(by_dir) == {a, b, str(bad)}
    ordered = [r.run_dir for r in runs if r.status != "unreadable"]
    assert ordered == [b, a]
    assert by_dir[a].epochs_done == 2 and by_dir[a].test_acc == pytest.approx(0.6) and by_dir[a].has_weights
    assert by_dir[b].knobs["activation"] == "relu"
    assert by_dir[str(bad)].status == "unreadable" and "corrupt" in by_dir[str(bad)].error
    assert ck.list_runs(str(tmp_path / "nowhere")) == []


def test_a_save_that_dies_midway_leaves_the_previous_file(tmp_path, monkeypatch):
    run_dir, model = _make_run(tmp_path)
    before = ck.load_weights(os.path.join(run_dir, ck.WEIGHTS))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    real_save = torch.save

    def half_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 partial bytes")
        raise OSError("No space left on device")

    monkeypatch.setattr(ck.torch, "save", half_save)
    with pytest.raises(OSError):
        ck.RunWriter(run_dir).save_weights(model, 3)
    monkeypatch.setattr(ck.torch, "save", real_save)

    def no_rename(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(ck.os, "replace", no_rename)
    with pytest.raises(OSError):
        ck.RunWriter(run_dir).save_weights(model, 3)
    with pytest.raises(OSError):
        ck.atomic_write_json(os.path.join(run_dir, ck.CONFIG), {"format": "garbage"})
    monkeypatch.undo()

    after = ck.load_weights(os.path.join(run_dir, ck.WEIGHTS))
    assert after["epoch"] == before["epoch"] == 2
    assert all(torch.equal(after["state_dict"][k], before["state_dict"][k]) for k in before["state_dict"])
    assert ck.read_config(run_dir)["status"] == "running"
    assert sorted(os.listdir(run_dir)) == sorted([ck.CONFIG, ck.WEIGHTS, ck.METRICS])  # no temp files left


_KILL_SCRIPT = r"""
import sys, torch
from cnnlab import checkpoint as ck
path = sys.argv[1]
i = 0
while True:
    i += 1
    ck.atomic_torch_save(path, {"format": "cnnlab-weights", "state_dict": {"w": torch.full((1 << 20,), float(i))},
                                "epoch": i})
    print(i, flush=True)
"""


def test_a_killed_process_never_leaves_a_torn_file(tmp_path):
    path = str(tmp_path / "model.pt")
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, path], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(3):  # let a few saves complete, then kill it while it is writing the next
            assert p.stdout.readline()
        time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    obj = ck.load_weights(path)
    w = obj["state_dict"]["w"]
    assert obj["epoch"] >= 3 and torch.all(w == float(obj["epoch"]))


def _one_line_error(fn, *args, match=None):
    with pytest.raises(ck.CheckpointError) as e:
        fn(*args)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400
    if match:
        assert match in msg, msg
    return msg


def test_corrupt_truncated_and_foreign_files(tmp_path):
    run_dir, _ = _make_run(tmp_path)
    weights = os.path.join(run_dir, ck.WEIGHTS)
    good = open(weights, "rb").read()

    open(weights, "wb").write(good[: len(good) // 2])
    _one_line_error(ck.load_run, run_dir, match="corrupt, truncated or not a CNN Lab checkpoint")
    open(weights, "wb").write(b"\x00garbage" * 100)
    _one_line_error(ck.load_run, run_dir, match="corrupt, truncated")
    torch.save({"some": "other format"}, weights)
    _one_line_error(ck.load_run, run_dir, match="not a CNN Lab checkpoint")

    # a pickle that would run code: refused by weights_only, and nothing runs
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "cnnlab-weights", "state_dict": {"x": Evil()}}, weights)
    _one_line_error(ck.load_run, run_dir)
    assert not marker.exists()

    # weights of another model
    other, _ = _make_run(tmp_path / "o", knobs={"batchnorm": "nn"})
    open(weights, "wb").write(open(os.path.join(other, ck.WEIGHTS), "rb").read())
    _one_line_error(ck.load_run, run_dir, match="do not match")
    os.remove(weights)
    _one_line_error(ck.load_run, run_dir, match="has not saved weights")


def test_bad_config_files(tmp_path):
    run_dir, _ = _make_run(tmp_path)
    cfg_path = os.path.join(run_dir, ck.CONFIG)
    good = open(cfg_path).read()
    open(cfg_path, "w").write(good[:40])
    _one_line_error(ck.load_run, run_dir, match="corrupt or truncated")
    open(cfg_path, "w").write(json.dumps({"model": {"arch": "lenet"}}))
    _one_line_error(ck.load_run, run_dir, match="not a CNN Lab run")
    cfg = json.loads(good)
    cfg["model"]["arch"] = "transformer"
    open(cfg_path, "w").write(json.dumps(cfg))
    _one_line_error(ck.load_run, run_dir, match="cannot build")
    cfg["model"]["arch"], cfg["version"] = "lenet", 99
    open(cfg_path, "w").write(json.dumps(cfg))
    _one_line_error(ck.load_run, run_dir, match="version")
    os.remove(cfg_path)
    _one_line_error(ck.load_run, run_dir, match="no config.json")
    _one_line_error(ck.load_run, str(tmp_path / "missing"), match="not a folder")
    (tmp_path / "m.jsonl").write_text('{"epoch": 1}\n[1, 2]\n')
    _one_line_error(ck._read_jsonl, str(tmp_path / "m.jsonl"), match="corrupt")
