"""Shared test helpers (import as `from helpers import need`)."""
import os

import pytest


def need(condition: bool, reason: str) -> None:
    """Skip when a prerequisite (data, chromium) is missing on a developer's machine; fail in CI, where
    `make test` installs it, so a missing install step can never turn into a silent skip."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)
