"""`python -m cnnlab train`: JSON lines, exit codes, one-line errors, Ctrl-C keeps the checkpoint."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnnlab import checkpoint, data
from helpers import needs_fmnist  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def _env():
    return dict(os.environ, PYTHONPATH=ROOT, CNNLAB_THREADS="1")


def _cli(args, cwd, timeout=120):
    """`python -m cnnlab train ARGS` in a process of its own (for what only a real process shows: the exit status
    an argument error gives the shell, Ctrl-C)."""
    return subprocess.run([sys.executable, "-m", "cnnlab", "train", *args], capture_output=True, text=True,
                          cwd=cwd, env=_env(), timeout=timeout)


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """`python -m cnnlab train ARGS` called in this process (cnnlab.__main__.main, run from tmp_path): its exit
    code and what it printed, as a CompletedProcess. A process of its own costs ~2.5 CPU-s (torch imported)."""
    from cnnlab.__main__ import main

    monkeypatch.setenv("CNNLAB_THREADS", "1")
    monkeypatch.chdir(tmp_path)

    def run(args):
        capsys.readouterr()
        try:
            code = main(["train", *args])
        except SystemExit as e:  # argparse's own errors
            code = e.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["cnnlab", "train", *args], code, out, err)
    return run


@needs_fmnist
def test_json_lines_parse_and_end_with_run_end(cli, tmp_path):
    out = tmp_path / "runs"
    p = cli(["lenet", "--train-size", "512", "--test-size", "256", "--epochs", "1", "--json", "--out", str(out)])
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]  # every line is one JSON object
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and kinds.count("epoch_end") == 1
    assert "step_end" in kinds
    end = events[-1]
    assert end["run_dir"].startswith(str(out)) and 0 <= end["test_acc"] <= 1
    ep = events[kinds.index("epoch_end")]
    assert set(ep) >= {"epoch", "train_loss", "train_acc", "test_acc", "examples_per_s", "wall_s"}
    assert events[0]["train_size"] == 512 and events[0]["lr"] == 0.9 and events[0]["batch_size"] == 256
    loaded = checkpoint.load_run(end["run_dir"])
    assert loaded.config["status"] == "finished" and loaded.config["train"]["test_size"] == 256


@needs_fmnist
def test_no_fast_cpu_is_recorded_in_run_start_and_config_json(cli, tmp_path):
    out = tmp_path / "runs"
    p = cli(["lenet", "--train-size", "256", "--test-size", "128", "--epochs", "1", "--json", "--no-fast-cpu",
             "--out", str(out)])
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert events[0]["fast_cpu"]["enabled"] is False and events[0]["fast_cpu"]["swapped"] == {}
    cfg = checkpoint.read_config(events[-1]["run_dir"])
    assert cfg["train"]["fast_cpu"] is False and cfg["fast_cpu"]["enabled"] is False


@needs_fmnist
def test_human_mode_prints_a_summary(cli, tmp_path):
    p = cli(["lenet", "--set", "batchnorm=scratch", "--train-size", "256", "--test-size", "128", "--epochs", "1",
             "--no-save"])
    assert p.returncode == 0, p.stderr
    assert "epoch 1/1: train loss" in p.stdout and "done: test acc" in p.stdout
    assert "ex/s" in p.stderr  # the progress bar
    assert not os.path.exists(tmp_path / "checkpoints")


@pytest.mark.parametrize("args, needle", [
    (["lenet", "--epochs", "0"], "epochs"),
    (["lenet", "--optimizer", "rmsprop"], "optimizer"),
    (["lenet", "--epochs", "two"], "epochs"),
    (["resnet50"], "unknown architecture"),
    (["lenet", "--set", "batchnorm=maybe"], "batchnorm"),
    (["lenet", "--set", "ratio"], "KNOB=VALUE"),
    (["lenet", "--lr", "-1"], "lr"),
    (["lenet", "--train-size", "0"], "train_size"),
    (["lenet", "--device", "tpu"], "device"),
])
def test_bad_arguments_exit_2_with_one_line(args, needle, cli):
    p = cli(args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert p.stdout == ""


def test_bad_argument_in_a_real_process(tmp_path):
    p = _cli(["lenet", "--epochs", "0"], cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "epochs" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_bad_argument(cli):
    p = cli(["lenet", "--device", "cuda"])
    assert p.returncode == 2 and "no CUDA GPU" in p.stderr


@needs_fmnist
def test_nan_loss_exits_1_with_run_failed(cli, tmp_path):
    p = cli(["lenet", "--set", "activation=relu", "--lr", "1e30", "--train-size", "512", "--test-size", "128",
             "--epochs", "2", "--log-every", "1", "--json", "--no-save"])
    assert p.returncode == 1
    last = json.loads(p.stdout.splitlines()[-1])
    assert last["event"] == "run_failed" and last["reason"] == "nan_loss"


@needs_fmnist
def test_ctrl_c_stops_cleanly_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "lenet", "--train-size", "1024",
                             "--test-size", "128", "--epochs", "200", "--json", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env())
    lines = []
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(json.loads(line))
            if lines[-1]["event"] == "epoch_end":
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines += [json.loads(x) for x in rest.splitlines()]
    last = lines[-1]
    assert last["event"] == "run_failed" and last["reason"] == "stopped"
    assert "Traceback" not in err
    cfg = checkpoint.read_config(last["run_dir"])
    assert cfg["status"] == "stopped"
    loaded = checkpoint.load_run(last["run_dir"])
    assert len(loaded.metrics) >= 1
