"""The training engine: `fit()` is a generator of frozen event dataclasses (cnnlab.events).

It never prints or plots. Defaults replicate d2l's ``train_ch6``: Xavier-uniform init of the
Linear/Conv2d weights, plain SGD at the book's learning rate and batch size, cross-entropy loss,
test accuracy after every epoch. What is different is speed, not the recipe:

* the data set is whole tensors on the training device (cnnlab.data), no DataLoader;
* loss/accuracy are summed on the device and read back every ``log_every`` steps only;
* evaluation runs under ``torch.inference_mode`` in big batches;
* on CUDA: channels_last, bf16 autocast, cudnn.benchmark, optional torch.compile;
* on CPU: what measured fastest on a small machine (see ``cpu_threads``).

`run()` wraps `fit()`: it builds the model and the data from a :class:`TrainConfig`, writes the
run folder as it goes (cnnlab.checkpoint) and yields the same events. Neither generator raises
for a training failure: stop requests, NaN losses, out-of-memory and other errors end the stream
with a :class:`RunFailed` event.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from .data import DataError, TensorData, load_fashion_mnist, resolve_device
from .events import BNLayerStats, BNSnapshot, EpochEnd, Event, RunEnd, RunFailed, RunStart, StepEnd
from . import cpu_fast
from .cpu_fast import batch_stats
from .layers import BatchNorm, bn_layers
from .registry import Config, Knob, KnobError, get_spec, resolve

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")

# Checked like model knobs, so a bad value gives the same one-line message in the app and the CLI.
_EPOCHS = Knob("epochs", "int", 10, "number of epochs", "迭代周期数", lo=1, hi=1000)
_LR = Knob("lr", "float", 0.1, "learning rate", "学习率", lo=0.0, hi=1e38, lo_open=True)
_BATCH = Knob("batch_size", "int", 256, "batch size", "批量大小", lo=1, hi=65536)
_OPT = Knob("optimizer", "choice", "sgd", "optimizer", "优化器", choices=OPTIMIZERS)
_WD = Knob("weight_decay", "float", 0.0, "weight decay (L2)", "权重衰减", lo=0.0, hi=10.0)
_SIZE = Knob("size", "int", 60000, "number of examples", "样本数", lo=1, hi=10_000_000)
_EVERY = Knob("every", "int", 20, "steps between reports", "报告间隔（步）", lo=1, hi=1_000_000)
_THREADS = Knob("threads", "int", 1, "CPU threads", "CPU 线程数", lo=1, hi=1024)
_SEED = Knob("seed", "int", 0, "random seed", "随机种子", lo=0, hi=2**63 - 1)


def _check(knob: Knob, name: str, value: Any) -> Any:
    try:
        return knob.validate(value)
    except KnobError as e:
        raise KnobError(str(e).replace(knob.name, name, 1)) from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs. `model` is a resolved registry Config, or an architecture name.

    With an architecture name the book's training knobs (e.g. VGG's ratio 4) and the book's
    training resolution are the defaults; `knobs` and `resolution` override them. `lr` and
    `batch_size` left as None take the book's values for the model (``ArchSpec.book_lr``).
    """

    model: Config | str = "lenet"
    knobs: Mapping[str, Any] = field(default_factory=dict)
    in_channels: int = 1
    num_classes: int = 10
    resolution: int | None = None
    epochs: int = 10
    lr: float | None = None
    batch_size: int | None = None
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    train_size: int | None = None   # None: all 60,000 (a seeded, stratified subset otherwise)
    test_size: int | None = None    # None: all 10,000
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    seed: int = 0
    log_every: int = 20             # steps between StepEnd events (and device read-backs)
    bn_every: int = 50              # steps between BNSnapshot events (plus one at every epoch end)
    eval_batch_size: int | None = None  # None: 256 on CPU (measured fastest for LeNet), 1024 on CUDA
    compile: bool = False           # torch.compile the model (pays off on long GPU runs only)
    init: str = "xavier"            # xavier (d2l's train_ch6) | keep (the weights as built or loaded)
    threads: int | None = None      # CPU intra-op threads (None: see engine.cpu_threads)

    # -- resolving ------------------------------------------------------------------
    def model_config(self) -> Config:
        """The validated model Config (raises KnobError)."""
        if isinstance(self.model, Config):
            return self.model
        spec = get_spec(self.model)
        knobs = {**dict(spec.training.knobs), **dict(self.knobs)}
        res = self.resolution if self.resolution is not None else spec.training.resolution
        return resolve(self.model, knobs, in_channels=self.in_channels, num_classes=self.num_classes, resolution=res)

    def resolved(self) -> "TrainConfig":
        """A copy with the model Config, lr and batch size filled in, every value checked (raises KnobError)."""
        cfg = self.model_config()
        spec = cfg.spec
        lr = spec.book_lr(cfg.knobs) if self.lr is None else self.lr
        if self.optimizer == "adam" and self.lr is None:
            lr = 0.001  # the d2lzh notes train with Adam at 1e-3; the book's SGD rates would diverge
        if isinstance(lr, float) and not math.isfinite(lr):
            raise KnobError(f"lr must be a positive finite number, got {lr}")
        out = dataclasses.replace(
            self, model=cfg, knobs={}, resolution=cfg.resolution, in_channels=cfg.in_channels,
            num_classes=cfg.num_classes,
            epochs=_check(_EPOCHS, "epochs", self.epochs),
            lr=_check(_LR, "lr", lr),
            batch_size=_check(_BATCH, "batch_size", spec.training.batch_size if self.batch_size is None
                              else self.batch_size),
            optimizer=_check(_OPT, "optimizer", self.optimizer),
            weight_decay=_check(_WD, "weight_decay", self.weight_decay),
            train_size=None if self.train_size is None else _check(_SIZE, "train_size", self.train_size),
            test_size=None if self.test_size is None else _check(_SIZE, "test_size", self.test_size),
            seed=_check(_SEED, "seed", self.seed),
            log_every=_check(_EVERY, "log_every", self.log_every),
            bn_every=_check(_EVERY, "bn_every", self.bn_every),
            eval_batch_size=None if self.eval_batch_size is None
            else _check(_BATCH, "eval_batch_size", self.eval_batch_size),
        )
        if self.threads is not None:
            _check(_THREADS, "threads", self.threads)
        dev = str(self.device)
        if dev not in DEVICES and not (dev.startswith("cuda:") and dev[5:].isdigit()):
            raise KnobError(f"device must be one of auto | cpu | cuda, got {dev!r}")
        if self.init not in ("xavier", "keep"):
            raise KnobError(f"init must be one of xavier | keep, got {self.init!r}")
        return out

    def hyper(self) -> dict:
        """The hyper-parameters as plain JSON (config.json's "train")."""
        return {k: getattr(self, k) for k in ("epochs", "lr", "batch_size", "optimizer", "weight_decay",
                                             "train_size", "test_size", "device", "seed", "log_every",
                                             "bn_every", "eval_batch_size", "compile", "init", "threads")}


# -- helpers -----------------------------------------------------------------------------

def init_weights(model: nn.Module, seed: int | None = None) -> None:
    """d2l's train_ch6 init: Xavier-uniform for every Linear and Conv2d weight; everything else as torch
    initialises it. With `seed`, every layer is first reset from that seed, so the start does not depend
    on what the random generator did before (the model is the same as one built right after seeding)."""
    if seed is not None:
        torch.manual_seed(seed)
        for m in model.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_TORCH_THREADS = torch.get_num_threads()  # torch's own default: the physical cores


def cpu_threads(requested: int | None = None) -> int:
    """Intra-op threads for CPU training: `requested` (TrainConfig.threads), else $CNNLAB_THREADS,
    else torch's default (the physical cores).

    Measured on a 2-core machine (bench/RESULTS.md): LeNet-sized steps run ~1.7× faster on two
    threads than on one while the machine is otherwise idle, but 2-5× slower as soon as another
    process wants a core, because each thread waits for the other at every operator. On a busy
    machine set CNNLAB_THREADS=1. The thread count changes float rounding, so bit-for-bit
    reproducibility holds for the same seed, device and thread count.
    """
    if requested:
        return int(requested)
    env = os.environ.get("CNNLAB_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
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


def _one_sentence(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.cuda.OutOfMemoryError) or isinstance(e, MemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                            or "not enough memory" in msg)


class _BNWatch:
    """Captures the last training batch's mean/var of every BN layer on the steps a snapshot is due.

    The scratch BatchNorm keeps them in its `batch_mean`/`batch_var` buffers; torch's nn.BatchNorm
    does not, so a forward pre-hook computes them from the layer's input — only when `capture` is on.
    """

    def __init__(self, model: nn.Module):
        self.layers = bn_layers(model)
        self.capture = False
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.handles = []
        for name, m in self.layers:
            if not isinstance(m, BatchNorm):
                self.handles.append(m.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, args):
            if self.capture and module.training:
                self.stats[name] = batch_stats(args[0].detach().float())  # biased var, as BN normalises
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []

    def snapshot(self, epoch: int, step: int) -> BNSnapshot:
        parts: list[torch.Tensor] = []
        for name, m in self.layers:
            c = m.num_features
            w = m.weight if m.weight is not None else torch.ones(c, device=m.running_mean.device)
            b = m.bias if m.bias is not None else torch.zeros(c, device=m.running_mean.device)
            if isinstance(m, BatchNorm):
                bm, bv = m.batch_mean, m.batch_var
            else:
                nanv = torch.full((c,), float("nan"), device=m.running_mean.device)
                bm, bv = self.stats.get(name, (nanv, nanv))
            parts += [t.detach().float().reshape(-1) for t in (w, b, m.running_mean, m.running_var, bm, bv)]
        flat = torch.cat(parts).cpu().tolist() if parts else []  # one read-back for all layers
        out, i = [], 0
        for name, m in self.layers:
            c = m.num_features
            vecs = [flat[i + j * c:i + (j + 1) * c] for j in range(6)]
            i += 6 * c
            out.append(BNLayerStats(name=name, gamma=vecs[0], beta=vecs[1], running_mean=vecs[2],
                                    running_var=vecs[3], batch_mean=vecs[4], batch_var=vecs[5]))
        return BNSnapshot(epoch=epoch, step=step, layers=tuple(out))


def evaluate(model: nn.Module, data: TensorData, batch_size: int = 256, split: str = "test",
             stop: threading.Event | None = None, channels_last: bool = False, autocast=None) -> float | None:
    """Accuracy on a split (None if `stop` was set meanwhile). Counts on the device; one read-back."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    n = 0
    try:
        with torch.inference_mode(), (autocast or contextlib.nullcontext()):
            for X, y in data.batches(split, batch_size):
                if stop is not None and stop.is_set():
                    return None
                if channels_last and X.dim() == 4:
                    X = X.contiguous(memory_format=torch.channels_last)
                correct += (model(X).argmax(dim=1) == y).sum()
                n += y.shape[0]
    finally:
        model.train(was_training)
    return correct.item() / max(n, 1)


@torch.inference_mode()
def predict(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, num_classes) for a batch X already shaped for the model; model left in eval mode."""
    model.eval()
    dev = next(model.parameters()).device
    return F.softmax(model(X.to(dev)).float(), dim=1)


# -- fit -------------------------------------------------------------------------------

def fit(model: nn.Module, data: TensorData, config: TrainConfig,
        stop: threading.Event | None = None) -> Iterator[Event]:
    """Train `model` on `data` (already on the training device) and yield events.

    Order: RunStart; StepEnd every `log_every` steps; BNSnapshot every `bn_every` steps and at each
    epoch end (only for models with BN layers); EpochEnd; ...; RunEnd — or RunFailed as the last
    event (reason stopped | nan_loss | out_of_memory | error). Never raises for a training failure.
    """
    epoch = step = 0
    watch = None
    try:
        try:
            tc = config.resolved()
        except KnobError as e:
            yield RunFailed(reason="error", message=str(e))
            return
        cfg = tc.model_config()
        device = data.device
        cuda = device.type == "cuda"
        if not cuda:
            torch.set_num_threads(cpu_threads(tc.threads))
            tune_cpu_allocator()
        else:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if tc.init == "xavier":
            init_weights(model, seed=tc.seed)
        torch.manual_seed(tc.seed)  # dropout draws from the global generator
        model.to(device)
        # CPU fast paths (switchable: CNNLAB_FAST_CPU=0) and the memory layout, both decided by cpu_fast.
        fast = cpu_fast.apply(model, device=device, input_shape=cfg.input_shape)
        channels_last = fast["channels_last"]
        gen = torch.Generator().manual_seed(tc.seed)
        if tc.optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        net = torch.compile(model) if tc.compile else model
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
        watch = _BNWatch(model)
        bs = tc.batch_size
        steps_per_epoch = data.num_batches("train", bs)
        total_steps = steps_per_epoch * tc.epochs
        yield RunStart(arch=cfg.arch, knobs=cfg.to_dict()["knobs"], device=str(device), epochs=tc.epochs,
                       steps_per_epoch=steps_per_epoch, train_size=data.num_train, test_size=data.num_test,
                       lr=tc.lr, batch_size=bs, optimizer=tc.optimizer, params=count_params(model))

        t_run = time.perf_counter()
        train_time = 0.0   # seconds spent in training steps (for the ETA)
        eval_time = 0.0    # seconds of the last evaluation
        test_acc = train_acc = 0.0
        for epoch in range(1, tc.epochs + 1):
            model.train()
            t_epoch = t_log = time.perf_counter()
            ep_loss = ep_correct = 0.0
            ep_n = 0
            loss_acc = torch.zeros((), dtype=torch.float32, device=device)
            correct_acc = torch.zeros((), dtype=torch.int64, device=device)
            n_acc = 0
            last_snap_step = -1
            for i, (X, y) in enumerate(data.batches("train", bs, shuffle=True, generator=gen)):
                if stop is not None and stop.is_set():
                    yield RunFailed(reason="stopped", message=f"stopped at step {step} (epoch {epoch}) on request",
                                    epoch=epoch, step=step)
                    return
                step += 1
                last_in_epoch = i == steps_per_epoch - 1
                watch.capture = bool(watch.layers) and (step % tc.bn_every == 0 or last_in_epoch)
                if channels_last and X.dim() == 4:
                    X = X.contiguous(memory_format=torch.channels_last)
                opt.zero_grad(set_to_none=True)
                with autocast():
                    out = net(X)
                    loss = F.cross_entropy(out, y)
                loss.backward()
                opt.step()
                watch.capture = False
                with torch.no_grad():
                    loss_acc += loss.detach().float() * y.shape[0]
                    correct_acc += (out.detach().argmax(dim=1) == y).sum()
                n_acc += y.shape[0]

                if step % tc.log_every == 0 or last_in_epoch:
                    l_sum, c_sum = torch.stack([loss_acc, correct_acc.float()]).tolist()  # the one read-back
                    now = time.perf_counter()
                    if not math.isfinite(l_sum):
                        yield RunFailed(reason="nan_loss",
                                        message=f"the loss became NaN at step {step} (epoch {epoch}); "
                                                f"try a smaller learning rate than {tc.lr:g}",
                                        epoch=epoch, step=step)
                        return
                    train_time += now - t_log
                    ep_loss += l_sum
                    ep_correct += c_sum
                    ep_n += n_acc
                    steps_left = total_steps - step
                    evals_left = tc.epochs - epoch + 1
                    eta = steps_left * train_time / step + evals_left * eval_time
                    yield StepEnd(step=step, total_steps=total_steps, epoch=epoch, loss=l_sum / n_acc,
                                  acc=c_sum / n_acc, examples_per_s=n_acc / max(now - t_log, 1e-9), eta_s=eta)
                    loss_acc.zero_()
                    correct_acc.zero_()
                    n_acc = 0
                    t_log = time.perf_counter()  # the consumer's time with the event is not training time

                if watch.layers and (step % tc.bn_every == 0 or last_in_epoch) and last_snap_step != step:
                    last_snap_step = step
                    snap = watch.snapshot(epoch, step)
                    t_pause = time.perf_counter()
                    yield snap
                    t_log += time.perf_counter() - t_pause
            epoch_train_s = time.perf_counter() - t_epoch
            t_eval = time.perf_counter()
            acc = evaluate(net, data, tc.eval_batch_size or (1024 if cuda else 256), stop=stop,
                           channels_last=channels_last,
                           autocast=autocast() if cuda else None)
            if acc is None:
                yield RunFailed(reason="stopped", message=f"stopped at step {step} (epoch {epoch}) on request",
                                epoch=epoch, step=step)
                return
            eval_time = time.perf_counter() - t_eval
            test_acc, train_acc = acc, ep_correct / max(ep_n, 1)
            yield EpochEnd(epoch=epoch, epochs=tc.epochs, train_loss=ep_loss / max(ep_n, 1), train_acc=train_acc,
                           test_acc=test_acc, wall_s=time.perf_counter() - t_run,
                           examples_per_s=ep_n / max(epoch_train_s, 1e-9))
        yield RunEnd(run_dir=None, test_acc=test_acc, train_acc=train_acc, epochs=tc.epochs,
                     wall_s=time.perf_counter() - t_run)
    except Exception as e:  # noqa: BLE001 — the stream ends with an event, never a traceback
        if _is_oom(e):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            yield RunFailed(reason="out_of_memory",
                            message=f"the device ran out of memory at step {step}; try a smaller batch size "
                                    f"or resolution ({_one_sentence(e)})", epoch=epoch, step=step)
        else:
            yield RunFailed(reason="error", message=_one_sentence(e), epoch=epoch, step=step)
    finally:
        if watch is not None:
            watch.remove()
        cpu_fast.revert(model)  # the caller gets torch's classes back (same parameters and state_dict)


# -- run: model + data + checkpoint folder ---------------------------------------------------

def build_data(tc: TrainConfig, device: str | torch.device | None = None) -> TensorData:
    """Fashion-MNIST at the model's input size on the run's device (raises DataError)."""
    cfg = tc.model_config()
    return load_fashion_mnist(cfg.input_hw, device=resolve_device(device or tc.device), train_size=tc.train_size,
                              test_size=tc.test_size, seed=tc.seed, in_channels=cfg.in_channels)


def run(config: TrainConfig, stop: threading.Event | None = None, out_dir: str | None = "checkpoints", *,
        data: TensorData | None = None, model: nn.Module | None = None) -> Iterator[Event]:
    """Build the model and the data, train with `fit`, save the run folder as it goes, yield the events.

    RunStart/RunEnd/RunFailed carry the run folder (``<out_dir>/<run-id>``). Weights, metrics.jsonl
    and the epoch's BN history are written before each EpochEnd is yielded. A stop keeps the
    checkpoint (the weights at the moment of stopping); a NaN loss or an error keeps the last
    epoch's. `out_dir=None` trains without writing anything. Never raises for a training failure.
    """
    from . import checkpoint as ckpt

    try:
        tc = config.resolved()
        cfg = tc.model_config()
        device = resolve_device(tc.device)
        if data is None:
            data = build_data(tc, device)
        if data.resolution != cfg.input_hw:
            raise DataError(f"the data are {data.resolution}×{data.resolution} but the model takes "
                            f"{cfg.input_hw}×{cfg.input_hw}")
        if data.num_classes > cfg.num_classes:
            raise DataError(f"the data have {data.num_classes} classes but the model has only {cfg.num_classes} "
                            "outputs")
        if model is None:
            torch.manual_seed(tc.seed)
            model = cfg.build()
    except (KnobError, DataError, OSError) as e:
        yield RunFailed(reason="error", message=str(e) if not isinstance(e, OSError) else _one_sentence(e))
        return
    except Exception as e:  # noqa: BLE001
        reason = "out_of_memory" if _is_oom(e) else "error"
        yield RunFailed(reason=reason, message=_one_sentence(e))
        return

    writer = None
    run_dir = None
    if out_dir is not None:
        try:
            run_dir = ckpt.new_run_dir(out_dir, cfg.arch)
            writer = ckpt.RunWriter(run_dir)
            writer.write_config({
                "run_id": os.path.basename(run_dir), "created": ckpt._now().isoformat(timespec="seconds"),
                "model": cfg.to_dict(), "train": tc.hyper(), "device": str(data.device),
                "data": {"name": data.name, "train_size": data.num_train, "test_size": data.num_test,
                         "resolution": data.resolution},
                "torch": torch.__version__, "params": count_params(model), "status": "running"})
        except (OSError, ckpt.CheckpointError) as e:
            yield RunFailed(reason="error", message=f"cannot write the run folder under {out_dir} "
                                                    f"({_one_sentence(e)})")
            return

    done_epochs = 0
    finished = False
    events = fit(model, data, tc, stop)
    try:
        for ev in events:
            try:
                if isinstance(ev, RunStart):
                    ev = dataclasses.replace(ev, run_dir=run_dir)
                elif isinstance(ev, BNSnapshot) and writer:
                    writer.add_bn_snapshot(ev)
                elif isinstance(ev, EpochEnd):
                    done_epochs = ev.epoch
                    if writer:
                        writer.save_weights(model, ev.epoch)
                        writer.append_metrics(ev.to_dict())
                        writer.flush_bn(ev.epoch)
                elif isinstance(ev, RunEnd):
                    ev = dataclasses.replace(ev, run_dir=run_dir)
                    if writer:
                        writer.update_config(status="finished", final={
                            "epochs": done_epochs, "test_acc": ev.test_acc, "train_acc": ev.train_acc,
                            "wall_s": ev.wall_s})
                    finished = True
                elif isinstance(ev, RunFailed):
                    ev = dataclasses.replace(ev, run_dir=run_dir)
                    if writer:
                        if ev.reason == "stopped":
                            writer.save_weights(model, done_epochs)  # the weights at the moment of stopping
                        writer.flush_bn(max(ev.epoch, 1))
                        writer.update_config(status="stopped" if ev.reason == "stopped" else "failed",
                                             failure={"reason": ev.reason, "message": ev.message,
                                                      "epoch": ev.epoch, "step": ev.step},
                                             final={"epochs": done_epochs, "step": ev.step})
                    finished = True
            except (OSError, ckpt.CheckpointError) as e:
                events.close()
                finished = True
                yield RunFailed(reason="error", message=f"could not write the checkpoint in {run_dir} "
                                                        f"({_one_sentence(e)})", run_dir=run_dir)
                return
            yield ev
    except KeyboardInterrupt:
        # Ctrl-C inside a step: keep what was trained, then let the caller exit.
        if writer:
            with contextlib.suppress(Exception):
                writer.save_weights(model, done_epochs)
                writer.update_config(status="stopped", failure={"reason": "stopped", "message": "interrupted"},
                                     final={"epochs": done_epochs})
            finished = True
        raise
    finally:
        if writer and not finished:  # the consumer abandoned the stream
            with contextlib.suppress(Exception):
                writer.update_config(status="stopped", failure={"reason": "stopped",
                                                                "message": "the run was abandoned"},
                                     final={"epochs": done_epochs})
