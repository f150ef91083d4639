"""The disk cap (#23 §5): one person's runs cannot push the class's runs off the disk.

Replayed: with CNNLAB_DISK_CAP_MB=1000 the cap never removed the attacker's runs, because the warm worker that had
trained them (their `.alive` pid) was still alive, and deleted six older runs of other people instead. Here each
run folder is written at a given size (sparse files: no disk used, nothing trained) with its owner's `.owner`
digest, and runs are submitted through the executor's own `submit` (cnnlab.runs.executor) with an executor whose
runs stay queued, so every check runs in seconds."""
import os
import re
import socket
import threading

import pytest
from helpers import APP, needs_fmnist, save_tiny_run

from cnnlab import checkpoint as ckpt
from cnnlab import engine, i18n
from cnnlab.runs import AdmissionRefused, Limits, RunRefused, admission, disk, recovery
from cnnlab.runs.ledger import RunLedger
from cnnlab.runs.executor import LedgerExecutor

MB = 2**20
ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Shelf(LedgerExecutor):
    """The executors' shared submit (checks, the books, the disk share and cap); its runs never start."""

    name = "shelf"

    def __init__(self, root, limits: Limits):
        self.limits, self.out_dir, self.admission_check = limits, str(root), False
        self.ledger = RunLedger(self.name, limits)
        self._lock = threading.RLock()
        self._closed = False

    def _device_of(self, device):
        return "cpu"

    def _schedule(self):
        pass

    def _send_stop(self, worker):
        pass

    def shutdown(self):
        self._closed = True


def limits_from(monkeypatch, **env) -> Limits:
    """The server's limits from its environment, as a server reads them."""
    for k in [k for k in os.environ if k.startswith("CNNLAB_DISK") or k == "CNNLAB_RUN_DISK_MB"]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    return Limits.from_env(queue_len=64, max_runs_per_client=64)


def folder(root, name, owner, mb, age, *, status="finished", pinned=False, alive=False) -> str:
    """A run folder of `mb` megabytes (a sparse model.pt) by `owner` (a token), last written at time `age`."""
    d = os.path.join(str(root), name)
    os.makedirs(d)
    ckpt.atomic_write_json(os.path.join(d, ckpt.CONFIG), {"format": ckpt.FORMAT, "version": 1, "status": status,
                                                           "model": {"arch": "alexnet"}})
    with open(os.path.join(d, ckpt.WEIGHTS), "wb") as f:
        f.truncate(int(mb * MB))
    if owner:
        recovery.mark_owner(d, owner)
    if pinned:
        recovery.pin(d)
    if alive:  # the warm worker that trained it lives on (this process stands for it: same host, live pid)
        ckpt.atomic_write_json(os.path.join(d, recovery.ALIVE), {"pid": os.getpid(), "host": socket.gethostname()})
    os.utime(os.path.join(d, ckpt.CONFIG), (age, age))
    return d


def tc(arch="lenet", **kw):
    return engine.TrainConfig(**{"model": arch, "epochs": 1, "train_size": 512, "test_size": 256, "device": "cpu",
                                 **kw})


def alexnet(**knobs):  # AlexNet at 224: 178 MB saved (471 MB with fc_width 8192)
    return tc("alexnet", knobs=knobs)


def one_sentence_in_both_languages(e: Exception) -> None:
    from zh_scan import english_runs

    en = str(e)
    assert en and "\n" not in en and len(re.findall(r"[.!?](\s|$)", en)) <= 1, en
    zh = i18n.text_of(e, "zh")
    assert zh != en and re.search(r"[\u4e00-\u9fff]", zh) and not english_runs(zh), zh


# -- the attack, replayed ------------------------------------------------------------------------------------------

def test_the_cap_takes_the_attackers_own_runs_though_their_worker_lives_not_the_classs(tmp_path, monkeypatch):
    lim = limits_from(monkeypatch, CNNLAB_DISK_CAP_MB=1000, CNNLAB_DISK_SHARE_MB=500)
    class_runs = [folder(tmp_path, f"class-{i}", f"student-{i}", 100, 1000 + i) for i in range(6)]
    mine = [folder(tmp_path, f"attacker-{i}", "attacker", 200, 2000 + i, alive=True) for i in range(4)]
    assert recovery.is_alive(mine[0])  # what kept them before
    ex = Shelf(tmp_path, lim)
    ex.submit(tc(), "attacker")
    assert all(os.path.isdir(d) for d in class_runs), "the class's runs were deleted to make room for the attacker's"
    assert [os.path.isdir(d) for d in mine] == [False, False, False, True]  # the attacker's oldest went
    assert recovery.folder_bytes(str(tmp_path)) <= 1000 * MB


def test_after_a_run_the_cap_no_longer_keeps_finished_runs_of_a_live_worker(tmp_path):
    alive = [folder(tmp_path, f"a-{i}", "attacker", 300, 1000 + i, alive=True) for i in range(3)]
    theirs = folder(tmp_path, "class", "student", 300, 2000)
    assert disk.prune(str(tmp_path), cap_mb=700) == [alive[0], alive[1]]  # before: the class's run went
    assert os.path.isdir(theirs) and os.path.isdir(alive[2])


def test_after_a_run_the_cap_takes_the_runs_of_owners_beyond_their_share_first(tmp_path):
    from cnnlab.runs import disk

    oldest = folder(tmp_path, "class", "student", 300, 1000)
    alive = [folder(tmp_path, f"a-{i}", "attacker", 300, 2000 + i, alive=True) for i in range(3)]
    removed = disk.prune(str(tmp_path), 700, share_mb=400)  # what an executor runs when a run has ended
    assert removed == [alive[0], alive[1]] and os.path.isdir(oldest), removed


# -- eviction: the owner's own oldest first, never another owner's pinned run ---------------------------------------

def test_eviction_takes_the_owners_own_oldest_runs_first_and_never_another_owners_pinned_run(tmp_path, monkeypatch):
    lim = limits_from(monkeypatch, CNNLAB_DISK_CAP_MB=1000, CNNLAB_DISK_SHARE_MB=500)
    others = [folder(tmp_path, f"o-{i}", f"owner-{i}", 150, 1000 + i, pinned=i < 2) for i in range(5)]
    mine = [folder(tmp_path, f"me-{i}", "me", 100, 2000 + i) for i in range(2)]
    ex = Shelf(tmp_path, lim)
    ex.submit(alexnet(), "me")  # 750 + 200 + 178 > 1000: my two older runs go, though everyone else's are older
    assert not any(os.path.isdir(d) for d in mine) and all(os.path.isdir(d) for d in others)
    ex.submit(alexnet(), "late")  # 750 + 178 waiting + 178: the oldest unpinned run of someone else goes
    assert [os.path.isdir(d) for d in others] == [True, True, False, True, True]


def test_runs_training_or_waiting_and_running_folders_are_never_evicted(tmp_path, monkeypatch):
    lim = limits_from(monkeypatch, CNNLAB_DISK_CAP_MB=1000, CNNLAB_DISK_SHARE_MB=1000)
    elsewhere = folder(tmp_path, "other-server", "x", 700, 1000, status="running")  # another server trains it
    ex = Shelf(tmp_path, lim)
    ex.submit(alexnet(), "a")
    with pytest.raises(RunRefused):
        ex.submit(alexnet(), "b")  # 700 + 178 waiting + 178 > 1000, and nothing may go
    assert os.path.isdir(elsewhere) and len(ex.list()) == 1


# -- refused before it starts -----------------------------------------------------------------------------------

def test_a_run_beyond_its_owners_share_is_refused_before_it_starts(tmp_path, monkeypatch):
    lim = limits_from(monkeypatch, CNNLAB_DISK_CAP_MB=100000, CNNLAB_DISK_SHARE_MB=300)
    pinned = folder(tmp_path, "pinned", "me", 250, 1000, pinned=True)  # the teacher's pin: not my share
    ex = Shelf(tmp_path, lim)
    ex.submit(alexnet(), "me")  # 178 MB, waiting
    with pytest.raises(RunRefused) as e:
        ex.submit(alexnet(), "me")  # 178 + 178 > 300
    assert "178 MB" in str(e.value) and "300 MB" in str(e.value)
    one_sentence_in_both_languages(e.value)
    assert len(ex.list()) == 1 and os.path.isdir(pinned)
    with pytest.raises(RunRefused) as e:
        Shelf(tmp_path, limits_from(monkeypatch, CNNLAB_DISK_SHARE_MB=100)).submit(alexnet(), "you")  # alone > share
    one_sentence_in_both_languages(e.value)


def test_a_run_beyond_the_cap_is_refused_before_it_starts_and_nothing_is_deleted(tmp_path, monkeypatch):
    lim = limits_from(monkeypatch, CNNLAB_DISK_CAP_MB=1000, CNNLAB_DISK_SHARE_MB=1000)
    pinned = [folder(tmp_path, f"p-{i}", f"owner-{i}", 240, 1000 + i, pinned=True) for i in range(4)]
    mine = folder(tmp_path, "mine", "me", 20, 2000)
    ex = Shelf(tmp_path, lim)
    with pytest.raises(RunRefused) as e:
        ex.submit(alexnet(), "me")  # 960 pinned + 20 + 178 > 1000: even without my run it does not fit
    assert "1000 MB" in str(e.value) and "178 MB" in str(e.value)
    one_sentence_in_both_languages(e.value)
    assert all(os.path.isdir(d) for d in pinned + [mine]) and ex.list() == []


# -- the image ---------------------------------------------------------------------------------------------------

def test_the_image_sets_a_disk_cap_sized_to_the_spaces_disk(monkeypatch):
    from cnnlab.presets import BOOK_PRESETS, CPU_PRESETS

    with open(os.path.join(ROOT_DIR, "Dockerfile"), encoding="utf-8") as f:
        m = re.search(r"^\s*CNNLAB_DISK_CAP_MB=(\d+)", f.read(), re.M)
    assert m, "the Dockerfile sets no CNNLAB_DISK_CAP_MB"
    lim = limits_from(monkeypatch, CNNLAB_DISK_CAP_MB=m.group(1))
    # under a 20 GB disk (a Space's smallest persistent disk; its own disk is larger) with room for a save's temp copy
    assert lim.disk_cap_mb * MB + lim.run_disk_budget_mb * MB <= 20e9
    biggest = 0
    for p in BOOK_PRESETS + CPU_PRESETS:
        v = p.values()
        biggest = max(biggest, admission.checkpoint_bytes(engine.TrainConfig(
            model=v["arch"], knobs=v["knobs"], resolution=v["resolution"], epochs=v["epochs"],
            batch_size=v["batch_size"], train_size=min(v["train_size"], 60000), device="cpu").resolved()))
    assert biggest * 3 <= lim.run_disk_budget_mb * MB  # a student keeps three runs of the biggest preset


# -- the checkpoint's size in the estimate ------------------------------------------------------------------------

def test_the_checkpoint_size_is_in_the_estimate_and_beyond_the_per_run_limit_the_run_is_refused(monkeypatch):
    monkeypatch.setenv("CNNLAB_LOAD_PROBE", "0")
    big = alexnet(fc_width=8192).resolved()
    lim = limits_from(monkeypatch, CNNLAB_RUN_DISK_MB=256, CNNLAB_RUN_MEM_MB=100000, CNNLAB_MAX_RUN_HOURS=1000)
    est = admission.estimate(big, "cpu", lim)
    assert abs(est.disk_bytes / MB - 471) < 2, est.disk_bytes  # measured: 471 MB per run
    assert not est.fits_disk and est.fits_memory and est.fits_time
    with pytest.raises(AdmissionRefused) as e:
        admission.check(big, "cpu", lim)
    assert "471 MB" in str(e.value) and "256 MB" in str(e.value), e.value
    one_sentence_in_both_languages(e.value)
    assert admission.check(alexnet().resolved(), "cpu", lim).disk_bytes < 256 * MB  # the book's AlexNet fits


@needs_fmnist
@pytest.mark.parametrize("knobs,extra", [({}, {}), ({"batchnorm": "scratch"}, {"bn_every": 1, "batch_size": 64})],
                         ids=["lenet", "bn-lenet-bn-every-step"])
def test_the_disk_estimate_holds_what_a_real_run_saves(tmp_path, knobs, extra):
    save_tiny_run(tmp_path, knobs=knobs, **extra)
    (run,) = os.listdir(tmp_path)
    got = recovery.folder_bytes(os.path.join(tmp_path, run))
    want = admission.checkpoint_bytes(engine.TrainConfig(model="lenet", knobs=knobs, epochs=2, train_size=1000,
                                                         test_size=200, device="cpu", **extra).resolved())
    assert got <= want <= 1.15 * got, (got, want)


def test_the_train_page_says_before_start_that_a_run_would_save_too_much(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from cnnlab.ui.common import executor

    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path))
    executor()  # the server's one executor exists before these limits are set: they must not outlive this test
    limits_from(monkeypatch, CNNLAB_RUN_DISK_MB=256, CNNLAB_RUN_MEM_MB=100000, CNNLAB_MAX_RUN_HOURS=1000)
    monkeypatch.setenv("CNNLAB_LOAD_PROBE", "0")
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["lang"] = "zh"
    at.run()
    at.switch_page("app_pages/train.py").run()
    at.query_params.clear()  # a link with these settings
    for k, v in {"arch": "alexnet", "fc_width": "8192", "ntr": "512", "nte": "256", "ep": "1", "lang": "zh"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [x.value for x in at.exception]
    said = [w.value for w in at.warning]
    assert any("471 MB" in w and "256 MB" in w and "每次训练约保存" in w for w in said), said
