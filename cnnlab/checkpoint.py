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
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .errors import one_line
from .errors import CheckpointError  # noqa: F401
from .i18n import msg
from .events import BNLayerStats, BNSnapshot, EpochEnd, EpochTrained, Event, RunEnd, RunFailed, RunStart
from .registry import Config, KnobError
from .units import fmt_bytes

FORMAT = "cnnlab-run"
WEIGHTS_FORMAT = "cnnlab-weights"
VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.pt"
METRICS = "metrics.jsonl"
BN_DIR = "bn_history"


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
        raise CheckpointError(msg("msg.store_write_failed", path=path, why=one_line(e, 160))) from None


# -- writing a run ------------------------------------------------------------------------

def _now() -> _dt.datetime:
    return _dt.datetime.now().astimezone()


RUN_NAME = re.compile(r"[0-9]{8}-[0-9]{6}-[A-Za-z0-9_.-]{1,40}-[0-9a-f]{4,12}")


def run_name(arch: str, tail: str | None = None) -> str:
    """A run's name: ``<YYYYmmdd-HHMMSS>-<arch>-<hex>`` (sorted by time, readable, safe as a folder name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", arch)[:40] or "run"
    return f"{_now().strftime('%Y%m%d-%H%M%S')}-{safe}-{tail or secrets.token_hex(2)}"


def new_run_dir(root: str, arch: str, name: str | None = None) -> str:
    """Create and return a fresh folder ``<root>/<name>``: the executor's run id when it gives one (one name
    for one run everywhere), else a new ``<YYYYmmdd-HHMMSS>-<arch>-<4 hex>``."""
    os.makedirs(root, exist_ok=True)
    if name is not None and RUN_NAME.fullmatch(name):
        try:
            path = os.path.join(root, name)
            os.mkdir(path)
            return path
        except FileExistsError:
            pass  # (a second start of the same id: a name of its own)
    for _ in range(100):
        path = os.path.join(root, run_name(arch))
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise CheckpointError(msg("msg.store_no_new_folder", path=root))


MAX_TRACEBACK = 64_000  # characters of a failure's traceback kept in config.json (its start and its end)


def _cut_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + f"\n... ({len(text) - 2 * half:,} characters left out) ...\n" + text[-half:]


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
    def create(cls, root: str, arch: str, name: str | None = None) -> "RunWriter":
        """A writer for a fresh run folder under `root` (see new_run_dir)."""
        return cls(new_run_dir(root, arch, name))

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
        # contiguous: a model trained in channels_last saves weights in the default layout, as a CPU model holds them
        sd = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
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
            rows = _read_jsonl(target, cap=1 << 40) + rows  # our own file, of any size
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
        try:
            self._record(ev, model)
        except (OSError, CheckpointError) as e:  # a full disk, a folder made read-only: say so in config.json
            self._failed_write(e, getattr(ev, "epoch", 0))
            raise
        if isinstance(ev, (RunStart, RunEnd, RunFailed)):
            return dataclasses.replace(ev, run_dir=self.run_dir)
        return ev

    def _failed_write(self, e: BaseException, epoch: int) -> None:
        """A write failed: mark the run failed, its final epochs being those the saved weights hold."""
        self.closed = True
        try:
            self.update_config(status="failed", failure={"reason": "error", "epoch": epoch,
                                                         "message": f"could not write the run folder "
                                                                    f"({one_line(e, 200)})"},
                               final={"epochs": self.epochs_done})
        except Exception:  # noqa: BLE001 — the disk may be too full even for config.json
            pass

    def _record(self, ev: Event, model: nn.Module) -> None:
        if isinstance(ev, RunStart):
            self.update_config(fast_cpu=ev.fast_cpu)  # what the CPU fast paths chose, for the record
        elif isinstance(ev, BNSnapshot):
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
                failure["traceback"] = _cut_middle(ev.detail, MAX_TRACEBACK)
            self.update_config(status="stopped" if ev.reason == "stopped" else "failed", failure=failure,
                               final={"epochs": self.epochs_done, "step": ev.step})
            self.closed = True

    def abandon(self, message: str, model: nn.Module | None = None) -> None:
        """The run ended without a final event (Ctrl-C, the consumer left): keep `model`'s weights if
        given and mark the run stopped."""
        if model is not None:
            self.save_weights(model, self.epochs_done)
        self.update_config(status="stopped", failure={"reason": "stopped", "message": message},
                           final={"epochs": self.epochs_done})
        self.closed = True


# -- reading a run --------------------------------------------------------------------------
#
# A run folder may come from anywhere (copied in, crafted), so reading it is defensive: every file is opened
# only if it is a plain regular file (never through a symbolic link, never a FIFO or a device), and read with
# a byte cap; JSON is checked for the types the app relies on; weights are checked for their unpacked size
# (against the model config.json names) before torch materialises them; the model is checked against the
# memory budget (cnnlab.budget) before it is built. Every problem is one CheckpointError sentence.

MAX_CONFIG_BYTES = 256 << 10   # config.json (a failure traceback included: RunWriter keeps at most 64 KB of it)
MAX_RUNS = 500                 # run folders listed (the newest by name: run ids start with their time)
MAX_METRICS_BYTES = 8 << 20    # metrics.jsonl: one short line per epoch (at most 1,000 epochs)
MAX_BN_BYTES = 64 << 20        # BN history read from one run (evenly thinned beyond this)
MAX_BN_LINE_BYTES = 16 << 20   # one BN snapshot
MAX_BN_FILES = 2000
MAX_TEXT = 200                 # characters of a name or label kept from a run folder
STATUSES = ("running", "finished", "stopped", "failed", "interrupted", "unknown")


def _open_regular(path: str) -> tuple[Any, int]:
    """(binary file, size) for `path` if it is a regular file; never follows a symbolic link at the last
    component and never blocks on a FIFO. Raises CheckpointError."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise CheckpointError(msg("msg.store_missing", path=path)) from None
    except OSError as e:
        if os.path.islink(path):
            raise CheckpointError(msg("msg.store_symlink", path=path)) from None
        raise CheckpointError(msg("msg.store_unreadable_os", path=path, why=one_line(e, 120))) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(msg("msg.store_not_regular_file", path=path))
        return os.fdopen(fd, "rb"), int(st.st_size)
    except BaseException:
        os.close(fd)
        raise


def _read_capped(path: str, cap: int) -> bytes:
    f, size = _open_regular(path)
    with f:
        if size > cap:
            raise CheckpointError(msg("msg.store_file_too_big", path=path, amount=fmt_bytes(size), allowed=fmt_bytes(cap)))
        data = f.read(cap + 1)
    if len(data) > cap:  # it grew while we read
        raise CheckpointError(msg("msg.store_file_over_cap", path=path, allowed=fmt_bytes(cap)))
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(text: bytes | str, where: str) -> Any:
    """json.loads without NaN/Infinity and without deep recursion; raises ValueError with a short reason."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _read_jsonl(path: str, cap: int = MAX_METRICS_BYTES) -> list[dict]:
    out = []
    try:
        text = _read_capped(path, cap).decode("utf-8")
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = _parse_json(line, path)
            except ValueError as e:
                raise ValueError(f"line {i}: {one_line(e, 80)}") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {i} is not a JSON object")
            out.append(row)
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(msg("msg.store_corrupt_json", path=path, why=one_line(e, 160))) from None
    return out


def _run_dir_of(path: str) -> str:
    path = os.fspath(path)
    return os.path.dirname(path) if os.path.isfile(path) else path


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _check_config(cfg: Any, path: str) -> dict:
    """The fields the app relies on have the types it expects (CheckpointError naming the field otherwise)."""
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(msg("msg.store_not_a_run_config", path=path, fmt=FORMAT))
    if not _is_int(cfg.get("version")) or cfg["version"] > VERSION:
        raise CheckpointError(msg("msg.store_newer_version", path=path, version=one_line(repr(cfg.get('version')), 40), most=VERSION))
    model = cfg.get("model")
    if not isinstance(model, dict) or "arch" not in model:
        raise CheckpointError(msg("msg.store_no_model", path=path))

    def bad(field_: str, want: str):
        return CheckpointError(msg("msg.store_malformed_field", path=path, field=field_, want=want))

    if not isinstance(model["arch"], str) or not model["arch"] or len(model["arch"]) > MAX_TEXT:
        raise bad("model.arch", "an architecture name")
    if not isinstance(model.get("knobs", {}), dict):
        raise bad("model.knobs", "an object")
    for k in ("in_channels", "num_classes", "resolution"):
        if model.get(k) is not None and not _is_int(model[k]):
            raise bad(f"model.{k}", "an integer")
    for k in ("run_id", "created", "status", "device", "torch"):
        if k in cfg and (not isinstance(cfg[k], str) or len(cfg[k]) > MAX_TEXT):
            raise bad(k, f"a string of at most {MAX_TEXT} characters")
    train = cfg.get("train", {})
    if not isinstance(train, dict):
        raise bad("train", "an object")
    if "epochs" in train and not (_is_int(train["epochs"]) and train["epochs"] >= 0):
        raise bad("train.epochs", "a whole number")
    for k in ("final", "data", "failure"):
        if cfg.get(k) is not None and not isinstance(cfg[k], dict):
            raise bad(k, "an object")
    final = cfg.get("final") or {}
    if "epochs" in final and not _is_int(final["epochs"]):
        raise bad("final.epochs", "a whole number")
    for k in ("test_acc", "train_acc", "wall_s"):
        if final.get(k) is not None and not _is_num(final[k]):
            raise bad(f"final.{k}", "a number")
    if cfg.get("params") is not None and not _is_int(cfg["params"]):
        raise bad("params", "a whole number")
    return cfg


def read_config(run_dir: str) -> dict:
    """config.json of a run, checked to be ours. Raises CheckpointError."""
    run_dir = _run_dir_of(run_dir)
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir):
        raise CheckpointError(msg("msg.store_not_a_folder", path=run_dir))
    if not os.path.lexists(path):
        raise CheckpointError(msg("msg.store_not_a_run", path=run_dir, file=CONFIG))
    raw = _read_capped(path, MAX_CONFIG_BYTES)
    try:
        cfg = _parse_json(raw.decode("utf-8"), path)
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(msg("msg.store_truncated", path=path, why=one_line(e, 160))) from None
    return _check_config(cfg, path)


_METRIC_NUMBERS = ("train_loss", "train_acc", "test_acc", "wall_s", "examples_per_s")


def read_metrics(run_dir: str) -> list[dict]:
    """The epoch_end rows of a run (empty if it has not finished an epoch); every row has an integer
    "epoch" and numbers (or null) for the figures. Raises CheckpointError."""
    path = os.path.join(_run_dir_of(run_dir), METRICS)
    if not os.path.lexists(path):
        return []
    rows = _read_jsonl(path, MAX_METRICS_BYTES)
    for i, row in enumerate(rows, 1):
        if not (_is_int(row.get("epoch")) and row["epoch"] >= 0):
            raise CheckpointError(msg("msg.store_line_no_epoch", path=path, line=i))
        for k in _METRIC_NUMBERS:
            if row.get(k) is not None and not _is_num(row[k]):
                raise CheckpointError(msg("msg.store_line_not_number", path=path, field=k, line=i))
    return rows


_BN_VECTORS = ("gamma", "beta", "running_mean", "running_var", "batch_mean", "batch_var")


def _snapshot(row: dict, where: str) -> BNSnapshot:
    """A BNSnapshot from a JSON row, every field checked (null values, written for NaN, come back as NaN)."""
    if not (_is_int(row.get("epoch")) and _is_int(row.get("step"))) or not isinstance(row.get("layers"), list):
        raise CheckpointError(msg("msg.store_snapshot_malformed", path=where))
    layers = []
    for layer in row["layers"]:
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str) or len(layer["name"]) > MAX_TEXT:
            raise CheckpointError(msg("msg.store_snapshot_no_name", path=where))
        vecs = {}
        for k in _BN_VECTORS:
            v = layer.get(k)
            if not isinstance(v, list) or not all(x is None or _is_num(x) for x in v):
                raise CheckpointError(msg("msg.store_snapshot_not_numbers", path=where, field=k, layer=one_line(repr(layer['name']), 40)))
            vecs[k] = [float("nan") if x is None else float(x) for x in v]
        if len({len(v) for v in vecs.values()}) != 1 or not vecs["gamma"]:
            raise CheckpointError(msg("msg.store_snapshot_lengths", path=where, layer=one_line(repr(layer['name']), 40)))
        layers.append(BNLayerStats(name=layer["name"], **vecs))
    return BNSnapshot(epoch=row["epoch"], step=row["step"], layers=tuple(layers))


def _bn_folder(run_dir: str) -> str | None:
    folder = os.path.join(_run_dir_of(run_dir), BN_DIR)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CheckpointError(msg("msg.store_unreadable_os", path=folder, why=one_line(e, 120))) from None
    if not stat.S_ISDIR(st.st_mode):  # a symbolic link, even to a folder, is refused
        raise CheckpointError(msg("msg.store_not_plain_folder", path=folder))
    return folder


def bn_files(run_dir: str) -> list[str]:
    """The BN history files of a run, in epoch order (empty when it has none). Raises CheckpointError."""
    folder = _bn_folder(run_dir)
    if folder is None:
        return []
    try:
        names = sorted(n for n in os.listdir(folder) if re.fullmatch(r"epoch-\d{1,6}\.jsonl", n))
    except OSError as e:
        raise CheckpointError(msg("msg.store_unreadable_os", path=folder, why=one_line(e, 120))) from None
    if len(names) > MAX_BN_FILES:
        raise CheckpointError(msg("msg.store_too_many_files", path=folder, count=f"{len(names):,}", most=f"{MAX_BN_FILES:,}"))
    return [os.path.join(folder, n) for n in names]


def read_bn_history(run_dir: str, max_bytes: int = MAX_BN_BYTES) -> list[BNSnapshot]:
    """Every BN snapshot of a run, in order — or, when the history is larger than `max_bytes`, an evenly
    thinned selection (every k-th snapshot and the last of each epoch), so memory stays bounded.
    Raises CheckpointError."""
    opened = []
    try:
        for path in bn_files(run_dir):
            opened.append((path, *_open_regular(path)))
        total = sum(size for _, _, size in opened)
        stride = max(1, math.ceil(total / max(1, max_bytes)))
        line_cap = min(MAX_BN_LINE_BYTES, max_bytes)
        out: list[BNSnapshot] = []
        k = 0
        for path, f, _ in opened:
            last_raw, last_used, i = None, True, 0
            while True:
                raw = f.readline(line_cap + 1)
                if not raw:
                    break
                i += 1
                if len(raw) > line_cap:
                    raise CheckpointError(msg("msg.store_line_too_long", path=path, allowed=fmt_bytes(line_cap)))
                if not raw.strip():
                    continue
                keep = k % stride == 0
                k += 1
                last_raw, last_used = raw, keep
                if keep:
                    out.append(_bn_row(raw, path, i))
            if last_raw is not None and not last_used:  # always the last snapshot of each epoch
                out.append(_bn_row(last_raw, path, i))
        return out
    finally:
        for _, f, _ in opened:
            f.close()


def _bn_row(raw: bytes, path: str, i: int) -> BNSnapshot:
    try:
        row = _parse_json(raw.decode("utf-8"), path)
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(msg("msg.store_corrupt_line", path=path, line=i, why=one_line(e, 120))) from None
    if not isinstance(row, dict):
        raise CheckpointError(msg("msg.store_line_not_object", path=path, line=i))
    return _snapshot(row, path)


def load_weights(path: str, max_bytes: int | None = None) -> dict:
    """The saved weights file as a dict with 'state_dict'; only tensors and plain data are loaded.

    Before torch unpacks anything, the archive's entries are added up: a file that would unpack to more than
    `max_bytes` (default: the memory budget) is refused, so a small file of deflated zeros cannot inflate.
    """
    from . import budget

    cap = budget.budget_bytes() if max_bytes is None else int(max_bytes)
    if not os.path.lexists(path):
        raise CheckpointError(msg("msg.store_no_weights_yet", path=path))
    f, size = _open_regular(path)
    with f:
        if size > cap:
            raise CheckpointError(msg("msg.store_weights_too_big", path=path, amount=fmt_bytes(size), allowed=fmt_bytes(cap)))
        try:
            with zipfile.ZipFile(f) as z:
                unpacked = sum(i.file_size for i in z.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise CheckpointError(msg("msg.store_not_torch_archive", path=path, why=one_line(e, 100))) from None
        if unpacked > cap:
            raise CheckpointError(msg("msg.store_unpacks_too_big", path=path, amount=fmt_bytes(unpacked), allowed=fmt_bytes(cap)))
        f.seek(0)
        try:
            obj = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError, RuntimeError (zip archive), EOFError, ...
            raise CheckpointError(msg("msg.store_checkpoint_corrupt", path=path, why=one_line(e, 160))) from None
    if not isinstance(obj, dict) or obj.get("format") != WEIGHTS_FORMAT or not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(msg("msg.store_not_a_checkpoint", path=path, fmt=WEIGHTS_FORMAT))
    if not all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values()):
        raise CheckpointError(msg("msg.store_non_tensors", path=path))
    if not _is_int(obj.get("epoch", 0)):
        raise CheckpointError(msg("msg.store_epoch_not_whole", path=path))
    return obj


@dataclass
class LoadedRun:
    run_dir: str
    config: dict                 # config.json as written
    model_config: Config
    model: nn.Module             # in eval mode, on `device`
    epoch: int                   # the epoch the weights were saved after
    metrics: list[dict] = field(default_factory=list)


def model_config_of(cfg: dict, where: str = CONFIG) -> Config:
    """The validated model Config that a run's config.json names (CheckpointError otherwise)."""
    try:
        return Config.from_dict(cfg["model"])
    except (KnobError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        raise CheckpointError(msg("msg.store_cannot_build", path=where, why=one_line(e, 160))) from None


def load_run(path: str, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a run's model from config.json and load its weights. Raises CheckpointError (one line).

    Order: config.json (checked) → the model it names, checked against the memory budget on the meta device
    (cnnlab.budget) → model.pt, refused if it would unpack to more than that model's weights → the model,
    built on the meta device and given the loaded tensors (no second copy of the weights).
    """
    from . import budget

    run_dir = _run_dir_of(path)
    cfg = read_config(run_dir)
    where = os.path.join(run_dir, CONFIG)
    model_config = model_config_of(cfg, where)
    try:
        fp = budget.check_model(model_config)
    except KnobError as e:
        raise CheckpointError(msg("msg.store_too_large_to_load", path=where, why=one_line(e, 200))) from None
    # the weights file may hold the state_dict plus a little pickle; nothing near twice the model
    saved = load_weights(os.path.join(run_dir, WEIGHTS), max_bytes=min(budget.budget_bytes(),
                                                                        fp.weight_bytes * 9 // 8 + (1 << 20)))
    try:
        with torch.device("meta"):
            model = model_config.build()
        model.load_state_dict(saved["state_dict"], strict=True, assign=True)
        if any(t.is_meta for t in (*model.parameters(), *model.buffers())):  # a buffer not in the state_dict
            model = model_config.build()
            model.load_state_dict(saved["state_dict"], strict=True)
        model.to(device, memory_format=torch.contiguous_format).eval()  # (older files kept channels_last strides)
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise CheckpointError(msg("msg.store_weights_mismatch", path=run_dir, file=CONFIG, why=one_line(e, 160))) from None
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
    status: str                  # running | finished | stopped | failed | interrupted | unreadable
    epochs_done: int
    epochs: int
    test_acc: float | None
    train_acc: float | None
    config: dict
    error: str | None = None     # why the folder is unreadable
    has_weights: bool = False


def _run_info(name: str, d: str, fallback: str) -> RunInfo:
    cfg = read_config(d)
    metrics = read_metrics(d)
    last = metrics[-1] if metrics else {}
    train = cfg.get("train", {})
    status = cfg.get("status", "unknown")
    try:
        has_weights = stat.S_ISREG(os.lstat(os.path.join(d, WEIGHTS)).st_mode)
    except OSError:  # none yet (before the first epoch), or gone meanwhile
        has_weights = False
    return RunInfo(
        run_id=cfg.get("run_id", name), run_dir=d, created=cfg.get("created", fallback),
        arch=cfg["model"]["arch"], knobs=cfg["model"].get("knobs", {}),
        status=status if status in STATUSES else "unknown",
        epochs_done=int(last.get("epoch", 0)), epochs=int(train.get("epochs", 0)),
        test_acc=last.get("test_acc"), train_acc=last.get("train_acc"), config=cfg,
        has_weights=has_weights)


def list_runs(root: str = "checkpoints", limit: int = MAX_RUNS) -> list[RunInfo]:
    """Every run folder under `root` with its config and last figures, newest first (at most `limit`
    folders, the newest by name, so the memory a listing takes is bounded).

    A folder that cannot be used (corrupt or malformed config.json or metrics.jsonl, a symbolic link, a file
    over its size cap, ...) is listed with status 'unreadable' and the reason in `error`; it never hides the
    others. Folders without config.json (not runs, or runs whose config.json has not arrived yet) are skipped, and
    so is a folder listed that is gone by the time it is read (another server deleted it: the store may be a
    folder two servers share, or an eventually consistent bucket mount).
    """
    try:
        names = sorted(os.listdir(root), reverse=True)[:max(0, int(limit))]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise CheckpointError(msg("msg.store_unreadable_os", path=root, why=one_line(e, 120))) from None
    rows = []
    for name in names:
        d = os.path.join(root, name)
        try:
            st = os.lstat(d)
            cpath = os.path.join(d, CONFIG)
            if stat.S_ISLNK(st.st_mode):
                if not os.path.lexists(cpath):
                    continue
                raise CheckpointError(msg("msg.store_run_symlink", path=d))
            if not stat.S_ISDIR(st.st_mode) or not os.path.lexists(cpath):
                continue
            mtime = os.lstat(cpath).st_mtime
        except OSError:
            continue
        except CheckpointError as e:
            mtime, err = st.st_mtime, str(e)
        else:
            err = None
        fallback = _dt.datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")
        if err is None:
            try:
                rows.append(_run_info(name, d, fallback))
                continue
            except CheckpointError as e:
                err = str(e)
            except Exception as e:  # noqa: BLE001 — one bad folder never hides the others
                err = f"{d} cannot be read ({one_line(e, 160, with_type=True)})"
            if not os.path.lexists(cpath):
                continue  # a stale listing: deleted since, not unreadable
        rows.append(RunInfo(run_id=name, run_dir=d, created=fallback, arch="?", knobs={}, status="unreadable",
                            epochs_done=0, epochs=0, test_acc=None, train_acc=None, config={},
                            error=one_line(err, 400)))
    rows.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return rows
