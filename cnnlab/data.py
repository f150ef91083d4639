"""Fashion-MNIST as tensors resident on the training device (no DataLoader, no per-sample transforms).

Lookup order: ``$CNNLAB_DATA``, ``./data``, ``/usr/share/datasets/fashion-mnist`` (Debian's
``dataset-fashion-mnist``: four ``*-ubyte.gz`` files). Nothing is downloaded unless asked for
(``--download`` in the CLI or ``CNNLAB_DOWNLOAD=1``): then torchvision's download is tried, which
fails offline. Not found → a :class:`DataError` naming the apt command. A folder of ``.gz`` files is decompressed
once into a cache folder (``$CNNLAB_CACHE`` or ``~/.cache/cnnlab``), not on every run.

The whole set is 47 MB of uint8. :func:`load_fashion_mnist` takes an optional seeded, stratified
subset, moves it to the device, resizes it there once (in batches, bilinear as d2l's ``Resize``),
and scales it to [0, 1] as d2l's ``ToTensor`` does. :meth:`TensorData.batches` then serves
``(X, y)`` batches by indexing, shuffled by a per-run ``torch.Generator``.
"""
from __future__ import annotations

import functools
import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from math import prod
from typing import Iterator

import torch
from torch.nn import functional as F

from .device import resolve_device
from .i18n import msg
from .errors import DataError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
APT_HINT = "apt-get install -y dataset-fashion-mnist"
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
"""d2l's text labels (``get_fashion_mnist_labels``), index = class id."""

# Store resized images as float32 while the set stays below this many bytes on the device;
# above it (e.g. 60,000 images at 224×224 = 12 GB as float) keep uint8 and convert per batch.
FLOAT_BUDGET_BYTES = 1 << 30





# -- finding the files ----------------------------------------------------------------

def candidate_dirs() -> list[str]:
    """Where Fashion-MNIST is looked for, in order."""
    out = []
    if os.environ.get("CNNLAB_DATA"):
        out.append(os.environ["CNNLAB_DATA"])
    out += [os.path.abspath("data"), SYSTEM_DIR]
    return out


def _has_raw(folder: str) -> bool:
    """torchvision's layout: <root>/FashionMNIST/raw/<four decompressed files>."""
    return all(os.path.isfile(os.path.join(folder, "FashionMNIST", "raw", f)) for f in FILES)


def _source_files(folder: str) -> dict[str, str] | None:
    """The four files in `folder` (or its FashionMNIST/raw), decompressed or .gz; None if any is missing."""
    for d in (folder, os.path.join(folder, "FashionMNIST", "raw")):
        found = {}
        for f in FILES:
            for name in (f, f + ".gz"):
                if os.path.isfile(os.path.join(d, name)):
                    found[f] = os.path.join(d, name)
                    break
        if len(found) == len(FILES):
            return found
    return None


def cache_dirs() -> list[str]:
    out = []
    if os.environ.get("CNNLAB_CACHE"):
        out.append(os.environ["CNNLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out += [os.path.join(base, "cnnlab"), os.path.join(tempfile.gettempdir(), "cnnlab-cache")]
    return out


def _prepare(files: dict[str, str]) -> str:
    """Decompress into the first writable cache folder (once; atomic per file); return a torchvision root."""
    errors = []
    for cache in cache_dirs():
        root = os.path.join(cache, "fashion-mnist")
        raw = os.path.join(root, "FashionMNIST", "raw")
        if _has_raw(root):
            return root
        try:
            os.makedirs(raw, exist_ok=True)
            for name, src in files.items():
                dst = os.path.join(raw, name)
                if os.path.isfile(dst):
                    continue
                fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{name}.", suffix=".tmp")
                try:
                    with os.fdopen(fd, "wb") as out, (gzip.open(src, "rb") if src.endswith(".gz")
                                                      else open(src, "rb")) as inp:
                        shutil.copyfileobj(inp, out, 1 << 20)
                    os.replace(tmp, dst)
                except BaseException:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    raise
            return root
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            errors.append(f"{cache}: {e}")
    raise DataError(f"could not prepare Fashion-MNIST in a cache folder ({'; '.join(errors)}); "
                    "set CNNLAB_CACHE to a writable folder")


def download_allowed() -> bool:
    """Whether torchvision's download may be tried: only when asked for ($CNNLAB_DOWNLOAD=1, or the CLI's
    --download, which sets it)."""
    return os.environ.get("CNNLAB_DOWNLOAD", "").strip().lower() in ("1", "true", "yes", "on")


def find_fashion_mnist(download: bool | None = None) -> str:
    """Return a folder that torchvision's FashionMNIST(root=...) reads without downloading.

    download: try torchvision's download when the files are nowhere (None: :func:`download_allowed`).
    Raises DataError (one sentence with the apt command) when the files are nowhere and were not downloaded.
    """
    for folder in candidate_dirs():
        if not os.path.isdir(folder):
            continue
        if _has_raw(folder):
            return folder
        files = _source_files(folder)
        if files:
            return _prepare(files)
    where = ", ".join(candidate_dirs())
    if download is None:
        download = download_allowed()
    if not download:
        raise DataError(msg("msg.data_missing", where=where, apt=APT_HINT))
    from torchvision.datasets import FashionMNIST
    root = os.path.abspath("data")
    try:
        FashionMNIST(root, train=True, download=True)
        FashionMNIST(root, train=False, download=True)
        if _has_raw(root):
            return root
        why = "the files did not arrive"
    except Exception as e:  # noqa: BLE001 — offline: URLError, RuntimeError("Error downloading ..."), ...
        from .errors import log_failure, one_line
        log_failure("downloading Fashion-MNIST failed", e)
        why = one_line(e, with_type=True)
    raise DataError(msg("msg.data_download", where=where, why=why, apt=APT_HINT))


def _read_idx(path: str, ndim: int) -> torch.Tensor:
    """One decompressed IDX file of unsigned bytes (Fashion-MNIST's format: zero, zero, 0x08, the number of
    dimensions, each dimension as a big-endian int32, then the bytes), as a uint8 tensor of that shape. What
    torchvision's reader returns, without importing torchvision (1.2 s of CPU in every worker that reads the
    data). A file of another format or of the wrong length raises ValueError."""
    head_len = 4 + 4 * ndim
    with open(path, "rb") as f:
        head = f.read(head_len)
        if len(head) < head_len or head[:4] != bytes((0, 0, 0x08, ndim)):
            raise ValueError(f"{os.path.basename(path)} is not an IDX file of {ndim}-d unsigned bytes")
        shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        held = os.fstat(f.fileno()).st_size - head_len
        if held != prod(shape):
            raise ValueError(f"{os.path.basename(path)} holds {held} bytes for a shape of {shape}")
        body = bytearray(held)          # read once, straight into the tensor's memory
        if f.readinto(body) != held:
            raise ValueError(f"{os.path.basename(path)} ended while it was read")
    return torch.frombuffer(body, dtype=torch.uint8).reshape(shape)


@functools.lru_cache(maxsize=2)
def _read(root: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) and int64 labels, read once per process from torchvision's layout."""
    raw = os.path.join(root, "FashionMNIST", "raw")
    try:
        x_tr, y_tr, x_te, y_te = (_read_idx(os.path.join(raw, f), 1 if "labels" in f else 3) for f in FILES)
        if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
            raise ValueError("the images and the labels differ in number")
    except (OSError, ValueError) as e:
        raise DataError(msg("msg.data_unreadable", root=root, why=f"{type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else 'no message'}", apt=APT_HINT)) from e
    return x_tr, y_tr.long(), x_te, y_te.long()


# -- tensors on the device ------------------------------------------------------------

def stratified_indices(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """`n` indices of `y` (CPU), as equal per class as possible, chosen by a seeded permutation; sorted."""
    if n >= len(y):
        return torch.arange(len(y))
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    classes = torch.unique(y)
    k = len(classes)
    picked, left = [], n
    counts = [int((y == c).sum()) for c in classes]
    # fill the smallest classes first so a class short of its quota hands the rest on
    order = sorted(range(k), key=lambda i: counts[i])
    for j, i in enumerate(order):
        quota = min(counts[i], left // (k - j))  # the last (largest) class takes what is left
        idx = perm[y[perm] == classes[i]][:quota]
        picked.append(idx)
        left -= len(idx)
    return torch.cat(picked).sort().values


RESIZE_CHUNK_BYTES = 64 << 20
"""The float work space of one chunk of :func:`_resize` (its input and its output): 2048 images at 600×600 made
2.9 GB at once, beside the 703 MB kept (#23 §4)."""


def _resize(X: torch.Tensor, size: int, device: torch.device, chunk: int = 2048) -> torch.Tensor:
    """(N, H, W) uint8 on CPU -> (N, 1, size, size) on `device`, in [0, 1] (float32) or 0..255 (uint8).

    Bilinear with antialiasing, like d2l's transforms.Resize on PIL images; done on the device in chunks of at
    most `chunk` images and RESIZE_CHUNK_BYTES of float (each image is resized alone: the same result at any chunk).
    """
    n = X.shape[0]
    as_float = n * size * size * 4 <= FLOAT_BUDGET_BYTES
    out = torch.empty((n, 1, size, size), dtype=torch.float32 if as_float else torch.uint8, device=device)
    per_image = 4 * (size * size + X.shape[-2] * X.shape[-1])
    chunk = max(1, min(int(chunk), RESIZE_CHUNK_BYTES // per_image))
    X = X.to(device)
    for i in range(0, n, chunk):
        xb = X[i:i + chunk].unsqueeze(1).float()
        if xb.shape[-1] != size or xb.shape[-2] != size:
            xb = F.interpolate(xb, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[i:i + chunk] = xb.div_(255.0) if as_float else xb.round_().clamp_(0, 255)
    return out


@dataclass
class TensorData:
    """A classification set held as whole tensors on one device.

    X_*: (N, C, H, W) float32 in [0, 1], or uint8 (0..255) for sets too large to hold as float;
    y_*: (N,) int64. `in_channels` > C repeats the channel (grey -> RGB) per batch.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    name: str = "fashion-mnist"
    in_channels: int = 1

    @property
    def device(self) -> torch.device:
        return self.X_train.device

    @property
    def resolution(self) -> int:
        return int(self.X_train.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.X_test.shape[0])

    def num_batches(self, split: str, batch_size: int) -> int:
        n = self.num_train if split == "train" else self.num_test
        return len(batch_bounds(n, batch_size))

    def prepare(self, X: torch.Tensor) -> torch.Tensor:
        """A stored batch -> float32 in [0, 1] with `in_channels` channels."""
        if X.dtype == torch.uint8:
            X = X.float().div_(255.0)
        if self.in_channels != X.shape[1]:
            X = X.expand(-1, self.in_channels, -1, -1)
        return X

    def batches(self, split: str = "train", batch_size: int = 256, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (X, y) batches of the split; the last batch may be smaller (as d2l's DataLoader), except that
        a last batch of ONE example is merged into the one before (BatchNorm cannot train on one value
        per channel): see :func:`batch_bounds`."""
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        bounds = batch_bounds(X.shape[0], batch_size)
        if shuffle:
            perm = torch.randperm(X.shape[0], generator=generator)
            if perm.device != X.device:
                perm = perm.to(X.device, non_blocking=True)
            for a, b in bounds:
                idx = perm[a:b]
                yield self.prepare(X.index_select(0, idx)), y.index_select(0, idx)
        else:
            for a, b in bounds:
                yield self.prepare(X[a:b]), y[a:b]


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[(start, end), ...] of the batches of `n` examples; a last batch of one example joins the previous batch."""
    bounds = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def load_fashion_mnist(resolution: int = 28, *, device: str | torch.device = "cpu", train_size: int | None = None,
                       test_size: int | None = None, seed: int = 0, in_channels: int = 1,
                       download: bool | None = None) -> TensorData:
    """Fashion-MNIST on `device`, resized to `resolution` once, optionally a seeded stratified subset.

    Raises DataError (one sentence) when the data cannot be found.
    """
    if resolution < 1:
        raise DataError(f"resolution must be a positive integer, got {resolution}")
    for name, v in (("train_size", train_size), ("test_size", test_size)):
        if v is not None and v < 1:
            raise DataError(f"{name} must be a positive integer, got {v}")
    dev = resolve_device(device)
    Xtr, ytr, Xte, yte = _read(find_fashion_mnist(download=download))
    if train_size is not None and train_size < len(ytr):
        idx = stratified_indices(ytr, train_size, seed)
        Xtr, ytr = Xtr[idx], ytr[idx]
    if test_size is not None and test_size < len(yte):
        idx = stratified_indices(yte, test_size, seed + 1)
        Xte, yte = Xte[idx], yte[idx]
    return TensorData(_resize(Xtr, resolution, dev), ytr.to(dev), _resize(Xte, resolution, dev), yte.to(dev),
                      classes=CLASSES, name="fashion-mnist", in_channels=in_channels)


def synthetic(num_train: int = 512, num_test: int = 256, *, num_classes: int = 10, resolution: int = 28,
              in_channels: int = 1, seed: int = 0, noise: float = 0.25,
              device: str | torch.device = "cpu") -> TensorData:
    """A tiny learnable set for tests: each class is a fixed random pattern plus noise, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, in_channels, resolution, resolution, generator=g)

    def make(n):
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        X = (templates[y] + noise * torch.randn(n, in_channels, resolution, resolution, generator=g)).clamp_(0, 1)
        return X, y

    Xtr, ytr = make(num_train)
    Xte, yte = make(num_test)
    dev = resolve_device(device)
    return TensorData(Xtr.to(dev), ytr.to(dev), Xte.to(dev), yte.to(dev),
                      classes=tuple(f"class {i}" for i in range(num_classes)), name="synthetic",
                      in_channels=in_channels)
