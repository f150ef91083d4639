"""cnnlab.data: lookup order, one-time preparation, clear errors, subsets, batches."""
import gzip
import os
import struct

import pytest
import torch

from cnnlab import data
from helpers import needs_fmnist  # noqa: E402




def _write_idx(folder, n_train=40, n_test=20, gz=True):
    """Tiny but valid idx files (the format torchvision reads)."""
    os.makedirs(folder, exist_ok=True)
    g = torch.Generator().manual_seed(1)

    def images(n):
        return struct.pack(">IIII", 2051, n, 28, 28) + torch.randint(0, 256, (n * 784,), generator=g,
                                                                     dtype=torch.uint8).numpy().tobytes()

    def labels(n):
        return struct.pack(">II", 2049, n) + bytes(i % 10 for i in range(n))

    blobs = {"train-images-idx3-ubyte": images(n_train), "train-labels-idx1-ubyte": labels(n_train),
             "t10k-images-idx3-ubyte": images(n_test), "t10k-labels-idx1-ubyte": labels(n_test)}
    for name, blob in blobs.items():
        if gz:
            with gzip.open(os.path.join(folder, name + ".gz"), "wb") as f:
                f.write(blob)
        else:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(blob)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No ./data, no system folder, a private cache: only what the test puts in $CNNLAB_DATA counts."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "SYSTEM_DIR", str(tmp_path / "no-system-dir"))
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    data._read.cache_clear()
    yield tmp_path
    data._read.cache_clear()


def test_gz_folder_is_prepared_once_into_the_cache(isolated, monkeypatch):
    src = isolated / "fm"
    _write_idx(str(src))
    monkeypatch.setenv("CNNLAB_DATA", str(src))
    root = data.find_fashion_mnist(download=False)
    assert root.startswith(str(isolated / "cache"))
    raw = os.path.join(root, "FashionMNIST", "raw")
    assert sorted(os.listdir(raw)) == sorted(data.FILES)  # decompressed, no temp files left
    stamp = os.path.getmtime(os.path.join(raw, data.FILES[0]))
    assert data.find_fashion_mnist(download=False) == root
    assert os.path.getmtime(os.path.join(raw, data.FILES[0])) == stamp  # not redone
    d = data.load_fashion_mnist(28, train_size=20, test_size=10)
    assert d.X_train.shape == (20, 1, 28, 28) and d.X_test.shape == (10, 1, 28, 28)
    assert d.X_train.dtype == torch.float32 and 0 <= d.X_train.min() and d.X_train.max() <= 1
    assert d.y_train.bincount(minlength=10).tolist() == [2] * 10  # stratified


def test_torchvision_layout_is_used_in_place(isolated, monkeypatch):
    _write_idx(str(isolated / "tv" / "FashionMNIST" / "raw"), gz=False)
    monkeypatch.setenv("CNNLAB_DATA", str(isolated / "tv"))
    assert data.find_fashion_mnist(download=False) == str(isolated / "tv")
    assert not os.path.exists(isolated / "cache")


def _torchvision_read(root):
    from torchvision.datasets import FashionMNIST
    tr, te = FashionMNIST(root, train=True, download=False), FashionMNIST(root, train=False, download=False)
    return tr.data, tr.targets, te.data, te.targets


def _same(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), (a.dtype, b.dtype, a.shape, b.shape)


def test_the_idx_reader_reads_what_torchvision_reads(isolated, monkeypatch):
    """cnnlab reads the four IDX files itself (no torchvision import in a worker): the same tensors, dtypes and
    shapes as torchvision's FashionMNIST."""
    src = isolated / "fm"
    _write_idx(str(src), n_train=33, n_test=7, gz=False)
    monkeypatch.setenv("CNNLAB_DATA", str(src))
    root = data.find_fashion_mnist(download=False)
    ours = data._read(root)
    assert [tuple(t.shape) for t in ours] == [(33, 28, 28), (33,), (7, 28, 28), (7,)]
    _same(ours, _torchvision_read(root))


@needs_fmnist
def test_the_idx_reader_reads_the_real_set_as_torchvision_does():
    root = data.find_fashion_mnist(download=False)
    _same(data._read(root), _torchvision_read(root))


@pytest.mark.parametrize("damage", ("truncated", "not_idx", "fewer_labels"))
def test_a_damaged_idx_file_is_one_sentence_naming_the_folder(isolated, monkeypatch, damage):
    src = isolated / "fm"
    _write_idx(str(src), gz=False)
    if damage == "truncated":
        with open(src / "train-images-idx3-ubyte", "r+b") as f:
            f.truncate(1000)
    elif damage == "not_idx":
        (src / "t10k-images-idx3-ubyte").write_bytes(b"<html>not found</html>")
    else:
        _write_idx(str(isolated / "short"), n_train=39, gz=False)
        os.replace(isolated / "short" / "train-labels-idx1-ubyte", src / "train-labels-idx1-ubyte")
    monkeypatch.setenv("CNNLAB_DATA", str(src))
    with pytest.raises(data.DataError) as e:
        data._read(data.find_fashion_mnist(download=False))
    text = str(e.value)
    assert "\n" not in text and "apt-get install -y dataset-fashion-mnist" in text, text
    assert {"truncated": "holds", "not_idx": "not an IDX file", "fewer_labels": "differ in number"}[damage] in text


def test_missing_data_names_the_apt_command(isolated, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(isolated / "empty"))
    with pytest.raises(data.DataError) as e:
        data.find_fashion_mnist(download=False)
    msg = str(e.value)
    assert "apt-get install -y dataset-fashion-mnist" in msg and "\n" not in msg

    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **k):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirrors")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(data.DataError, match="apt-get install -y dataset-fashion-mnist"):
        data.load_fashion_mnist(28, download=True)


def test_nothing_is_downloaded_unless_asked_for(isolated, monkeypatch):
    import torchvision.datasets

    calls = []

    class Offline:
        def __init__(self, *a, **k):
            calls.append(k)
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    monkeypatch.setenv("CNNLAB_DATA", str(isolated / "empty"))
    monkeypatch.delenv("CNNLAB_DOWNLOAD", raising=False)
    with pytest.raises(data.DataError, match="nothing is downloaded unless"):
        data.find_fashion_mnist()
    assert calls == []                                    # the default never tries the network
    monkeypatch.setenv("CNNLAB_DOWNLOAD", "1")
    with pytest.raises(data.DataError, match="the download failed .*Error downloading"):
        data.find_fashion_mnist()
    assert calls and calls[0].get("download") is True    # asked for: tried, and the failure is said


def test_stratified_indices_balanced_seeded_and_short_classes():
    y = torch.tensor([0] * 3 + [1] * 50 + [2] * 50)
    idx = data.stratified_indices(y, 25, seed=0)
    assert len(idx) == 25 and len(set(idx.tolist())) == 25 and idx.tolist() == sorted(idx.tolist())
    counts = y[idx].bincount().tolist()
    assert counts[0] == 3 and sorted(counts[1:]) == [11, 11]  # the short class hands its share on
    assert torch.equal(idx, data.stratified_indices(y, 25, seed=0))
    assert not torch.equal(idx, data.stratified_indices(y, 25, seed=1))
    assert torch.equal(data.stratified_indices(y, 500, seed=0), torch.arange(len(y)))


def test_batches_cover_the_set_once_and_shuffle_by_generator():
    d = data.synthetic(100, 30, seed=3)
    bs = [(X.shape, y.shape) for X, y in d.batches("train", 32)]
    assert [s[0][0] for s in bs] == [32, 32, 32, 4]  # last batch smaller, like d2l's DataLoader
    assert d.num_batches("train", 32) == 4

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.cat([X.flatten(1)[:, 0] for X, _ in d.batches("train", 32, shuffle=True, generator=g)])

    a, b, c = order(0), order(0), order(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a.sort().values, d.X_train.flatten(1)[:, 0].sort().values)  # a permutation
    ys = torch.cat([y for _, y in d.batches("train", 7, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(ys.sort().values, d.y_train.sort().values)


def test_prepare_scales_uint8_and_repeats_channels():
    d = data.synthetic(8, 4)
    d.in_channels = 3
    X = d.prepare(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8))
    assert X.shape == (2, 3, 4, 4) and X.dtype == torch.float32 and torch.all(X == 1.0)


def test_large_sets_are_kept_as_uint8(monkeypatch):
    monkeypatch.setattr(data, "FLOAT_BUDGET_BYTES", 0)
    X = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    out = data._resize(X, 28, torch.device("cpu"))
    assert out.dtype == torch.uint8 and torch.equal(out[:, 0], X)  # no resize: exact
    big = data._resize(X, 56, torch.device("cpu"))
    assert big.shape == (5, 1, 56, 56) and big.dtype == torch.uint8


def test_synthetic_is_seeded():
    a, b = data.synthetic(16, 8, seed=5), data.synthetic(16, 8, seed=5)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert a.num_classes == 10 and a.resolution == 28


@needs_fmnist
def test_real_fashion_mnist_subset_and_resize():
    d = data.load_fashion_mnist(28, train_size=1000, test_size=200, seed=0)
    assert d.X_train.shape == (1000, 1, 28, 28) and d.X_test.shape == (200, 1, 28, 28)
    assert d.y_train.bincount().tolist() == [100] * 10 and d.y_test.bincount().tolist() == [20] * 10
    assert 0.0 <= float(d.X_train.min()) and float(d.X_train.max()) <= 1.0 and float(d.X_train.mean()) > 0.1
    d96 = data.load_fashion_mnist(96, train_size=50, test_size=10, seed=0)
    assert d96.X_train.shape == (50, 1, 96, 96)
    # the upsampled image keeps the picture: its 28×28 downsample is close to the original
    back = torch.nn.functional.interpolate(d96.X_train[:5], size=(28, 28), mode="bilinear", antialias=True)
    d28 = data.load_fashion_mnist(28, train_size=50, test_size=10, seed=0)
    assert (back - d28.X_train[:5]).abs().mean() < 0.05
