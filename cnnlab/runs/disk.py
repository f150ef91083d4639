"""The disk cap: each owner's share of the run store, checked before a run is queued, and what goes to make room.

Limits (cnnlab.runs.base.Limits, from the environment): ``disk_cap_mb`` for all run folders under one root,
``share_mb`` for one owner's runs (CNNLAB_DISK_SHARE_MB, else the cap divided among a class of 30), and what one
run may save (``run_disk_budget_mb``, in the admission estimate). When a run is submitted, `make_room` adds up
the folders under its root by owner (``.owner``, a digest of the owner token), the bytes the runs training or
waiting have still to write, and the new run's own (cnnlab.runs.admission.checkpoint_bytes). Then:

1. beyond the owner's share, the owner's own oldest finished runs go; beyond the cap, the owner's own oldest
   finished runs go first, then other people's oldest finished runs (those of owners beyond their share first);
2. a pinned run (the teacher's ``.pinned``) never goes, nor does a run training or waiting, nor a folder whose
   config.json says "running" (another server may be training it);
3. if the run still does not fit its owner's share or the cap, it is refused (DiskRefused: one sentence) before
   it is queued, and nothing is deleted.

A pinned run counts towards the cap, not towards its owner's share (the teacher pinned it). A folder's ``.alive``
says nothing once its run has finished: a warm worker that trained it lives on and trains the next run, so the old
prune that kept every folder of a live worker kept one person's runs and deleted everyone else's. What a folder
holds is its files' sizes; a folder is finished when its config.json says so.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Iterable

from .. import checkpoint as ckpt
from ..i18n import msg
from ..units import fmt_bytes
from . import recovery
from .base import DiskRefused

MB = 2**20


@dataclass(frozen=True)
class Folder:
    path: str
    owner: str | None     # digest of the owner token (.owner), None when unknown (the CLI, an older store)
    bytes: int
    mtime: float          # config.json's last write: a finished run's end
    pinned: bool
    running: bool         # config.json says "running"


def scan(root: str | None) -> list[Folder]:
    """The run folders under `root` (those with a config.json); a folder gone meanwhile is skipped."""
    if not root or not os.path.isdir(root):
        return []
    try:
        names = os.listdir(root)
    except OSError:
        return []
    out = []
    for name in names:
        d = os.path.join(root, name)
        try:
            mtime = os.path.getmtime(os.path.join(d, ckpt.CONFIG))
        except OSError:  # not a run, or gone since the listing (another server deleted it)
            continue
        try:
            status = ckpt.read_config(d).get("status")
        except ckpt.CheckpointError:
            status = "unreadable"
        out.append(Folder(path=d, owner=recovery.run_owner(d), bytes=recovery.folder_bytes(d),
                          mtime=mtime, pinned=recovery.is_pinned(d), running=status == "running"))
    return out


def _usage(folders: list[Folder], pending: dict) -> dict:
    """Bytes by owner digest that count towards a share: unpinned folders and what active runs have still to write."""
    use: dict = {}
    for f in folders:
        if not f.pinned:
            use[f.owner] = use.get(f.owner, 0) + f.bytes
    for o, b in pending.items():
        use[o] = use.get(o, 0) + b
    return use


def plan(folders: list[Folder], *, owner: str | None, need: int, cap: int | None, share: int | None,
         pending: dict | None = None, keep: Iterable[str] = (), strict: bool = True) -> list[Folder]:
    """The folders to delete so that a new run of `owner` (a digest; None: no one's, as after a run has ended)
    saving `need` bytes fits the owner's `share` and the `cap` (bytes; None: no limit), in the order they go.
    `pending`: bytes the active runs have still to write, by owner digest; `keep`: their folders. Raises
    DiskRefused when it cannot fit (`strict=False`: returns every folder that may go instead); deletes nothing."""
    pending = dict(pending or {})
    keep = {os.path.abspath(k) for k in keep}

    def evictable(f: Folder) -> bool:
        return not (f.pinned or f.running or os.path.abspath(f.path) in keep)

    mine = [] if owner is None else sorted((f for f in folders if f.owner == owner and evictable(f)),
                                           key=lambda f: f.mtime)
    out: list[Folder] = []
    if share is not None and owner is not None:
        used = _usage(folders, pending).get(owner, 0)
        while used + need > share and mine:
            f = mine.pop(0)
            out.append(f)
            used -= f.bytes
        if used + need > share and strict:
            if used <= 0:  # the run alone is more than a share (the admission estimate refuses it first)
                raise DiskRefused(msg("msg.disk_share_run", disk=fmt_bytes(need), share=fmt_bytes(share)))
            raise DiskRefused(msg("msg.disk_share", disk=fmt_bytes(need), used=fmt_bytes(used), share=fmt_bytes(share)))
    if cap is not None:
        total = sum(f.bytes for f in folders) + sum(pending.values()) - sum(f.bytes for f in out)
        use = _usage(folders, pending)
        over = {o for o, b in use.items() if share is not None and b > share}
        others = sorted((f for f in folders if (owner is None or f.owner != owner) and evictable(f)),
                        key=lambda f: (f.owner not in over, f.mtime))
        for f in mine + others:  # the owner's own oldest first
            if total + need <= cap:
                break
            out.append(f)
            total -= f.bytes
        if total + need > cap and strict:
            raise DiskRefused(msg("msg.disk_full", used=fmt_bytes(total), whole=fmt_bytes(cap), disk=fmt_bytes(need)))
    return out


def limits_bytes(limits) -> tuple[int | None, int | None]:
    """(cap, share) in bytes from a Limits (None: no limit)."""
    cap, share = limits.disk_cap_mb, limits.share_mb
    return (None if cap is None else max(0, cap) * MB), (None if share is None else share * MB)


def make_room(root: str | None, limits, *, owner: str, need: int, pending: dict | None = None,
              keep: Iterable[str] = ()) -> list[str]:
    """The folders under `root` to delete before a run of `owner` (the token) saving `need` bytes is queued
    (`plan`); DiskRefused if it does not fit. Nothing is deleted here: the caller deletes them (`delete`) once
    the run is booked, so a run refused for another reason costs nobody a run."""
    cap, share = limits_bytes(limits)
    if not root or (cap is None and share is None):
        return []
    folders = scan(root)
    return [f.path for f in plan(folders, owner=recovery.owner_digest(owner), need=need, cap=cap, share=share,
                                 pending=pending, keep=keep)]


def delete(paths: Iterable[str]) -> list[str]:
    out = []
    for d in paths:
        shutil.rmtree(d, ignore_errors=True)
        out.append(d)
    return out


def prune(root: str | None, cap_mb: int | None, keep: Iterable[str] = (), pending: dict | None = None,
          share_mb: int | None = None) -> list[str]:
    """Bring the folders under `root` back under `cap_mb` (after a run has ended: what it saved was more than
    planned, or the cap was lowered): the oldest finished unpinned folders go, those of owners beyond `share_mb`
    first; pinned, active and "running" ones never. Returns the folders deleted."""
    if not root or cap_mb is None:
        return []
    gone = plan(scan(root), owner=None, need=0, cap=max(0, cap_mb) * MB,
                share=None if share_mb is None else share_mb * MB, pending=pending, keep=keep, strict=False)
    return delete(f.path for f in gone)
