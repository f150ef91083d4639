"""Run folders seen from the executor: who trains them, runs a killed server left behind, pins, the disk cap.

* ``mark_alive(run_dir)`` writes ``.alive`` ({"pid", "host"}) into a run folder as soon as a process starts
  training it (the local worker, the CLI, a Ray worker on this host).
* ``recover_interrupted(root)`` — called when an executor starts — finds run folders whose config.json still
  says ``"status": "running"`` although no live process on this host trains them (the previous server was
  killed) and rewrites their status to ``"interrupted"`` atomically, keeping everything else: the weights
  of the last finished epoch stay where they are and load with :func:`cnnlab.checkpoint.load_run`.
  Folders marked alive by another host are left alone (a shared checkpoint folder in a cluster).
* ``pin(run_dir)`` / ``is_pinned`` and ``prune(root, cap_mb)``: beyond the disk cap the oldest finished,
  unpinned run folders are deleted (cnnlab.runs.disk: the owner's share, and what is refused before it starts).

The run store may be a Storage Bucket mount (eventual consistency, no locks, last writer wins) or a folder two
servers share, so every file here is one record written whole by rename (``.alive``, ``.owner``, ``.class.json``
and ``.pinned`` each by one writer: the process training the run, its executor, the teacher's pin), nothing is
read-modify-written by two writers, and readers take a file that is missing, late or half-written, and a folder
listed that is gone by the time it is read, as "not there yet" or "gone", never as an error.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Iterable

from .. import checkpoint as ckpt

ALIVE = ".alive"
PINNED = ".pinned"
INTERRUPTED_MESSAGE = "the server stopped while this run was training; the last finished epoch's weights are kept"
# a "running" run with no readable .alive is left alone this long after its config.json was written: the process
# that trains it may not have marked it yet, or the mark may not have reached this server (eventual consistency)
UNMARKED_GRACE_S = 120.0


def mark_alive(run_dir: str | None) -> None:
    """Written once, whole, by the one process that trains the run (never rewritten by another)."""
    if not run_dir:
        return
    try:
        ckpt.atomic_write_json(os.path.join(run_dir, ALIVE), {"pid": os.getpid(), "host": socket.gethostname()})
    except OSError:
        pass


OWNER = ".owner"


def owner_digest(owner: str) -> str:
    import hashlib

    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def mark_owner(run_dir: str | None, owner: str) -> None:
    """Record who started a run (a digest of the owner token, never the token) for pages that list folders."""
    if not run_dir or not owner:
        return
    try:
        ckpt.atomic_write_text(os.path.join(run_dir, OWNER), owner_digest(owner) + "\n")
    except OSError:
        pass


CLASS = ".class.json"
# what the class board groups runs by (the Train page's meta), and the exercise pair a run belongs to
CLASS_KEYS = ("preset", "assignment", "exercise", "side", "pair")


def mark_class(run_dir: str | None, meta: dict) -> None:
    """Record the preset and assignment a run was started under (the teacher's class board groups by them), and
    the exercise pair it is one side of (so it is labelled "<exercise> A" on every page, after a restart too)."""
    if not run_dir:
        return
    vals = {k: meta.get(k) for k in CLASS_KEYS if isinstance(meta.get(k), str) and len(meta[k]) <= 64}
    if not vals:
        return
    try:
        ckpt.atomic_write_json(os.path.join(run_dir, CLASS), vals)
    except OSError:
        pass


def run_class(run_dir: str) -> dict:
    """{"preset": ..., "assignment": ..., "exercise": ...} as recorded by mark_class ({} if none or unreadable)."""
    try:
        data = ckpt._parse_json(ckpt._read_capped(os.path.join(run_dir, CLASS), 4096), CLASS)
    except (ckpt.CheckpointError, ValueError, UnicodeDecodeError):
        return {}
    return {k: data[k] for k in CLASS_KEYS if isinstance(data, dict) and isinstance(data.get(k), str)}


def run_owner(run_dir: str) -> str | None:
    try:
        with open(os.path.join(run_dir, OWNER), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped) is not training anything
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _alive_mark(run_dir: str) -> dict | None:
    """The .alive record ({"pid", "host"}), or None when it is missing, late or unreadable."""
    try:
        with open(os.path.join(run_dir, ALIVE), encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return m if isinstance(m, dict) and isinstance(m.get("host"), str) else None


def is_alive(run_dir: str) -> bool:
    """Whether a live process on this host says it trains this folder (False for another host's marker: see
    `foreign`)."""
    m = _alive_mark(run_dir)
    try:
        return m is not None and m["host"] == socket.gethostname() and _pid_alive(int(m.get("pid", 0)))
    except (ValueError, TypeError):
        return False


def _foreign(run_dir: str) -> bool:
    m = _alive_mark(run_dir)
    return m is not None and m["host"] != socket.gethostname()


def _unmarked_and_young(run_dir: str, now: float | None = None) -> bool:
    """No readable .alive yet, and config.json was written less than UNMARKED_GRACE_S ago."""
    if _alive_mark(run_dir) is not None:
        return False
    try:
        age = (time.time() if now is None else now) - os.stat(os.path.join(run_dir, ckpt.CONFIG)).st_mtime
    except OSError:
        return True  # gone meanwhile: nothing to recover
    return age < UNMARKED_GRACE_S


def update_config(run_dir: str, **fields) -> bool:
    """Rewrite config.json with `fields` changed (atomic). False if the folder is not a readable run.

    A read-modify-write, so only for the run's one writer at a time: its executor once its worker has ended (the
    worker writes config.json itself while it trains), or `recover_interrupted` once no process trains it. Two
    servers recovering one run at once write the same fields, so either write may win."""
    try:
        cfg = ckpt.read_config(run_dir)
        cfg.update(fields)
        ckpt.atomic_write_json(os.path.join(run_dir, ckpt.CONFIG), cfg)
        return True
    except (OSError, ckpt.CheckpointError):
        return False


def recover_interrupted(root: str | None, skip: Iterable[str] = ()) -> list[str]:
    """Mark runs left "running" by a killed server as "interrupted"; returns their folders.

    Left alone: runs a live process on this host trains, runs marked by another host (a shared folder), and
    runs not marked at all whose config.json is younger than UNMARKED_GRACE_S (just started, or the mark is
    late). A folder that vanishes or is unreadable meanwhile is skipped."""
    if not root or not os.path.isdir(root):
        return []
    skip = {os.path.abspath(s) for s in skip}
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    for name in names:
        d = os.path.join(root, name)
        if os.path.abspath(d) in skip or not os.path.isfile(os.path.join(d, ckpt.CONFIG)):
            continue
        try:
            cfg = ckpt.read_config(d)
        except ckpt.CheckpointError:
            continue
        if cfg.get("status") != "running" or is_alive(d) or _foreign(d) or _unmarked_and_young(d):
            continue
        try:
            metrics = ckpt.read_metrics(d)
        except ckpt.CheckpointError:
            metrics = []
        if update_config(d, status="interrupted",
                         failure={"reason": "interrupted", "message": INTERRUPTED_MESSAGE},
                         final={"epochs": int(metrics[-1].get("epoch", 0)) if metrics else 0}):
            out.append(d)
    return out


# -- pins and the disk cap ------------------------------------------------------------

def pin(run_dir: str, pinned: bool = True) -> None:
    """Pin (a one-line file of its own, written whole by rename) or unpin (removed; already gone is fine)."""
    path = os.path.join(run_dir, PINNED)
    if pinned:
        ckpt.atomic_write_text(path, "pinned: never pruned by the disk cap\n")
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def is_pinned(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, PINNED))


def folder_bytes(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


# -- the queue, kept across a restart --------------------------------------------------------------------------
# A waiting run lives only in the server's memory; a killed server lost every one without a trace. Each waiting
# run is also one record of its own, <root>/.queue/<run id>.json, written whole at submit by the server that
# queued it and removed when the run starts or ends. Records a dead server left behind are moved, at start-up,
# to <root>/.not_started/, where the Train page shows each to its owner (by digest) as "did not start".
QUEUE, NOT_STARTED = ".queue", ".not_started"
_QUEUE_KEYS = ("arch", "knobs", "resolution", "preset", "assignment", "exercise", "side")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,80}")


def note_queued(root: str | None, run_id: str, owner: str, label: str, meta: dict) -> None:
    if not root or not _ID.fullmatch(run_id):
        return
    rec = {"id": run_id, "owner": owner_digest(owner), "label": str(label)[:200], "created": time.time(),
           "host": socket.gethostname(), "pid": os.getpid(), "meta": {k: meta.get(k) for k in _QUEUE_KEYS}}
    try:
        os.makedirs(os.path.join(root, QUEUE), exist_ok=True)
        ckpt.atomic_write_json(os.path.join(root, QUEUE, run_id + ".json"), rec)
    except (OSError, TypeError, ValueError):
        pass


def forget_queued(root: str | None, run_id: str) -> None:
    if root and _ID.fullmatch(run_id):
        try:
            os.remove(os.path.join(root, QUEUE, run_id + ".json"))
        except OSError:
            pass


def _read_small(path: str) -> dict | None:
    try:
        data = ckpt._parse_json(ckpt._read_capped(path, 16 << 10), path)
    except (ckpt.CheckpointError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def recover_queue(root: str | None) -> list[str]:
    """At start-up: the waiting runs a dead server on this host left (their records) become "not started"
    records; returns their ids. Another host's records, or a live process's, are left alone."""
    if not root:
        return []
    folder = os.path.join(root, QUEUE)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(folder, name)
        rec = _read_small(path)
        if rec is None or rec.get("host") != socket.gethostname():
            continue
        try:
            if _pid_alive(int(rec.get("pid", 0))):
                continue
        except (TypeError, ValueError):
            pass
        try:
            os.makedirs(os.path.join(root, NOT_STARTED), exist_ok=True)
            os.replace(path, os.path.join(root, NOT_STARTED, name))
            out.append(str(rec.get("id")))
        except OSError:
            continue
    return out


def not_started(root: str | None, owner: str) -> list[dict]:
    """This owner's runs that were waiting when the server stopped, and never started (oldest first)."""
    if not root:
        return []
    folder, me = os.path.join(root, NOT_STARTED), owner_digest(owner)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    recs = [r for r in (_read_small(os.path.join(folder, n)) for n in names[:2000]) if r and r.get("owner") == me]
    return sorted(recs, key=lambda r: r.get("created") or 0)


def dismiss_not_started(root: str | None, owner: str, run_id: str) -> None:
    """The owner has read it: the record goes (only the owner's own)."""
    if not root or not _ID.fullmatch(str(run_id)):
        return
    path = os.path.join(root, NOT_STARTED, f"{run_id}.json")
    rec = _read_small(path)
    if rec and rec.get("owner") == owner_digest(owner):
        try:
            os.remove(path)
        except OSError:
            pass
