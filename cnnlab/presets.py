"""Training presets for the Train page and for admission control's suggestions (plain data; no streamlit).

CPU presets keep every run to a few minutes on a 2-core machine: LeNet and BN-LeNet on the full data set,
the big networks at a reduced resolution, on a subset, for a few epochs. What each one takes and reaches is
*measured*, not written by hand: `bench/bench_presets.py` trains every CPU preset end to end and writes
`presets_measured.json` next to this file (wall time, test accuracy, machine, date). The labels the Train page
shows ("≈ 40 s on a quiet machine · test acc ≥ 0.75") are computed from it by cnnlab.runs.admission
(`preset_label`): the time is the one estimate every page shows (this table, scaled to the load measured now;
"on a quiet machine" while nothing says the machine is busy), the accuracy the measured one rounded down.
The book presets are d2l's own recipe (full data, the book's resolution, lr and batch size, 10 epochs): for a GPU.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import i18n
from .registry import arch_names, get_spec


@dataclass(frozen=True)
class Preset:
    id: str
    title_en: str
    title_zh: str
    arch: str
    knobs: Mapping[str, Any] = field(default_factory=dict)
    resolution: int | None = None     # None: the book's training resolution
    epochs: int = 10
    lr: float | None = None           # None: the book's lr for the model and knobs
    batch_size: int | None = None     # None: the book's
    train_size: int = 60000
    test_size: int = 10000
    for_cpu: bool = True
    optimizer: str = "sgd"            # the book's; two CPU presets use Adam to learn within their short budget

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def values(self) -> dict:
        """Every training setting of this preset, with the book's recipe filled in (ArchSpec.recipe)."""
        recipe = get_spec(self.arch).recipe(self.knobs)
        return {"arch": self.arch, "knobs": dict(recipe.knobs),
                "resolution": self.resolution or recipe.resolution,
                "epochs": self.epochs, "lr": self.lr if self.lr is not None else recipe.lr,
                "batch_size": self.batch_size or recipe.batch_size,
                "train_size": self.train_size, "test_size": self.test_size, "optimizer": self.optimizer}


CPU_PRESETS = (
    Preset("lenet", "LeNet · full data · 10 epochs", "LeNet · 全部数据 · 10 轮", "lenet"),
    Preset("bn_lenet", "BN-LeNet (scratch BatchNorm) · full data · 10 epochs",
           "BN-LeNet（从零实现的批量规范化）· 全部数据 · 10 轮", "lenet", {"batchnorm": "scratch"}),
    # The quick demo is the book's BN-LeNet (7.5) for one epoch on all the data: LeNet with sigmoids at the
    # book's lr 0.9 stays at chance for its first few hundred steps (it ended at test acc 0.100 on 5,000
    # examples × 2 epochs), while batch norm learns within one epoch.
    Preset("lenet_quick", "BN-LeNet · full data · 1 epoch (quick demo)", "BN-LeNet · 全部数据 · 1 轮（快速演示）",
           "lenet", {"batchnorm": "scratch"}, epochs=1, test_size=2000),
    # AlexNet and NiN with the book's plain SGD stay at chance for longer than a CPU budget on 10,000 examples
    # (measured: test acc 0.13 and 0.10 after 3 epochs; AlexNet at lr 0.05: 0.38); Adam (lr 0.001) gets them
    # learning within the same 3 epochs. The models are the book's.
    Preset("alexnet_cpu", "AlexNet · 68×68, dense 1024 · 10k examples · 3 epochs · Adam",
           "AlexNet · 68×68，全连接 1024 · 1 万样本 · 3 轮 · Adam", "alexnet", {"fc_width": 1024}, 68, 3,
           lr=0.001, train_size=10000, test_size=2000, optimizer="adam"),
    Preset("vgg_cpu", "VGG-11 · ratio 8, dense 512 · 32×32 · 20k examples · 5 epochs",
           "VGG-11 · ratio 8，全连接 512 · 32×32 · 2 万样本 · 5 轮", "vgg", {"ratio": 8, "fc_width": 512}, 32, 5,
           train_size=20000, test_size=2000),
    Preset("nin_cpu", "NiN · 68×68 · 10k examples · 3 epochs · Adam", "NiN · 68×68 · 1 万样本 · 3 轮 · Adam", "nin", {},
           68, 3, lr=0.001, batch_size=128, train_size=10000, test_size=2000, optimizer="adam"),
    Preset("googlenet_cpu", "GoogLeNet · ratio 4 · 48×48 · 20k examples · 3 epochs",
           "GoogLeNet · ratio 4 · 48×48 · 2 万样本 · 3 轮", "googlenet", {"ratio": 4}, 48, 3,
           train_size=20000, test_size=2000),
    # ResNet and DenseNet at the book's lr (0.05 / 0.1, batch 256) reach train acc 0.84 in 3 epochs of 40 steps
    # but test acc 0.29 / 0.33 (the batch-norm running statistics trail weights that move that fast); a lower
    # lr (ResNet) or more, smaller steps (DenseNet) give test acc 0.70 / 0.75 in the same time.
    Preset("resnet_cpu", "ResNet-18 · 32×32 · 10k examples · 3 epochs · lr 0.01",
           "ResNet-18 · 32×32 · 1 万样本 · 3 轮 · 学习率 0.01", "resnet", {}, 32, 3, lr=0.01, train_size=10000,
           test_size=2000),
    Preset("densenet_cpu", "DenseNet · 32×32 · 10k examples · 3 epochs · batch 64",
           "DenseNet · 32×32 · 1 万样本 · 3 轮 · 批量 64", "densenet", {}, 32, 3, lr=0.05, batch_size=64,
           train_size=10000, test_size=2000),
    Preset("mobilenet_v2_cpu", "MobileNet V2 · α 0.5 · 32×32 · 10k examples · 3 epochs",
           "MobileNet V2 · α 0.5 · 32×32 · 1 万样本 · 3 轮", "mobilenet_v2", {"alpha": 0.5}, 32, 3,
           train_size=10000, test_size=2000),
)

BOOK_PRESETS = tuple(
    Preset(f"{a}_book", f"{get_spec(a).title_en} · the book's recipe (GPU)", f"{get_spec(a).title_zh} · 书中的设置（GPU）",
           a, dict(get_spec(a).training.knobs), for_cpu=False)
    for a in arch_names())

PRESETS = {p.id: p for p in CPU_PRESETS + BOOK_PRESETS}
i18n.TITLES.update({p.title_en: p.title_zh for p in PRESETS.values()})  # a preset named inside a sentence

MEASURED_FILE = os.path.join(os.path.dirname(__file__), "presets_measured.json")


def measured(path: str = MEASURED_FILE) -> dict:
    """bench/bench_presets.py's figures: {"machine": ..., "date": ..., "presets": {id: {"wall_s", "test_acc", ...}}}
    ({} when the file is missing or unreadable: the labels then say nothing about time)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("presets"), dict) else {}


def stated_accuracy(acc: float) -> float:
    """The accuracy a preset promises: its measured test accuracy rounded down to 0.05."""
    return math.floor(acc * 20 + 1e-9) / 20


def train_config(p: Preset, *, seed: int = 0, device: str = "cpu"):
    """The engine's TrainConfig for this preset, as the Train page starts it."""
    from .engine import TrainConfig
    from .measure import fitting

    v = p.values()
    return TrainConfig(model=fitting(v["arch"], v["knobs"], resolution=v["resolution"]), epochs=v["epochs"],
                       lr=v["lr"], batch_size=v["batch_size"], optimizer=v["optimizer"],
                       train_size=None if v["train_size"] >= 60000 else v["train_size"],
                       test_size=None if v["test_size"] >= 10000 else v["test_size"], device=device, seed=seed)


def for_device(cuda: bool) -> list[Preset]:
    """CPU presets first on a CPU machine, the book's recipes first with a GPU."""
    return list(BOOK_PRESETS + CPU_PRESETS) if cuda else list(CPU_PRESETS + BOOK_PRESETS)
