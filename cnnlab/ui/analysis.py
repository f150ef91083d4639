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
# Every size is bounded before the work it costs (DESIGN rule 9): the byte size, then the header's sides and
# pixels, then the bytes the decoder will allocate (by format and mode); the decoded picture is then converted,
# placed on its white square and box-reduced to under twice the model's input a band of rows at a time, so the
# full-size square is never made. An upload costs at most about MAX_DECODE_BYTES plus a few MB, whatever its
# aspect ratio (a 141-byte 60000×1 PNG once asked for a 60000×60000 square).

MAX_UPLOAD_SIDE = 4096              # pixels, either side, read from the header before decoding
MAX_DECODE_BYTES = 32 << 20         # what decoding one upload may allocate (a 3840×2160 screenshot: 31.6 MB)
STRIP_PIXELS = 1 << 18              # converted and reduced this many pixels at a time (a few MB of work space)
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _limit_png_text() -> None:
    """PIL keeps up to 64 MB of decompressed PNG text chunks per image; a picture needs none of it."""
    from PIL import PngImagePlugin

    PngImagePlugin.MAX_TEXT_MEMORY = min(PngImagePlugin.MAX_TEXT_MEMORY, 4 << 20)


def _bit_depth(data: bytes, fmt: str, mode: str) -> int:
    """The bit depth of a grey image with more than 8 bits: a PNG's own (byte 24, in its IHDR chunk), else 16."""
    if fmt == "PNG" and len(data) > 24 and data[12:16] == b"IHDR" and data[24] in (8, 16):
        return max(8, int(data[24]))
    return 16


def _sniff_format(data: bytes) -> str | None:
    """The format PIL would take `data` for, from its first bytes only (nothing is opened or decoded)."""
    from PIL import Image

    Image.init()
    for fid in Image.ID:
        accept = Image.OPEN[fid][1]
        try:
            if accept is not None and accept(data[:64]):
                return fid
        except Exception:  # noqa: BLE001 — a plugin's check on odd bytes
            continue
    return None


def _decode_bytes(img, fmt: str, source: tuple[int, int]) -> int:
    """What decoding `img` (opened, not loaded; after any draft; `source`: its size in the file) will allocate,
    by format and mode."""
    w, h = img.size
    px = w * h
    bpp = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4  # PIL's own storage
    need = px * bpp
    if fmt == "WEBP":  # libwebp's canvas and previous frame, and the frame's bytes handed to PIL: 4 bytes each
        need += 3 * px * 4
    elif fmt == "BMP" and img.info.get("compression") in (1, 2):  # PIL's RLE decoder builds the bytes in Python
        need += 2 * px * bpp
    elif fmt == "JPEG" and ("progressive" in img.info or "progression" in img.info):
        # a progressive JPEG keeps every DCT coefficient of the full-size picture (2 bytes each) while decoding
        sw, sh = source
        layers = getattr(img, "layer", None) or [(0, 1, 1, 0)] * len(img.getbands())
        hmax = max(ly[1] for ly in layers) or 1
        vmax = max(ly[2] for ly in layers) or 1
        need += sum(-(-sw * ly[1] // hmax // 8) * -(-sh * ly[2] // vmax // 8) * 128 for ly in layers)
    return need


def _exif_method(img):
    """The transpose that undoes the picture's EXIF orientation (ImageOps.exif_transpose's table), or None."""
    from PIL import Image

    try:
        orientation = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 — a damaged EXIF block only loses the orientation
        return None
    T = Image.Transpose
    return {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_270,
            7: T.TRANSVERSE, 8: T.ROTATE_90}.get(orientation)


def _convert(img, out_mode: str, top: int):
    """One strip in the model's colours: 16-bit grey scaled by its depth, transparency over white."""
    from PIL import Image

    if img.mode in _WIDE_MODES:  # 16-bit (or 32-bit) grey: scale by the real bit depth, not clip at 255
        img = img.convert("I").point(lambda v: v * (255.0 / top)).convert("L")
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert(out_mode)


def _square(img, out_mode: str, top: int, size: int):
    """The picture centred on a white square of its longer side m, as ImageOps.pad places it, box-reduced by the
    whole factor k = m // size (1 when m < 2·size): returns that square and m / k, the side it stands for (its last
    row and column may hold fewer than k pixels).

    Built a band of rows at a time (about STRIP_PIXELS of the square: a few MB), so neither the square nor a
    converted copy of the picture is ever held at full size; rows of the square the picture does not reach are
    never computed (they are white)."""
    from PIL import Image

    w, h = img.size
    m = max(w, h)
    k = max(1, m // size)
    fill = (255, 255, 255) if out_mode == "RGB" else 255
    x0, y0 = round((m - w) * 0.5), round((m - h) * 0.5)  # ImageOps.pad's centring (round half to even)
    small = Image.new(out_mode, (-(-m // k),) * 2, fill)
    rows = max(k, STRIP_PIXELS // m // k * k)  # a band: whole boxes of k rows
    y = y0 // k * k
    while y < y0 + h:
        band = Image.new(out_mode, (m, min(rows, m - y)), fill)
        first, end = max(y, y0), min(y + rows, y0 + h)
        band.paste(_convert(img.crop((0, first - y0, w, end - y0)), out_mode, top), (x0, first - y))
        small.paste(band.reduce(k) if k > 1 else band, (0, y // k))
        y += rows
    return small, m / k


@dataclass
class Prepared:
    tensor: torch.Tensor    # (1, C, H, W) float32 in [0, 1], what the model sees
    preview: list           # H×W nested list for drawing
    original_size: tuple[int, int]
    format: str


def prepare_upload(data: bytes, *, size: int, in_channels: int = 1, invert: bool | None = None,
                   max_bytes: int = MAX_UPLOAD_BYTES) -> Prepared:
    """Check an uploaded file (type, byte size, sides, pixels, decoding cost) and convert it to the model's input.

    Grayscale (or RGB for 3-channel models), padded to a square with white and resized to size×size with
    antialiasing, scaled to [0, 1]. Fashion-MNIST shows light clothes on a dark background; `invert=None` inverts
    when the picture is mostly light (a photo on white), True/False force it. Raises ImageError with one
    readable line. Memory: at most about MAX_DECODE_BYTES plus a few MB (and the size×size result).
    """
    from PIL import Image, UnidentifiedImageError

    _limit_png_text()
    if not data:
        raise ImageError(msg("msg.img_empty"))
    if len(data) > max_bytes:
        raise ImageError(msg("msg.img_big", mb=f"{len(data) / 1e6:.1f}", limit=f"{max_bytes / 1e6:.0f}"))
    size = max(1, int(size))
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as probe_img:
            fmt = probe_img.format or "?"
            w, h = probe_img.size
            probe_img.verify()
    except Image.DecompressionBombError:
        raise ImageError(msg("msg.img_bomb", most=f"{MAX_UPLOAD_PIXELS:,}")) from None
    except UnidentifiedImageError:
        other = _sniff_format(data)
        raise ImageError(msg("msg.img_format", fmt=other) if other else msg("msg.img_not")) from None
    except (OSError, SyntaxError, ValueError, MemoryError):
        raise ImageError(msg("msg.img_not")) from None
    if fmt not in IMAGE_FORMATS:
        raise ImageError(msg("msg.img_format", fmt=fmt))
    if w < 1 or h < 1 or w * h > MAX_UPLOAD_PIXELS:
        raise ImageError(msg("msg.img_pixels", w=w, h=h, most=f"{MAX_UPLOAD_PIXELS:,}"))
    if max(w, h) > MAX_UPLOAD_SIDE:
        raise ImageError(msg("msg.img_side", w=w, h=h, most=MAX_UPLOAD_SIDE))
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            img.seek(0)
            img.draft(img.mode, (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale, still at least size×size
            need = _decode_bytes(img, fmt, (w, h))
            if need > MAX_DECODE_BYTES:
                raise ImageError(msg("msg.img_decode_big", w=w, h=h, need=f"{need / 2 ** 20:.0f}",
                                     most=f"{MAX_DECODE_BYTES >> 20}"))
            img.load()
            method = _exif_method(img)
            top = (1 << _bit_depth(data, fmt, img.mode)) - 1 if img.mode in _WIDE_MODES else 255
            out_mode = "RGB" if in_channels == 3 else "L"
            square, side = _square(img, out_mode, top, size)
        # the reduced square's last row and column may stand for fewer than k pixels: the box says how many
        small = square.resize((size, size), Image.Resampling.LANCZOS, box=(0, 0, side, side))
        if method is not None:
            small = small.transpose(method)
        x = torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8).float().div_(255.0)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(msg("msg.img_memory")) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
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
