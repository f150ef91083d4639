"""Device choice, AMP dtype, free memory and the eval batch — the GPU's failures simulated on a CPU machine.

Every CUDA call cnnlab.device makes is monkeypatched, so these run on CPU-only CI and still walk the
branches a real GPU host takes (unavailable, driver too old, capability without kernels, a failing test
kernel, cuda:N past the device count).
"""
import json
import subprocess
import types

import pytest
import torch

from cnnlab import device as dp
from cnnlab.__main__ import main
from cnnlab.engine import TrainConfig
from cnnlab.registry import KnobError

GiB = 2**30


@pytest.fixture(autouse=True)
def fresh_reports(monkeypatch):
    """Each test probes afresh (report() caches per process) and no test leaks its fake GPU."""
    monkeypatch.setattr(dp, "_REPORTS", {})
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def fake_gpus(monkeypatch, *gpus, arch=("sm_75", "sm_80", "sm_86", "sm_90"), smoke=None, free=5 * GiB):
    """Make torch report these GPUs: each (name, (major, minor), total bytes)."""
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(gpus))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch))

    def props(i):
        name, (major, minor), total = gpus[i]
        return types.SimpleNamespace(name=name, major=major, minor=minor, total_memory=total)

    monkeypatch.setattr(torch.cuda, "get_device_properties", props)
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda d=None: gpus[(torch.device(d).index or 0) if d is not None else 0][1])
    calls = []

    def smoke_test(dev):
        calls.append(str(dev))
        if smoke is not None:
            raise smoke

    monkeypatch.setattr(dp, "_smoke_test", smoke_test)
    monkeypatch.setattr(dp, "free_memory_bytes", lambda d: free)
    return calls


def no_cuda(monkeypatch, *, driver=None, driver_cuda=None, torch_cuda="13.0", warning=None):
    monkeypatch.setattr(torch.version, "cuda", torch_cuda)

    def is_available():
        if warning:
            import warnings
            warnings.warn(warning, UserWarning)
        return False

    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    monkeypatch.setattr(dp, "driver_version", lambda: driver)
    monkeypatch.setattr(dp, "driver_cuda_version", lambda: driver_cuda)


# -- why not the GPU -----------------------------------------------------------------------------

def test_a_cpu_build_of_torch_says_so(monkeypatch):
    no_cuda(monkeypatch, torch_cuda=None)
    r = dp.probe("auto")
    assert r.device == "cpu" and "no CUDA support" in r.reason and r.amp == "off"


def test_no_driver_says_so(monkeypatch):
    no_cuda(monkeypatch)
    r = dp.probe("auto")
    assert r.device == "cpu" and "no NVIDIA driver" in r.reason


def test_a_driver_older_than_torchs_cuda_names_both_versions_and_the_driver_needed(monkeypatch):
    no_cuda(monkeypatch, driver="535.104.05", driver_cuda="12.2", torch_cuda="13.0",
            warning="CUDA initialization: The NVIDIA driver on your system is too old (found version 12020).")
    r = dp.probe("auto")
    assert r.device == "cpu" and r.driver == "535.104.05" and r.driver_cuda == "12.2"
    assert "535.104.05" in r.reason and "12.2" in r.reason and "13.0" in r.reason and "580" in r.reason
    assert "cu122" in r.reason  # the wheel index that fits the driver


def test_a_new_enough_driver_that_still_fails_passes_on_torchs_warning(monkeypatch):
    no_cuda(monkeypatch, driver="580.65.06", driver_cuda="13.0", torch_cuda="13.0",
            warning="CUDA initialization: CUDA driver initialization failed, you might not have a CUDA gpu.")
    r = dp.probe("auto")
    assert r.device == "cpu" and "driver initialization failed" in r.reason


def test_cuda_visible_devices_empty_is_the_reason(monkeypatch):
    no_cuda(monkeypatch, driver="580.65.06", driver_cuda="13.0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    r = dp.probe("auto")
    assert r.device == "cpu" and "CUDA_VISIBLE_DEVICES" in r.reason


def test_a_capability_without_kernels_falls_back_before_any_kernel_runs(monkeypatch):
    calls = fake_gpus(monkeypatch, ("Tesla P100-PCIE-16GB", (6, 0), 16 * GiB))
    r = dp.probe("auto")
    assert r.device == "cpu" and r.capability == "6.0" and r.name.startswith("Tesla P100")
    assert "6.0" in r.reason and "sm_60" in r.reason and "sm_75" in r.reason
    assert calls == []  # no kernel was launched on a GPU the build cannot run


def test_a_failing_test_allocation_falls_back_with_the_error(monkeypatch):
    calls = fake_gpus(monkeypatch, ("NVIDIA A100", (8, 0), 40 * GiB),
                      smoke=RuntimeError("CUDA error: no kernel image is available for execution on the device"))
    r = dp.probe("auto")
    assert calls == ["cuda:0"]
    assert r.device == "cpu" and "test allocation" in r.reason and "no kernel image" in r.reason


@pytest.mark.parametrize("cap,amp", [((9, 0), "bf16"), ((8, 0), "bf16"), ((8, 6), "bf16"), ((7, 5), "fp16"),
                                     ((7, 0), "fp16")])
def test_a_working_gpu_is_chosen_with_the_amp_dtype_for_its_capability(monkeypatch, cap, amp):
    fake_gpus(monkeypatch, ("GPU", cap, 16 * GiB), arch=("sm_70", "sm_75", "sm_80", "sm_90"))
    r = dp.probe("auto")
    assert r.device == "cuda:0" and r.reason == "" and r.amp == amp
    assert r.capability == f"{cap[0]}.{cap[1]}" and r.memory_total == 16 * GiB and r.memory_free == 5 * GiB
    assert dp.resolve_device("auto") == torch.device("cuda", 0)


def test_cuda_n_is_checked_against_the_device_count(monkeypatch):
    fake_gpus(monkeypatch, ("A", (8, 0), GiB), ("B", (8, 0), GiB))
    assert dp.probe("cuda:1").device == "cuda:1" and dp.probe("cuda:1").name == "B"
    r = dp.probe("cuda:2")
    assert r.device == "cpu" and "2 GPUs" in r.reason and "cuda:0..cuda:1" in r.reason
    with pytest.raises(dp.DeviceError, match="cuda:2 was asked for but no CUDA GPU can be used"):
        dp.resolve_device("cuda:2")


def test_auto_falls_back_and_explicit_cuda_raises_with_the_reason(monkeypatch):
    fake_gpus(monkeypatch, ("Tesla V100", (7, 0), 16 * GiB), arch=("sm_80", "sm_90"))
    assert dp.resolve_device("auto") == torch.device("cpu")
    assert "sm_70" in dp.fallback_reason("auto", torch.device("cpu"))
    assert dp.fallback_reason("cpu", torch.device("cpu")) == ""
    with pytest.raises(dp.DeviceError, match="sm_70"):
        dp.resolve_device("cuda")
    assert dp.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("cap,arch,ok", [
    ((8, 6), ["sm_80"], True),            # same major, newer minor: the sm_80 cubin runs
    ((8, 0), ["sm_86"], False),           # an older minor cannot run a newer cubin
    ((9, 0), ["sm_80", "compute_80"], True),  # PTX is compiled by the driver for newer GPUs
    ((9, 0), ["sm_80"], False),
    ((6, 0), ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"], False),  # torch 2.14's cu130 list
    ((12, 0), ["sm_75", "sm_120"], True),
    ((7, 5), [], True),                   # a build that does not list its archs is trusted
])
def test_arch_supported(cap, arch, ok):
    assert dp.arch_supported(cap, arch) is ok


def test_driver_version_parsing(monkeypatch, tmp_path):
    text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:\n"
    import builtins
    real_open = builtins.open

    def fake_open(path, *a, **k):
        if path == "/proc/driver/nvidia/version":
            p = tmp_path / "v"
            p.write_text(text)
            return real_open(p, *a, **k)
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert dp.driver_version() == "535.104.05"


# -- AMP -----------------------------------------------------------------------------------------

def test_choose_amp_by_capability(monkeypatch):
    cuda = torch.device("cuda", 0)
    for cap, auto in (((9, 0), "bf16"), ((8, 0), "bf16"), ((7, 5), "fp16"), ((6, 1), "off"), ((5, 2), "off")):
        monkeypatch.setattr(dp, "capability", lambda d, cap=cap: cap)
        assert dp.choose_amp(cuda, "auto") == auto
        assert dp.choose_amp(cuda, "off") == "off"
        assert dp.choose_amp(cuda, "fp16") == "fp16"
        if cap >= (8, 0):
            assert dp.choose_amp(cuda, "bf16") == "bf16"
        else:
            with pytest.raises(dp.DeviceError, match="bf16 autocast needs compute capability 8.0"):
                dp.choose_amp(cuda, "bf16")
    cpu = torch.device("cpu")
    assert dp.choose_amp(cpu, "auto") == "off" and dp.choose_amp(cpu, "bf16") == "bf16"
    with pytest.raises(dp.DeviceError, match="amp must be one of"):
        dp.choose_amp(cpu, "fp8")


def test_autocast_and_scaler_follow_the_dtype():
    cpu = torch.device("cpu")
    for amp, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with dp.autocast(cpu, amp)():
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == dtype
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == dtype
    with dp.autocast(cpu, "off")():
        assert not torch.is_autocast_enabled("cpu")
    with dp.autocast(cpu)():  # "auto" on the CPU: fp32, as the CPU path is tuned
        assert not torch.is_autocast_enabled("cpu")
    assert isinstance(dp.grad_scaler(cpu, "fp16"), torch.amp.GradScaler)
    assert dp.grad_scaler(cpu, "bf16") is None and dp.grad_scaler(cpu, "off") is None


def test_amp_is_a_checked_train_setting_recorded_in_hyper():
    assert TrainConfig(amp="fp16").resolved().hyper()["amp"] == "fp16"
    assert TrainConfig().resolved().amp == "auto"
    with pytest.raises(KnobError, match="amp"):
        TrainConfig(amp="fp8").resolved()


# -- memory ----------------------------------------------------------------------------------------

def test_eval_batch_is_sized_from_the_training_step():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert dp.eval_batch_size(cpu, 128) == 256 and dp.eval_batch_size(cuda, 128, 64) == 64
    # the VGG-11 at 224 on a 16 GB GPU: a training step at batch 128 takes ~4 GB, ~10 GB left
    bs = dp.eval_batch_size(cuda, 128, step_bytes=4 * GiB, available_bytes=10 * GiB)
    assert bs == 256 and bs * (4 * GiB / 128) <= 10 * GiB  # never more than the memory the step showed
    assert dp.eval_batch_size(cuda, 128, step_bytes=4 * GiB, available_bytes=3 * GiB) == 128  # at least a batch
    assert dp.eval_batch_size(cuda, 256, step_bytes=50 * 2**20, available_bytes=70 * GiB) == 1024  # capped
    assert dp.eval_batch_size(cuda, 2048, step_bytes=GiB, available_bytes=70 * GiB) == 2048
    assert dp.eval_batch_size(cuda, 128) == 128  # no figures: the training batch, which fitted


def test_free_memory_on_cpu_is_available_ram():
    """On Linux (CI and every Space): MemAvailable, a figure between 0 and the machine's RAM; elsewhere None."""
    import os
    import sys

    free = dp.free_memory_bytes("cpu")
    if not sys.platform.startswith("linux"):
        assert free is None
        return
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert isinstance(free, int) and 0 < free <= total, (free, total)
    with open("/proc/meminfo") as f:
        listed = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    assert abs(free - listed) < total // 10  # the same figure, read a moment apart


def test_free_memory_on_cuda_uses_the_context_or_nvidia_smi(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=None: (7 * GiB, 16 * GiB))
    assert dp.free_memory_bytes("cuda") == 7 * GiB
    # no context in this process (the app's server): ask nvidia-smi, mapping CUDA_VISIBLE_DEVICES
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=None: pytest.fail("must not start CUDA"))
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="12000\n", stderr="")

    monkeypatch.setattr(dp.subprocess, "run", fake_run)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert dp.free_memory_bytes(torch.device("cuda", 1)) == 12000 * 2**20
    assert seen[-1][-2:] == ["-i", "5"]
    assert dp.free_memory_bytes("cuda:2") is None  # not visible to this process


def test_is_oom():
    assert dp.is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert dp.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"))
    assert not dp.is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# -- the devices command and the app's report ------------------------------------------------------

def test_devices_command_json_and_text(monkeypatch, capsys):
    fake_gpus(monkeypatch, ("Tesla T4", (7, 5), 15 * GiB))
    assert main(["devices", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["device"] == "cuda:0" and d["name"] == "Tesla T4" and d["capability"] == "7.5"
    assert d["amp"] == "fp16" and d["memory_total"] == 15 * GiB and d["torch_cuda"] == "12.8" and d["reason"] == ""
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "cuda:0" in out and "Tesla T4" in out and "fp16" in out and "7.5" in out


def test_devices_command_says_why_not_and_rejects_a_bad_device(monkeypatch, capsys):
    no_cuda(monkeypatch, driver="535.104.05", driver_cuda="12.2")
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "auto -> cpu" in out and "not the GPU:" in out and "535.104.05" in out
    assert main(["devices", "--device", "tpu"]) == 2
    assert "device must be one of" in capsys.readouterr().err


def test_devices_command_in_a_real_process():
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-m", "cnnlab", "devices", "--json"], capture_output=True, text=True,
                       cwd=root, timeout=120)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["device"] in ("cpu",) or d["device"].startswith("cuda:")
    assert (d["device"] == "cpu") == bool(d["reason"])  # a CPU fallback always says why


def test_app_report_without_a_gpu_is_found_in_process(monkeypatch):
    no_cuda(monkeypatch, driver="535.104.05", driver_cuda="12.2")
    monkeypatch.setattr(dp.subprocess, "run", lambda *a, **k: pytest.fail("no child process needed"))
    r = dp.app_report()
    assert r.device == "cpu" and "535.104.05" in r.reason and dp.app_report() is r


def test_app_report_with_a_gpu_checks_in_a_child_process(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    child = dp.DeviceReport(requested="auto", device="cpu", name="Tesla P100", capability="6.0",
                            reason="Tesla P100 has compute capability 6.0 (sm_60) ...")
    monkeypatch.setattr(dp, "probe", lambda *a, **k: pytest.fail("the server process must not start CUDA"))
    monkeypatch.setattr(dp.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, stdout=json.dumps(child.to_dict()) + "\n", stderr=""))
    r = dp.app_report()
    assert r == child and not r.is_cuda


def test_compile_options(monkeypatch):
    monkeypatch.delenv("CNNLAB_COMPILE_BACKEND", raising=False)
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert dp.compile_options(cuda, small=True) == {"backend": "inductor", "dynamic": False, "mode": "reduce-overhead"}
    assert dp.compile_options(cuda, small=False) == {"backend": "inductor", "dynamic": False}
    assert dp.compile_options(cpu, small=True) == {"backend": "inductor", "dynamic": False}
    monkeypatch.setenv("CNNLAB_COMPILE_BACKEND", "aot_eager")
    assert dp.compile_options(cuda, small=True) == {"backend": "aot_eager", "dynamic": False}
