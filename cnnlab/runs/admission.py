"""Admission control: estimate a run's memory and time before it starts; refuse what will not fit.

Memory (bytes) = a worker's peak resident set, term by term (cnnlab.runs.memory.memory_parts, named in
                 Estimate.parts): the warm worker process, the raw Fashion-MNIST read once, the data at the run's
                 resolution, the resize work space, weights + gradients + optimizer state, one training step's
                 activations and one evaluation batch (both traced on the meta device). Within 25 % of real workers'
                 VmHWM for the CPU presets and three extreme settings (tests/test_admission_rss.py).
Time (s)       = one estimate for every page (`expect`): the preset labels, the exercises' pair, the text before
                 Start and the queue's expected wait all come from it, shown by one formatter (`fmt_time`).
                 A run's *quiet* time is its examples × this model's seconds per example on this machine alone
                 (from bench/bench_presets.py's presets_measured.json: the same preset, or a preset of the same
                 architecture scaled by multiply-adds; other architectures from the presets' median MAC rate),
                 + its evaluations, data building, checkpoints and the executor's start-up, scaled by this CPU's
                 rate against the measured machine's. `expect` then adds what the server measures now: the
                 load (our runs' examples/s against their quiet figure, else a short timed step), the CPU share
                 when several runs train at once (runs × threads against cores) and the runs ahead in the queue
                 (a small simulation of the executor's slots and per-owner limit). While a run trains,
                 `remaining_s` blends the engine's measured ETA with the plan.
Disk (bytes)   = what the run folder will hold (`checkpoint_parts`): model.pt (the state dict's tensors, from the
                 model built on the meta device, with torch.save's records), bn_history (one snapshot every
                 bn_every steps and at each epoch's end, 6 numbers per BN channel), config.json, metrics and marks.
                 Checked against the per-run limit (Limits.run_disk_budget_mb, CNNLAB_RUN_DISK_MB); the owner's share
                 and the disk cap are checked by cnnlab.runs.disk when the run is submitted.
The CPU's rate (multiply-accumulates per second through a convolution's forward + backward) is measured
once per process and cached; on CUDA a nominal rate is used. Budgets: CNNLAB_RUN_MEM_MB (default 2048
on CPU, the GPU's free memory on CUDA) and CNNLAB_MAX_RUN_HOURS (default 1); the time budget is checked
against the quiet time (a busy minute does not refuse a run).
"""
from __future__ import annotations

import functools
import math
import os
import threading
import time
from dataclasses import asdict, dataclass

from ..device import cpu_name
from ..i18n import msg
from ..measure import measure
from ..registry import Config
from ..units import fmt_bytes
from .base import AdmissionRefused, Limits
from .memory import PROCESS_BYTES, RAW_DATA_BYTES, memory_parts  # noqa: F401  (the terms are memory.py's)

N_TRAIN, N_TEST = 60000, 10000
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
    # the time figures behind `seconds` (see `quiet_seconds`; kept in a run's meta["estimate"] at submit)
    train_s_per_example: float = 0.0   # s per training example on this machine alone (evaluation: × EVAL_COST)
    pace_source: str = ""              # preset | arch | macs | gpu (where the seconds per example came from)
    pace_ref: str = ""                 # the measured preset it was taken from ("" for macs / gpu)
    now_s: float = 0.0                 # `seconds` at the load measured when it was made (no queue)
    load: float = 1.0                  # that load (× slower than quiet)
    first_log_examples: int = 0        # training examples before its first StepEnd (log_every steps, or an epoch)
    fixed_s: float = 0.0               # its quiet time before the first training step (data, start-up)
    disk_bytes: int = 0                # what its run folder will hold (checkpoint_parts)
    disk_parts: dict | None = None     # weights | bn_history | other, bytes
    budget_disk_bytes: int | None = None   # what one run may save here (None: no limit)

    @property
    def fits_memory(self) -> bool:
        return self.mem_bytes <= self.budget_bytes

    @property
    def fits_time(self) -> bool:
        return self.seconds <= self.budget_s

    @property
    def fits_disk(self) -> bool:
        return self.budget_disk_bytes is None or self.disk_bytes <= self.budget_disk_bytes

    @property
    def fits(self) -> bool:
        return self.fits_memory and self.fits_time and self.fits_disk

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """"≈ 1.2 GB, ≈ 3 min on this CPU"."""
        return msg("msg.estimate", mem=fmt_bytes(self.mem_bytes), time=fmt_duration(self.seconds),
                   dev=_dev_word(self.device))


def _dev_word(device: str) -> str:
    return "GPU" if str(device).startswith("cuda") else "CPU"


def fmt_duration(s: float) -> str:
    """"7 min" (an English library sentence: i18n.text_of gives "7 分钟"); `fmt_time` without the "≈"."""
    return fmt_time(s, about=False)


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
    for i in range(14):  # the first few warm oneDNN and the thread pool up (a fresh process measured 14 vs 22 G)
        t = time.perf_counter()
        F.conv2d(x, w, padding=1).sum().backward()
        if i >= 4:
            best = min(best, time.perf_counter() - t)
    # whole training steps reach a fraction of one big conv's rate (per-layer overheads, pooling, the
    # optimizer): LeNet in cnnlab's engine on 2 cores runs at about 1/5 of this figure
    return macs / best * 0.2


def cpu_rate() -> float:
    """Multiply-accumulates per second this CPU sustains in training (CNNLAB_CPU_GMACS overrides).

    Measured with a small convolution's forward + backward, at most every 10 minutes; the best figure seen
    is kept (a measurement on a busy machine must not make every run look hours long), floored at 2e9. On a
    machine like the one presets_measured.json was measured on (same CPU and cores) the best figure starts at
    the one recorded there ("cpu_gmacs"): one measured under load no longer slows every estimate down."""
    env = os.environ.get("CNNLAB_CPU_GMACS", "")
    if env:
        return float(env) * 1e9
    ttl = RATE_TTL_S
    if time.monotonic() - _rate["at"] > ttl:
        # One measurement at a time: a class opening the Train page together found the figure stale at once,
        # and every session measured it, each slowed by the others, in the server's script threads.
        with _rate_lock:
            if time.monotonic() - _rate["at"] > ttl:
                _rate["value"] = max(_rate["value"], _measure_cpu_rate())
                _rate["at"] = time.monotonic()
    return max(MIN_CPU_RATE, _rate["value"])


@functools.lru_cache(maxsize=1)
def _same_machine() -> dict:
    """presets_measured.json's machine block when it was measured on a machine like this one (same CPU and
    cores), else {}."""
    import json

    try:
        with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "presets_measured.json"),
                  encoding="utf-8") as f:
            m = json.load(f).get("machine", {})
        if isinstance(m, dict) and m.get("cores") == os.cpu_count() and m.get("cpu") == cpu_name(""):
            return m
    except Exception:  # noqa: BLE001 - no table: nothing to start from
        pass
    return {}


def _same_machine_rate() -> float:
    """The measured machine's "cpu_gmacs" (MAC/s) on a machine like it, else 0."""
    try:
        return float(_same_machine().get("cpu_gmacs", 0)) * 1e9
    except (TypeError, ValueError):
        return 0.0


def _same_machine_probe_ms() -> float:
    """The measured machine's quiet "probe_ms" (see probe_load) on a machine like it, else 0."""
    try:
        return float(_same_machine().get("probe_ms", 0))
    except (TypeError, ValueError):
        return 0.0


_rate["value"] = _same_machine_rate()  # the best figure seen on this machine type (see cpu_rate)


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


def _probe_figures(cfg: Config) -> tuple[int, int, int]:
    """(params, MACs per sample, activation bytes per sample) from the config's measurement (cnnlab.measure)."""
    m = measure(cfg).check()
    return m.cost.params, m.cost.macs or 0, m.cost.activation_bytes


def estimate(tc, device: str = "cpu", limits: Limits | None = None) -> Estimate:
    """The memory and time a resolved TrainConfig needs on `device`."""
    cfg: Config = tc.model if isinstance(tc.model, Config) else tc.model_config()
    params, macs, act = _probe_figures(cfg)
    res = cfg.input_hw
    n_train = N_TRAIN if tc.train_size is None else min(tc.train_size, N_TRAIN)
    n_test = N_TEST if tc.test_size is None else min(tc.test_size, N_TEST)
    bs = tc.batch_size or cfg.spec.training.batch_size
    cuda = str(device).startswith("cuda")
    parts = memory_parts(tc, cfg, params, cuda=cuda, act_fallback=act)
    p = pace(tc, "cuda" if cuda else "cpu")
    seconds = quiet_seconds(tc, "cuda" if cuda else "cpu", p=p)
    load = machine_load() if not cuda else Load(1.0, "quiet")
    mem_budget, time_budget = budgets(device, limits)
    disk = checkpoint_parts(tc)
    disk_mb = (limits or Limits.from_env()).run_disk_budget_mb
    return Estimate(mem_bytes=int(sum(parts.values())), seconds=float(seconds), device="cuda" if cuda else "cpu",
                    parts=parts, macs=int(macs), train_examples=n_train, test_examples=n_test, resolution=res,
                    arch=cfg.arch, budget_bytes=mem_budget, budget_s=time_budget,
                    train_s_per_example=p.train_s, pace_source=p.source, pace_ref=p.ref,
                    now_s=float(seconds * load.factor), load=load.factor,
                    first_log_examples=int(min(n_train, bs * min(max(1, int(getattr(tc, "log_every", 20) or 20)),
                                                                  math.ceil(n_train / bs)))),
                    fixed_s=float(p.fixed_s + EXEC_OVERHEAD_S * (machine_scale() if not cuda else 1.0)),
                    disk_bytes=int(sum(disk.values())), disk_parts=disk,
                    budget_disk_bytes=None if disk_mb is None else int(disk_mb) * 2**20)


# -- disk: what a run folder will hold ----------------------------------------------------------------------------
TENSOR_RECORD_BYTES = 320   # torch.save's zip record per tensor (header, name, alignment, pickle): measured 284-361
BN_FLOAT_BYTES = 12         # one number in bn_history/*.jsonl, 7 significant digits and ", " (BN-LeNet: 11.8)
BN_LAYER_BYTES = 160        # a layer's name and keys in a snapshot line
FOLDER_BYTES = 4096         # config.json and the marks (.owner, .alive, .class.json)
EPOCH_BYTES = 512           # metrics.jsonl: one line per epoch


def _saved_figures(cfg: Config) -> tuple[int, int, int]:
    """(model.pt bytes, BN channels, BN layers) of a config, from its measurement (cnnlab.measure)."""
    m = measure(cfg).check()
    return m.state_bytes + m.state_tensors * TENSOR_RECORD_BYTES + 1024, m.bn_channels, m.bn_layers


def checkpoint_parts(tc) -> dict:
    """The bytes a resolved TrainConfig's run folder will hold: {"weights", "bn_history", "other"}. model.pt is
    rewritten at every epoch's end (its size does not grow with epochs); the BN history grows by one snapshot
    every bn_every steps and one at each epoch's end."""
    cfg: Config = tc.model if isinstance(tc.model, Config) else tc.model_config()
    weights, channels, layers = _saved_figures(cfg)
    bn = 0
    if layers:
        n_train, _ = _sizes(tc)
        bs = tc.batch_size or cfg.spec.training.batch_size
        per_epoch, every = math.ceil(n_train / bs), max(1, int(getattr(tc, "bn_every", 50) or 50))
        # the engine's rule: at every bn_every-th step (counted across epochs) and at each epoch's last step
        snaps = tc.epochs * per_epoch // every + sum(1 for e in range(1, tc.epochs + 1) if e * per_epoch % every)
        bn = snaps * (6 * channels * BN_FLOAT_BYTES + layers * BN_LAYER_BYTES + 64)
    return {"weights": weights, "bn_history": int(bn), "other": FOLDER_BYTES + EPOCH_BYTES * tc.epochs}


def checkpoint_bytes(tc) -> int:
    """What a resolved TrainConfig's run folder will hold, in bytes (checkpoint_parts, summed)."""
    return int(sum(checkpoint_parts(tc).values()))


def _examples_text(n: int) -> str:
    return msg("msg.all_images", n=f"{N_TRAIN:,}") if n >= N_TRAIN else msg("msg.images", n=f"{n:,}")


def refusal(est: Estimate, title: str, preset_title: str | None) -> str:
    """One sentence: what does not fit, and a preset that does."""
    dev = _dev_word(est.device)
    if est.fits_memory and est.fits_time and not est.fits_disk:  # only what it would save is too much
        pick = msg("msg.pick_preset", dev=dev, preset=preset_title) if preset_title else msg("msg.disk_pick_smaller")
        return msg("msg.disk_run", title=title, res=est.resolution, disk=fmt_bytes(est.disk_bytes),
                   per_run=fmt_bytes(est.budget_disk_bytes or 0), pick=pick)
    if est.fits_memory:   # over the time budget only
        allows = msg("msg.limit_time", time=fmt_duration(est.budget_s))
    elif est.fits_time:   # over the memory budget only
        allows = msg("msg.limit_mem", mem=fmt_bytes(est.budget_bytes))
    else:
        allows = msg("msg.limits_both", mem=fmt_bytes(est.budget_bytes), time=fmt_duration(est.budget_s))
    pick = msg("msg.pick_preset", dev=dev, preset=preset_title) if preset_title else msg("msg.pick_smaller")
    return msg("msg.refusal", title=title, res=est.resolution, examples=_examples_text(est.train_examples),
               mem=fmt_bytes(est.mem_bytes), time=fmt_duration(est.seconds), dev=dev, allows=allows, pick=pick)


def nearest_preset(tc, device: str, limits: Limits | None = None):
    """The CPU (or GPU) preset that fits, preferring the same architecture, then the cheapest that fits."""
    from ..engine import TrainConfig
    from ..presets import BOOK_PRESETS, CPU_PRESETS

    arch = (tc.model.arch if isinstance(tc.model, Config) else str(tc.model))
    mine = tc.model.to_dict()["knobs"] if isinstance(tc.model, Config) else dict(getattr(tc, "knobs", {}) or {})
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
            theirs = ptc.model.to_dict()["knobs"]
            alike = sum(1 for k, v in mine.items() if theirs.get(k) == v)  # BN-LeNet is not plain LeNet's twin
            fitting.append((p.arch != arch, -alike, e.seconds, p))
    if not fitting:
        return None
    return min(fitting, key=lambda t: (t[0], t[1], -t[2] if not t[0] else t[2]))[3]


def check(tc, device: str = "cpu", limits: Limits | None = None) -> Estimate:
    """The estimate if the run fits this device's budgets; AdmissionRefused (one sentence) if not."""
    from ..registry import get_spec

    est = estimate(tc, device, limits)
    if est.fits:
        return est
    preset = nearest_preset(tc, device, limits)
    title = get_spec(est.arch).title_en
    raise AdmissionRefused(refusal(est, title, preset.title_en if preset else None))


# == time: one estimate for the preset labels, the exercises, the text before Start and the queue ===============

EVAL_COST = 1 / 3          # an evaluated example costs about a third of a trained one (forward only, no step)
EXEC_OVERHEAD_S = 0.2      # the executor's part of a run (submit → first step, the worker's data already read): measured 0.0-0.1 s
SAVE_BYTES_PER_S = 400e6   # the weights are saved at every epoch's end
QUIET_TOL = 1.3            # a load below this is a quiet machine (the probe's own noise)
LIVE_TTL_S = 120.0         # a load measured from our runs still says "now" this long after they stopped
PROBE_TTL_S = 30.0         # a probe's figure is reused this long
PROBE_TAU_S = 90.0         # successive probes are averaged over about this long
MAX_LOAD = 100.0


@dataclass(frozen=True)
class Pace:
    """How fast one config trains on this machine when it has the machine to itself."""
    train_s: float         # seconds per training example (forward, backward, step); an evaluated one: × EVAL_COST
    fixed_s: float         # per run: building the data (resizing), beyond the examples
    source: str            # preset (measured for this very preset) | arch (a measured preset of this
                           # architecture, scaled by multiply-adds) | macs (the presets' median MAC rate) | gpu
    ref: str = ""          # the measured preset's id


@dataclass(frozen=True)
class Load:
    """How much slower than quiet a run trains now, and how that was found."""
    factor: float          # 1 = quiet
    source: str            # runs (our runs training now) | recent (our runs, in the last LIVE_TTL_S) |
                           # probe (a short timed training step just now) | quiet (no sign of load)

    @property
    def live(self) -> bool:
        return self.source != "quiet"


@dataclass(frozen=True)
class TimeEstimate:
    """When a run (or runs queued back to back, as an exercise's pair) will have ended, from now."""
    total_s: float         # from now to the end of the last run: wait_s + run_s
    wait_s: float          # in the queue before the first run starts
    run_s: float           # from its start to the end of the last run, at the current load and CPU share
    quiet_s: float         # the same runs one after the other on a quiet machine, nobody ahead
    load: float            # the load applied (× slower than quiet)
    source: str            # the load's source (Load.source)
    ahead: int             # runs training or queued ahead of these on this device
    share: float           # the CPU share while they train (1 = the whole machine; our runs sharing it: less)
    pace_source: str       # where the seconds per example came from (Pace.source; the first run's)

    @property
    def quiet(self) -> bool:
        """Made from the measured table alone: no live sign of load and nobody ahead."""
        return self.source == "quiet" and self.ahead == 0

    def text(self, lang: str | None = None, *, mem: str | None = None, dev: str | None = None,
             busy_note: bool = True) -> str:
        """One sentence, English (a library sentence pages render with i18n.text_of) or, with `lang`, built in that language:
        "≈ 25 s on a quiet machine", "≈ 2 min here now", "≈ 3 min here now, ≈ 1 min of it waiting behind 2
        run(s)", with "; the machine is busy (≈ 4× slower than when quiet)" when it is (`busy_note`); with `mem`
        and `dev`: "≈ 420 MB of memory on this CPU; time: …" (the text before Start)."""
        def line(key: str, **fields) -> str:
            if lang is None:
                return msg(key, **fields)
            from ..i18n import t
            return t(key, lang, **fields)

        total = fmt_time(self.total_s, lang)
        if self.quiet:
            out = line("msg.t_quiet", time=total)
        elif self.wait_s >= 1 and self.ahead:
            out = line("msg.t_wait", time=total, wait=fmt_time(self.wait_s, lang), n=self.ahead)
        else:
            out = line("msg.t_now", time=total)
        if busy_note and self.load >= QUIET_TOL and self.source != "quiet":
            out = line("msg.t_busy", text=out, x=f"{self.load:.0f}" if self.load >= 10 else f"{self.load:.1f}")
        if mem is not None:
            out = line("msg.est_mem", mem=mem, dev=dev or "CPU", time=out)
        return out


# -- the one formatter -----------------------------------------------------------------------------------------
_UNIT_KEYS = {"s": ("msg.about_s", "msg.n_s"), "min": ("msg.about_min", "msg.n_min"), "h": ("msg.about_h", "msg.n_h")}


def fmt_time(seconds: float, lang: str | None = None, *, about: bool = True) -> str:
    """"≈ 25 s", "≈ 7 min", "≈ 1.5 h" (about=False: "25 s"): seconds in steps of 5 below a minute, whole minutes
    below an hour, hours with one decimal. An English library sentence; with `lang` said in it ("约 7 分钟")."""
    s = max(0.0, float(seconds)) if seconds == seconds else 0.0
    if s < 10:
        n, unit = str(max(1, int(s + 0.5))), "s"
    elif s < 57.5:
        n, unit = str(int(s / 5 + 0.5) * 5), "s"
    elif s < 3570:
        n, unit = str(int(s / 60 + 0.5)), "min"
    else:
        h = s / 3600
        n, unit = (f"{h:.0f}" if h >= 10 else f"{h:.1f}".replace(".0", "")), "h"
    key = _UNIT_KEYS[unit][0 if about else 1]
    if lang is None:
        return msg(key, n=n)
    from ..i18n import t
    return t(key, lang, n=n)


# -- a run's quiet time ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ref:
    id: str
    arch: str
    knobs: str             # JSON of the model's knobs
    res: int
    batch: int
    optimizer: str
    macs: int
    train_s: float         # s per training example on the measured machine
    fixed_s: float
    examples: int          # training examples × epochs it was measured with


def _measured_data(data: dict | None) -> dict:
    if data is not None:
        return data
    from ..presets import measured
    return measured()


def _sizes(tc) -> tuple[int, int]:
    n_train = N_TRAIN if tc.train_size is None else min(tc.train_size, N_TRAIN)
    n_test = N_TEST if tc.test_size is None else min(tc.test_size, N_TEST)
    return n_train, n_test


def _refs(data: dict) -> tuple[_Ref, ...]:
    import json
    rows = data.get("presets") if isinstance(data, dict) else None
    if not isinstance(rows, dict):
        return ()
    return _refs_cached(json.dumps(rows, sort_keys=True, default=str))


@functools.lru_cache(maxsize=8)
def _refs_cached(key: str) -> tuple[_Ref, ...]:
    import json

    from ..presets import PRESETS, train_config

    out = []
    for pid, row in json.loads(key).items():
        p = PRESETS.get(pid)
        if p is None or not p.for_cpu or not isinstance(row, dict):
            continue
        try:
            wall = float(row["wall_s"])
            train = float(row.get("train_s", wall))
            tc = train_config(p).resolved()
            cfg = tc.model
            macs = _probe_figures(cfg)[1]
        except Exception:  # noqa: BLE001 - a row that does not read is no reference
            continue
        n, m = _sizes(tc)
        if wall <= 0 or train <= 0:
            continue
        out.append(_Ref(pid, cfg.arch, json.dumps(cfg.to_dict()["knobs"], sort_keys=True, default=str), cfg.input_hw,
                        int(tc.batch_size), tc.optimizer, int(macs), train / (tc.epochs * (n + EVAL_COST * m)),
                        max(0.0, wall - train), n * tc.epochs))
    return tuple(out)


def machine_scale(data: dict | None = None) -> float:
    """This CPU against the one presets_measured.json was measured on (its machine's "cpu_gmacs"): > 1 is slower."""
    try:
        ref = float(_measured_data(data).get("machine", {}).get("cpu_gmacs", 0)) * 1e9
    except (TypeError, ValueError, AttributeError):
        ref = 0.0
    return ref / cpu_rate() if ref > 0 else 1.0


def pace(tc, device: str = "cpu", data: dict | None = None) -> Pace:
    """This config's seconds per training example on this machine, alone (see the module's docstring)."""
    import json
    import statistics

    cfg: Config = tc.model if isinstance(tc.model, Config) else tc.model_config()
    macs = _probe_figures(cfg)[1]
    if str(device).startswith("cuda"):
        return Pace(3 * macs / CUDA_NOMINAL_MACS, 0.0, "gpu")
    data = _measured_data(data)
    refs = _refs(data)
    if not refs:  # nothing measured: the CPU's MAC rate alone
        return Pace(3 * macs / cpu_rate(), 0.0, "macs")
    scale = machine_scale(data)
    knobs = json.dumps(cfg.to_dict()["knobs"], sort_keys=True, default=str)
    bs = int(tc.batch_size or cfg.spec.training.batch_size)
    n, _ = _sizes(tc)
    exact = [r for r in refs if (r.arch, r.knobs, r.res, r.batch, r.optimizer) == (cfg.arch, knobs, cfg.input_hw, bs,
                                                                                      tc.optimizer)]
    if exact:  # the same model and batch: the preset measured with the most similar number of examples
        r = min(exact, key=lambda r: abs(math.log(max(1, n * tc.epochs) / max(1, r.examples))))
        return Pace(r.train_s * scale, r.fixed_s * scale, "preset", r.id)
    same = [r for r in refs if r.arch == cfg.arch]
    if same:
        mine = cfg.to_dict()["knobs"]

        def likeness(r: _Ref) -> tuple:
            theirs = json.loads(r.knobs)
            equal = sum(1 for k, v in mine.items() if theirs.get(k) == v)
            return (-equal, abs(math.log(max(macs, 1) / max(r.macs, 1))))
        r = min(same, key=likeness)
        return Pace(r.train_s * max(macs, 1) / max(r.macs, 1) * scale, r.fixed_s * scale, "arch", r.id)
    rate = statistics.median(3 * r.macs / r.train_s for r in refs)   # MAC/s a measured preset reached
    floor = min(r.train_s for r in refs)                            # no model trains faster than the fastest
    return Pace(max(3 * macs / rate, floor) * scale, 0.0, "macs")


def quiet_seconds(tc, device: str = "cpu", data: dict | None = None, p: Pace | None = None) -> float:
    """A run's seconds from submit to its end on this machine alone, nobody ahead."""
    cfg: Config = tc.model if isinstance(tc.model, Config) else tc.model_config()
    p = p or pace(tc, device, data)
    n, m = _sizes(tc)
    params = _probe_figures(cfg)[0]
    saves = tc.epochs * params * 4 / SAVE_BYTES_PER_S
    scale = 1.0 if p.source == "gpu" else machine_scale(data)
    return tc.epochs * (n + EVAL_COST * m) * p.train_s + p.fixed_s + (saves + EXEC_OVERHEAD_S) * scale


# -- the load now -------------------------------------------------------------------------------------------------
_live: dict = {"factor": 1.0, "at": -1e9}
_probe: dict = {"factor": None, "at": -1e9, "best": math.inf}
_probe_lock = threading.Lock()


def threads_per_run() -> int:
    """The intra-op threads a worker trains with (cnnlab.device.cpu_threads: $CNNLAB_THREADS or torch's)."""
    try:
        from ..device import cpu_threads
        return max(1, int(cpu_threads(None)))
    except Exception:  # noqa: BLE001
        return max(1, os.cpu_count() or 1)


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def slowdown(k: int, threads: int | None = None, n_cores: int | None = None) -> float:
    """How much slower each of `k` runs training at once goes than one alone: the cores are shared once
    k × threads exceeds them (1 when they fit)."""
    t = threads or threads_per_run()
    c = n_cores or cores()
    return max(1.0, k * t / c) / max(1.0, t / c)


def _observed_rate(executor, st) -> float | None:
    """The training examples/s a running run reports now (its last few StepEnds, the first one left out: it
    includes the warm-up)."""
    from ..events import StepEnd

    try:
        evs = executor.events(st.id, max(0, int(st.n_events) - 60))
    except Exception:  # noqa: BLE001
        return None
    steps = [e for e in evs if isinstance(e, StepEnd) and e.examples_per_s > 0]
    if len(steps) >= 2:
        steps = steps[1:]
    if not steps:
        return None
    import statistics
    return float(statistics.median(e.examples_per_s for e in steps[-5:]))


def _load_from_runs(executor) -> float | None:
    """Our CPU runs' measured examples/s against their quiet figure, the CPU share they have divided out."""
    import statistics

    try:
        running = [s for s in executor.list() if s.state == "running" and str(s.device).startswith("cpu")]
    except Exception:  # noqa: BLE001
        return None
    share = slowdown(len(running))
    got, now = [], time.time()
    for st in running:
        est = (st.meta.get("estimate") or {}) if isinstance(st.meta, dict) else {}
        spe = est.get("train_s_per_example")
        if not spe:
            continue
        obs = _observed_rate(executor, st)
        if obs:
            got.append((1.0 / float(spe)) / (obs * share))
        elif st.started and est.get("first_log_examples"):
            # nothing reported yet: it has been slower than this at least (its first StepEnd is late)
            quiet = float(est.get("fixed_s") or 0.0) + float(est["first_log_examples"]) * float(spe) * share
            late = (now - st.started) / max(quiet, 1e-9)
            if late > QUIET_TOL:
                got.append(late)
    return float(statistics.median(got)) if got else None


def _probe_step_s(nice: int = 0, wall: float = 0.3, give_up: float = 1.5) -> float:
    """The median time of a small training step (LeNet-sized convolutions, batch 64, forward + backward) over about
    `wall` seconds, trained the way a worker trains: in a thread of its own at the workers' priority (Linux renices
    one thread; the intra-op threads it starts inherit it) with torch's threads. The caller waits `give_up`
    seconds at most (a page is waiting): a step not done by then counts as having taken that long so far."""
    import statistics

    import torch
    import torch.nn.functional as F

    out: list[float] = []
    began: list[float] = []

    def probe() -> None:
        try:
            if nice and hasattr(os, "setpriority"):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 1, 28, 28, generator=g)
        w1 = torch.randn(6, 1, 5, 5, generator=g, requires_grad=True)
        w2 = torch.randn(16, 6, 5, 5, generator=g, requires_grad=True)
        w3 = torch.randn(400, 10, generator=g, requires_grad=True)

        def step() -> None:
            h = F.max_pool2d(F.relu(F.conv2d(x, w1, padding=2)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, w2)), 2)
            (h.flatten(1) @ w3).square().mean().backward()

        step()
        t0 = time.perf_counter()
        while len(out) < 60 and (not out or time.perf_counter() - t0 < wall):
            t = time.perf_counter()
            began[:] = [t]
            step()
            out.append(time.perf_counter() - t)

    start = time.perf_counter()
    th = threading.Thread(target=probe, name="cnnlab-load-probe", daemon=True)
    th.start()
    th.join(give_up)
    done = list(out)
    if done:
        return float(statistics.median(done))
    now = time.perf_counter()  # not one step in `give_up`: at least this long (the warm-up step counts as one)
    return (now - began[0]) if began else (now - start) / 2


def probe_load() -> float | None:
    """How much slower than quiet a run would train now, without one of ours training to ask: a small training step
    timed as a worker would train it (`_probe_step_s` at the workers' priority, cnnlab.runs.worker.worker_nice)
    against the same step on a quiet machine (presets_measured.json's "probe_ms" on a machine like the measured
    one; else the fastest this process has seen). Measured on the 2-core machine while other programs were busy:
    the probe read 6-80× and whole runs went 4-40× slower than quiet — a run's threads wait for each other at
    every operator, so a busy machine slows small models most. Smoothed over successive probes (PROBE_TAU_S, on
    the factors' logarithms), measured at most every PROBE_TTL_S, one at a time; None when switched off
    (CNNLAB_LOAD_PROBE=0)."""
    if os.environ.get("CNNLAB_LOAD_PROBE", "1").strip().lower() in ("0", "off", "no", "false"):
        return None
    if time.monotonic() - _probe["at"] > PROBE_TTL_S:
        with _probe_lock:
            if time.monotonic() - _probe["at"] > PROBE_TTL_S:
                try:
                    from .worker import worker_nice
                    step = _probe_step_s(worker_nice())
                except Exception:  # noqa: BLE001 - no figure is no load
                    step = math.inf
                if math.isfinite(step) and step > 0:
                    ref = _probe["best"] = min(_probe["best"], step)
                    quiet_ms = _same_machine_probe_ms()
                    if quiet_ms:
                        ref = min(ref, quiet_ms / 1e3)
                    now = min(MAX_LOAD, max(1.0, step / ref))
                    prev, dt = _probe["factor"], time.monotonic() - _probe["at"]
                    if prev is None:
                        _probe["factor"] = now
                    else:
                        k = 1.0 - math.exp(-dt / PROBE_TAU_S)
                        _probe["factor"] = math.exp(math.log(prev) + k * (math.log(now) - math.log(prev)))
                _probe["at"] = time.monotonic()
    return _probe["factor"]


def machine_load(executor=None) -> Load:
    """How much slower than quiet a run trains now: from our runs training now (`executor`), else from those
    measured in the last LIVE_TTL_S, else a short timed step (`probe_load`); below QUIET_TOL a probe means quiet."""
    if executor is not None:
        f = _load_from_runs(executor)
        if f is not None:
            f = min(MAX_LOAD, max(0.5, f))
            _live.update(factor=f, at=time.monotonic())
            return Load(f, "runs")
    if time.monotonic() - _live["at"] < LIVE_TTL_S:
        return Load(_live["factor"], "recent")
    p = probe_load()
    if p is not None and _same_machine_rate():
        # on the measured machine a quiet run takes the table's time: a CPU rate measured under load (scale > 1)
        # has already slowed the figures down by that much
        p /= max(1.0, machine_scale())
    if p is None or p < QUIET_TOL:
        return Load(1.0, "quiet")
    return Load(min(MAX_LOAD, p), "probe")


# -- the queue ----------------------------------------------------------------------------------------------------
@dataclass
class _Job:
    key: str
    owner: str
    work: float            # quiet seconds left
    running: bool
    start: float | None = None
    end: float | None = None


def _simulate(jobs: list[_Job], slots: int, per_owner: int, load: float, threads: int, n_cores: int) -> None:
    """Fill in each job's start and end (seconds from now): `slots` run at once, at most `per_owner` of one
    owner's, in order; k at once each go slowdown(k) × load times slower than alone."""
    t = 0.0
    active = [j for j in jobs if j.running]
    for j in active:
        j.start = 0.0
    waiting = [j for j in jobs if not j.running]

    def fill() -> None:
        for j in list(waiting):
            if len(active) >= slots:
                break
            if sum(1 for a in active if a.owner == j.owner) >= per_owner:
                continue
            waiting.remove(j)
            j.start = t
            active.append(j)

    fill()
    for _ in range(10 * len(jobs) + 10):
        if not active:
            break
        rate = 1.0 / (slowdown(len(active), threads, n_cores) * load)   # quiet seconds done per second
        dt = min(j.work for j in active) / rate
        t += dt
        for j in list(active):
            j.work -= dt * rate
            if j.work <= 1e-9:
                j.end = t
                active.remove(j)
        fill()


def _queue_jobs(executor, device: str, load: float) -> list[_Job]:
    """The executor's runs training or waiting on `device` in the order they will start (training ones first, then
    the queue's positions: RunLedger.fair_queue takes turns between addresses), with the quiet seconds they have left."""
    try:
        sts = [s for s in executor.list() if s.state in ("running", "queued")
               and str(s.device).split(":")[0] == device.split(":")[0]]
    except Exception:  # noqa: BLE001
        return []
    now = time.time()
    jobs = []
    for st in sorted(sts, key=lambda s: (s.state != "running", s.position if s.position is not None else 1 << 30,
                                         s.created)):
        est = (st.meta.get("estimate") or {}) if isinstance(st.meta, dict) else {}
        total = float(est.get("seconds") or 0.0)
        left = total
        if st.state == "running":
            frac = _progress(executor, st)
            if frac is not None:
                left = total * (1.0 - frac)
            elif st.started:  # no step reported yet: what is left of the plan at this load
                left = max(0.1 * total, total - (now - st.started) / max(load, 1e-9))
        jobs.append(_Job(st.id, st.owner, max(0.0, left), st.state == "running"))
    return jobs


def _progress(executor, st) -> float | None:
    from ..events import EpochEnd, StepEnd

    try:
        evs = executor.events(st.id, max(0, int(st.n_events) - 20))
    except Exception:  # noqa: BLE001
        return None
    last = next((e for e in reversed(evs) if isinstance(e, (StepEnd, EpochEnd))), None)
    if isinstance(last, StepEnd) and last.total_steps:
        return min(1.0, last.step / last.total_steps)
    if isinstance(last, EpochEnd) and last.epochs:
        return min(1.0, last.epoch / last.epochs)
    return None


def _limits_of(executor, limits: Limits | None) -> Limits:
    return limits or getattr(executor, "limits", None) or Limits.from_env()


def _slots_of(executor, device: str, lim: Limits) -> int:
    if hasattr(executor, "_slots"):
        try:
            return max(1, int(executor._slots(device)))
        except Exception:  # noqa: BLE001
            pass
    if device.startswith("cuda"):
        return lim.gpu_slots or gpu_slots_by_memory()
    return max(1, lim.cpu_slots)


# -- the one estimate ---------------------------------------------------------------------------------------------
def expect_runs(tcs, device: str = "cpu", executor=None, *, owner: str | None = None, limits: Limits | None = None,
                data: dict | None = None, quiet_machine: bool = False) -> TimeEstimate:
    """When runs submitted now, back to back by one owner, will have ended: each run's quiet time (`quiet_seconds`)
    at the load measured now (`machine_load`), sharing the CPU with our other runs and waiting behind the runs
    ahead in `executor`'s queue (None: an empty queue; new runs are placed after every queued one, which is the
    fair queue's order for a class behind one address and an upper bound otherwise). The preset labels, the
    exercises' pair, the text before Start and `expected_wait` all come from here. `quiet_machine`: the same
    estimate at no load (the preset labels: a figure that does not change while the page is open, said as "on a
    quiet machine"; the text before Start is the one that follows the load)."""
    device = "cuda" if str(device).startswith("cuda") else "cpu"
    tcs = list(tcs)
    paces = [pace(tc, device, data) for tc in tcs]
    quiet = [quiet_seconds(tc, device, data, p) for tc, p in zip(tcs, paces)]
    load = machine_load(executor) if device == "cpu" and not quiet_machine else Load(1.0, "quiet")
    lim = _limits_of(executor, limits)
    slots = _slots_of(executor, device, lim)
    threads, n_cores = (threads_per_run(), cores()) if device == "cpu" else (1, 1 << 20)
    ahead = _queue_jobs(executor, device, load.factor) if executor is not None else []
    me = owner or "\0new"
    mine = [_Job(f"\0{i}", me, q, False) for i, q in enumerate(quiet)]
    _simulate(ahead + mine, slots, max(1, lim.max_active_per_owner), load.factor, threads, n_cores)
    start = min(j.start for j in mine if j.start is not None) if all(j.start is not None for j in mine) else 0.0
    end = max((j.end or 0.0) for j in mine)
    if any(j.end is None for j in mine):  # the simulation gave up (cannot happen with slots ≥ 1): plain sum
        end = start + sum(quiet) * load.factor
    run = max(0.0, end - start)
    share = sum(quiet) * load.factor / run if run > 0 else 1.0
    return TimeEstimate(total_s=end, wait_s=start, run_s=run, quiet_s=sum(quiet), load=load.factor,
                        source=load.source, ahead=len(ahead), share=min(1.0, share),
                        pace_source=paces[0].source if paces else "")


def expect(tc, device: str = "cpu", executor=None, **kw) -> TimeEstimate:
    """One run's `expect_runs`."""
    return expect_runs([tc], device, executor, **kw)


def expected_wait(executor, run_id: str) -> float | None:
    """Seconds until the queued run `run_id` starts (the runs ahead of it, through the executor's slots and
    per-owner limit, at the load measured now); 0.0 while it trains; None when finished or unknown."""
    try:
        st = executor.status(run_id)
    except Exception:  # noqa: BLE001
        return None
    if st is None or st.state not in ("running", "queued"):
        return None
    if st.state == "running":
        return 0.0
    device = "cuda" if str(st.device).startswith("cuda") else "cpu"
    load = machine_load(executor) if device == "cpu" else Load(1.0, "quiet")
    lim = _limits_of(executor, None)
    jobs = _queue_jobs(executor, device, load.factor)
    threads, n_cores = (threads_per_run(), cores()) if device == "cpu" else (1, 1 << 20)
    _simulate(jobs, _slots_of(executor, device, lim), max(1, lim.max_active_per_owner), load.factor, threads,
              n_cores)
    me = next((j for j in jobs if j.key == run_id), None)
    return None if me is None or me.start is None else float(me.start)


def remaining_s(view, now: float | None = None) -> float | None:
    """A training run's corrected time left: the engine's measured ETA (its last StepEnd's eta_s, plus the
    evaluations it has not timed yet) blended with the plan made at submit (meta["estimate"]: its time at the
    load then, × the fraction of steps left), the measurement weighing more as the run goes (half at 5 % of the
    steps). `view`: a cnnlab.runs.view.RunView (or anything with state, meta, steps, epochs, started).
    None when the run is not training."""
    if getattr(view, "state", None) != "running":
        return None
    est = (getattr(view, "meta", None) or {}).get("estimate") or {}
    planned = float(est.get("now_s") or est.get("seconds") or 0.0)
    steps = getattr(view, "steps", ()) or ()
    last = steps[-1] if steps else None
    now = time.time() if now is None else now
    started = getattr(view, "started", None) or now
    if last is None or not last.total_steps:
        return max(0.0, planned - (now - started)) if planned else None
    f = min(1.0, last.step / last.total_steps)
    measured = float(last.eta_s)
    spe = float(est.get("train_s_per_example") or 0.0)
    if not getattr(view, "epochs", ()) and spe and last.examples_per_s > 0:
        # no evaluation timed yet: the engine's ETA leaves them out; they go at this run's pace against its quiet one
        epochs = max(1, int(getattr(getattr(view, "start", None), "epochs", 0) or 1))
        slower = (1.0 / spe) / last.examples_per_s
        measured += epochs * int(est.get("test_examples") or 0) * EVAL_COST * spe * slower
    if not planned:
        return max(0.0, measured)
    w = f / (f + 0.05)
    return max(0.0, w * measured + (1.0 - w) * planned * (1.0 - f))


# -- the presets' labels: the one estimate, and the measured accuracy ---------------------------------------------

def preset_time(p, data: dict | None = None, executor=None, quiet_machine: bool = False):
    """When this preset would end if started now (expect; `executor`: its queue counts too;
    `quiet_machine`: at no load)."""
    from ..presets import train_config

    return expect(train_config(p), "cuda" if not p.for_cpu else "cpu", executor, data=data,
                  quiet_machine=quiet_machine)


def preset_note(preset_id: str, lang: str = "en", data: dict | None = None) -> str:
    """"≈ 40 s on a quiet machine · test acc ≥ 0.75": the time estimate and the measured accuracy ("" when the
    preset was not measured: no claim)."""
    from ..presets import PRESETS, measured, stated_accuracy

    data = data if data is not None else measured()
    row = data.get("presets", {}).get(preset_id)
    p = PRESETS.get(preset_id)
    if not isinstance(row, dict) or p is None:
        return ""
    try:
        float(row["wall_s"])
        acc = float(row["test_acc"])
        # the quiet figure: a label that changed with the load as the page reran made the box's options move
        when = preset_time(p, data, quiet_machine=True).text(lang, busy_note=False)
    except (KeyError, TypeError, ValueError):
        return ""
    acc_txt = f"{stated_accuracy(acc):.2f}"
    return f"{when} · 测试精度 ≥ {acc_txt}" if lang == "zh" else f"{when} · test acc ≥ {acc_txt}"


def preset_label(p, lang: str = "en", data: dict | None = None) -> str:
    """The preset's title with its time (the one estimate) and measured accuracy (GPU presets: the title)."""
    note = preset_note(p.id, lang, data) if p.for_cpu else ""
    return f"{p.title(lang)} ({note})" if note else p.title(lang)
