"""`run()`: build the model and the data from a TrainConfig, train with `fit()`, keep the run folder."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from torch import nn

from .. import checkpoint as ckpt
from .. import device as devpolicy
from ..data import DataError, TensorData, load_fashion_mnist
from ..errors import log_failure, one_line
from ..events import Event, RunFailed
from ..i18n import message_of, msg
from ..registry import KnobError
from .config import TrainConfig
from .loop import count_params, fit


def build_data(tc: TrainConfig, device: str | torch.device | None = None) -> TensorData:
    """Fashion-MNIST at the model's input size on the run's device (raises DataError)."""
    cfg = tc.model_config()
    return load_fashion_mnist(cfg.input_hw, device=devpolicy.resolve_device(device or tc.device),
                              train_size=tc.train_size, test_size=tc.test_size, seed=tc.seed,
                              in_channels=cfg.in_channels)


def run(config: TrainConfig, stop: threading.Event | None = None, out_dir: str | None = "checkpoints", *,
        data: TensorData | None = None, model: nn.Module | None = None, name: str | None = None) -> Iterator[Event]:
    """Build the model and the data, train with `fit`, save the run folder as it goes, yield the events.

    RunStart/RunEnd/RunFailed carry the run folder (``<out_dir>/<run-id>``); the folder is written by
    :meth:`cnnlab.checkpoint.RunWriter.on_event` before each event is passed on. A stop keeps the
    checkpoint (the weights at the moment of stopping); a NaN loss or an error keeps the last epoch's.
    `out_dir=None` trains without writing anything. `name`: the folder's name (an executor's run id).
    Never raises for a training failure.
    """
    try:
        tc = config.resolved()
        cfg = tc.model_config()
        device = devpolicy.resolve_device(tc.device)
        if data is None:
            data = build_data(tc, device)
        if data.resolution != cfg.input_hw:
            raise DataError(msg("msg.data_res", size=data.resolution, model=cfg.input_hw))
        if data.num_classes > cfg.num_classes:
            raise DataError(msg("msg.data_classes", n=data.num_classes, outputs=cfg.num_classes))
        amp = devpolicy.choose_amp(data.device, tc.amp)
        if model is None:
            torch.manual_seed(tc.seed)
            model = cfg.build()
    except (KnobError, DataError, devpolicy.DeviceError) as e:
        yield RunFailed(reason="error", message=message_of(e))
        return
    except Exception as e:  # noqa: BLE001
        detail = log_failure("preparing the run failed", e)
        reason = "out_of_memory" if devpolicy.is_oom(e) else "error"
        yield RunFailed(reason=reason, message=one_line(e, with_type=True), detail=detail)
        return

    writer = None
    if out_dir is not None:
        try:
            writer = ckpt.RunWriter.create(out_dir, cfg.arch, name)
            writer.write_config({
                "model": cfg.to_dict(), "train": tc.hyper(), "device": str(data.device), "amp": amp,
                "device_note": devpolicy.fallback_reason(tc.device, data.device),
                "data": {"name": data.name, "train_size": data.num_train, "test_size": data.num_test,
                         "resolution": data.resolution},
                "torch": torch.__version__, "params": count_params(model), "status": "running"})
        except (OSError, ckpt.CheckpointError) as e:
            yield RunFailed(reason="error", message=msg("msg.cannot_write", dir=out_dir, why=one_line(e)))
            return

    events = fit(model, data, tc, stop)
    try:
        for ev in events:
            if writer is not None:
                try:
                    ev = writer.on_event(ev, model)
                except (OSError, ckpt.CheckpointError) as e:
                    events.close()
                    writer.closed = True
                    yield RunFailed(reason="error", message=msg("msg.checkpoint_write", dir=writer.run_dir, why=one_line(e)),
                                    run_dir=writer.run_dir)
                    return
            yield ev
    except KeyboardInterrupt:
        # Ctrl-C inside a step: keep what was trained, then let the caller exit.
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.abandon("interrupted", model)
        raise
    finally:
        if writer is not None and not writer.closed:  # the consumer abandoned the stream
            with contextlib.suppress(Exception):
                writer.abandon("the run was abandoned")
        # give the GPU memory back: drop this run's model, optimizer and data first (the caller may still
        # hold the data it passed in; then only the model and the optimizer go)
        device = data.device
        events.close()
        del events, model, data
        writer = None
        devpolicy.release(device, compiled=tc.compile)
