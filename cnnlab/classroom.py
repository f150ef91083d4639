"""The class as the teacher sees it (plain Python; no streamlit): every run of every student, live ones from the
executor and finished ones from their folders, with nicknames; grouped for the class board; and the teacher's
actions on any run (stop, pin, delete).

Only the teacher's pages call this: students see their own runs only (cnnlab.ui.common.MyRuns).
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field

from . import checkpoint as ckpt
from .i18n import msg
from .errors import ClassError  # noqa: F401
from .runs import NotOwner, recovery
from .runs.view import view
from .teacher import Nicknames, server_token


@dataclass
class ClassRun:
    id: str                          # the executor's run id, or the folder name for a saved run
    run_dir: str | None
    owner: str | None                # digest of the owner token (never the token)
    who: str                         # nickname, or "student 3f2a"
    state: str                       # queued | running | done | stopped | failed | cancelled | finished | ...
    active: bool
    arch: str
    knobs: dict
    preset: str | None
    assignment: str | None
    epochs_done: int
    epochs: int
    test_acc: float | None
    train_acc: float | None
    curve: list = field(default_factory=list)   # [(epoch, test accuracy)]
    loss: list = field(default_factory=list)    # [(epoch as a float, train loss)]
    pinned: bool = False
    live: bool = False               # known to the executor (stop acts on it)

    @property
    def group(self) -> tuple[str, str]:
        """What the class board groups by: the assignment, else the preset, else the architecture."""
        if self.assignment:
            return ("assignment", self.assignment)
        if self.preset and self.preset != "custom":
            return ("preset", self.preset)
        return ("arch", self.arch)


def _digest(owner_token: str | None) -> str | None:
    return recovery.owner_digest(owner_token) if owner_token else None


def _live(ex, nick: Nicknames) -> list[ClassRun]:
    out = []
    for s in ex.list(None):
        v = view(ex, s.id)
        if v is None:
            continue
        meta = v.meta or {}
        start = v.start
        epochs = start.epochs if start is not None else 0
        spe = start.steps_per_epoch if start is not None and start.steps_per_epoch else None
        last = v.epochs[-1] if v.epochs else None
        d = _digest(s.owner)
        out.append(ClassRun(
            id=s.id, run_dir=v.run_dir, owner=d, who=nick.label(d), state=v.state, active=v.active,
            arch=str(meta.get("arch", "?")), knobs=dict(meta.get("knobs") or {}),
            preset=meta.get("preset"), assignment=meta.get("assignment"),
            epochs_done=last.epoch if last else 0, epochs=epochs,
            test_acc=last.test_acc if last else None, train_acc=last.train_acc if last else None,
            curve=[(e.epoch, e.test_acc) for e in v.epochs],
            loss=[(st.step / spe, st.loss) for st in v.steps] if spe else [],
            pinned=bool(v.run_dir) and recovery.is_pinned(v.run_dir), live=True))
    return out


def _saved(root: str, nick: Nicknames, skip: set[str]) -> list[ClassRun]:
    out = []
    for r in ckpt.list_runs(root):
        if os.path.abspath(r.run_dir) in skip or r.status == "unreadable":
            continue
        d = recovery.run_owner(r.run_dir)
        cls = recovery.run_class(r.run_dir)
        try:
            metrics = ckpt.read_metrics(r.run_dir)
        except ckpt.CheckpointError:
            metrics = []
        out.append(ClassRun(
            id=r.run_id, run_dir=r.run_dir, owner=d, who=nick.label(d), state=r.status, active=False,
            arch=r.arch, knobs=dict(r.knobs), preset=cls.get("preset"), assignment=cls.get("assignment"),
            epochs_done=r.epochs_done, epochs=r.epochs, test_acc=r.test_acc, train_acc=r.train_acc,
            curve=[(m.get("epoch"), m.get("test_acc")) for m in metrics if m.get("test_acc") is not None],
            loss=[(m.get("epoch"), m.get("train_loss")) for m in metrics if m.get("train_loss") is not None],
            pinned=recovery.is_pinned(r.run_dir)))
    return out


def class_runs(ex, root: str) -> list[ClassRun]:
    """Every run of the class: the executor's (live, newest first), then the folders it does not know."""
    nick = Nicknames(root)
    live = _live(ex, nick) if ex is not None else []
    skip = {os.path.abspath(r.run_dir) for r in live if r.run_dir}
    return live + _saved(root, nick, skip)


def groups(runs: list[ClassRun]) -> list[tuple[str, str]]:
    """The board's choices, the group with the most runs first."""
    count: dict[tuple[str, str], int] = {}
    for r in runs:
        count[r.group] = count.get(r.group, 0) + 1
    return sorted(count, key=lambda g: (-count[g], g))


def stop(ex, run: ClassRun) -> bool:
    """Stop any run (the teacher's token); False if it had already ended."""
    if not run.live:
        return False
    tok = server_token()
    if not tok:
        raise ClassError(msg("msg.cls_off"))
    try:
        return bool(ex.stop(run.id, tok))
    except NotOwner:
        raise ClassError(msg("msg.cls_token")) from None


def stop_all(ex, runs: list[ClassRun]) -> int:
    """Stop every active run in `runs` in one action (the teacher's token); returns how many were stopped."""
    return sum(stop(ex, r) for r in runs if r.active and r.live)


def clear_queue(ex, runs: list[ClassRun]) -> int:
    """Cancel every waiting run of the class at once (a flooded queue is one click, not one per run)."""
    return stop_all(ex, [r for r in runs if r.state == "queued"])


def stop_owner(ex, runs: list[ClassRun], owner: str | None) -> int:
    """Stop every active run of one student (by owner digest) at once."""
    return stop_all(ex, [r for r in runs if owner and r.owner == owner]) if owner else 0


def pin(run: ClassRun, pinned: bool = True) -> None:
    """Pinned runs are never pruned by the disk cap (CNNLAB_DISK_CAP_MB)."""
    if not run.run_dir:
        raise ClassError(msg("msg.cls_no_folder_yet"))
    try:
        recovery.pin(run.run_dir, pinned)
    except OSError as e:
        raise ClassError(msg("msg.cls_pin" if pinned else "msg.cls_unpin", run=run.id, why=e.strerror or e)) from None


def delete(run: ClassRun, root: str) -> None:
    """Delete a finished run's folder (an active run must be stopped first). A folder whose config.json still says
    "running" is refused too: another server sharing the run store may be training it (it is not live here)."""
    if run.active or run.state == "running":
        raise ClassError(msg("msg.cls_active", run=run.id, state=run.state))
    if not run.run_dir:
        raise ClassError(msg("msg.cls_no_folder"))
    d, base = os.path.abspath(run.run_dir), os.path.abspath(root)
    if os.path.dirname(d) != base:
        raise ClassError(msg("msg.cls_foreign", run=run.id))
    try:
        if stat.S_ISLNK(os.lstat(d).st_mode):
            os.remove(d)
        else:
            shutil.rmtree(d)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ClassError(msg("msg.cls_delete", run=run.id, why=e.strerror or e)) from None
