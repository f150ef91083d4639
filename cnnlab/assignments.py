"""Locked assignments: a teacher fixes a Train setup and hands out one short link (plain data; no streamlit).

An assignment is the Train page's own URL settings (``arch``, the model's knobs, ``res``, ``ep``, ``lr``, ``bs``,
``ntr``, ``nte``, ``wd``, ``seed``: the query parameters that page reads) plus the names of the ones a student
may not change (``locked``). It is kept on the server, in ``<checkpoint root>/.assignments/<id>.json``, and the
link carries only its id (``/training?assign=<id>``): a student cannot unlock a setting by editing the link.
Runs started under an assignment carry its id, so the class board can show all of them together.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import checkpoint as ckpt
from .i18n import msg
from .errors import AssignmentError  # noqa: F401

FOLDER = ".assignments"
ID_RE = re.compile(r"^[A-Za-z0-9_-]{6,24}$")
PARAM_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_PARAMS = 40
MAX_VALUE = 60          # characters of one setting's written value (as the Train page cuts link values)
MAX_TITLE = 120
MAX_BYTES = 16 << 10
MAX_ASSIGNMENTS = 200   # kept per checkpoint root (the oldest are removed beyond this)


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    params: Mapping[str, str]             # the Train page's query parameters, as written in a link
    locked: tuple[str, ...] = ()          # names in `params` a student cannot change
    preset: str | None = None             # the preset it started from, if any (for the board's title)
    created: float = field(default=0.0)

    def to_json(self) -> dict:
        return {"format": "cnnlab-assignment", "id": self.id, "title": self.title, "params": dict(self.params),
                "locked": list(self.locked), "preset": self.preset, "created": self.created}


def _folder(root: str | os.PathLike) -> str:
    return os.path.join(os.fspath(root), FOLDER)


def _check_params(params: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(params, Mapping) or len(params) > MAX_PARAMS:
        raise AssignmentError(msg("msg.asg_many", most=MAX_PARAMS))
    out = {}
    for k, v in params.items():
        if not isinstance(k, str) or not PARAM_RE.match(k):
            raise AssignmentError(msg("msg.asg_name", name=repr(str(k)[:32])))
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise AssignmentError(msg("msg.asg_value", name=k))
        s = str(v)
        if len(s) > MAX_VALUE:
            raise AssignmentError(msg("msg.asg_value_long", name=k, most=MAX_VALUE))
        out[k] = s
    return out


def _check(data: Any, where: str) -> Assignment:
    if not isinstance(data, dict) or data.get("format") != "cnnlab-assignment":
        raise AssignmentError(f"{where} is not a CNN Lab assignment")
    aid, title, locked = data.get("id"), data.get("title", ""), data.get("locked", [])
    if not isinstance(aid, str) or not ID_RE.match(aid):
        raise AssignmentError(f"{where} has no valid id")
    if not isinstance(title, str):
        raise AssignmentError(f"{where} has a title that is not text")
    params = _check_params(data.get("params", {}))
    if not isinstance(locked, list) or not all(isinstance(x, str) and x in params for x in locked):
        raise AssignmentError(f"{where} locks a setting it does not set")
    preset = data.get("preset")
    created = data.get("created", 0.0)
    return Assignment(aid, title[:MAX_TITLE], params, tuple(dict.fromkeys(locked)),
                      preset if isinstance(preset, str) else None,
                      float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else 0.0)


def create(root: str | os.PathLike, params: Mapping[str, Any], locked: list[str] | tuple[str, ...], *,
           title: str = "", preset: str | None = None) -> Assignment:
    """Save a new assignment under `root` and return it (its id goes into the link)."""
    params = _check_params(params)
    bad = [x for x in locked if x not in params]
    if bad:
        raise AssignmentError(msg("msg.asg_lock", name=bad[0]))
    a = Assignment(secrets.token_urlsafe(9), str(title)[:MAX_TITLE], params, tuple(dict.fromkeys(locked)),
                   preset, time.time())
    folder = _folder(root)
    os.makedirs(folder, exist_ok=True)
    ckpt.atomic_write_json(os.path.join(folder, a.id + ".json"), a.to_json())
    _prune(folder)
    return a


def load(root: str | os.PathLike, aid: str) -> Assignment:
    """The assignment with this id, or AssignmentError (one sentence) if there is none or it is unreadable."""
    if not isinstance(aid, str) or not ID_RE.match(aid):
        raise AssignmentError(msg("msg.asg_bad_link"))
    path = os.path.join(_folder(root), aid + ".json")
    try:
        raw = ckpt._read_capped(path, MAX_BYTES)
        data = ckpt._parse_json(raw, path)
    except ckpt.CheckpointError:
        raise AssignmentError(msg("msg.asg_none")) from None
    except (ValueError, UnicodeDecodeError):
        raise AssignmentError(msg("msg.asg_unreadable")) from None
    try:
        a = _check(data, "this assignment")
    except AssignmentError:
        raise AssignmentError(msg("msg.asg_unreadable")) from None
    if a.id != aid:
        raise AssignmentError(msg("msg.asg_unreadable"))
    return a


def list_all(root: str | os.PathLike) -> list[Assignment]:
    """Every readable assignment under `root`, newest first (unreadable files are skipped)."""
    folder = _folder(root)
    try:
        names = [n[:-5] for n in os.listdir(folder) if n.endswith(".json")]
    except OSError:
        return []
    out = []
    for n in names[:MAX_ASSIGNMENTS * 2]:
        try:
            out.append(load(root, n))
        except AssignmentError:
            continue
    return sorted(out, key=lambda a: a.created, reverse=True)


def delete(root: str | os.PathLike, aid: str) -> bool:
    if not isinstance(aid, str) or not ID_RE.match(aid):
        return False
    try:
        os.remove(os.path.join(_folder(root), aid + ".json"))
        return True
    except OSError:
        return False


def _prune(folder: str) -> None:
    """Beyond MAX_ASSIGNMENTS, remove the oldest records. Each removal is of a whole file (no record is rewritten),
    so two servers pruning one folder at once only remove what either would; a file listed that is gone by the
    time it is looked at (the other server removed it) is skipped."""
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".json")]
    except OSError:
        return
    files = []
    for n in names:
        try:
            files.append((os.path.getmtime(os.path.join(folder, n)), n))
        except OSError:
            continue
    files.sort()
    for _, n in files[:max(0, len(files) - MAX_ASSIGNMENTS)]:
        try:
            os.remove(os.path.join(folder, n))
        except OSError:
            pass


def fixed(assignment: Assignment) -> dict[str, str]:
    """Every setting the assignment fixes, with its value: the locked ones, and, when ``arch`` is locked, every
    knob of that architecture too (a knob the assignment does not write is fixed at its default). Fixing the
    architecture without its knobs would let a student switch BN-LeNet's batch norm off."""
    from .registry import KnobError, format_value, get_spec

    out = {name: assignment.params[name] for name in assignment.locked}
    if "arch" in out:
        try:
            spec = get_spec(out["arch"])
        except KnobError:
            return out
        for k in spec.knobs:
            out.setdefault(k.name, assignment.params.get(k.name, format_value(k.default)))
    return out


def same_value(name: str, arch: str | None, want: str, got: str | None) -> bool:
    """Whether two written values of one setting say the same thing ("28" and "28.0"; "on" and "True" for a
    bool knob; "6,12" and "(6, 12)" for an ints knob)."""
    from .registry import KnobError, get_spec

    if got is None:
        return False
    try:
        knob = get_spec(arch).knob(name) if arch else None
    except KnobError:
        knob = None
    if knob is not None:
        try:
            return knob.parse(want) == knob.parse(got)
        except KnobError:
            return want == got
    try:
        return float(want) == float(got)
    except ValueError:
        return want == got


def broken(assignment: Assignment, now: Mapping[str, str]) -> list[str]:
    """The fixed settings whose value in `now` (every setting written out, defaults included) differs."""
    fix = fixed(assignment)
    arch = fix.get("arch", now.get("arch"))
    return [name for name, want in fix.items() if not same_value(name, arch, want, now.get(name))]


def merge(assignment: Assignment, wanted: Mapping[str, str]) -> dict[str, str]:
    """The settings a student's link or widgets ask for, with every fixed one put back to the assignment's."""
    fix = fixed(assignment)
    out = dict(assignment.params)
    out.update({k: v for k, v in wanted.items() if k not in fix})
    out.update(fix)
    return out


__all__ = ["Assignment", "AssignmentError", "create", "load", "list_all", "delete", "fixed", "same_value",
           "broken", "merge"]
