"""The training loop: `fit()` yields frozen events (cnnlab.events); it never prints or plots.

Defaults replicate d2l's ``train_ch6``: Xavier-uniform init of the Linear/Conv2d weights, plain SGD at
the book's learning rate and batch size, cross-entropy loss, test accuracy after every epoch. What is
different is speed, not the recipe: whole tensors on the device (cnnlab.data), loss/accuracy summed on
the device and read back every ``log_every`` steps only, evaluation in big batches under
``torch.inference_mode``; the device policy (threads, allocator, autocast) is cnnlab.device's.
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from .. import device as devpolicy
from ..data import TensorData
from ..errors import log, log_failure, one_line
from ..i18n import message_of, msg
from ..events import (BNLayerStats, BNSnapshot, Compiling, EpochEnd, EpochTrained, Event, RunEnd, RunFailed,
                      RunStart, StepEnd)
from .. import cpu_fast
from ..cpu_fast import batch_stats
from ..layers import BatchNorm, bn_layers
from ..registry import KnobError
from .config import TrainConfig


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


class _BNWatch:
    """Captures the last training batch's mean/var of every BN layer on the steps a snapshot is due.

    The scratch BatchNorm keeps them in its `batch_mean`/`batch_var` buffers; torch's nn.BatchNorm
    does not, so a forward pre-hook computes them from the layer's input — only when `capture` is on.
    """

    def __init__(self, model: nn.Module, lazy: bool = False):
        self.layers = bn_layers(model)
        self.capture = False
        self.lazy = lazy  # hooks only while capturing (compiled runs: no hook ever enters the compiled graph)
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.handles = []
        if not lazy:
            self._attach()

    def _attach(self):
        for name, m in self.layers:
            if not isinstance(m, BatchNorm):
                self.handles.append(m.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, args):
            if self.capture and module.training:
                self.stats[name] = batch_stats(args[0].detach().float())  # biased var, as BN normalises
        return hook

    def begin(self):
        """Capture the next training step's batch statistics."""
        if self.lazy:
            self._attach()
        self.capture = True

    def end(self):
        self.capture = False
        if self.lazy:
            self.remove()

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


def _stopped(epoch: int, step: int) -> RunFailed:
    return RunFailed(reason="stopped", message=msg("msg.stopped", step=step, epoch=epoch),
                     epoch=epoch, step=step)


def evaluate_retrying(model: nn.Module, data: TensorData, batch_size: int, **kw) -> tuple[float | None, int]:
    """:func:`evaluate`, halving the batch and trying again whenever the device runs out of memory
    (down to one example; then the error goes on). Returns (accuracy or None if stopped, the batch used)."""
    while True:
        try:
            return evaluate(model, data, batch_size, **kw), batch_size
        except Exception as e:  # noqa: BLE001
            if not devpolicy.is_oom(e) or batch_size <= 1:
                raise
            log.warning("evaluation ran out of memory at batch %d; trying again at %d", batch_size,
                        max(1, batch_size // 2))
        # outside the except block: the traceback (and the tensors its frames hold) is gone
        devpolicy.release(data.device)
        batch_size = max(1, batch_size // 2)


class _Window:
    """The steps since the last report: loss and correct counts summed on the device (read back once, at the
    report), the examples seen, and the training time they took. The consumer's time with an event, and a
    compiling step, are not training time (`paused`, `restart_clock`)."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), dtype=torch.float32, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.n = self.n_timed = 0
        self.t = time.perf_counter()

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            self.loss += loss.detach().float() * y.shape[0]
            self.correct += (out.detach().argmax(dim=1) == y).sum()
        self.n += y.shape[0]
        self.n_timed += y.shape[0]

    def read(self) -> tuple[float, float]:
        return tuple(torch.stack([self.loss, self.correct.float()]).tolist())  # the one read-back

    def reset(self) -> None:
        self.loss.zero_()
        self.correct.zero_()
        self.n = self.n_timed = 0
        self.restart_clock()

    def restart_clock(self) -> None:
        self.t = time.perf_counter()

    @contextlib.contextmanager
    def paused(self):
        t0 = time.perf_counter()
        yield
        self.t += time.perf_counter() - t0


class _Run:
    """Everything `fit` sets up around the book's loop: the device policy, d2l's init, the CPU fast paths,
    the optimizer and AMP, torch.compile, the BN watch, and the run's clock (ETA, examples/s)."""

    def __init__(self, model: nn.Module, data: TensorData, tc: TrainConfig):
        self.model, self.data, self.tc = model, data, tc
        self.cfg = tc.model_config()
        self.device = device = data.device
        self.cuda = device.type == "cuda"
        devpolicy.prepare(device, tc.threads)
        self.amp = devpolicy.choose_amp(device, tc.amp)
        if tc.init == "xavier":
            init_weights(model, seed=tc.seed)
        torch.manual_seed(tc.seed)  # dropout draws from the global generator
        model.to(device)
        # CPU fast paths (switchable: TrainConfig.fast_cpu, CNNLAB_FAST_CPU=0) and the memory layout, both
        # decided by cnnlab.cpu_fast; what it chose goes into RunStart and the run's config.json.
        self.fast = cpu_fast.apply(model, device=device, enabled=tc.fast_cpu, input_shape=self.cfg.input_shape)
        self.channels_last = self.fast["channels_last"]
        self.gen = torch.Generator().manual_seed(tc.seed)
        self.opt = self._optimizer()
        self.scaler = devpolicy.grad_scaler(device, self.amp)
        self.autocast = devpolicy.autocast(device, self.amp)
        opts = devpolicy.compile_options(device, small=self.cfg.input_hw <= 32) if tc.compile else None
        self.compile_opts = opts
        self.net = torch.compile(model, **opts) if opts else model
        self.compiled = self.first_compiled = opts is not None
        self.cudagraphs = self.compiled and opts.get("mode") == "reduce-overhead"
        self.t_compile = None
        self.watch = _BNWatch(model, lazy=self.compiled)
        self.bs, self.eval_bs = tc.batch_size, tc.eval_batch_size
        self.steps_per_epoch = data.num_batches("train", self.bs)
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.epoch = self.step = 0
        self.t_run = time.perf_counter()
        self.train_s = self.eval_s = 0.0   # seconds in training steps so far, and of the last evaluation
        self.mem_rest = 0

    def _optimizer(self) -> torch.optim.Optimizer:
        tc, params = self.tc, self.model.parameters()
        fused = {"fused": True} if self.cuda else {}  # one kernel for the update; no host sync under a GradScaler
        if tc.optimizer == "sgd":
            return torch.optim.SGD(params, lr=tc.lr, weight_decay=tc.weight_decay, **fused)
        return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay, **fused)

    def start(self) -> RunStart:
        tc, cfg = self.tc, self.cfg
        return RunStart(arch=cfg.arch, knobs=cfg.to_dict()["knobs"], device=str(self.device), epochs=tc.epochs,
                        steps_per_epoch=self.steps_per_epoch, train_size=self.data.num_train,
                        test_size=self.data.num_test, lr=tc.lr, batch_size=self.bs, optimizer=tc.optimizer,
                        params=count_params(self.model), amp=self.amp,
                        device_note=devpolicy.fallback_reason(tc.device, self.device), fast_cpu=self.fast)

    def begin_epoch(self, epoch: int) -> _Window:
        self.epoch = epoch
        self.model.train()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            self.mem_rest = torch.cuda.memory_allocated(self.device)
        self.t_epoch = time.perf_counter()
        self.ep_loss = self.ep_correct = 0.0
        self.ep_n = 0
        return _Window(self.device)

    def snapshot_due(self, last_in_epoch: bool) -> bool:
        return bool(self.watch.layers) and (self.step % self.tc.bn_every == 0 or last_in_epoch)

    def forward_module(self, X: torch.Tensor, snap: bool) -> nn.Module:
        """The compiled graph takes full batches without hooks; other steps run eagerly (same maths)."""
        return self.net if self.compiled and not snap and X.shape[0] == self.bs else self.model

    def compiling(self, fwd: nn.Module, window: _Window) -> Iterator[Event]:
        """Before the first compiled step (which can take minutes with no other event): Compiling."""
        if fwd is self.net and self.first_compiled:
            self.first_compiled = False
            opts = self.compile_opts
            with window.paused():
                yield Compiling(step=self.step, backend=opts["backend"], mode=opts.get("mode", ""))
            self.t_compile = time.perf_counter()

    def compiled_once(self, window: _Window) -> Iterator[Event]:
        """After the first compiled step: Compiling(done) with its seconds, which count in neither examples/s
        nor the ETA."""
        if self.t_compile is not None:
            compile_s, self.t_compile = time.perf_counter() - self.t_compile, None
            opts = self.compile_opts
            yield Compiling(step=self.step, backend=opts["backend"], mode=opts.get("mode", ""), done=True,
                            wall_s=compile_s)
            window.restart_clock()
            window.n_timed = 0

    def train_step(self, X: torch.Tensor, y: torch.Tensor, fwd: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step (train_ch6's), under autocast and a GradScaler on the GPU; returns (loss, output)."""
        if self.channels_last and X.dim() == 4:
            X = X.contiguous(memory_format=torch.channels_last)
        self.opt.zero_grad(set_to_none=True)
        if self.cudagraphs and fwd is self.net:  # a new training step: the last replay's outputs may be reused
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast():
            out = fwd(X)
            loss = F.cross_entropy(out, y)
        if self.scaler is None:
            loss.backward()
            self.opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        return loss, out

    def report(self, window: _Window) -> StepEnd | RunFailed:
        """The window's means (StepEnd, with examples/s and the ETA), or RunFailed for a non-finite loss."""
        l_sum, c_sum = window.read()
        now = time.perf_counter()
        tc, epoch, step = self.tc, self.epoch, self.step
        if not math.isfinite(l_sum):
            return RunFailed(reason="nan_loss", message=msg("msg.nan", step=step, epoch=epoch, lr=f"{tc.lr:g}"),
                             epoch=epoch, step=step)
        self.train_s += now - window.t
        self.ep_loss += l_sum
        self.ep_correct += c_sum
        self.ep_n += window.n
        eta = (self.total_steps - step) * self.train_s / step + (tc.epochs - epoch + 1) * self.eval_s
        return StepEnd(step=step, total_steps=self.total_steps, epoch=epoch, loss=l_sum / window.n,
                       acc=c_sum / window.n, examples_per_s=window.n_timed / max(now - window.t, 1e-9), eta_s=eta,
                       examples=window.n)

    def evaluate(self, stop: threading.Event | None) -> float | None:
        """Test accuracy, eagerly (a compiled model would compile again for eval mode and the batch size), in
        batches sized from the training step's memory on the GPU and halved on an out-of-memory."""
        self.epoch_train_s = time.perf_counter() - self.t_epoch
        t_eval = time.perf_counter()
        if self.eval_bs is None:
            step_bytes = available = None
            if self.cuda:
                _, available = devpolicy.cuda_memory_state(self.device)
                step_bytes = torch.cuda.max_memory_allocated(self.device) - self.mem_rest
            self.eval_bs = devpolicy.eval_batch_size(self.device, self.bs, step_bytes=step_bytes,
                                                     available_bytes=available)
        acc, self.eval_bs = evaluate_retrying(self.model, self.data, self.eval_bs, stop=stop,
                                              channels_last=self.channels_last,
                                              autocast=self.autocast() if self.amp != "off" else None)
        self.eval_s = time.perf_counter() - t_eval
        return acc

    def epoch_end(self, test_acc: float) -> EpochEnd:
        n = max(self.ep_n, 1)
        return EpochEnd(epoch=self.epoch, epochs=self.tc.epochs, train_loss=self.ep_loss / n,
                        train_acc=self.ep_correct / n, test_acc=test_acc, wall_s=time.perf_counter() - self.t_run,
                        examples_per_s=self.ep_n / max(self.epoch_train_s, 1e-9), eval_batch_size=self.eval_bs)

    def end(self, last: EpochEnd | None) -> RunEnd:
        return RunEnd(run_dir=None, test_acc=last.test_acc if last else 0.0, train_acc=last.train_acc if last else 0.0,
                      epochs=self.tc.epochs, wall_s=time.perf_counter() - self.t_run)


def _failed(e: Exception, epoch: int, step: int, device) -> RunFailed:
    """An exception during training as the stream's last event (logged with its traceback, kept in `detail`)."""
    detail = log_failure(f"training stopped by an error at step {step}", e)
    if devpolicy.is_oom(e):
        devpolicy.release(device)
        return RunFailed(reason="out_of_memory", message=msg("msg.oom", step=step, why=one_line(e)), epoch=epoch,
                         step=step, detail=detail)
    return RunFailed(reason="error", message=one_line(e, with_type=True), epoch=epoch, step=step, detail=detail)


def fit(model: nn.Module, data: TensorData, config: TrainConfig,
        stop: threading.Event | None = None) -> Iterator[Event]:
    """Train `model` on `data` (already on the training device) and yield events.

    Order: RunStart; Compiling (compiled runs: before and after the first compiled step); StepEnd every
    `log_every` steps; BNSnapshot every `bn_every` steps and at each epoch end (only for models with BN
    layers); EpochTrained (the weights are final for the epoch: evaluation is next); EpochEnd; ...; RunEnd
    — or RunFailed as the last event (reason stopped | nan_loss | out_of_memory | error). Never raises for a
    training failure; an exception is logged with its traceback, which the RunFailed event carries in `detail`.

    The loop is d2l's ``train_ch6``; what is around it (device policy, AMP, torch.compile, the BN watch, the
    clock) is `_Run`'s. A compiled model runs only the full-size training steps: the smaller last batch, the
    BN snapshot steps and evaluation run eagerly, so the graph compiles once.
    """
    try:
        tc = config.resolved()
    except KnobError as e:
        yield RunFailed(reason="error", message=message_of(e))
        return
    run = None
    try:
        run = _Run(model, data, tc)
        yield run.start()
        last = None
        for epoch in range(1, tc.epochs + 1):
            window = run.begin_epoch(epoch)
            for i, (X, y) in enumerate(data.batches("train", run.bs, shuffle=True, generator=run.gen)):
                if stop is not None and stop.is_set():
                    yield _stopped(epoch, run.step)
                    return
                run.step += 1
                last_in_epoch = i == run.steps_per_epoch - 1
                snap = run.snapshot_due(last_in_epoch)
                if snap:
                    run.watch.begin()
                fwd = run.forward_module(X, snap)
                yield from run.compiling(fwd, window)
                loss, out = run.train_step(X, y, fwd)
                if snap:
                    run.watch.end()
                window.add(loss, out, y)
                yield from run.compiled_once(window)
                if run.step % tc.log_every == 0 or last_in_epoch:
                    report = run.report(window)
                    yield report
                    if isinstance(report, RunFailed):
                        return
                    window.reset()  # after the consumer's time with the event
                if snap:
                    snapshot = run.watch.snapshot(epoch, run.step)
                    with window.paused():
                        yield snapshot
            yield EpochTrained(epoch=epoch, step=run.step)  # the run folder saves the weights before evaluating
            acc = run.evaluate(stop)
            if acc is None:
                yield _stopped(epoch, run.step)
                return
            last = run.epoch_end(acc)
            yield last
        yield run.end(last)
    except Exception as e:  # noqa: BLE001 — the stream ends with an event, never a traceback
        yield _failed(e, run.epoch if run else 0, run.step if run else 0, data.device)
    finally:
        if run is not None:
            run.watch.remove()
        cpu_fast.revert(model)  # the caller gets torch's classes back (same parameters and state_dict)
