"""Runs keys (#22 §1): the short form of an owner that a student types where a browser keeps no cookie."""
from __future__ import annotations

import os

from cnnlab import owners


def test_a_key_is_short_the_same_each_time_and_opens_its_owner_only(tmp_path):
    root = str(tmp_path)
    ada, bob = owners.mint(root), owners.mint(root)
    key = owners.runs_key(root, ada)
    assert len(key) == 11 and key[5] == "-" and key == owners.runs_key(root, ada)
    assert owners.runs_key(root, bob) != key
    tries = owners.KeyTries(per_min=100)
    old, owners.KEY_TRIES = owners.KEY_TRIES, tries
    try:
        assert owners.owner_of_key(root, key, "a") == ada
        # as people type it: lower case, no dash, spaces, O for 0 and I/L for 1
        typed = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
        assert owners.owner_of_key(root, typed, "a") == ada
        assert owners.owner_of_key(root, owners.runs_key(root, bob), "a") == bob
        # the key's record names the key by a digest only, and holds the token of its owner
        files = os.listdir(os.path.join(root, owners.KEY_FOLDER))
        assert len(files) == 2 and not any(key.replace("-", "") in f for f in files)
    finally:
        owners.KEY_TRIES = old


def test_wrong_made_up_and_forged_keys_open_nothing(tmp_path):
    root = str(tmp_path)
    ada = owners.mint(root)
    key = owners.runs_key(root, ada)
    old, owners.KEY_TRIES = owners.KEY_TRIES, owners.KeyTries(per_min=1000)
    try:
        wrong = ("Z" if key[0] != "Z" else "Y") + key[1:]
        for typed in (wrong, "", "ABCDE", key + "X", "../../etc/passwd", None, 12345, "x" * 10_000, ada):
            assert owners.owner_of_key(root, typed, "a") is None, typed
        # a record planted in the store for a token this server never signed opens nothing either
        from cnnlab import checkpoint as ckpt
        os.makedirs(os.path.join(root, owners.KEY_FOLDER), exist_ok=True)
        forged = "ABCDEFGHJK"
        ckpt.atomic_write_json(owners._key_path(root, forged), {"format": "cnnlab-runs-key", "owner": "x" * 46})
        assert owners.owner_of_key(root, forged, "a") is None
    finally:
        owners.KEY_TRIES = old


def test_typed_keys_are_counted_per_address(tmp_path):
    root = str(tmp_path)
    ada = owners.mint(root)
    key = owners.runs_key(root, ada)
    old, owners.KEY_TRIES = owners.KEY_TRIES, owners.KeyTries(per_min=5)
    try:
        for _ in range(5):
            assert owners.owner_of_key(root, "ZZZZZ-ZZZZZ", "guesser") is None
        # past the rate even the right key opens nothing from that address (it reads as a wrong key) ...
        assert owners.owner_of_key(root, key, "guesser") is None
        # ... while another address is not held back
        assert owners.owner_of_key(root, key, "student") == ada
        t = owners.KeyTries(per_min=2)
        assert t.allow("a", now=0) and t.allow("a", now=1) and not t.allow("a", now=2)
        assert t.allow("a", now=61.5)  # a minute later
    finally:
        owners.KEY_TRIES = old
