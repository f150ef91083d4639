"""A class of 30 at the queue (#22 §4): 30 students press Start within seconds on the server's default limits;
none is refused and every run finishes (with 16 places in the queue, 13 of 30 were refused). The full-size
figure (the quick demo on all 60,000 examples, every run to its end) is bench/class_queue.py's, in the README."""
import os
import sys

from helpers import needs_fmnist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import class_queue  # noqa: E402


@needs_fmnist
def test_thirty_students_pressing_start_at_once_all_train(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLAB_QUEUE_LEN", raising=False)
    r = class_queue.class_at_the_queue(30, "lenet_quick", 3.0, 128, str(tmp_path), test_size=64)
    assert r["refused"] == 0, r["why"]
    assert r["finished"] == 30, r["failed"]


@needs_fmnist
def test_the_old_queue_of_16_refused_part_of_the_class(tmp_path, monkeypatch):
    """The same class with the old default: the test above can fail."""
    monkeypatch.setenv("CNNLAB_QUEUE_LEN", "16")
    r = class_queue.class_at_the_queue(30, "lenet_quick", 1.0, 64, str(tmp_path), test_size=64, wait=False)
    assert r["refused"] >= 10 and "waiting" in " ".join(r["why"]), r
