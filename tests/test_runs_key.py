"""Runs keys (#22 §1): the short form of an owner that a student types where a browser keeps no cookie."""
from __future__ import annotations

import os

import pytest

from cnnlab import owners


@pytest.fixture
def tries(monkeypatch):
    """Typed keys counted by a fresh KeyTries at `per_min` a minute (the server's own count left alone)."""
    def use(per_min: int) -> None:
        monkeypatch.setattr(owners, "KEY_TRIES", owners.KeyTries(per_min=per_min))
    return use


def test_a_key_is_short_the_same_each_time_and_opens_its_owner_only(tmp_path, tries):
    root = str(tmp_path)
    ada, bob = owners.mint(root), owners.mint(root)
    key = owners.runs_key(root, ada)
    assert len(key) == 11 and key[5] == "-" and key == owners.runs_key(root, ada)
    assert owners.runs_key(root, bob) != key
    tries(100)
    assert owners.owner_of_key(root, key, "a") == ada
    # as people type it: lower case, no dash, spaces, O for 0 and I/L for 1
    typed = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert owners.owner_of_key(root, typed, "a") == ada
    assert owners.owner_of_key(root, owners.runs_key(root, bob), "a") == bob
    # the key's record names the key by a digest only, and holds the token of its owner
    files = os.listdir(os.path.join(root, owners.KEY_FOLDER))
    assert len(files) == 2 and not any(key.replace("-", "") in f for f in files)


def test_wrong_made_up_and_forged_keys_open_nothing(tmp_path, tries):
    root = str(tmp_path)
    ada = owners.mint(root)
    key = owners.runs_key(root, ada)
    tries(1000)
    wrong = ("Z" if key[0] != "Z" else "Y") + key[1:]
    for typed in (wrong, "", "ABCDE", key + "X", "../../etc/passwd", None, 12345, "x" * 10_000, ada):
        assert owners.owner_of_key(root, typed, "a") is None, typed
    # a record planted in the store for a token this server never signed opens nothing either
    from cnnlab import checkpoint as ckpt
    os.makedirs(os.path.join(root, owners.KEY_FOLDER), exist_ok=True)
    forged = "ABCDEFGHJK"
    ckpt.atomic_write_json(owners._key_path(root, forged), {"format": "cnnlab-runs-key", "owner": "x" * 46})
    assert owners.owner_of_key(root, forged, "a") is None


def test_typed_keys_are_counted_per_address(tmp_path, tries):
    root = str(tmp_path)
    ada = owners.mint(root)
    key = owners.runs_key(root, ada)
    tries(5)
    for _ in range(5):
        assert owners.owner_of_key(root, "ZZZZZ-ZZZZZ", "guesser") is None
    # past the rate even the right key opens nothing from that address (it reads as a wrong key) ...
    assert owners.owner_of_key(root, key, "guesser") is None
    # ... while another address is not held back
    assert owners.owner_of_key(root, key, "student") == ada
    t = owners.KeyTries(per_min=2)
    assert t.allow("a", now=0) and t.allow("a", now=1) and not t.allow("a", now=2)
    assert t.allow("a", now=61.5)  # a minute later
