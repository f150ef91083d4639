"""The engine's contract: frozen event dataclasses that `engine.fit()` / `engine.run()` yield.

The engine never prints or plots; the CLI prints these, the app draws them, `to_dict()` is the
JSON line the CLI writes with --json (``{"event": "epoch_end", ...}``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict:
        d = {"event": self.kind}
        d.update(asdict(self))
        return d


@dataclass(frozen=True)
class RunStart(Event):
    """First event of a run: what is about to train."""
    kind: ClassVar[str] = "run_start"
    arch: str
    knobs: dict
    device: str
    epochs: int
    steps_per_epoch: int
    train_size: int
    test_size: int
    lr: float
    batch_size: int
    optimizer: str
    params: int
    run_dir: str | None = None
    amp: str = "off"          # the autocast dtype the steps run in: bf16 | fp16 | off
    device_note: str = ""     # why "auto" chose the CPU (the GPU that is not usable, and why); "" otherwise
    fast_cpu: dict = field(default_factory=dict)  # what cnnlab.cpu_fast chose (swapped modules, layout)


@dataclass(frozen=True)
class StepEnd(Event):
    """Every `log_every` steps: the mean loss/accuracy over those steps (read back from the device once)."""
    kind: ClassVar[str] = "step_end"
    step: int            # global step, 1-based
    total_steps: int
    epoch: int           # 1-based
    loss: float
    acc: float
    examples_per_s: float
    eta_s: float
    examples: int = 0    # training examples the means cover (0: not recorded, runs written before it was)


@dataclass(frozen=True)
class Compiling(Event):
    """torch.compile at work: `done` False before the first compiled step (which can take minutes with no
    other event), True after it with the seconds it took (excluded from examples/s and the ETA)."""
    kind: ClassVar[str] = "compiling"
    step: int
    backend: str
    mode: str = ""
    done: bool = False
    wall_s: float = 0.0


@dataclass(frozen=True)
class EpochTrained(Event):
    """An epoch's training steps are done and evaluation is next: the run folder saves the weights now,
    so an evaluation that fails (out of memory) does not lose the epoch."""
    kind: ClassVar[str] = "epoch_trained"
    epoch: int
    step: int


@dataclass(frozen=True)
class EpochEnd(Event):
    kind: ClassVar[str] = "epoch_end"
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    test_acc: float
    wall_s: float         # since the run started
    examples_per_s: float  # training examples/s in this epoch
    eval_batch_size: int = 0  # the batch the test accuracy was computed with (halved after an out-of-memory)


@dataclass(frozen=True)
class BNLayerStats:
    name: str             # qualified module name, e.g. "1" or "features.0.bn1"
    gamma: list[float]
    beta: list[float]
    running_mean: list[float]
    running_var: list[float]
    batch_mean: list[float]  # the last training batch's statistics
    batch_var: list[float]


@dataclass(frozen=True)
class BNSnapshot(Event):
    kind: ClassVar[str] = "bn_snapshot"
    epoch: int
    step: int
    layers: tuple[BNLayerStats, ...]

    @classmethod
    def from_dict(cls, d: dict) -> "BNSnapshot":
        names = {f.name for f in fields(BNLayerStats)}
        return cls(epoch=d["epoch"], step=d["step"],
                   layers=tuple(BNLayerStats(**{k: v for k, v in layer.items() if k in names}) for layer in d["layers"]))


@dataclass(frozen=True)
class RunEnd(Event):
    kind: ClassVar[str] = "run_end"
    run_dir: str | None
    test_acc: float
    train_acc: float
    epochs: int
    wall_s: float


@dataclass(frozen=True)
class RunFailed(Event):
    """reason: 'stopped' | 'out_of_memory' | 'nan_loss' | 'error' | ...; `message` is one sentence for people,
    `detail` the full traceback when the run ended on an exception ("" otherwise)."""
    kind: ClassVar[str] = "run_failed"
    reason: str
    message: str
    run_dir: str | None = None
    epoch: int = 0
    step: int = 0
    detail: str = ""
