"""Run folders seen from the executor: who trains them, runs a killed server left behind, pins, the disk cap.

* ``mark_alive(run_dir)`` writes ``.alive`` ({"pid", "host"}) into a run folder as soon as a process starts
  training it (the local worker, the CLI, a Ray worker on this host).
* ``recover_interrupted(root)`` — called when an executor starts — finds run folders whose config.json still
  says ``"status": "running"`` although no live process on this host trains them (the previous server was
  killed) and rewrites their status to ``"interrupted"`` atomically, keeping everything else: the weights
  of the last finished epoch stay where they are and load with :func:`cnnlab.checkpoint.load_run`.
  Folders marked alive by another host are left alone (a shared checkpoint folder in a cluster).
* ``pin(run_dir)`` / ``is_pinned`` and ``prune(root, cap_mb)``: beyond the disk cap the oldest finished,
  unpinned run folders are deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from typing import Iterable

from .. import checkpoint as ckpt

ALIVE = ".alive"
PINNED = ".pinned"
INTERRUPTED_MESSAGE = "the server stopped while this run was training; the last finished epoch's weights are kept"


def mark_alive(run_dir: str | None) -> None:
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


def is_alive(run_dir: str) -> bool:
    """Whether a live process on this host says it trains this folder (False for another host's marker: see
    `foreign`)."""
    try:
        with open(os.path.join(run_dir, ALIVE), encoding="utf-8") as f:
            m = json.load(f)
        return m.get("host") == socket.gethostname() and _pid_alive(int(m.get("pid", 0)))
    except (OSError, ValueError, TypeError):
        return False


def _foreign(run_dir: str) -> bool:
    try:
        with open(os.path.join(run_dir, ALIVE), encoding="utf-8") as f:
            return json.load(f).get("host") != socket.gethostname()
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def update_config(run_dir: str, **fields) -> bool:
    """Rewrite config.json with `fields` changed (atomic). False if the folder is not a readable run."""
    try:
        cfg = ckpt.read_config(run_dir)
        cfg.update(fields)
        ckpt.atomic_write_json(os.path.join(run_dir, ckpt.CONFIG), cfg)
        return True
    except (OSError, ckpt.CheckpointError):
        return False


def recover_interrupted(root: str | None, skip: Iterable[str] = ()) -> list[str]:
    """Mark runs left "running" by a killed server as "interrupted"; returns their folders."""
    if not root or not os.path.isdir(root):
        return []
    skip = {os.path.abspath(s) for s in skip}
    out = []
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if os.path.abspath(d) in skip or not os.path.isfile(os.path.join(d, ckpt.CONFIG)):
            continue
        try:
            cfg = ckpt.read_config(d)
        except ckpt.CheckpointError:
            continue
        if cfg.get("status") != "running" or is_alive(d) or _foreign(d):
            continue
        metrics = ckpt.read_metrics(d)
        if update_config(d, status="interrupted",
                         failure={"reason": "interrupted", "message": INTERRUPTED_MESSAGE},
                         final={"epochs": int(metrics[-1].get("epoch", 0)) if metrics else 0}):
            out.append(d)
    return out


# -- pins and the disk cap ------------------------------------------------------------

def pin(run_dir: str, pinned: bool = True) -> None:
    path = os.path.join(run_dir, PINNED)
    if pinned:
        with open(path, "w") as f:
            f.write("pinned: never pruned by the disk cap\n")
    elif os.path.exists(path):
        os.remove(path)


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


def prune(root: str | None, cap_mb: int | None, keep: Iterable[str] = ()) -> list[str]:
    """Delete the oldest finished, unpinned run folders until the folders under `root` fit in `cap_mb`.
    Folders in `keep` (active runs), pinned ones and ones still training are never deleted."""
    if not root or cap_mb is None or not os.path.isdir(root):
        return []
    keep = {os.path.abspath(k) for k in keep}
    rows = []
    for name in os.listdir(root):
        d = os.path.join(root, name)
        if os.path.isfile(os.path.join(d, ckpt.CONFIG)):
            rows.append((os.path.getmtime(os.path.join(d, ckpt.CONFIG)), d, folder_bytes(d)))
    total = sum(b for _, _, b in rows)
    cap = cap_mb * 1024 * 1024
    removed = []
    for _, d, b in sorted(rows):
        if total <= cap:
            break
        if os.path.abspath(d) in keep or is_pinned(d) or is_alive(d):
            continue
        try:
            status = ckpt.read_config(d).get("status")
        except ckpt.CheckpointError:
            status = "unreadable"
        if status == "running":
            continue
        shutil.rmtree(d, ignore_errors=True)
        total -= b
        removed.append(d)
    return removed
