"""Device policy: which device a run uses, how many CPU threads, the allocator, autocast, out-of-memory.

Kept apart from the training loop (cnnlab.engine) so that the loop reads as d2l's and the machine
specific choices are in one place. No streamlit; torch only.
"""
from __future__ import annotations

import contextlib
import os

import torch

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(RuntimeError):
    """A device that was asked for but cannot be used; the message is one sentence for people."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu. Raises DeviceError for a device that is not there."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return dev


_TORCH_THREADS = torch.get_num_threads()  # torch's own default: the physical cores
MAX_THREADS = 256


def cpu_threads(requested: int | None = None) -> int:
    """Intra-op threads for CPU training: `requested` (TrainConfig.threads), else $CNNLAB_THREADS,
    else torch's default (the physical cores), never more than MAX_THREADS.

    Measured on a 2-core machine (bench/RESULTS.md): LeNet-sized steps run ~1.7× faster on two
    threads than on one while the machine is otherwise idle, but 2-5× slower as soon as another
    process wants a core, because each thread waits for the other at every operator. On a busy
    machine set CNNLAB_THREADS=1. The thread count changes float rounding, so bit-for-bit
    reproducibility holds for the same seed, device and thread count.
    """
    if requested:
        return min(int(requested), MAX_THREADS)
    env = os.environ.get("CNNLAB_THREADS", "")
    if env.isascii() and env.isdigit() and int(env) > 0:
        return min(int(env), MAX_THREADS)
    return max(1, _TORCH_THREADS)


_MALLOC_TUNED = False


def tune_cpu_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the OS after every step (glibc only).

    glibc serves the activations of a CPU training step (a few MB each) with mmap and unmaps them when
    freed, so every step page-faults its memory in again. Raising the mmap and trim thresholds lets the
    next step reuse the same pages: measured 3-4× fewer page faults and ~10 % more LeNet steps/s on
    2 cores. Done once per process; $CNNLAB_MALLOPT=0 turns it off. Returns whether it is in effect.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get("CNNLAB_MALLOPT", "1") == "0":
        return _MALLOC_TUNED
    try:
        import ctypes
        import platform
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1 and libc.mallopt(m_trim_threshold, (1 << 31) - 1) == 1
        _MALLOC_TUNED = bool(ok)
    except (OSError, AttributeError):
        _MALLOC_TUNED = False
    return _MALLOC_TUNED


def prepare(device: torch.device, threads: int | None = None) -> dict:
    """Set up the process for training on `device`; returns what was chosen (for config.json)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return {"device": str(device), "cudnn_benchmark": True, "tf32": True}
    n = cpu_threads(threads)
    torch.set_num_threads(n)
    return {"device": str(device), "threads": n, "malloc_tuned": tune_cpu_allocator()}


def autocast(device: torch.device):
    """A context-manager factory for the training step: bf16 autocast on CUDA, nothing on CPU."""
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def is_oom(e: BaseException) -> bool:
    """Whether `e` is the device (or the host) running out of memory."""
    if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                            or "not enough memory" in msg)


def release(device: torch.device) -> None:
    """Give cached device memory back after a run (other runs and processes share the GPU)."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
