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
from ..i18n import msg
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


def fit(model: nn.Module, data: TensorData, config: TrainConfig,
        stop: threading.Event | None = None) -> Iterator[Event]:
    """Train `model` on `data` (already on the training device) and yield events.

    Order: RunStart; Compiling (compiled runs: before and after the first compiled step); StepEnd every
    `log_every` steps; BNSnapshot every `bn_every` steps and at each epoch end (only for models with BN
    layers); EpochTrained (the weights are final for the epoch: evaluation is next); EpochEnd; ...; RunEnd
    — or RunFailed as the last event (reason stopped | nan_loss | out_of_memory | error). Never raises for a
    training failure; an exception is logged with its traceback, which the RunFailed event carries in `detail`.

    On the GPU the steps run under autocast (bf16, or fp16 with a GradScaler; cnnlab.device.choose_amp) with
    fused optimizers; the evaluation batch is sized from the training step's memory, and halved on an
    out-of-memory. A compiled model runs only the full-size training steps: the smaller last batch, the BN
    snapshot steps and evaluation run eagerly, so the graph compiles once.
    """
    epoch = step = 0
    watch = None
    device = data.device
    compiled = False
    try:
        try:
            tc = config.resolved()
        except KnobError as e:
            yield RunFailed(reason="error", message=str(e))
            return
        cfg = tc.model_config()
        cuda = device.type == "cuda"
        devpolicy.prepare(device, tc.threads)
        amp = devpolicy.choose_amp(device, tc.amp)
        if tc.init == "xavier":
            init_weights(model, seed=tc.seed)
        torch.manual_seed(tc.seed)  # dropout draws from the global generator
        model.to(device)
        # CPU fast paths (switchable: TrainConfig.fast_cpu, CNNLAB_FAST_CPU=0) and the memory layout, both
        # decided by cnnlab.cpu_fast; what it chose goes into RunStart and the run's config.json.
        fast = cpu_fast.apply(model, device=device, enabled=tc.fast_cpu, input_shape=cfg.input_shape)
        channels_last = fast["channels_last"]
        gen = torch.Generator().manual_seed(tc.seed)
        fused = {"fused": True} if cuda else {}  # one kernel for the whole update; no host sync under a GradScaler
        if tc.optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, **fused)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, **fused)
        scaler = devpolicy.grad_scaler(device, amp)
        compile_opts = devpolicy.compile_options(device, small=cfg.input_hw <= 32) if tc.compile else None
        net = torch.compile(model, **compile_opts) if compile_opts else model
        compiled = compile_opts is not None
        cudagraphs = compiled and compile_opts.get("mode") == "reduce-overhead"
        first_compiled = compiled
        t_compile = None
        autocast = devpolicy.autocast(device, amp)
        watch = _BNWatch(model, lazy=compiled)
        bs = tc.batch_size
        eval_bs = tc.eval_batch_size
        steps_per_epoch = data.num_batches("train", bs)
        total_steps = steps_per_epoch * tc.epochs
        yield RunStart(arch=cfg.arch, knobs=cfg.to_dict()["knobs"], device=str(device), epochs=tc.epochs,
                       steps_per_epoch=steps_per_epoch, train_size=data.num_train, test_size=data.num_test,
                       lr=tc.lr, batch_size=bs, optimizer=tc.optimizer, params=count_params(model), amp=amp,
                       device_note=devpolicy.fallback_reason(tc.device, device), fast_cpu=fast)

        t_run = time.perf_counter()
        train_time = 0.0   # seconds spent in training steps (for the ETA)
        eval_time = 0.0    # seconds of the last evaluation
        test_acc = train_acc = 0.0
        for epoch in range(1, tc.epochs + 1):
            model.train()
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
                mem_rest = torch.cuda.memory_allocated(device)
            t_epoch = t_log = time.perf_counter()
            ep_loss = ep_correct = 0.0
            ep_n = 0
            loss_acc = torch.zeros((), dtype=torch.float32, device=device)
            correct_acc = torch.zeros((), dtype=torch.int64, device=device)
            n_acc = n_timed = 0
            last_snap_step = -1
            for i, (X, y) in enumerate(data.batches("train", bs, shuffle=True, generator=gen)):
                if stop is not None and stop.is_set():
                    yield _stopped(epoch, step)
                    return
                step += 1
                last_in_epoch = i == steps_per_epoch - 1
                snap = bool(watch.layers) and (step % tc.bn_every == 0 or last_in_epoch)
                if snap:
                    watch.begin()
                if channels_last and X.dim() == 4:
                    X = X.contiguous(memory_format=torch.channels_last)
                # the compiled graph takes full batches without hooks; other steps run eagerly (same maths)
                fwd = net if compiled and not snap and X.shape[0] == bs else model
                if fwd is net and first_compiled:
                    first_compiled = False
                    t_pause = time.perf_counter()
                    yield Compiling(step=step, backend=compile_opts["backend"], mode=compile_opts.get("mode", ""))
                    t_compile = time.perf_counter()
                    t_log += t_compile - t_pause
                opt.zero_grad(set_to_none=True)
                if cudagraphs and fwd is net:  # a new training step: the last replay's outputs may be reused
                    torch.compiler.cudagraph_mark_step_begin()
                with autocast():
                    out = fwd(X)
                    loss = F.cross_entropy(out, y)
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                if snap:
                    watch.end()
                with torch.no_grad():
                    loss_acc += loss.detach().float() * y.shape[0]
                    correct_acc += (out.detach().argmax(dim=1) == y).sum()
                n_acc += y.shape[0]
                n_timed += y.shape[0]
                if t_compile is not None:
                    compile_s = time.perf_counter() - t_compile
                    t_compile = None
                    yield Compiling(step=step, backend=compile_opts["backend"], mode=compile_opts.get("mode", ""),
                                    done=True, wall_s=compile_s)
                    t_log = time.perf_counter()  # the compiling step counts in neither examples/s nor the ETA
                    n_timed = 0

                if step % tc.log_every == 0 or last_in_epoch:
                    l_sum, c_sum = torch.stack([loss_acc, correct_acc.float()]).tolist()  # the one read-back
                    now = time.perf_counter()
                    if not math.isfinite(l_sum):
                        yield RunFailed(reason="nan_loss",
                                        message=msg("msg.nan", step=step, epoch=epoch, lr=f"{tc.lr:g}"),
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
                                  acc=c_sum / n_acc, examples_per_s=n_timed / max(now - t_log, 1e-9), eta_s=eta,
                                  examples=n_acc)
                    loss_acc.zero_()
                    correct_acc.zero_()
                    n_acc = n_timed = 0
                    t_log = time.perf_counter()  # the consumer's time with the event is not training time

                if snap and last_snap_step != step:
                    last_snap_step = step
                    snapshot = watch.snapshot(epoch, step)
                    t_pause = time.perf_counter()
                    yield snapshot
                    t_log += time.perf_counter() - t_pause
            epoch_train_s = time.perf_counter() - t_epoch
            yield EpochTrained(epoch=epoch, step=step)  # the run folder saves the weights before evaluating
            t_eval = time.perf_counter()
            if eval_bs is None:
                step_bytes = available = None
                if cuda:
                    allocated, available = devpolicy.cuda_memory_state(device)
                    step_bytes = torch.cuda.max_memory_allocated(device) - mem_rest
                eval_bs = devpolicy.eval_batch_size(device, bs, step_bytes=step_bytes, available_bytes=available)
            # evaluation runs eagerly (a compiled model would compile again for eval mode and the batch size)
            acc, eval_bs = evaluate_retrying(model if compiled else net, data, eval_bs, stop=stop,
                                             channels_last=channels_last,
                                             autocast=autocast() if amp != "off" else None)
            if acc is None:
                yield _stopped(epoch, step)
                return
            eval_time = time.perf_counter() - t_eval
            test_acc, train_acc = acc, ep_correct / max(ep_n, 1)
            yield EpochEnd(epoch=epoch, epochs=tc.epochs, train_loss=ep_loss / max(ep_n, 1), train_acc=train_acc,
                           test_acc=test_acc, wall_s=time.perf_counter() - t_run,
                           examples_per_s=ep_n / max(epoch_train_s, 1e-9), eval_batch_size=eval_bs)
        yield RunEnd(run_dir=None, test_acc=test_acc, train_acc=train_acc, epochs=tc.epochs,
                     wall_s=time.perf_counter() - t_run)
    except Exception as e:  # noqa: BLE001 — the stream ends with an event, never a traceback
        detail = log_failure(f"training stopped by an error at step {step}", e)
        if devpolicy.is_oom(e):
            devpolicy.release(device)
            yield RunFailed(reason="out_of_memory",
                            message=msg("msg.oom", step=step, why=one_line(e)), epoch=epoch, step=step, detail=detail)
        else:
            yield RunFailed(reason="error", message=one_line(e, with_type=True), epoch=epoch, step=step,
                            detail=detail)
    finally:
        if watch is not None:
            watch.remove()
        cpu_fast.revert(model)  # the caller gets torch's classes back (same parameters and state_dict)
