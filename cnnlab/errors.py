"""Errors for people: one sentence to show, the full traceback to log and keep.

`one_line()` is the one formatter for an exception shown in the app, the CLI or a run's config.json.
`failure_detail()` is the full traceback, logged through :mod:`logging` (logger ``cnnlab``) and stored
with a failed run, so a bug is never reduced to its first 200 characters.
"""
from __future__ import annotations

import logging
import traceback

log = logging.getLogger("cnnlab")

LIMIT = 300  # characters of an error shown in one line


def one_line(e: BaseException | str, limit: int = LIMIT, with_type: bool = False) -> str:
    """The first line of an exception's message (or of a string), cut to `limit` characters.

    with_type: prefix the exception's class ("OSError: ...") — for errors that are not our own
    one-sentence errors (KnobError, DataError, CheckpointError), whose class says nothing to people.
    """
    text = e if isinstance(e, str) else str(e)
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not isinstance(e, str):
        if not text:
            text = type(e).__name__
        elif with_type:
            text = f"{type(e).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def failure_detail(e: BaseException) -> str:
    """The full traceback of `e` as text (for the log, config.json "failure" and a collapsed expander)."""
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def log_failure(what: str, e: BaseException) -> str:
    """Log `what` failed with the full traceback; return the traceback text."""
    detail = failure_detail(e)
    log.error("%s: %s\n%s", what, one_line(e, with_type=True), detail)
    return detail
