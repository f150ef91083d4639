"""Run folders: atomic saves, safe loads, run metadata as plain JSON.

A run is a folder ``checkpoints/<run-id>/``::

    config.json        what ran: arch, knobs, hyper-parameters, seed, torch version, device, status, final figures
    model.pt           {"format": "cnnlab-weights", "state_dict": ..., "epoch": ...} (torch.save; loaded weights_only)
    metrics.jsonl      one epoch_end event per line
    bn_history/        epoch-0001.jsonl, ...: the BN snapshots of each epoch (bn_snapshot events), one file per epoch

Every write goes to a temporary file in the same folder, is flushed to disk, then renamed over the
target with ``os.replace``, so a save killed midway leaves the previous file intact. Loading uses
``torch.load(weights_only=True)`` (nothing in a checkpoint can run code); a corrupt, truncated or
foreign file raises :class:`CheckpointError` with a one-line message.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .errors import one_line
from .events import BNSnapshot, EpochEnd, EpochTrained, Event, RunEnd, RunFailed, RunStart
from .registry import Config, KnobError

FORMAT = "cnnlab-run"
WEIGHTS_FORMAT = "cnnlab-weights"
VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.pt"
METRICS = "metrics.jsonl"
BN_DIR = "bn_history"


class CheckpointError(RuntimeError):
    """A run folder or file that cannot be used; the message is one line for people."""


# -- atomic writes ----------------------------------------------------------------------

FILE_MODE = 0o644  # run files: readable by all, written by the owner (set explicitly; the umask is never touched)


def atomic_write(path: str, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call write(f) on a temp file next to `path`, fsync, then os.replace it over `path`.

    If anything fails (or the process dies) before the rename, `path` keeps its previous content
    and the temp file is removed (or, after a kill, left as a hidden ``.*.tmp`` that loaders ignore).
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), mode="w")


def json_safe(obj: Any, digits: int | None = 7) -> Any:
    """The one JSON sanitizer: NaN and ±Infinity (which JSON does not have) become null, tuples become
    lists, and floats are rounded to `digits` significant digits (7 = float32 precision; None keeps them).
    Used for run folders and for the CLI's --json lines, so both write the same thing."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return obj if digits is None else float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: json_safe(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, digits) for v in obj]
    return obj


def _dumps(obj: Any, **kw) -> str:
    return json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False, **kw)


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, _dumps(obj, indent=1) + "\n")


def atomic_write_jsonl(path: str, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(_dumps(r) + "\n" for r in rows))


def atomic_torch_save(path: str, obj: Any) -> None:
    """torch.save through atomic_write. torch reports a failed write (a full disk) as a RuntimeError
    ("unexpected pos ..."): that becomes a CheckpointError, and the previous file stays as it was."""
    try:
        atomic_write(path, lambda f: torch.save(obj, f))
    except RuntimeError as e:
        raise CheckpointError(f"could not write {path} ({one_line(e, 160)}); is the disk full?") from None


# -- writing a run ------------------------------------------------------------------------

def _now() -> _dt.datetime:
    return _dt.datetime.now().astimezone()


def new_run_dir(root: str, arch: str) -> str:
    """Create and return a fresh folder ``<root>/<YYYYmmdd-HHMMSS>-<arch>-<4 hex>``."""
    os.makedirs(root, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", arch)
    stamp = _now().strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        path = os.path.join(root, f"{stamp}-{safe}-{secrets.token_hex(2)}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise CheckpointError(f"could not create a new run folder under {root}")


class RunWriter:
    """Writes one run folder as training goes; every write is atomic."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.config: dict = {}
        self.metrics: list[dict] = []
        self.bn_pending: list[dict] = []
        self.epochs_done = 0      # the epoch the saved weights belong to
        self.closed = False       # a final status (finished / stopped / failed) has been written
        os.makedirs(run_dir, exist_ok=True)

    @classmethod
    def create(cls, root: str, arch: str) -> "RunWriter":
        """A writer for a fresh run folder under `root` (see new_run_dir)."""
        return cls(new_run_dir(root, arch))

    def path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    def write_config(self, config: dict) -> None:
        """Write config.json: format, version, run id and creation time, then `config`."""
        self.config = {"format": FORMAT, "version": VERSION, "run_id": os.path.basename(self.run_dir),
                       "created": _now().isoformat(timespec="seconds"), **config}
        atomic_write_json(self.path(CONFIG), self.config)

    def update_config(self, **fields: Any) -> None:
        self.config.update(fields)
        atomic_write_json(self.path(CONFIG), self.config)

    def save_weights(self, model: nn.Module, epoch: int) -> None:
        sd = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        atomic_torch_save(self.path(WEIGHTS), {"format": WEIGHTS_FORMAT, "version": VERSION, "epoch": int(epoch),
                                               "arch": self.config.get("model", {}).get("arch"), "state_dict": sd})

    def append_metrics(self, row: dict) -> None:
        """Add one line to metrics.jsonl (rewritten atomically; it holds one line per epoch)."""
        self.metrics.append(row)
        atomic_write_jsonl(self.path(METRICS), self.metrics)

    def add_bn_snapshot(self, snap: BNSnapshot | dict) -> None:
        self.bn_pending.append(snap.to_dict() if isinstance(snap, BNSnapshot) else snap)

    def flush_bn(self, epoch: int) -> None:
        """Write the snapshots gathered during `epoch` to bn_history/epoch-NNNN.jsonl (one file per epoch)."""
        if not self.bn_pending:
            return
        folder = self.path(BN_DIR)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"epoch-{epoch:04d}.jsonl")
        rows = self.bn_pending
        if os.path.exists(target):  # a partial epoch written earlier (stop, then flush again)
            rows = _read_jsonl(target) + rows
        atomic_write_jsonl(target, rows)
        self.bn_pending = []

    # -- consuming the engine's events ------------------------------------------------------
    def on_event(self, ev: Event, model: nn.Module) -> Event:
        """Record one engine event in the run folder and return it as it should be passed on.

        BN snapshots are gathered and written per epoch; at an EpochTrained the weights are saved (before
        evaluation), at an EpochEnd the metrics line and the epoch's BN history are written before the event
        goes on; RunEnd / RunFailed write the final
        status (a stop also keeps the weights at the moment of stopping; an error keeps the last epoch's and
        its traceback). RunStart, RunEnd and RunFailed come back with `run_dir` filled in.
        """
        if isinstance(ev, BNSnapshot):
            self.add_bn_snapshot(ev)
        elif isinstance(ev, EpochTrained):  # before evaluating: an evaluation that fails keeps the epoch
            self.save_weights(model, ev.epoch)
            self.epochs_done = ev.epoch
        elif isinstance(ev, EpochEnd):
            if self.epochs_done != ev.epoch:  # (a producer without EpochTrained)
                self.save_weights(model, ev.epoch)
            self.epochs_done = ev.epoch
            self.append_metrics(ev.to_dict())
            self.flush_bn(ev.epoch)
        elif isinstance(ev, RunEnd):
            self.update_config(status="finished", final={"epochs": self.epochs_done, "test_acc": ev.test_acc,
                                                         "train_acc": ev.train_acc, "wall_s": ev.wall_s})
            self.closed = True
        elif isinstance(ev, RunFailed):
            if ev.reason == "stopped":
                self.save_weights(model, self.epochs_done)  # the weights at the moment of stopping
            self.flush_bn(max(ev.epoch, 1))
            failure = {"reason": ev.reason, "message": ev.message, "epoch": ev.epoch, "step": ev.step}
            if ev.detail:
                failure["traceback"] = ev.detail
            self.update_config(status="stopped" if ev.reason == "stopped" else "failed", failure=failure,
                               final={"epochs": self.epochs_done, "step": ev.step})
            self.closed = True
        if isinstance(ev, (RunStart, RunEnd, RunFailed)):
            return dataclasses.replace(ev, run_dir=self.run_dir)
        return ev

    def abandon(self, message: str, model: nn.Module | None = None) -> None:
        """The run ended without a final event (Ctrl-C, the consumer left): keep `model`'s weights if
        given and mark the run stopped."""
        if model is not None:
            self.save_weights(model, self.epochs_done)
        self.update_config(status="stopped", failure={"reason": "stopped", "message": message},
                           final={"epochs": self.epochs_done})
        self.closed = True


# -- reading a run --------------------------------------------------------------------------

def _read_jsonl(path: str) -> list[dict]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"line {i} is not a JSON object")
                out.append(row)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path} is unreadable or corrupt ({one_line(e, 160)})") from None
    return out


def _run_dir_of(path: str) -> str:
    path = os.fspath(path)
    return os.path.dirname(path) if os.path.isfile(path) else path


def read_config(run_dir: str) -> dict:
    """config.json of a run, checked to be ours. Raises CheckpointError."""
    run_dir = _run_dir_of(run_dir)
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir):
        raise CheckpointError(f"{run_dir} is not a folder")
    if not os.path.isfile(path):
        raise CheckpointError(f"{run_dir} is not a CNN Lab run: it has no {CONFIG}")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({one_line(e, 160)})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a CNN Lab run config (no \"format\": \"{FORMAT}\")")
    if not isinstance(cfg.get("version"), int) or cfg["version"] > VERSION:
        raise CheckpointError(f"{path} has version {cfg.get('version')!r}; this CNN Lab reads up to {VERSION}")
    if not isinstance(cfg.get("model"), dict) or "arch" not in cfg["model"]:
        raise CheckpointError(f"{path} does not say which model it trained")
    return cfg


def read_metrics(run_dir: str) -> list[dict]:
    """The epoch_end rows of a run (empty if it has not finished an epoch)."""
    path = os.path.join(_run_dir_of(run_dir), METRICS)
    return _read_jsonl(path) if os.path.isfile(path) else []


def read_bn_history(run_dir: str) -> list[BNSnapshot]:
    """Every BN snapshot of a run, in order."""
    folder = os.path.join(_run_dir_of(run_dir), BN_DIR)
    if not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(n for n in os.listdir(folder) if re.fullmatch(r"epoch-\d+\.jsonl", n)):
        for row in _read_jsonl(os.path.join(folder, name)):
            try:
                out.append(BNSnapshot.from_dict(row))
            except (KeyError, TypeError) as e:
                raise CheckpointError(f"{os.path.join(folder, name)} has a malformed snapshot ({one_line(e, 160)})") from None
    return out


def load_weights(path: str) -> dict:
    """The saved weights file as a dict with 'state_dict'; only tensors and plain data are loaded."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} is missing: the run has not saved weights yet")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (zip archive), EOFError, ...
        raise CheckpointError(f"{path} is corrupt, truncated or not a CNN Lab checkpoint ({one_line(e, 160)})") from None
    if not isinstance(obj, dict) or obj.get("format") != WEIGHTS_FORMAT or not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a CNN Lab checkpoint (no \"format\": \"{WEIGHTS_FORMAT}\")")
    if not all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values()):
        raise CheckpointError(f"{path} is not a CNN Lab checkpoint (its state_dict holds non-tensors)")
    return obj


@dataclass
class LoadedRun:
    run_dir: str
    config: dict                 # config.json as written
    model_config: Config
    model: nn.Module             # in eval mode, on `device`
    epoch: int                   # the epoch the weights were saved after
    metrics: list[dict] = field(default_factory=list)


def load_run(path: str, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a run's model from config.json and load its weights. Raises CheckpointError (one line)."""
    run_dir = _run_dir_of(path)
    cfg = read_config(run_dir)
    try:
        model_config = Config.from_dict(cfg["model"])
    except (KnobError, KeyError, TypeError) as e:
        raise CheckpointError(f"{os.path.join(run_dir, CONFIG)} describes a model this CNN Lab cannot build "
                              f"({one_line(e, 160)})") from None
    saved = load_weights(os.path.join(run_dir, WEIGHTS))
    model = model_config.build()
    try:
        model.load_state_dict(saved["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"the weights in {run_dir} do not match the model in its {CONFIG} "
                              f"({one_line(e, 160)})") from None
    model.to(device).eval()
    return LoadedRun(run_dir=run_dir, config=cfg, model_config=model_config, model=model,
                     epoch=int(saved.get("epoch", 0)), metrics=read_metrics(run_dir))


@dataclass
class RunInfo:
    """A row of the Runs page."""

    run_id: str
    run_dir: str
    created: str
    arch: str
    knobs: dict
    status: str                  # running | finished | stopped | failed | unreadable
    epochs_done: int
    epochs: int
    test_acc: float | None
    train_acc: float | None
    config: dict
    error: str | None = None     # why the folder is unreadable
    has_weights: bool = False


def list_runs(root: str = "checkpoints") -> list[RunInfo]:
    """Every run folder under `root` with its config and last figures, newest first.

    A folder whose config.json is corrupt is listed with status 'unreadable' and the reason in `error`;
    folders without config.json (not runs) are skipped.
    """
    if not os.path.isdir(root):
        return []
    rows = []
    for name in os.listdir(root):
        d = os.path.join(root, name)
        if not os.path.isfile(os.path.join(d, CONFIG)):
            continue
        mtime = os.path.getmtime(os.path.join(d, CONFIG))
        fallback = _dt.datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")
        try:
            cfg = read_config(d)
            metrics = read_metrics(d)
        except CheckpointError as e:
            rows.append(RunInfo(run_id=name, run_dir=d, created=fallback, arch="?", knobs={}, status="unreadable",
                                epochs_done=0, epochs=0, test_acc=None, train_acc=None, config={}, error=str(e)))
            continue
        last = metrics[-1] if metrics else {}
        train = cfg.get("train", {})
        rows.append(RunInfo(
            run_id=cfg.get("run_id", name), run_dir=d, created=cfg.get("created", fallback),
            arch=cfg["model"]["arch"], knobs=cfg["model"].get("knobs", {}), status=cfg.get("status", "unknown"),
            epochs_done=int(last.get("epoch", 0)), epochs=int(train.get("epochs", 0)),
            test_acc=last.get("test_acc"), train_acc=last.get("train_acc"), config=cfg,
            has_weights=os.path.isfile(os.path.join(d, WEIGHTS))))
    rows.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return rows
