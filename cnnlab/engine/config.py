"""The run configuration: :class:`TrainConfig`, every value checked like a model knob."""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..device import AMP_MODES, DEVICES
from ..i18n import renamed
from ..measure import fitting
from ..registry import Config, Knob, KnobError, get_spec

OPTIMIZERS = ("sgd", "adam")

# Checked like model knobs, so a bad value gives the same one-line message in the app and the CLI.
# The Train page's widgets read their ranges from these (one place for each range).
EPOCHS = Knob("epochs", "int", 10, "number of epochs", "迭代周期数", lo=1, hi=1000)
LR = Knob("lr", "float", 0.1, "learning rate", "学习率", lo=0.0, hi=1e38, lo_open=True)
BATCH = Knob("batch_size", "int", 256, "batch size", "批量大小", lo=1, hi=65536)
OPT = Knob("optimizer", "choice", "sgd", "optimizer", "优化器", choices=OPTIMIZERS)
WD = Knob("weight_decay", "float", 0.0, "weight decay (L2)", "权重衰减", lo=0.0, hi=10.0)
SIZE = Knob("size", "int", 60000, "number of examples", "样本数", lo=1, hi=10_000_000)
EVERY = Knob("every", "int", 20, "steps between reports", "报告间隔（步）", lo=1, hi=1_000_000)
THREADS = Knob("threads", "int", 1, "CPU threads", "CPU 线程数", lo=1, hi=256)
SEED = Knob("seed", "int", 0, "random seed", "随机种子", lo=0, hi=2**53 - 1)  # the browser's largest exact integer
AMP = Knob("amp", "choice", "auto", "mixed precision (autocast dtype)", "混合精度", choices=AMP_MODES)


def _check(knob: Knob, name: str, value: Any) -> Any:
    try:
        return knob.validate(value)
    except KnobError as e:
        raise KnobError(renamed(e, knob.name, name)) from None


def fast_cpu_default() -> bool:
    """CPU fast paths (cnnlab.cpu_fast) are on unless $CNNLAB_FAST_CPU is 0/off/false."""
    return os.environ.get("CNNLAB_FAST_CPU", "1").strip().lower() not in ("0", "off", "false", "no")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs. `model` is a resolved registry Config, or an architecture name.

    With an architecture name the book's recipe (``ArchSpec.recipe``: e.g. VGG's ratio 4, the book's
    training resolution) gives the defaults; `knobs` and `resolution` override them. `lr` and
    `batch_size` left as None take the recipe's values for the model and knobs.
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
    eval_batch_size: int | None = None  # None: 256 on CPU; on CUDA sized from the training batch and memory
    compile: bool = False           # torch.compile the model (pays off on long GPU runs only)
    amp: str = "auto"               # auto | bf16 | fp16 | off (auto: bf16 on sm>=8.0, fp16 on 7.x, off below/CPU)
    init: str = "xavier"            # xavier (d2l's train_ch6) | keep (the weights as built or loaded)
    threads: int | None = None      # CPU intra-op threads (None: see cnnlab.device.cpu_threads)
    fast_cpu: bool | None = None    # cnnlab.cpu_fast on CPU (None: $CNNLAB_FAST_CPU, default on)

    # -- resolving ------------------------------------------------------------------
    def model_config(self) -> Config:
        """The validated model Config, measured to fit (raises KnobError: InputTooSmall, LimitError among them)."""
        if isinstance(self.model, Config):
            return self.model
        spec = get_spec(self.model)
        recipe = spec.recipe({k: spec.knob(k).validate(v) for k, v in dict(self.knobs).items()})
        res = self.resolution if self.resolution is not None else recipe.resolution
        return fitting(self.model, recipe.knobs, in_channels=self.in_channels, num_classes=self.num_classes,
                       resolution=res)

    def resolved(self) -> "TrainConfig":
        """A copy with the model Config, lr and batch size filled in, every value checked (raises KnobError)."""
        cfg = self.model_config()
        recipe = cfg.spec.recipe(cfg.knobs)
        lr = recipe.lr if self.lr is None else self.lr
        if self.optimizer == "adam" and self.lr is None:
            lr = 0.001  # the d2lzh notes train with Adam at 1e-3; the book's SGD rates would diverge
        if isinstance(lr, float) and not math.isfinite(lr):
            raise KnobError(f"lr must be a positive finite number, got {lr}")
        out = dataclasses.replace(
            self, model=cfg, knobs={}, resolution=cfg.resolution, in_channels=cfg.in_channels,
            num_classes=cfg.num_classes,
            epochs=_check(EPOCHS, "epochs", self.epochs),
            lr=_check(LR, "lr", lr),
            batch_size=_check(BATCH, "batch_size", recipe.batch_size if self.batch_size is None
                              else self.batch_size),
            optimizer=_check(OPT, "optimizer", self.optimizer),
            weight_decay=_check(WD, "weight_decay", self.weight_decay),
            train_size=None if self.train_size is None else _check(SIZE, "train_size", self.train_size),
            test_size=None if self.test_size is None else _check(SIZE, "test_size", self.test_size),
            seed=_check(SEED, "seed", self.seed),
            log_every=_check(EVERY, "log_every", self.log_every),
            bn_every=_check(EVERY, "bn_every", self.bn_every),
            eval_batch_size=None if self.eval_batch_size is None
            else _check(BATCH, "eval_batch_size", self.eval_batch_size),
            fast_cpu=fast_cpu_default() if self.fast_cpu is None else bool(self.fast_cpu),
            amp=_check(AMP, "amp", self.amp),
        )
        if self.threads is not None:
            _check(THREADS, "threads", self.threads)
        dev = str(self.device)
        if dev not in DEVICES and not (dev.startswith("cuda:") and dev[5:].isascii() and dev[5:].isdigit()):
            raise KnobError(f"device must be one of auto | cpu | cuda | cuda:N, got {dev!r}")
        if self.init not in ("xavier", "keep"):
            raise KnobError(f"init must be one of xavier | keep, got {self.init!r}")
        return out

    def hyper(self) -> dict:
        """The hyper-parameters as plain JSON (config.json's "train")."""
        return {k: getattr(self, k) for k in ("epochs", "lr", "batch_size", "optimizer", "weight_decay",
                                             "train_size", "test_size", "device", "seed", "log_every",
                                             "bn_every", "eval_batch_size", "compile", "init", "threads",
                                             "fast_cpu", "amp")}
