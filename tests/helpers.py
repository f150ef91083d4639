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


def wait_port(port: int, timeout_s: float = 5.0, host: str = "127.0.0.1") -> bool:
    """Wait until something listens on host:port (a server a test just started); False if nothing did."""
    import socket
    import time

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


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


def save_tiny_run(root, **config) -> list:
    """Train and save a small CPU LeNet run under `root` (2 epochs on 1,000/200 images unless `config` says
    otherwise); fails unless it ends with RunEnd. Returns its events."""
    from cnnlab import engine

    tc = engine.TrainConfig(**{"model": "lenet", "epochs": 2, "train_size": 1000, "test_size": 200,
                               "device": "cpu", **config})
    events = list(engine.run(tc, out_dir=str(root)))
    assert type(events[-1]).__name__ == "RunEnd", events[-1]
    return events


# The teacher password of the lesson server that the class and layout browser tests share (conftest.class_app).
CLASS_PASSWORD = "projector-7"

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


def assert_no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def open_page(page: str, timeout: float = 60):
    """Run the app in AppTest and switch to `page` (e.g. "app_pages/runs.py"); fails on any exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout).run()
    at.switch_page(page).run()
    assert_no_exception(at)
    return at
