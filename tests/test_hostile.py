"""Issue #11: a public instance survives hostile input — library level (cnnlab.budget, cnnlab.checkpoint,
cnnlab.registry, the CLI). Every crafted file is made by the test itself; each refusal is one sentence."""
import json
import os
import threading
import time
import zipfile

import pytest
import torch

from cnnlab import checkpoint as ck
from cnnlab import budget, caches
from cnnlab.measure import fitting, measure
from cnnlab.registry import Config, KnobError, resolve

MB = 1 << 20


# -- helpers -------------------------------------------------------------------------------------------

def peak_rss_delta(fn):
    """(fn()'s value or the exception it raised, how far the peak resident memory rose above the current one
    while fn ran, in bytes). Linux: /proc/self/clear_refs "5" resets the peak (VmHWM) to the current RSS;
    where that is not allowed the rise is None."""
    def field(name):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(name)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = field("VmRSS")
    except OSError:
        base = None
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001
        out = e
    return out, (None if base is None else field("VmHWM") - base)


def refused(exc_type, fn, most_bytes=256 * MB):
    """fn() raises exc_type without the process growing by more than `most_bytes`; returns the exception."""
    out, grew = peak_rss_delta(fn)
    assert isinstance(out, exc_type), out
    assert grew is None or grew < most_bytes, f"grew by {grew / MB:.0f} MB before refusing"
    return out


def one_sentence(e: BaseException, limit: int = 400) -> str:
    msg = str(e)
    assert msg and "\n" not in msg and len(msg) <= limit and "Traceback" not in msg, msg
    return msg


def make_run(root, arch="lenet", knobs=None, resolution=None, epochs_done=1, name=None):
    """A small saved run (config.json, model.pt, metrics.jsonl) under root; returns its folder."""
    cfg = resolve(arch, knobs or {}, resolution=resolution)
    torch.manual_seed(0)
    model = cfg.build()
    run_dir = ck.new_run_dir(str(root), arch) if name is None else str(root / name)
    w = ck.RunWriter(run_dir)
    w.write_config({"model": cfg.to_dict(), "train": {"epochs": 2}, "status": "finished"})
    for e in range(1, epochs_done + 1):
        w.save_weights(model, e)
        w.append_metrics({"event": "epoch_end", "epoch": e, "train_loss": 0.5, "train_acc": 0.8, "test_acc": 0.7})
    return run_dir


def edit_config(run_dir, **changes):
    path = os.path.join(run_dir, ck.CONFIG)
    cfg = json.load(open(path))
    for dotted, value in changes.items():
        target = cfg
        *parents, last = dotted.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    with open(path, "w") as f:
        json.dump(cfg, f)


# -- 1. one Start with in-range settings: the model is checked against the budget before it is built --

BIG_VGG = dict(arch="vgg", knobs={"ratio": 4, "fc_width": 8192}, resolution=1024)  # the book preset, widened


def test_a_model_over_the_memory_budget_is_refused_before_it_is_built():
    cfg = resolve(BIG_VGG["arch"], BIG_VGG["knobs"], resolution=BIG_VGG["resolution"])  # the probe may show it
    t = time.perf_counter()
    e = refused(budget.LimitError, lambda: budget.check_model(cfg))
    assert time.perf_counter() - t < 10
    msg = one_sentence(e)
    assert "memory budget of 2.0 GB" in msg and "4.3 GB of weights" in msg, msg
    assert isinstance(e, KnobError)  # pages show it with st.error, the CLI exits 2
    fp = measure(cfg).footprint  # counted on the meta device: nothing allocated
    first_dense = (512 // 4) * 32 * 32 * 8192  # the first dense layer alone: 128 × 32 × 32 inputs, 8192 outputs
    assert fp.params > first_dense and fp.weight_bytes == 4 * fp.params


def test_the_budget_comes_from_the_environment(monkeypatch):
    lenet = resolve("lenet")
    resnet = resolve("resnet", resolution=96)
    monkeypatch.setenv("CNNLAB_MEM_BUDGET_MB", "16")
    assert budget.budget_bytes() == 16 * MB
    budget.check_model(lenet)                        # 0.25 MB of weights
    with pytest.raises(budget.LimitError, match="memory budget of 16 MB"):
        budget.check_model(resnet)                   # 45 MB of weights
    monkeypatch.setenv("CNNLAB_MEM_BUDGET_MB", "lots")  # a bad setting falls back to the default
    assert budget.budget_bytes() == budget.DEFAULT_BUDGET_MB * MB


def test_activations_count_against_the_budget():
    cfg = resolve("lenet")
    fp = measure(cfg).footprint
    assert fp.activation_bytes and fp.activation_bytes < MB
    allowed = fp.weight_bytes + 10 * fp.activation_bytes
    budget.check_model(cfg, batch=10, budget=allowed)
    with pytest.raises(budget.LimitError, match="for 11 samples"):
        budget.check_model(cfg, batch=11, budget=allowed)
    assert budget.batch_for(fp, budget=fp.weight_bytes + 2 * 7 * fp.activation_bytes) == 7


def test_loading_a_run_whose_config_names_a_huge_model_is_refused_before_building(tmp_path):
    run_dir = make_run(tmp_path)
    edit_config(run_dir, model={"arch": "vgg", "knobs": BIG_VGG["knobs"], "in_channels": 1, "num_classes": 10,
                                "resolution": 1024})
    msg = one_sentence(refused(ck.CheckpointError, lambda: ck.load_run(run_dir)))
    assert "too large to load here" in msg and "memory budget" in msg


def test_loading_a_run_never_holds_two_copies_of_the_weights(tmp_path):
    run_dir = make_run(tmp_path, "alexnet")  # 187 MB of weights
    weights = measure(resolve("alexnet")).footprint.weight_bytes
    loaded, grew = peak_rss_delta(lambda: ck.load_run(run_dir))
    assert loaded.epoch == 1
    if grew is not None:
        assert grew < 1.6 * weights, (grew / MB, weights / MB)  # built on meta, given the loaded tensors


# -- 2. crafted run folders ----------------------------------------------------------------------------

def test_a_bn_history_symlinked_to_dev_zero_is_refused(tmp_path):
    run_dir = make_run(tmp_path)
    os.makedirs(os.path.join(run_dir, ck.BN_DIR))
    os.symlink("/dev/zero", os.path.join(run_dir, ck.BN_DIR, "epoch-0001.jsonl"))
    assert "symbolic link" in str(refused(ck.CheckpointError, lambda: ck.read_bn_history(run_dir)))
    # a symlinked bn_history folder, a symlinked config.json or metrics.jsonl: the same
    os.remove(os.path.join(run_dir, ck.BN_DIR, "epoch-0001.jsonl"))
    os.rmdir(os.path.join(run_dir, ck.BN_DIR))
    os.symlink("/dev", os.path.join(run_dir, ck.BN_DIR))
    with pytest.raises(ck.CheckpointError, match="not a plain folder"):
        ck.read_bn_history(run_dir)
    os.remove(os.path.join(run_dir, ck.METRICS))
    os.symlink("/dev/zero", os.path.join(run_dir, ck.METRICS))
    with pytest.raises(ck.CheckpointError, match="symbolic link"):
        ck.read_metrics(run_dir)


def test_a_device_file_is_refused(tmp_path):
    run_dir = make_run(tmp_path)
    os.makedirs(os.path.join(run_dir, ck.BN_DIR))
    path = os.path.join(run_dir, ck.BN_DIR, "epoch-0001.jsonl")
    try:
        os.mknod(path, 0o644 | __import__("stat").S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    except (PermissionError, OSError):
        pytest.skip("mknod needs privileges here (the symlink and FIFO tests cover the same check)")
    with pytest.raises(ck.CheckpointError, match="not a regular file"):
        ck.read_bn_history(run_dir)


def _within(seconds, fn):
    """fn() in a thread; fails if it has not returned within `seconds` (a blocked read)."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e
    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_fifo_never_blocks_a_thread(tmp_path):
    run_dir = make_run(tmp_path)
    os.makedirs(os.path.join(run_dir, ck.BN_DIR))
    os.mkfifo(os.path.join(run_dir, ck.BN_DIR, "epoch-0001.jsonl"))
    with pytest.raises(ck.CheckpointError, match="not a regular file"):
        _within(10, lambda: ck.read_bn_history(run_dir))
    os.remove(os.path.join(run_dir, ck.CONFIG))
    os.mkfifo(os.path.join(run_dir, ck.CONFIG))
    with pytest.raises(ck.CheckpointError, match="not a regular file"):
        _within(10, lambda: ck.read_config(run_dir))
    rows = _within(10, lambda: ck.list_runs(str(tmp_path)))
    assert [r.status for r in rows] == ["unreadable"] and "not a regular file" in rows[0].error


def _deflate(path):
    """Rewrite a torch archive with every entry deflated (torch reads it; the zeros shrink ~1000×)."""
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            z.writestr(name, data)


def test_deflated_zeros_in_model_pt_are_refused_before_they_inflate(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path)
    path = os.path.join(run_dir, ck.WEIGHTS)
    sd = ck.load_weights(path)
    sd["state_dict"]["pad"] = torch.zeros(16 * MB)  # 64 MB of zeros
    torch.save(sd, path)
    _deflate(path)
    assert os.path.getsize(path) < MB
    loads = []
    monkeypatch.setattr(ck.torch, "load", lambda *a, **k: loads.append(1))
    e = refused(ck.CheckpointError, lambda: ck.load_run(run_dir), most_bytes=32 * MB)
    assert "would unpack to 64 MB, more than the 1.3 MB" in one_sentence(e)  # LeNet's weights are 0.24 MB: not its checkpoint
    with pytest.raises(ck.CheckpointError, match="would unpack"):
        ck.load_weights(path, max_bytes=32 * MB)  # and never more than the budget, whatever the model
    assert not loads  # torch never saw the file


def test_a_file_that_is_not_a_torch_archive_is_refused(tmp_path):
    run_dir = make_run(tmp_path)
    path = os.path.join(run_dir, ck.WEIGHTS)
    torch.save(ck.load_weights(path), path, _use_new_zipfile_serialization=False)  # the legacy format
    with pytest.raises(ck.CheckpointError, match="not a torch archive"):
        ck.load_run(run_dir)


def test_oversized_json_files_are_refused_unread(tmp_path):
    run_dir = make_run(tmp_path)
    with open(os.path.join(run_dir, ck.METRICS), "a") as f:
        f.truncate(ck.MAX_METRICS_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ck.CheckpointError, match="more than the 8.0 MB"):
        ck.read_metrics(run_dir)


def test_a_huge_bn_history_is_read_thinned_within_its_byte_cap(tmp_path):
    w = ck.RunWriter(str(tmp_path / "r"))
    from cnnlab.events import BNLayerStats, BNSnapshot
    layer = BNLayerStats("1", *([[0.5] * 64] * 6))
    for epoch in (1, 2):
        for step in range(1, 101):
            w.add_bn_snapshot(BNSnapshot(epoch=epoch, step=(epoch - 1) * 100 + step, layers=(layer,)))
        w.flush_bn(epoch)
    all_ = ck.read_bn_history(w.run_dir)
    assert len(all_) == 200
    total = sum(os.path.getsize(p) for p in ck.bn_files(w.run_dir))
    some = ck.read_bn_history(w.run_dir, max_bytes=total // 10)
    steps = [s.step for s in some]
    assert 15 <= len(some) <= 25 and steps == sorted(steps) and 100 in steps and 200 in steps  # each epoch's last


# -- 3. one malformed file never hides the other runs -------------------------------------------------------

MALFORMED = {
    "epochs is a string": ("config", {"train": {"epochs": "x"}}),
    "train is a list": ("config", {"train": []}),
    "created is an integer": ("config", {"created": 20260101}),
    "arch is a list": ("config", {"model": {"arch": ["lenet"], "knobs": {}}}),
    "knobs is a list": ("config", {"model": {"arch": "lenet", "knobs": ["relu"]}}),
    "final test_acc is a string": ("config", {"final": {"test_acc": "high"}}),
    "status is an object": ("config", {"status": {"running": True}}),
    "nested 200k deep": ("config_text", "[" * 200_000 + "]" * 200_000),
    "NaN in config": ("config_text", '{"format": "cnnlab-run", "version": 1, "model": {"arch": "lenet"}, "x": NaN}'),
    "Infinity in metrics": ("metrics", '{"epoch": 1, "test_acc": Infinity}\n'),
    "NaN in metrics": ("metrics", '{"epoch": 1, "train_loss": NaN}\n'),
    "string test_acc in metrics": ("metrics", '{"epoch": 1, "test_acc": "0.9"}\n'),
    "epoch missing in metrics": ("metrics", '{"test_acc": 0.9}\n'),
    "metrics nested deep": ("metrics", "[" * 200_000 + "\n"),
    "metrics not UTF-8": ("metrics", b"\xff\xfe{}\n"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_run_is_listed_unreadable_and_the_others_still_shown(tmp_path, case):
    good = make_run(tmp_path, name="20260101-000000-lenet-good")
    bad = make_run(tmp_path, name="20260102-000000-lenet-bad")
    kind, value = MALFORMED[case]
    if kind == "config":
        edit_config(bad, **value)
    elif kind == "config_text":
        open(os.path.join(bad, ck.CONFIG), "w").write(value)
    else:
        open(os.path.join(bad, ck.METRICS), "wb").write(value if isinstance(value, bytes) else value.encode())
    runs = {r.run_dir: r for r in ck.list_runs(str(tmp_path))}
    assert set(runs) == {good, bad}
    assert runs[good].status == "finished" and runs[good].epochs_done == 1 and runs[good].test_acc == 0.7
    assert runs[bad].status == "unreadable", case
    one_sentence(Exception(runs[bad].error), limit=400)
    with pytest.raises(ck.CheckpointError):
        ck.load_run(bad)
    assert ck.load_run(good).epoch == 1


def test_a_malformed_bn_snapshot_is_one_checkpoint_error(tmp_path):
    run_dir = make_run(tmp_path)
    os.makedirs(os.path.join(run_dir, ck.BN_DIR))
    path = os.path.join(run_dir, ck.BN_DIR, "epoch-0001.jsonl")
    for row in ({"epoch": 1, "step": 1, "layers": [{"name": "1", "gamma": "x"}]},
                {"epoch": "1", "step": 1, "layers": []},
                {"epoch": 1, "step": 1, "layers": [{"name": "1", **{k: [1.0] for k in ck._BN_VECTORS},
                                                    "beta": [1.0, 2.0]}]},
                [1, 2]):
        open(path, "w").write(json.dumps(row) + "\n")
        with pytest.raises(ck.CheckpointError):
            ck.read_bn_history(run_dir)
    # null (written for NaN: no batch statistics for nn.BatchNorm) reads back as NaN
    open(path, "w").write(json.dumps({"epoch": 1, "step": 1, "layers": [
        {"name": "1", **{k: [1.0, None] for k in ck._BN_VECTORS}}]}) + "\n")
    snap, = ck.read_bn_history(run_dir)
    assert snap.layers[0].gamma[0] == 1.0 and snap.layers[0].gamma[1] != snap.layers[0].gamma[1]


def test_a_symlinked_run_folder_is_listed_unreadable(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    real = make_run(outside, name="real")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(real, root / "linked")
    good = make_run(root, name="good")
    runs = {os.path.basename(r.run_dir): r for r in ck.list_runs(str(root))}
    assert runs["good"].status == "finished"
    assert runs["linked"].status == "unreadable" and "symbolic link" in runs["linked"].error
    assert good


# -- 4. caches bounded by bytes -------------------------------------------------------------------------------

def test_the_byte_lru_never_holds_more_than_its_bytes():
    cache = caches.ByteLRU(10 * MB)
    made = []

    def make(n):
        made.append(n)
        return torch.zeros(n * MB // 4)
    for i, n in enumerate([4, 4, 4, 1, 30]):
        cache.get_or_make(i, lambda n=n: make(n))
        assert cache.total <= 10 * MB
    assert 0 not in cache and 1 in cache and 2 in cache and 3 in cache and 4 not in cache  # 30 MB: never kept
    cache.get_or_make(1, lambda: make(99))  # a hit: not made again
    assert 99 not in made
    cache.get_or_make(0, lambda: make(4))   # 0 comes back; the least recently used (2) goes
    assert 2 not in cache and 1 in cache and cache.total <= 10 * MB


def test_the_byte_lru_makes_a_key_once_for_threads_asking_together():
    """Eight threads ask for one new key at once: it is made once and all get that value; a maker that fails
    leaves the waiters to make it themselves (errors are not cached)."""

    cache = caches.ByteLRU(10 * MB)
    made, start = [], threading.Barrier(8)

    def make():
        made.append(1)
        time.sleep(0.3)
        return object()

    def ask(out):
        start.wait()
        out.append(cache.get_or_make("k", make, lambda v: 64))
    got: list = []
    threads = [threading.Thread(target=ask, args=(got,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(made) == 1 and len(got) == 8 and all(v is got[0] for v in got)

    calls = []

    def flaky():
        calls.append(1)
        time.sleep(0.2)
        if len(calls) == 1:
            raise RuntimeError("first maker fails")
        return "ok"

    results, errors = [], []

    def ask2():
        try:
            results.append(cache.get_or_make("f", flaky, lambda v: 64))
        except RuntimeError as e:
            errors.append(e)
    threads = [threading.Thread(target=ask2) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(10)
    assert len(errors) == 1 and results == ["ok", "ok"] and len(calls) == 2


def test_the_shared_cache_follows_its_environment_setting(monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE_MB", "3")
    assert caches.CACHE.max_bytes == 3 * MB
    cache = caches.ByteLRU(caches.cache_bytes)       # a bound lowered while it holds more: it never exceeds it
    cache.get_or_make("a", lambda: b"x" * (2 * MB), len)
    assert "a" in cache and cache.total == 2 * MB
    monkeypatch.setenv("CNNLAB_CACHE_MB", "1")
    cache.get_or_make("b", lambda: b"y" * 1000, len)
    assert "a" not in cache and "b" in cache and cache.total <= 1 * MB


def test_test_images_for_a_run_are_bounded_by_bytes():
    pytest.importorskip("streamlit")
    from cnnlab.ui import runs_view

    for res in (28, 224, 1024):
        cfg = Config("lenet", {}, 1, 10, res)
        n = runs_view.view_images(cfg)
        assert n * res * res * 4 <= max(runs_view.VIEW_BYTES, 8 * res * res * 4)
    assert runs_view.view_images(Config("lenet", {}, 1, 10, 28)) == runs_view.VIEW_IMAGES


# -- 7. crash consistency ---------------------------------------------------------------------------------------

def test_a_full_disk_ends_the_run_with_one_sentence_and_config_matches_the_weights(tmp_path, monkeypatch):
    from cnnlab import engine
    from cnnlab.data import synthetic
    from cnnlab.events import RunFailed

    real_save, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) >= 2:  # epoch 1 saves; from epoch 2 on the disk is full
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
        return real_save(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", save)
    tc = engine.TrainConfig(model="lenet", epochs=3, device="cpu", log_every=5, threads=1)
    events = list(engine.run(tc, out_dir=str(tmp_path), data=synthetic(256, 64)))
    last = events[-1]
    assert isinstance(last, RunFailed) and last.reason == "error", last
    msg = one_sentence(Exception(last.message))
    assert "disk full" in msg and "model.pt" in msg
    run_dir = last.run_dir
    monkeypatch.setattr(torch, "save", real_save)
    cfg = ck.read_config(run_dir)
    weights = ck.load_weights(os.path.join(run_dir, ck.WEIGHTS))
    assert cfg["status"] == "failed" and "disk" in cfg["failure"]["message"]
    assert cfg["final"]["epochs"] == weights["epoch"] == 1  # config.json claims no epoch model.pt lacks
    assert [m["epoch"] for m in ck.read_metrics(run_dir)] == [1]
    assert ck.load_run(run_dir).epoch == 1
    row, = ck.list_runs(str(tmp_path))
    assert row.status == "failed" and row.epochs_done == 1


def test_a_full_disk_in_the_cli_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    from helpers import need, have_fashion_mnist
    from cnnlab.__main__ import main

    need(have_fashion_mnist(), "Fashion-MNIST is not installed")

    def save(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", save)
    code = main(["train", "lenet", "--epochs", "2", "--train-size", "256", "--test-size", "64", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("run ")]
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and "disk full" in lines[0], err
    cfg = ck.read_config(ck.list_runs(str(tmp_path))[0].run_dir)
    assert cfg["status"] == "failed" and cfg["final"]["epochs"] == 0  # no weights were ever written


def test_the_out_folder_is_checked_before_training(tmp_path, monkeypatch, capsys):
    from cnnlab.__main__ import main
    from cnnlab import train_cli

    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, needle in ((a_file, "is a file"), (a_file / "sub", "cannot be created")):
        code = main(["train", "lenet", "--epochs", "1", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and needle in err, err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: emulate the permission check a user would get
        monkeypatch.setattr(os, "access",
                            lambda p, m, _real=os.access: _real(p, m) and (not m & os.W_OK or bool(os.stat(p).st_mode & 0o200)))
    try:
        for out in (ro, ro / "new" / "deeper"):
            code = main(["train", "lenet", "--epochs", "1", "--out", str(out)])
            err = capsys.readouterr().err
            assert code == 2 and "not a folder this user can write in" in err, err
    finally:
        ro.chmod(0o755)
    train_cli.check_out_dir(str(tmp_path / "new" / "deeper"))  # creatable: fine


# -- 8. expensive probes ------------------------------------------------------------------------------------------

def test_a_probe_of_a_huge_densenet_is_refused_at_once():
    t = time.perf_counter()
    with pytest.raises(budget.LimitError) as ei:
        fitting("densenet", {"block_config": "64,64,64,64,64,61", "growth_rate": 126}, resolution=3)
    assert time.perf_counter() - t < 5  # it was 22 s of shape searches
    assert "layers" in one_sentence(ei.value)
    # the book's and the papers' models stay well inside the bound
    for knobs in ({}, {"block_config": "6,12,24,16"}, {"block_config": "6,12,48,32"}):
        fitting("densenet", knobs, resolution=224)
    # a deep model (789 layers) at a too-small input: one forward pass, no search for the smallest input
    t = time.perf_counter()
    with pytest.raises(budget.LimitError) as ei:
        fitting("densenet", {"block_config": "64,64,64,64", "growth_rate": 1}, resolution=3)
    assert time.perf_counter() - t < 10  # the search took 25 s
    assert "try 96×96 or more" in one_sentence(ei.value)
    # a shallow one still gets the smallest resolution that works
    with pytest.raises(KnobError, match="resolution must be at least"):
        fitting("densenet", {"block_config": "6,12,24,16"}, resolution=3)


# -- 9. numbers, lists, threads ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,knob,value", [
    ("vgg", "ratio", "٤"), ("vgg", "ratio", "４"), ("vgg", "ratio", "1_0"), ("mobilenet_v1", "alpha", "0_5"),
    ("mobilenet_v1", "alpha", "０.5"), ("densenet", "block_config", "4,,4"), ("densenet", "block_config", "4,4,"),
    ("densenet", "block_config", "٤,4"),
])
def test_only_plain_ascii_numbers_are_numbers(arch, knob, value):
    with pytest.raises(KnobError, match=knob):
        resolve(arch, {knob: value})


def test_plain_numbers_still_parse():
    assert resolve("vgg", {"ratio": " 8 "}).knobs["ratio"] == 8
    assert resolve("densenet", {"block_config": "[4, 4, 4]"}).knobs["block_config"] == (4, 4, 4)
    assert resolve("mobilenet_v1", {"alpha": "5e-1"}).knobs["alpha"] == 0.5


def test_a_long_input_is_not_echoed_in_full():
    with pytest.raises(KnobError) as ei:
        resolve("vgg", {"ratio": "9" * 10_000})
    assert len(str(ei.value)) < 200


def test_a_huge_thread_count_is_capped_not_an_out_of_memory(monkeypatch):
    from cnnlab import device

    monkeypatch.setenv("CNNLAB_THREADS", "100000")
    assert device.cpu_threads() == device.MAX_THREADS
    monkeypatch.setenv("CNNLAB_THREADS", "٤")
    assert device.cpu_threads() == max(1, device._TORCH_THREADS)


def test_a_listing_is_bounded_and_a_traceback_kept_in_part(tmp_path):
    for i in range(5):
        make_run(tmp_path, name=f"2026010{i}-000000-lenet-{i}")
    assert [r.run_id for r in ck.list_runs(str(tmp_path), limit=3)] == \
        [ck.read_config(str(tmp_path / f"2026010{i}-000000-lenet-{i}"))["run_id"] for i in (4, 3, 2)]
    from cnnlab.events import RunFailed
    w = ck.RunWriter(str(tmp_path / "failed"))
    w.write_config({"model": resolve("lenet").to_dict(), "status": "running"})
    w.on_event(RunFailed(reason="error", message="boom", detail="Traceback\n" + "x" * 500_000 + "\nValueError: boom"),
               torch.nn.Linear(1, 1))
    cfg = ck.read_config(w.run_dir)  # readable: under the config cap
    tb = cfg["failure"]["traceback"]
    assert len(tb) < ck.MAX_TRACEBACK + 100 and tb.startswith("Traceback") and tb.endswith("ValueError: boom")
