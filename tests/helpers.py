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


def have_fashion_mnist() -> bool:
    from cnnlab import data
    try:
        data.find_fashion_mnist(download=False)
        return True
    except data.DataError:
        return False


# Real-data tests: skipped on a machine without the data; under CI the conftest turns that skip into a failure.
needs_fmnist = pytest.mark.skipif(not have_fashion_mnist(),
                                  reason="Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
