"""Device policy: which device a run uses (and why not the GPU), the AMP dtype, how many CPU threads, the
allocator, compiling, the evaluation batch, out-of-memory and giving memory back.

Kept apart from the training loop (cnnlab.engine) so that the loop reads as d2l's and the machine
specific choices are in one place. No streamlit; torch only.

Choosing the device ("auto") is not ``torch.cuda.is_available()`` alone: a torch built for a newer CUDA
than the driver supports says "no GPU" without a reason, and a GPU whose compute capability the build has
no kernels for says "available" and then fails every run. :func:`report` checks the build, the driver,
``CUDA_VISIBLE_DEVICES``, the device count, the capability against ``torch.cuda.get_arch_list()`` and
finally allocates a tensor and runs a tiny convolution; "auto" falls back to the CPU with the reason.
``python -m cnnlab devices [--json]`` prints the report.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import re
import subprocess
import warnings
from dataclasses import dataclass, field

import torch

from .errors import DeviceError, one_line  # noqa: F401 (DeviceError: imported from here)
from .i18n import message_from_json, message_json, msg

DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "fp16", "off")

# NVIDIA's minimum Linux driver for each CUDA major version (CUDA Toolkit release notes, table 3:
# "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version Compatibility").
MIN_DRIVER = {13: "580", 12: "525", 11: "450"}





# -- what the machine has ------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceReport:
    """What `requested` resolves to on this machine, and why it is not the GPU when it is not.

    `device` is what a run uses ("cuda:0" or "cpu"); `reason` says why CUDA was not chosen ("" when it
    was, or when the CPU was asked for); `amp` is the autocast dtype "auto" gives on that device.
    """

    requested: str
    device: str
    name: str = ""
    capability: str | None = None     # "8.0"
    memory_total: int | None = None   # bytes
    memory_free: int | None = None    # bytes, device-wide (other processes included)
    driver: str | None = None         # NVIDIA driver version, e.g. "535.104.05"
    driver_cuda: str | None = None    # the newest CUDA the driver supports, e.g. "12.2"
    torch_cuda: str | None = None     # the CUDA torch was built for, e.g. "13.0"
    torch: str = torch.__version__
    arch_list: tuple[str, ...] = ()   # the GPU architectures this torch build has kernels for
    device_count: int = 0
    amp: str = "off"
    reason: str = ""
    gpus: tuple[dict, ...] = field(default_factory=tuple)  # every visible GPU: index, name, capability, memory

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["arch_list"] = list(self.arch_list)
        d["gpus"] = [dict(g) for g in self.gpus]
        d["reason"] = str(self.reason)
        d["reason_message"] = message_json(self.reason)   # its key and fields: the app says it in its language
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceReport":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["arch_list"] = tuple(kw.get("arch_list") or ())
        kw["gpus"] = tuple(kw.get("gpus") or ())
        kw["reason"] = message_from_json(d.get("reason_message"), str(kw.get("reason") or ""))
        return cls(**kw)


def driver_version() -> str | None:
    """The NVIDIA kernel driver's version from /proc/driver/nvidia/version (None without one)."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", text) or re.search(r"\b(\d{3,}\.\d+(?:\.\d+)?)\b", text)
    return m.group(1) if m else None


def driver_cuda_version() -> str | None:
    """The newest CUDA version the installed driver supports ("12.2"), from libcuda's cuDriverGetVersion
    (which needs no GPU context); None when libcuda cannot be loaded."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        v = ctypes.c_int(0)
        try:
            if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value > 0:
                return f"{v.value // 1000}.{(v.value % 1000) // 10}"
        except AttributeError:
            pass
        return None
    return None


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except (TypeError, ValueError):
        return None


def _cap_tuple(cap: str | tuple | None) -> tuple[int, int] | None:
    if cap is None:
        return None
    if isinstance(cap, tuple):
        return int(cap[0]), int(cap[1])
    a, _, b = str(cap).partition(".")
    return int(a), int(b or 0)


def arch_supported(capability: tuple[int, int], arch_list) -> bool:
    """Whether a GPU of `capability` can run this torch build's kernels: a cubin for the same major
    version and an equal or lower minor (sm_80 runs on 8.6), or PTX (compute_XY) for an equal or lower
    capability, which the driver compiles. An empty list (a build that does not say) counts as yes."""
    arch_list = list(arch_list or ())
    if not arch_list:
        return True
    major, minor = capability
    for a in arch_list:
        m = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", a)
        if not m:
            continue
        kind, amaj, amin = m.group(1), int(m.group(2)), int(m.group(3))
        if kind == "sm" and amaj == major and amin <= minor:
            return True
        if kind == "compute" and (amaj, amin) <= (major, minor):
            return True
    return False


def amp_for_capability(capability: tuple[int, int] | None) -> str:
    """The autocast dtype "auto" picks on a GPU: bf16 from Ampere (8.0) on; fp16 with a GradScaler on
    Volta/Turing (7.x: T4, V100 — their bf16 convolutions take a slow non-cuDNN path); fp32 below."""
    if capability is None:
        return "off"
    if capability >= (8, 0):
        return "bf16"
    if capability >= (7, 0):
        return "fp16"
    return "off"


def _hidden_by_env() -> str | None:
    v = os.environ.get("CUDA_VISIBLE_DEVICES")
    if v is None:
        return None
    if v.strip() in ("", "-1", "none", "NoDevFiles"):
        return msg("msg.gpu_hidden", value=repr(v))
    return None


def _why_no_cuda(warning_text: str = "") -> str:
    """One sentence: why torch sees no CUDA device here."""
    tcuda = torch.version.cuda
    if not tcuda:
        return msg("msg.gpu_no_cuda_build", torch=torch.__version__)
    hidden = _hidden_by_env()
    if hidden:
        return hidden
    drv, dcuda = driver_version(), driver_cuda_version()
    if drv is None and dcuda is None:
        return msg("msg.gpu_no_driver")
    tmaj, dmaj = _major(tcuda), _major(dcuda)
    if tmaj is not None and dmaj is not None and (dmaj, _minor(dcuda)) < (tmaj, 0):
        need = MIN_DRIVER.get(tmaj)
        return msg("msg.gpu_old_driver_need" if need else "msg.gpu_old_driver", drv=drv or "?", dcuda=dcuda,
                   torch=torch.__version__, tcuda=tcuda, need=need, major=dmaj,
                   tag=f"cu{dmaj}{_minor(dcuda) or ''}")
    if warning_text:
        return msg("msg.gpu_no_start", why=one_line(warning_text, 200))
    return msg("msg.gpu_none_seen", drv=drv or "?", dcuda=dcuda or "?", tcuda=tcuda)


def _minor(version: str | None) -> int:
    try:
        return int(str(version).split(".")[1])
    except (IndexError, ValueError):
        return 0


def _smoke_test(dev: torch.device) -> None:
    """Allocate on `dev` and run a tiny convolution and matmul; raises what the device raises."""
    x = torch.randn(2, 3, 8, 8, device=dev)
    w = torch.randn(4, 3, 3, 3, device=dev)
    y = torch.nn.functional.conv2d(x, w, padding=1).flatten(1)
    z = y @ y.t()
    if not torch.isfinite(z).all().item():  # .item() synchronises: a kernel that cannot run fails here
        raise RuntimeError("a test convolution on the GPU gave non-finite values")


def _gpu_info(i: int) -> dict:
    p = torch.cuda.get_device_properties(i)
    return {"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}", "memory_total": int(p.total_memory)}


def probe(requested: str = "auto", smoke: bool = True) -> DeviceReport:
    """Check what `requested` ("auto", "cpu", "cuda", "cuda:N") can use here; never raises.

    The result's `device` is "cpu" with a `reason` whenever CUDA cannot be used (for "cuda"/"cuda:N" the
    caller turns that into a DeviceError; "auto" falls back). `smoke` runs the test allocation and kernel.
    """
    requested = str(requested or "auto")
    base = dict(requested=requested, torch_cuda=torch.version.cuda, driver=driver_version(),
                driver_cuda=driver_cuda_version())
    try:
        base["arch_list"] = tuple(torch.cuda.get_arch_list()) if torch.version.cuda else ()
    except Exception:  # noqa: BLE001
        base["arch_list"] = ()
    if requested == "cpu":
        return DeviceReport(device="cpu", name=cpu_name(), **base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            available = bool(torch.cuda.is_available())
        except Exception as e:  # noqa: BLE001
            available, caught = False, [warnings.WarningMessage(str(e), RuntimeWarning, "", 0)]
    if not available:
        text = " ".join(str(w.message) for w in caught)
        return DeviceReport(device="cpu", name=cpu_name(), reason=_why_no_cuda(text), **base)
    try:
        count = int(torch.cuda.device_count())
        gpus = tuple(_gpu_info(i) for i in range(count))
    except Exception as e:  # noqa: BLE001
        return DeviceReport(device="cpu", name=cpu_name(), reason=msg("msg.gpu_no_list", why=one_line(e, 200, with_type=True)), **base)
    index = 0
    if requested.startswith("cuda:"):
        try:
            index = int(requested[5:])
        except ValueError:
            index = -1
        if not 0 <= index < count:
            return DeviceReport(device="cpu", name=cpu_name(), device_count=count, gpus=gpus,
                                reason=msg("msg.gpu_index" if count != 1 else "msg.gpu_index_1", asked=requested, count=count, last=count - 1),
                                **base)
    if count == 0:
        return DeviceReport(device="cpu", name=cpu_name(), reason=_why_no_cuda(), **base)
    g = gpus[index]
    cap = _cap_tuple(g["capability"])
    info = dict(name=g["name"], capability=g["capability"], memory_total=g["memory_total"], device_count=count,
                gpus=gpus, **base)
    if not arch_supported(cap, base["arch_list"]):
        return DeviceReport(device="cpu", reason=msg(
            "msg.gpu_arch", gpu=g["name"], cap=g["capability"], sm=f"sm_{cap[0]}{cap[1]}", torch=torch.__version__,
            archs=" ".join(base["arch_list"])), **info)
    dev = torch.device("cuda", index)
    if smoke:
        try:
            _smoke_test(dev)
        except Exception as e:  # noqa: BLE001
            return DeviceReport(device="cpu", reason=msg("msg.gpu_smoke", gpu=g["name"],
                                                                why=one_line(e, 200, with_type=True)), **info)
    return DeviceReport(device=str(dev), amp=amp_for_capability(cap), memory_free=free_memory_bytes(dev), **info)


def cpu_name(unknown: str = "CPU") -> str:
    """The CPU's model name (/proc/cpuinfo, else the platform's), or `unknown`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or unknown


_REPORTS: dict[str, DeviceReport] = {}


def report(requested: str = "auto") -> DeviceReport:
    """:func:`probe` once per process and `requested` (the smoke test initialises CUDA in this process)."""
    key = str(requested or "auto")
    if key not in _REPORTS:
        _REPORTS[key] = probe(key)
    return _REPORTS[key]


def app_report(timeout: float = 90.0) -> DeviceReport:
    """The "auto" report for a process that must not start CUDA itself (the web server forks workers):
    when torch sees no GPU the reason is found in-process (cheap, no GPU context); otherwise the full check
    runs in a child process (``python -m cnnlab devices --json``), once per process."""
    if "app" in _REPORTS:
        return _REPORTS["app"]
    rep = None
    if not torch.version.cuda or _hidden_by_env() or not _quiet_available():
        rep = probe("auto", smoke=False)
    else:
        import json
        import sys
        try:
            p = subprocess.run([sys.executable, "-m", "cnnlab", "devices", "--json"], capture_output=True,
                               text=True, timeout=timeout,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            rep = DeviceReport.from_dict(json.loads(p.stdout.strip().splitlines()[-1]))
        except Exception as e:  # noqa: BLE001
            rep = DeviceReport(requested="auto", device="cpu", name=cpu_name(),
                               reason=msg("msg.gpu_check", why=one_line(e, 160, with_type=True)))
    _REPORTS["app"] = rep
    return rep


def _quiet_available() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(torch.cuda.is_available())
        except Exception:  # noqa: BLE001
            return False


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> the GPU when :func:`report` says it works, else cpu. 'cuda' / 'cuda:N' that cannot be used
    raise DeviceError with the reason. A torch.device is returned as it is."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "", "auto"):
        return torch.device(report("auto").device)
    dev = torch.device(device)
    if dev.type == "cuda":
        rep = report(str(device))
        if not rep.is_cuda:
            raise DeviceError(f"device {device} was asked for but no CUDA GPU can be used: {rep.reason}; "
                              "use --device cpu or auto")
        return torch.device(rep.device)
    return dev


def fallback_reason(requested: str, device: torch.device) -> str:
    """Why a run asked for "auto" trains on the CPU ("" when it trains on the GPU or the CPU was asked for)."""
    if str(requested or "auto") != "auto" or device.type != "cpu":
        return ""
    return _REPORTS["auto"].reason if "auto" in _REPORTS else ""


# -- mixed precision ------------------------------------------------------------------------------

def capability(device: torch.device) -> tuple[int, int] | None:
    if device.type != "cuda":
        return None
    return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def choose_amp(device: torch.device, requested: str = "auto") -> str:
    """"bf16" | "fp16" | "off" for a run on `device`. On the GPU "auto" goes by capability
    (:func:`amp_for_capability`); on the CPU "auto" is off (fp32 is the fastest on CPUs without AMX, and the
    CPU path is tuned for it) but bf16/fp16 can be asked for. Raises DeviceError for bf16 on a GPU older
    than 8.0."""
    requested = requested or "auto"
    if requested not in AMP_MODES:
        raise DeviceError(f"amp must be one of {' | '.join(AMP_MODES)}, got {requested!r}")
    if requested == "off":
        return "off"
    if device.type == "cuda":
        cap = capability(device)
        if requested == "auto":
            return amp_for_capability(cap)
        if requested == "bf16" and cap is not None and cap < (8, 0):
            raise DeviceError(f"bf16 autocast needs compute capability 8.0 or newer and this GPU has "
                              f"{cap[0]}.{cap[1]}; use --amp fp16 or auto")
        return requested
    return "off" if requested == "auto" else requested


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str | None = None):
    """A context-manager factory for the training step: autocast to the `amp` dtype (None: "auto" for the
    device, see :func:`choose_amp`), or nothing."""
    amp = choose_amp(device, "auto") if amp is None else amp
    if amp in _DTYPES:
        dtype = _DTYPES[amp]
        return lambda: torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext


def grad_scaler(device: torch.device, amp: str):
    """A torch.amp.GradScaler for fp16 (whose small range underflows gradients), else None."""
    if amp != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


# -- the process, the CPU ---------------------------------------------------------------------------

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



# -- memory ------------------------------------------------------------------------------------------

def is_oom(e: BaseException) -> bool:
    """Whether `e` is the device (or the host) running out of memory."""
    if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                            or "not enough memory" in msg)



def release(device: torch.device, compiled: bool = False) -> None:
    """Give cached device memory back after a run (other runs and processes share the GPU): collect
    garbage first so that the run's tensors are really gone, then empty torch's CUDA cache; after a
    compiled run also drop dynamo's compiled graphs (and the CUDA-graph memory pools they keep)."""
    import gc
    if device.type == "cuda" and torch.cuda.is_available():
        if compiled:
            with contextlib.suppress(Exception):
                torch._dynamo.reset()
        gc.collect()
        torch.cuda.empty_cache()


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _nvidia_smi_free(index: int) -> int | None:
    """Free memory of GPU `index` (as CUDA numbers it in this process) from nvidia-smi, which needs no
    CUDA context in the caller; None when nvidia-smi is not there or says nothing useful."""
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    target = str(index)
    if ids:
        parts = [p.strip() for p in ids.split(",") if p.strip()]
        if index >= len(parts):
            return None
        target = parts[index]
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", target],
                           capture_output=True, text=True, timeout=15)
        return int(float(p.stdout.strip().splitlines()[0])) * 1024 * 1024 if p.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def free_memory_bytes(device: str | torch.device) -> int | None:
    """Free memory for a new run on `device`, in bytes, or None when it cannot be known.

    CUDA: the device-wide free memory (every process counts, so a CLI run sharing the GPU with the app
    is seen): ``torch.cuda.mem_get_info`` when this process already has a CUDA context, else nvidia-smi
    (so that the app's server process does not start CUDA before it forks workers), else mem_get_info.
    CPU: MemAvailable from /proc/meminfo (None elsewhere).
    """
    dev = device if isinstance(device, torch.device) else torch.device("cuda" if device == "auto" else device)
    if dev.type != "cuda":
        return _meminfo_available()
    index = dev.index if dev.index is not None else 0
    try:
        if torch.cuda.is_initialized():
            return int(torch.cuda.mem_get_info(index)[0])
    except Exception:  # noqa: BLE001
        return None
    free = _nvidia_smi_free(index)
    if free is not None:
        return free
    try:
        return int(torch.cuda.mem_get_info(index)[0]) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        return None


EVAL_BATCH_CPU = 256    # measured fastest for LeNet on CPU
EVAL_BATCH_MAX = 1024   # on the GPU, never more than this per evaluation batch


def eval_batch_size(device: torch.device, train_batch: int, requested: int | None = None, *,
                    step_bytes: int | None = None, available_bytes: int | None = None) -> int:
    """The evaluation batch: `requested` if given; on the CPU 256; on the GPU a multiple of the training
    batch that fits in memory.

    An evaluation step keeps no activations for backward and no gradients, so per example it needs at most
    what a training step needs. `step_bytes` is the memory one training step took above the resting state
    (``max_memory_allocated`` minus what was allocated before the epoch) and `available_bytes` what is free
    for evaluation now; the batch is the training batch times ``0.8 · available / step`` (at least 1, at most
    8, and at most EVAL_BATCH_MAX examples unless the training batch is already larger). Without figures, the
    training batch itself — a VGG-11 that trains at batch 128 in 4 GB would need 13 GB at batch 1024.
    """
    if requested:
        return int(requested)
    if device.type != "cuda":
        return EVAL_BATCH_CPU
    mult = 1
    if step_bytes and step_bytes > 0 and available_bytes:
        mult = max(1, min(8, int(0.8 * available_bytes / step_bytes)))
    return max(int(train_batch), min(int(train_batch) * mult, EVAL_BATCH_MAX))


def cuda_memory_state(device: torch.device) -> tuple[int, int]:
    """(allocated bytes, bytes available to this process: device-wide free + torch's cached but unused)."""
    allocated = int(torch.cuda.memory_allocated(device))
    reserved = int(torch.cuda.memory_reserved(device))
    free = int(torch.cuda.mem_get_info(device)[0])
    return allocated, free + max(0, reserved - allocated)


# -- compiling ---------------------------------------------------------------------------------------

def compile_options(device: torch.device, small: bool) -> dict:
    """torch.compile's arguments for a run: backend $CNNLAB_COMPILE_BACKEND (default inductor); on the GPU
    mode "reduce-overhead" (CUDA graphs: one launch per step) for the small, launch-bound models
    (`small`: the 28×28 ones), where a step is too short to keep the GPU busy one kernel at a time.
    Shapes are static: the engine runs the steps the compiled graph does not fit (the smaller last batch,
    the BN snapshot steps, evaluation) eagerly instead of recompiling."""
    backend = os.environ.get("CNNLAB_COMPILE_BACKEND", "").strip() or "inductor"
    opts: dict = {"backend": backend, "dynamic": False}
    if backend == "inductor" and device.type == "cuda" and small:
        opts["mode"] = "reduce-overhead"
    return opts
