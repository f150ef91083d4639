"""Computations behind the BatchNorm and Runs pages (torch in, plain data out; no streamlit here).

scratch-vs-nn BatchNorm equality, uploaded-image checks and conversion, predictions, feature maps of a conv
layer, confusion matrix.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from torch import nn

from ..i18n import msg
from ..layers import BatchNorm

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
UPLOAD_TYPES = ("png", "jpg", "jpeg", "bmp", "gif", "webp")


class ImageError(ValueError):
    """An uploaded file that cannot be used; the message is one line for people."""


# -- BatchNorm: the book's scratch layer against torch's -------------------------------------------------

def bn_equivalence(channels: int = 8, batch: int = 16, size: int = 6, steps: int = 3, seed: int = 0) -> list[dict]:
    """Run cnnlab.layers.BatchNorm and nn.BatchNorm2d side by side; return the max |difference| per quantity.

    Same γ, β (random), same momentum (the book's 0.9 keeps 90 % of the old statistic = torch's 0.1), `steps`
    training batches, then one batch in eval mode. Rows: {mode, quantity, max_abs_diff}.
    """
    g = torch.Generator().manual_seed(seed)
    scratch = BatchNorm(channels, num_dims=4, eps=1e-5, momentum=0.9)
    ref = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        gamma, beta = torch.rand(channels, generator=g) + 0.5, torch.randn(channels, generator=g)
        scratch.gamma.copy_(gamma)
        scratch.beta.copy_(beta)
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)
    rows = []

    def diff(a, b):
        return float((a.detach() - b.detach()).abs().max())

    scratch.train()
    ref.train()
    worst = {"output": 0.0, "running_mean": 0.0, "running_var": 0.0, "grad γ": 0.0, "grad β": 0.0}
    for _ in range(max(1, steps)):
        X = torch.randn(batch, channels, size, size, generator=g) * 3 + 1
        ys, yr = scratch(X), ref(X)
        w = torch.randn(ys.shape, generator=g)
        scratch.zero_grad()
        ref.zero_grad()
        (ys * w).sum().backward()
        (yr * w).sum().backward()
        worst["output"] = max(worst["output"], diff(ys, yr))
        worst["running_mean"] = max(worst["running_mean"], diff(scratch.running_mean, ref.running_mean))
        worst["running_var"] = max(worst["running_var"], diff(scratch.running_var, ref.running_var))
        worst["grad γ"] = max(worst["grad γ"], diff(scratch.gamma.grad, ref.weight.grad))
        worst["grad β"] = max(worst["grad β"], diff(scratch.beta.grad, ref.bias.grad))
    rows += [{"mode": "train", "quantity": k, "max_abs_diff": v} for k, v in worst.items()]
    scratch.eval()
    ref.eval()
    with torch.no_grad():
        X = torch.randn(batch, channels, size, size, generator=g) * 3 + 1
        rows.append({"mode": "eval", "quantity": "output", "max_abs_diff": diff(scratch(X), ref(X))})
    return rows


# -- uploaded images ----------------------------------------------------------------------------------

_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _bit_depth(data: bytes, fmt: str, mode: str) -> int:
    """The bit depth of a grey image with more than 8 bits: a PNG's own (byte 24, in its IHDR chunk), else 16."""
    if fmt == "PNG" and len(data) > 24 and data[12:16] == b"IHDR" and data[24] in (8, 16):
        return max(8, int(data[24]))
    return 16


@dataclass
class Prepared:
    tensor: torch.Tensor    # (1, C, H, W) float32 in [0, 1], what the model sees
    preview: list           # H×W nested list for drawing
    original_size: tuple[int, int]
    format: str


def prepare_upload(data: bytes, *, size: int, in_channels: int = 1, invert: bool | None = None,
                   max_bytes: int = MAX_UPLOAD_BYTES) -> Prepared:
    """Check an uploaded file (type, byte size, pixel size) and convert it to the model's input.

    Grayscale (or RGB for 3-channel models), resized to size×size with antialiasing, scaled to [0, 1].
    Fashion-MNIST shows light clothes on a dark background; `invert=None` inverts when the picture is mostly
    light (a photo on white), True/False force it. Raises ImageError with one readable line.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError(msg("msg.img_empty"))
    if len(data) > max_bytes:
        raise ImageError(msg("msg.img_big", mb=f"{len(data) / 1e6:.1f}", limit=f"{max_bytes / 1e6:.0f}"))
    try:
        with Image.open(io.BytesIO(data)) as probe_img:
            fmt = probe_img.format or "?"
            w, h = probe_img.size
            probe_img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageError(msg("msg.img_not")) from None
    if fmt not in IMAGE_FORMATS:
        raise ImageError(msg("msg.img_format", fmt=fmt))
    if w < 1 or h < 1 or w * h > MAX_UPLOAD_PIXELS:
        raise ImageError(msg("msg.img_pixels", w=w, h=h, most=f"{MAX_UPLOAD_PIXELS:,}"))
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            if img.mode in _WIDE_MODES:  # 16-bit (or 32-bit) grey: scale by the real bit depth, not clip at 255
                top = (1 << _bit_depth(data, fmt, img.mode)) - 1
                img = img.convert("I").point(lambda v: v * (255.0 / top)).convert("L")
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(bg, img)
            img = img.convert("RGB" if in_channels == 3 else "L")
            img = ImageOps.pad(img, (max(img.size),) * 2, color=(255, 255, 255) if in_channels == 3 else 255)
            img = img.resize((size, size), Image.Resampling.LANCZOS)
            x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float().div_(255.0)
    except (OSError, ValueError) as e:
        raise ImageError(msg("msg.img_decode", why=e)) from None
    c = 3 if in_channels == 3 else 1
    x = x.view(size, size, c).permute(2, 0, 1).contiguous()
    if invert is None:
        invert = float(x.mean()) > 0.5
    if invert:
        x = 1.0 - x
    if in_channels != c:
        x = x[:1].expand(in_channels, -1, -1).contiguous()
    return Prepared(tensor=x.unsqueeze(0), preview=x.mean(0).tolist(), original_size=(w, h), format=fmt)


# -- inspecting a trained model --------------------------------------------------------------------------

@torch.inference_mode()
def predict_proba(model: nn.Module, X: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Class probabilities for X, `batch_size` samples at a time (bounds the activations in memory)."""
    model.eval()
    dev = next(model.parameters()).device
    return torch.cat([torch.softmax(model(X[i:i + batch_size].to(dev)).float(), dim=1).cpu()
                      for i in range(0, X.shape[0], max(1, int(batch_size)))])


def conv_layers(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


@torch.inference_mode()
def feature_maps(model: nn.Module, layer: str, X: torch.Tensor) -> torch.Tensor:
    """The output (C, H, W) of the named module for one input X (1, C, H, W)."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise KeyError(f"no layer named {layer!r}")
    out = {}
    handle = modules[layer].register_forward_hook(lambda m, i, o: out.__setitem__("y", o.detach()))
    try:
        model.eval()
        model(X.to(next(model.parameters()).device))
    finally:
        handle.remove()
    return out["y"][0].float().cpu()


@torch.inference_mode()
def confusion_matrix(model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_classes: int,
                     batch_size: int = 512) -> tuple[list[list[int]], float]:
    """Counts[true][predicted] and the accuracy on (X, y)."""
    model.eval()
    dev = next(model.parameters()).device
    m = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for i in range(0, X.shape[0], batch_size):
        pred = model(X[i:i + batch_size].to(dev)).argmax(dim=1).cpu()
        yt = y[i:i + batch_size].cpu()
        m += torch.bincount(yt * num_classes + pred, minlength=num_classes * num_classes).view(num_classes, -1)
    acc = float(m.diag().sum()) / max(1, int(m.sum()))
    return m.tolist(), acc
