"""Owner tokens (plain Python; no streamlit): minted and signed by the server, checked on every read.

A run belongs to an owner: the token in a browser's cookie. Any 16–64 character string used to be taken as
an owner, so one person with made-up cookies was many people (9 cookies filled the queue in 13 s). Now:

- a token is 24 random characters and 22 of an HMAC-SHA256 signature by this server's secret; a cookie without
  a valid signature is no owner (the browser is given a new token);
- the secret is ``$CNNLAB_OWNER_SECRET``, else one file in the run store (``<root>/.secret/owner.key``, written
  once, exclusively, so two servers on one folder agree and a restart keeps every student's runs theirs);
- minting is counted per client address (`Minter`): beyond ``CNNLAB_NEW_OWNERS_PER_MIN`` new owners from one
  address in a minute, the new owners may look but not start runs (`may_start`).

A runs key (`runs_key`) is the short form of an owner for people: where a browser keeps no cookie (third-party
cookies blocked in the huggingface.co frame), or on another device, a student types it (`owner_of_key`) and
their runs are theirs again. It is derived from the token by the server's secret (the same key every time)
and recorded once, as one file ``<root>/.keys/<digest of the key>.json``, written whole; typed keys are
counted per client address (``CNNLAB_KEY_TRIES_PER_MIN``), and a wrong key, a malformed one and one over the
rate all read the same to the typist: no owner.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time

from . import checkpoint as ckpt

SECRET_ENV = "CNNLAB_OWNER_SECRET"
RATE_ENV = "CNNLAB_NEW_OWNERS_PER_MIN"
RATE_DEFAULT = 40      # a class of 30 behind one school address arrives within a minute
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{46}")
_RANDOM, _SIG = 24, 22

_secrets: dict[str, bytes] = {}
_lock = threading.Lock()


def _secret(root: str) -> bytes:
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    with _lock:
        if root in _secrets:
            return _secrets[root]
        folder = os.path.join(root, ".secret")
        path = os.path.join(folder, "owner.key")
        try:  # written once, by whoever comes first; everyone else reads it
            os.makedirs(folder, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        except FileExistsError:
            pass
        except OSError:  # a store that cannot be written: a key for this process (owners last until a restart)
            _secrets[root] = secrets.token_hex(32).encode()
            return _secrets[root]
        key = b""
        for _ in range(50):  # another server may be writing it this very moment
            try:
                key = ckpt._read_capped(path, 256).strip()
            except ckpt.CheckpointError:
                key = b""
            if len(key) == 64:
                break
            time.sleep(0.02)
        if len(key) != 64:  # unreadable: a key for this process rather than no page at all
            key = secrets.token_hex(32).encode()
        _secrets[root] = key
        return key


def _sign(root: str, random_part: str) -> str:
    mac = hmac.new(_secret(root), random_part.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:_SIG]


def valid(root: str, token: object) -> bool:
    """Whether `token` was minted by this server (constant-time signature check)."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        return False
    return hmac.compare_digest(token[_RANDOM:], _sign(root, token[:_RANDOM]))


class Minter:
    """New owners per client address in the last minute; owners minted beyond the rate may not start runs."""

    def __init__(self, per_min: int | None = None):
        self.per_min = per_min
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {}
        self._over: set[str] = set()

    def rate(self) -> int:
        if self.per_min is not None:
            return self.per_min
        v = os.environ.get(RATE_ENV, "")
        return int(v) if v.isdigit() else RATE_DEFAULT

    def note(self, addr: str, token: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times.get(addr, []) if now - t < 60.0] + [now]
            self._times[addr] = recent
            if len(recent) > self.rate():
                self._over.add(token)
            if len(self._times) > 10_000:
                for k in list(self._times)[:5_000]:
                    del self._times[k]
            if len(self._over) > 100_000:
                self._over.clear()

    def may_start(self, token: str) -> bool:
        with self._lock:
            return token not in self._over


MINTER = Minter()


def mint(root: str, addr: str = "local") -> str:
    """A new owner token for a browser at `addr` (counted by MINTER)."""
    random_part = secrets.token_urlsafe(18)[:_RANDOM]
    token = random_part + _sign(root, random_part)
    MINTER.note(addr, token)
    return token


def may_start(token: str) -> bool:
    """False for an owner minted beyond its address's rate of new owners (it may look, not start runs)."""
    return MINTER.may_start(token)


KEY_ENV = "CNNLAB_KEY_TRIES_PER_MIN"
KEY_TRIES_DEFAULT = 5
KEY_FOLDER = ".keys"
_KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U
_KEY_LEN = 10                                      # 50 bits; with 5 tries a minute, guessing one takes ages
_KEY_TYPOS = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def _key_path(root: str, key: str) -> str:
    digest = hashlib.sha256(b"cnnlab-runs-key:" + key.encode()).hexdigest()[:32]
    return os.path.join(root, KEY_FOLDER, digest + ".json")


def runs_key(root: str, token: str) -> str:
    """This owner's runs key, ``ABCDE-FGHJK`` (always the same for one token), recorded in the store."""
    if not valid(root, token):
        raise ValueError("not an owner token")
    mac = hmac.new(_secret(root), b"runs-key:" + token.encode(), hashlib.sha256).digest()
    n = int.from_bytes(mac[:8], "big")
    key = "".join(_KEY_ALPHABET[(n >> (5 * i)) & 31] for i in range(_KEY_LEN))
    path = _key_path(root, key)
    if not os.path.exists(path):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            ckpt.atomic_write_json(path, {"format": "cnnlab-runs-key", "owner": token})
        except OSError:
            pass  # a store that cannot be written: the key works on no other browser, the page says nothing worse
    return key[:5] + "-" + key[5:]


def _clean_key(typed: object) -> str | None:
    if not isinstance(typed, str) or len(typed) > 64:
        return None
    key = re.sub(r"[\s-]", "", typed).upper().translate(_KEY_TYPOS)
    return key if len(key) == _KEY_LEN and all(c in _KEY_ALPHABET for c in key) else None


class KeyTries:
    """Typed runs keys per client address in the last minute; beyond the rate, no key is looked up."""

    def __init__(self, per_min: int | None = None):
        self.per_min = per_min
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {}

    def rate(self) -> int:
        if self.per_min is not None:
            return self.per_min
        v = os.environ.get(KEY_ENV, "")
        return int(v) if v.isdigit() else KEY_TRIES_DEFAULT

    def allow(self, addr: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times.get(addr, []) if now - t < 60.0]
            ok = len(recent) < self.rate()
            self._times[addr] = recent + [now] if ok else recent
            if len(self._times) > 10_000:
                for k in list(self._times)[:5_000]:
                    del self._times[k]
            return ok


KEY_TRIES = KeyTries()


def owner_of_key(root: str, typed: object, addr: str = "local") -> str | None:
    """The owner whose runs key was typed, or None: for a wrong key, a malformed one, or an address past its
    tries this minute alike (the typist learns nothing from which)."""
    if not KEY_TRIES.allow(addr):
        return None
    key = _clean_key(typed)
    if key is None:
        return None
    try:
        rec = ckpt._parse_json(ckpt._read_capped(_key_path(root, key), 4096), "runs key")
    except (ckpt.CheckpointError, ValueError, UnicodeDecodeError, OSError):
        return None
    tok = rec.get("owner") if isinstance(rec, dict) else None
    return tok if valid(root, tok) else None


__all__ = ["valid", "mint", "may_start", "Minter", "MINTER", "runs_key", "owner_of_key", "KeyTries", "KEY_TRIES"]
