"""Errors for people: every error class of cnnlab (each carries one sentence to show), and the full traceback
to log and keep.

`one_line()` is the one formatter for an exception shown in the app, the CLI or a run's config.json.
`failure_detail()` is the full traceback, logged through :mod:`logging` (logger ``cnnlab``) and stored
with a failed run, so a bug is never reduced to its first 200 characters.
"""
from __future__ import annotations

import logging
import traceback

from .i18n import message_of

log = logging.getLogger("cnnlab")

LIMIT = 300  # characters of an error shown in one line


def one_line(e: BaseException | str, limit: int = LIMIT, with_type: bool = False) -> str:
    """The first line of an exception's message (or of a string), cut to `limit` characters.

    with_type: prefix the exception's class ("OSError: ...") — for errors that are not our own
    one-sentence errors (KnobError, DataError, CheckpointError), whose class says nothing to people.
    A library sentence (cnnlab.i18n.Message) that is one line and fits comes back as itself, its key and fields kept.
    """
    said = message_of(e)
    text = said.strip().splitlines()[0].strip() if said.strip() else ""
    if not isinstance(e, str):
        if not text:
            text = type(e).__name__
        elif with_type:
            text = f"{type(e).__name__}: {text}"
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return said if text == said else text


def failure_detail(e: BaseException) -> str:
    """The full traceback of `e` as text (for the log, config.json "failure" and a collapsed expander)."""
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def log_failure(what: str, e: BaseException) -> str:
    """Log `what` failed with the full traceback; return the traceback text."""
    detail = failure_detail(e)
    log.error("%s: %s\n%s", what, one_line(e, with_type=True), detail)
    return detail


# -- the errors: each carries one sentence for people (cnnlab.i18n renders it) ------------------------

class KnobError(ValueError):
    """A knob, architecture or input size that cannot be used; the message is one line for people."""


class InputTooSmall(KnobError):
    """The input's height or width shrinks below one pixel inside the network.

    ``layer`` / ``layer_type`` name the layer where it happens (as the layer table names it), ``input_hw`` is
    the size that layer gets and ``formula`` its output size worked out (⌊(2 − 3 + 2·0)/2⌋ + 1 = 0).
    ``steps`` (set by :func:`cnnlab.arithmetic.walk`) are the module calls up to and including that layer.
    Only this error means "does not fit": any other error while building or running a model is a bug.
    """

    def __init__(self, message: str, *, layer: str = "", layer_type: str = "", input_hw=None, formula: str = "",
                 steps=None):
        super().__init__(message)
        self.layer, self.layer_type, self.input_hw, self.formula = layer, layer_type, input_hw, formula
        self.steps = steps

    def __reduce__(self):  # pickles across processes with its fields (not its steps)
        return _too_small, (self.args[0] if self.args else "", self.layer, self.layer_type, self.input_hw, self.formula)


def _too_small(message, layer, layer_type, input_hw, formula):
    return InputTooSmall(message, layer=layer, layer_type=layer_type, input_hw=input_hw, formula=formula)


class LimitError(KnobError):
    """A request that would exceed a configured limit (memory, size, cost); one sentence for people."""


class CheckpointError(RuntimeError):
    """A run folder or file that cannot be used; the message is one line for people."""


class AssignmentError(ValueError):
    """One sentence for a person: an unknown, unreadable or malformed assignment."""


class ClassError(RuntimeError):
    """One sentence for the teacher."""


class DataError(RuntimeError):
    """The data set cannot be found or prepared; the message is one sentence for people."""


class DeviceError(RuntimeError):
    """A device that was asked for but cannot be used; the message is one sentence for people."""


class NicknameError(ValueError):
    """One sentence: a nickname that cannot be used."""


class RunRefused(RuntimeError):
    """A run was not accepted; the message is one sentence for people."""


class QueueFull(RunRefused):
    """Too many runs are waiting for the device."""


class OwnerLimit(RunRefused):
    """This owner already has as many runs active/queued as allowed."""


class AdmissionRefused(RunRefused):
    """The memory/time estimate does not fit this device; the message names a preset that fits."""


class DiskRefused(RunRefused):
    """What the run would save does not fit its owner's disk share or the disk cap (cnnlab.runs.disk)."""


class NotOwner(PermissionError):
    """stop() asked by someone who does not own the run."""
