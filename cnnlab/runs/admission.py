"""Admission control: estimate a run's memory and time before it starts; refuse what will not fit.

Memory (bytes) = weights + gradients + optimizer state (SGD: none, Adam: 2 × weights)
               + training activations (every layer's output for one sample, from the probe on the meta
                 device, × batch × 2 for the backward pass)
               + the resident data at the run's resolution (float32, or uint8 beyond
                 cnnlab.data.FLOAT_BUDGET_BYTES) + the raw Fashion-MNIST cache
               + the evaluation batch (the two largest layer outputs × eval batch)
               + the worker process itself (torch, ~350 MB).
Time (s)       = MACs × 3 (forward + backward) × training examples × epochs / the device's rate
               + MACs × test examples × epochs / the rate.
The CPU's rate (multiply-accumulates per second through a convolution's forward + backward) is measured
once per process and cached; on CUDA a nominal rate is used. Budgets: CNNLAB_RUN_MEM_MB (default 2048
on CPU, the GPU's free memory on CUDA) and CNNLAB_MAX_RUN_HOURS (default 1).
"""
from __future__ import annotations

import functools
import math
import os
import threading
import time
from dataclasses import asdict, dataclass

from ..i18n import msg
from ..registry import Config
from .base import AdmissionRefused, Limits

N_TRAIN, N_TEST = 60000, 10000
PROCESS_BYTES = 350 * 2**20
RAW_DATA_BYTES = (N_TRAIN + N_TEST) * 28 * 28
CPU_MEM_MB = 2048
CUDA_NOMINAL_MACS = 2e12  # a rough sustained rate for a modern GPU (MAC/s); only for the time estimate


@dataclass(frozen=True)
class Estimate:
    mem_bytes: int
    seconds: float
    device: str                # "cpu" | "cuda"
    parts: dict                # the memory terms, bytes
    macs: int
    train_examples: int
    test_examples: int
    resolution: int
    arch: str
    budget_bytes: int
    budget_s: float

    @property
    def fits_memory(self) -> bool:
        return self.mem_bytes <= self.budget_bytes

    @property
    def fits_time(self) -> bool:
        return self.seconds <= self.budget_s

    @property
    def fits(self) -> bool:
        return self.fits_memory and self.fits_time

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """"≈ 1.2 GB, ≈ 3 min on this CPU"."""
        return msg("msg.estimate", mem=fmt_bytes(self.mem_bytes), time=fmt_duration(self.seconds),
                   dev=_dev_word(self.device))


def _dev_word(device: str) -> str:
    return "GPU" if str(device).startswith("cuda") else "CPU"


def fmt_bytes(n: float) -> str:
    if n >= 2**30:
        g = n / 2**30
        return f"{g:.0f} GB" if g >= 10 else f"{g:.1f} GB"
    return f"{max(1, round(n / 2**20))} MB"


def fmt_duration(s: float) -> str:
    if s < 60:
        return f"{max(1, round(s))} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    h = s / 3600
    return f"{h:.0f} h" if h >= 10 else f"{h:.1f} h".replace(".0 h", " h")


MIN_CPU_RATE = 2e9       # MAC/s: below this the machine is busy, not slow (a 2-core EPYC measures ~12e9)
RATE_TTL_S = 600.0
_rate: dict = {"value": 0.0, "at": -1e9}
_rate_lock = threading.Lock()


def _measure_cpu_rate() -> float:
    import torch
    import torch.nn.functional as F

    x = torch.randn(64, 16, 28, 28, requires_grad=True)
    w = torch.randn(32, 16, 3, 3, requires_grad=True)
    macs = 64 * 32 * 16 * 9 * 28 * 28 * 3  # forward + two backward convolutions
    best = math.inf
    for _ in range(10):
        t = time.perf_counter()
        F.conv2d(x, w, padding=1).sum().backward()
        best = min(best, time.perf_counter() - t)
    # whole training steps reach a fraction of one big conv's rate (per-layer overheads, pooling, the
    # optimizer): LeNet in cnnlab's engine on 2 cores runs at about 1/5 of this figure
    return macs / best * 0.2


def cpu_rate() -> float:
    """Multiply-accumulates per second this CPU sustains in training (CNNLAB_CPU_GMACS overrides).

    Measured with a small convolution's forward + backward, at most every 10 minutes; the best figure seen
    is kept (a measurement on a busy machine must not make every run look hours long), floored at 2e9."""
    env = os.environ.get("CNNLAB_CPU_GMACS", "")
    if env:
        return float(env) * 1e9
    if time.monotonic() - _rate["at"] > RATE_TTL_S:
        # One measurement at a time: a class opening the Train page together found the figure stale at once,
        # and every session measured it, each slowed by the others, in the server's script threads.
        with _rate_lock:
            if time.monotonic() - _rate["at"] > RATE_TTL_S:
                _rate["value"] = max(_rate["value"], _measure_cpu_rate())
                _rate["at"] = time.monotonic()
    return max(MIN_CPU_RATE, _rate["value"])


def device_rate(device: str) -> float:
    return CUDA_NOMINAL_MACS if str(device).startswith("cuda") else cpu_rate()


def gpu_free_bytes() -> int | None:
    try:
        import torch
        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
    except Exception:  # noqa: BLE001
        pass
    return None


def gpu_slots_by_memory() -> int:
    """Concurrent runs per GPU when CNNLAB_GPU_SLOTS is unset: one per 8 GB of its memory (at least 1)."""
    try:
        import torch
        if torch.cuda.is_available():
            return max(1, int(torch.cuda.get_device_properties(0).total_memory // (8 * 2**30)))
    except Exception:  # noqa: BLE001
        pass
    return 1


def budgets(device: str, limits: Limits | None = None) -> tuple[int, float]:
    limits = limits or Limits.from_env()
    if limits.run_mem_mb is not None:
        mem = limits.run_mem_mb * 2**20
    elif str(device).startswith("cuda"):
        mem = gpu_free_bytes() or 8 * 2**30
    else:
        mem = CPU_MEM_MB * 2**20
    return int(mem), float(limits.max_run_hours) * 3600


def _probe_figures(cfg: Config) -> tuple[int, int, int, int]:
    """(params, MACs per sample, activation bytes per sample, the two largest outputs' bytes) on meta."""
    import json

    return _probe_cached(json.dumps(cfg.to_dict(), sort_keys=True, default=str))


@functools.lru_cache(maxsize=256)
def _probe_cached(key: str) -> tuple[int, int, int, int]:
    import json

    from ..probe import probe

    pr = probe(Config.from_dict(json.loads(key)))
    outs = sorted((math.prod(r.output_shape) * 4 for r in pr.layers if r.is_leaf), reverse=True)
    return pr.cost.params, pr.cost.macs, pr.cost.activation_bytes, sum(outs[:2])


def estimate(tc, device: str = "cpu", limits: Limits | None = None) -> Estimate:
    """The memory and time a resolved TrainConfig needs on `device`."""
    from ..data import FLOAT_BUDGET_BYTES

    cfg: Config = tc.model if isinstance(tc.model, Config) else tc.model_config()
    params, macs, act, peak2 = _probe_figures(cfg)
    res = cfg.input_hw
    n_train = N_TRAIN if tc.train_size is None else min(tc.train_size, N_TRAIN)
    n_test = N_TEST if tc.test_size is None else min(tc.test_size, N_TEST)
    bs = tc.batch_size or cfg.spec.training.batch_size
    cuda = str(device).startswith("cuda")
    eval_bs = tc.eval_batch_size or (1024 if cuda else 256)

    def resident(n: int) -> int:
        b = n * res * res * 4
        return b if b <= FLOAT_BUDGET_BYTES else n * res * res

    opt_state = {"sgd": 0, "adam": 2}.get(getattr(tc, "optimizer", "sgd"), 1)
    parts = {
        "weights": params * 4,
        "gradients": params * 4,
        "optimizer": params * 4 * opt_state,
        "activations": act * bs * 2,
        "data": resident(n_train) + resident(n_test),
        "raw_data": RAW_DATA_BYTES,
        "eval_batch": peak2 * eval_bs,
        "process": PROCESS_BYTES if not cuda else 0,
    }
    rate = device_rate(device)
    seconds = (macs * 3 * n_train + macs * n_test) * tc.epochs / rate
    mem_budget, time_budget = budgets(device, limits)
    return Estimate(mem_bytes=int(sum(parts.values())), seconds=float(seconds), device="cuda" if cuda else "cpu",
                    parts=parts, macs=int(macs), train_examples=n_train, test_examples=n_test, resolution=res,
                    arch=cfg.arch, budget_bytes=mem_budget, budget_s=time_budget)


def _examples_text(n: int) -> str:
    return msg("msg.all_images", n=f"{N_TRAIN:,}") if n >= N_TRAIN else msg("msg.images", n=f"{n:,}")


def refusal(est: Estimate, title: str, preset_title: str | None) -> str:
    """One sentence: what does not fit, and a preset that does."""
    dev = _dev_word(est.device)
    limits = []
    if not est.fits_memory:
        limits.append(msg("msg.limit_mem", mem=fmt_bytes(est.budget_bytes)))
    if not est.fits_time:
        limits.append(msg("msg.limit_time", time=fmt_duration(est.budget_s)))
    allows = msg("msg.limits_both", mem=fmt_bytes(est.budget_bytes), time=fmt_duration(est.budget_s)) \
        if len(limits) == 2 else "".join(limits)
    pick = msg("msg.pick_preset", dev=dev, preset=preset_title) if preset_title else msg("msg.pick_smaller")
    return msg("msg.refusal", title=title, res=est.resolution, examples=_examples_text(est.train_examples),
               mem=fmt_bytes(est.mem_bytes), time=fmt_duration(est.seconds), dev=dev, allows=allows, pick=pick)


def nearest_preset(tc, device: str, limits: Limits | None = None):
    """The CPU (or GPU) preset that fits, preferring the same architecture, then the cheapest that fits."""
    from ..engine import TrainConfig
    from ..presets import BOOK_PRESETS, CPU_PRESETS

    arch = (tc.model.arch if isinstance(tc.model, Config) else str(tc.model))
    pool = CPU_PRESETS if not str(device).startswith("cuda") else BOOK_PRESETS + CPU_PRESETS
    fitting = []
    for p in pool:
        v = p.values()
        try:
            ptc = TrainConfig(model=v["arch"], knobs=v["knobs"], resolution=v["resolution"], epochs=v["epochs"],
                              lr=v["lr"], batch_size=v["batch_size"],
                              train_size=None if v["train_size"] >= N_TRAIN else v["train_size"],
                              test_size=None if v["test_size"] >= N_TEST else v["test_size"],
                              device="cpu").resolved()
            e = estimate(ptc, device, limits)
        except Exception:  # noqa: BLE001 - a preset that does not resolve is no suggestion
            continue
        if e.fits:
            fitting.append((p.arch != arch, e.seconds, p))
    if not fitting:
        return None
    return min(fitting, key=lambda t: (t[0], -t[1] if not t[0] else t[1]))[2]


def check(tc, device: str = "cpu", limits: Limits | None = None) -> Estimate:
    """The estimate if the run fits this device's budgets; AdmissionRefused (one sentence) if not."""
    from ..registry import get_spec

    est = estimate(tc, device, limits)
    if est.fits:
        return est
    preset = nearest_preset(tc, device, limits)
    title = get_spec(est.arch).title_en
    raise AdmissionRefused(refusal(est, title, preset.title_en if preset else None))
