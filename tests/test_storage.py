"""The run store as a Storage Bucket mount or a folder two servers share sees it (#22 §2, #23 §6): no locks,
eventual consistency, last writer wins. So every file is one record written whole by one writer, by rename, and
nothing is read-modify-written by several writers; readers take a file that is missing, late or half-written,
a folder listed before its files, and a listing that is stale by the time it is read.

No training here (hand-written run folders); tests/test_two_servers.py walks the same with two real servers."""
from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from cnnlab import assignments as asg
from cnnlab import checkpoint as ckpt
from cnnlab import teacher
from cnnlab.runs import disk, recovery


def _tok(i: int) -> str:
    return f"student-owner-token-{i:04d}-abcdefgh"


def _run(root, name: str, status: str = "finished") -> str:
    """A run folder as the executor leaves it (config.json only: enough for listings and recovery)."""
    d = os.path.join(str(root), name)
    os.makedirs(d)
    ckpt.atomic_write_json(os.path.join(d, ckpt.CONFIG), {
        "format": ckpt.FORMAT, "version": ckpt.VERSION, "run_id": name, "created": "2026-01-01T00:00:00+00:00",
        "status": status, "model": {"arch": "lenet", "knobs": {}}, "train": {"epochs": 1}})
    return d


def _age(path: str, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


# -- nicknames: one record per student --------------------------------------------------------------------

def test_ten_students_setting_nicknames_at_the_same_moment_keep_all_ten(tmp_path):
    """Each browser session makes its own Nicknames (as the sidebar does); before, every one of them rewrote one
    shared file, and 10 at once kept 3."""
    root = str(tmp_path)
    for rnd in range(3):  # a few rounds: a lost write is a race, so give it several chances to show
        n = 10
        start = threading.Barrier(n)
        errors = []

        def one(i):
            try:
                start.wait()
                teacher.Nicknames(root).set(_tok(rnd * 100 + i), f"Student {rnd} {i}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        look = teacher.Nicknames(root)
        kept = {i: look.of_owner(_tok(rnd * 100 + i)) for i in range(n)}
        assert kept == {i: f"Student {rnd} {i}" for i in range(n)}, f"round {rnd}: kept {kept}"


def test_a_nickname_is_one_record_named_by_the_owner_digest(tmp_path):
    d = recovery.owner_digest(_tok(1))
    assert teacher.Nicknames(str(tmp_path)).set(_tok(1), " Ada   L ") == "Ada L"
    rec = tmp_path / teacher.NICK_FOLDER / f"{d}.json"
    data = json.loads(rec.read_text())
    assert data["owner"] == d and data["nickname"] == "Ada L" and data["format"] == teacher.NICK_FORMAT
    assert _tok(1) not in rec.read_text()  # the digest, never the token
    assert not (tmp_path / teacher.NICKNAMES).exists()  # the older one-file store is never written
    assert sorted(os.listdir(tmp_path / teacher.NICK_FOLDER)) == [f"{d}.json"]  # no temp file left behind
    teacher.Nicknames(str(tmp_path)).set(_tok(1), "")
    assert teacher.Nicknames(str(tmp_path)).of_owner(_tok(1)) is None


def test_nicknames_of_a_store_written_before_are_still_read(tmp_path):
    """A store written by the one-file layout keeps its nicknames; a new record wins; a removed one stays removed
    (it is a record too, so the old entry does not come back)."""
    a, b, c = (recovery.owner_digest(_tok(i)) for i in (1, 2, 3))
    (tmp_path / teacher.NICKNAMES).write_text(json.dumps({a: "Ada", b: "Alan", c: "<b>x</b>", "nope": "Z"}))
    n = teacher.Nicknames(str(tmp_path))
    assert (n.get(a), n.get(b), n.get(c)) == ("Ada", "Alan", None)
    teacher.Nicknames(str(tmp_path)).set(_tok(1), "Ada L")
    teacher.Nicknames(str(tmp_path)).set(_tok(2), "")
    n = teacher.Nicknames(str(tmp_path))
    assert (n.get(a), n.get(b)) == ("Ada L", None)
    assert json.loads((tmp_path / teacher.NICKNAMES).read_text())[a] == "Ada"  # left as it was


def test_nickname_readers_take_late_half_written_and_foreign_records(tmp_path):
    a = recovery.owner_digest(_tok(1))
    (tmp_path / teacher.NICKNAMES).write_text(json.dumps({a: "Ada"}))
    folder = tmp_path / teacher.NICK_FOLDER
    folder.mkdir()  # a folder listed before its files: no record yet → the older store's nickname
    assert teacher.Nicknames(str(tmp_path)).get(a) == "Ada"
    for half in ("", "{", "{}", json.dumps({"format": teacher.NICK_FORMAT, "owner": a}),
                 json.dumps({"format": teacher.NICK_FORMAT, "owner": "0" * 32, "nickname": "Eve"}),
                 json.dumps({"format": teacher.NICK_FORMAT, "owner": a, "nickname": "<script>"})):
        (folder / f"{a}.json").write_text(half)
        assert teacher.Nicknames(str(tmp_path)).get(a) == "Ada", half
    os.remove(folder / f"{a}.json")
    os.mkdir(folder / f"{a}.json")  # not a file at all
    assert teacher.Nicknames(str(tmp_path)).get(a) == "Ada"
    assert teacher.Nicknames(str(tmp_path)).get("../../etc/passwd") is None
    assert teacher.Nicknames(str(tmp_path / "nothing-here")).label(a).startswith("student ")


def test_two_servers_on_one_folder_keep_every_nickname(tmp_path):
    """Two processes (two app servers) and their sessions at once on one folder."""
    import subprocess
    import sys

    code = ("import sys, threading; from cnnlab import teacher\n"
            "root, side = sys.argv[1], sys.argv[2]\n"
            "b = threading.Barrier(8)\n"
            "def one(i):\n"
            "    b.wait(); teacher.Nicknames(root).set(f'student-{side}-{i}-token-abcdefgh', f'S {side} {i}')\n"
            "ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n")
    root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root_dir}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), side], env=env, cwd=root_dir)
             for side in "AB"]
    assert all(p.wait(120) == 0 for p in procs)
    n = teacher.Nicknames(str(tmp_path))
    kept = {f"{s}{i}": n.of_owner(f"student-{s}-{i}-token-abcdefgh") for s in "AB" for i in range(8)}
    assert kept == {f"{s}{i}": f"S {s} {i}" for s in "AB" for i in range(8)}


# -- run folders: listings that are stale, records that are late ------------------------------------------

def test_a_run_folder_deleted_while_it_is_listed_is_gone_not_unreadable(tmp_path, monkeypatch):
    keep, gone = _run(tmp_path, "20260101-000001-lenet-aaaa"), _run(tmp_path, "20260101-000002-lenet-bbbb")
    os.makedirs(tmp_path / "20260101-000003-lenet-cccc")  # a folder listed before its files
    real = ckpt.read_config

    def read_after_the_other_server_deleted_it(d):
        if os.path.basename(d) == os.path.basename(gone) and os.path.isdir(gone):
            import shutil
            shutil.rmtree(gone)
        return real(d)

    monkeypatch.setattr(ckpt, "read_config", read_after_the_other_server_deleted_it)
    rows = ckpt.list_runs(str(tmp_path))
    assert [(r.run_dir, r.status) for r in rows] == [(keep, "finished")]


def test_prune_skips_a_folder_the_other_server_deleted_meanwhile(tmp_path, monkeypatch):
    dirs = [_run(tmp_path, f"20260101-00000{i}-lenet-aaa{i}") for i in range(3)]
    for i, d in enumerate(dirs):
        _age(os.path.join(d, ckpt.CONFIG), 100 - i)
    real = os.path.getmtime

    def stale(path):
        if path == os.path.join(dirs[0], ckpt.CONFIG) and os.path.isdir(dirs[0]):
            import shutil
            shutil.rmtree(dirs[0])
        return real(path)

    monkeypatch.setattr(os.path, "getmtime", stale)
    removed = disk.prune(str(tmp_path), 0)
    assert not os.path.exists(dirs[0]) and sorted(removed) == sorted(dirs[1:])


def test_assignment_prune_and_listing_take_a_stale_listing(tmp_path, monkeypatch):
    made = [asg.create(tmp_path, {"arch": "lenet", "ep": "1"}, ["arch"], title=f"a{i}") for i in range(3)]
    folder = os.path.join(str(tmp_path), asg.FOLDER)
    real = os.path.getmtime
    victim = os.path.join(folder, made[0].id + ".json")

    def stale(path):
        if path == victim and os.path.exists(victim):
            os.remove(victim)
        return real(path)

    monkeypatch.setattr(os.path, "getmtime", stale)
    monkeypatch.setattr(asg, "MAX_ASSIGNMENTS", 1)
    asg._prune(folder)  # before: the vanished file made the whole prune give up
    assert len([n for n in os.listdir(folder) if n.endswith(".json")]) == 1
    # a half-written record and a stray folder never hide the good one
    open(os.path.join(folder, "Halfwritten1.json"), "w").write('{"format": "cnnlab-assignment"')
    os.mkdir(os.path.join(folder, "Afolder1234.json"))
    monkeypatch.setattr(asg, "MAX_ASSIGNMENTS", 200)
    assert [a.id for a in asg.list_all(tmp_path)] == [made[2].id]


def test_pins_are_written_whole_and_unpinning_twice_is_fine(tmp_path):
    d = _run(tmp_path, "20260101-000001-lenet-aaaa")
    recovery.pin(d)
    recovery.pin(d)  # the teacher on each server
    assert recovery.is_pinned(d) and not [n for n in os.listdir(d) if n.endswith(".tmp")]
    recovery.pin(d, False)
    recovery.pin(d, False)  # already unpinned on the other server: no error
    assert not recovery.is_pinned(d)


def test_recovery_leaves_a_just_started_run_whose_mark_is_late(tmp_path):
    """A server starting while another has just started a run (config.json written, .alive not yet, or not yet
    seen through the mount) must not mark that run interrupted: it would be a second writer of its config.json."""
    young = _run(tmp_path, "20260101-000001-lenet-aaaa", "running")
    half = _run(tmp_path, "20260101-000002-lenet-bbbb", "running")
    open(os.path.join(half, recovery.ALIVE), "w").write("")  # half-written as seen from here
    old = _run(tmp_path, "20260101-000003-lenet-cccc", "running")  # its server died before marking it
    _age(os.path.join(old, ckpt.CONFIG), 3600)
    dead = _run(tmp_path, "20260101-000004-lenet-dddd", "running")  # marked by a process that is gone
    ckpt.atomic_write_json(os.path.join(dead, recovery.ALIVE), {"pid": 2 ** 22 + 12345, "host": socket.gethostname()})
    other = _run(tmp_path, "20260101-000005-lenet-eeee", "running")
    _age(os.path.join(other, ckpt.CONFIG), 3600)
    ckpt.atomic_write_json(os.path.join(other, recovery.ALIVE), {"pid": 1, "host": "another-host"})
    assert sorted(recovery.recover_interrupted(str(tmp_path))) == sorted([old, dead])
    status = {os.path.basename(r.run_dir)[-4:]: r.status for r in ckpt.list_runs(str(tmp_path))}
    assert status == {"aaaa": "running", "bbbb": "running", "cccc": "interrupted", "dddd": "interrupted",
                      "eeee": "running"}


def test_the_teacher_cannot_delete_a_run_another_server_is_training(tmp_path):
    """On one server, a run the other server trains is a folder saying "running" (not live here): deleting it
    would pull the folder from under its trainer."""
    from cnnlab import classroom

    d = _run(tmp_path, "20260101-000001-lenet-aaaa", "running")
    done = _run(tmp_path, "20260101-000002-lenet-bbbb")
    ckpt.atomic_write_json(os.path.join(d, recovery.ALIVE), {"pid": 1, "host": "the-other-server"})
    runs = {r.run_dir: r for r in classroom.class_runs(None, str(tmp_path))}
    assert not runs[d].live and runs[d].state == "running"
    with pytest.raises(classroom.ClassError, match="stop it first"):
        classroom.delete(runs[d], str(tmp_path))
    assert os.path.isdir(d)
    classroom.delete(runs[done], str(tmp_path))
    assert not os.path.exists(done)
