"""Training presets for the Train page and for admission control's suggestions (plain data; no streamlit).

CPU presets keep every run to a few minutes on a 2-core machine: LeNet and BN-LeNet on the full data set,
the big networks at a reduced resolution, on a subset, for a few epochs. Throughput measured with
cnnlab.engine on 2 cores (examples/s): LeNet 8100 (28²), AlexNet fc 1024 410 (68²), VGG ratio 8 3100 (32²),
NiN 360 (68²), GoogLeNet ratio 4 1500 (48²), ResNet-18 430 (32²), DenseNet 715 (32²), MobileNets 650–830 (32²).
The book presets are d2l's own recipe (full data, the book's resolution, lr and batch size, 10 epochs): for a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

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

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def values(self) -> dict:
        """Every training setting of this preset, with the book's recipe filled in (ArchSpec.recipe)."""
        recipe = get_spec(self.arch).recipe(self.knobs)
        return {"arch": self.arch, "knobs": dict(recipe.knobs),
                "resolution": self.resolution or recipe.resolution,
                "epochs": self.epochs, "lr": self.lr if self.lr is not None else recipe.lr,
                "batch_size": self.batch_size or recipe.batch_size,
                "train_size": self.train_size, "test_size": self.test_size}


CPU_PRESETS = (
    Preset("lenet", "LeNet · full data · 10 epochs (≈2 min)", "LeNet · 全部数据 · 10 轮（约 2 分钟）", "lenet"),
    Preset("bn_lenet", "BN-LeNet (scratch BatchNorm) · full data · 10 epochs",
           "BN-LeNet（从零实现的批量规范化）· 全部数据 · 10 轮", "lenet", {"batchnorm": "scratch"}),
    Preset("lenet_quick", "LeNet · 5,000 examples · 2 epochs (quick demo)", "LeNet · 5000 个样本 · 2 轮（快速演示）",
           "lenet", epochs=2, train_size=5000, test_size=1000),
    Preset("alexnet_cpu", "AlexNet · 68×68, dense 1024 · 10k examples · 3 epochs",
           "AlexNet · 68×68，全连接 1024 · 1 万样本 · 3 轮", "alexnet", {"fc_width": 1024}, 68, 3,
           train_size=10000, test_size=2000),
    Preset("vgg_cpu", "VGG-11 · ratio 8, dense 512 · 32×32 · 20k examples · 5 epochs",
           "VGG-11 · ratio 8，全连接 512 · 32×32 · 2 万样本 · 5 轮", "vgg", {"ratio": 8, "fc_width": 512}, 32, 5,
           train_size=20000, test_size=2000),
    Preset("nin_cpu", "NiN · 68×68 · 10k examples · 3 epochs", "NiN · 68×68 · 1 万样本 · 3 轮", "nin", {}, 68, 3,
           train_size=10000, test_size=2000),
    Preset("googlenet_cpu", "GoogLeNet · ratio 4 · 48×48 · 20k examples · 3 epochs",
           "GoogLeNet · ratio 4 · 48×48 · 2 万样本 · 3 轮", "googlenet", {"ratio": 4}, 48, 3,
           train_size=20000, test_size=2000),
    Preset("resnet_cpu", "ResNet-18 · 32×32 · 10k examples · 3 epochs", "ResNet-18 · 32×32 · 1 万样本 · 3 轮",
           "resnet", {}, 32, 3, train_size=10000, test_size=2000),
    Preset("densenet_cpu", "DenseNet · 32×32 · 10k examples · 3 epochs", "DenseNet · 32×32 · 1 万样本 · 3 轮",
           "densenet", {}, 32, 3, train_size=10000, test_size=2000),
    Preset("mobilenet_v2_cpu", "MobileNet V2 · α 0.5 · 32×32 · 10k examples · 3 epochs",
           "MobileNet V2 · α 0.5 · 32×32 · 1 万样本 · 3 轮", "mobilenet_v2", {"alpha": 0.5}, 32, 3,
           train_size=10000, test_size=2000),
)

BOOK_PRESETS = tuple(
    Preset(f"{a}_book", f"{get_spec(a).title_en} · the book's recipe (GPU)", f"{get_spec(a).title_zh} · 书中的设置（GPU）",
           a, dict(get_spec(a).training.knobs), for_cpu=False)
    for a in arch_names())

PRESETS = {p.id: p for p in CPU_PRESETS + BOOK_PRESETS}


def for_device(cuda: bool) -> list[Preset]:
    """CPU presets first on a CPU machine, the book's recipes first with a GPU."""
    return list(BOOK_PRESETS + CPU_PRESETS) if cuda else list(CPU_PRESETS + BOOK_PRESETS)
