"""Teacher mode and student nicknames (plain Python; no streamlit).

- Teacher mode exists only when ``CNNLAB_TEACHER_PASSWORD`` is set. The password is compared in constant time
  (``hmac.compare_digest`` over SHA-256 digests, so neither the length nor a prefix leaks), and a session that
  keeps guessing is slowed down, per client address and server-wide (`Guard`).
- A signed-in teacher acts on runs through the executor with the server's teacher token (`server_token`): the
  executor's ``Limits.teacher`` (``CNNLAB_TEACHER_TOKEN`` if set, else a random secret made once per server
  process). Students never see it; it never leaves the server.
- Nicknames: a student may give one (no account). It is kept on the server keyed by the digest of the owner
  token (the one in each run folder's ``.owner``), so the teacher sees it on every run of that student, old
  ones too: one record per student, ``.nicknames/<owner digest>.json`` (see `Nicknames`).
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field

from . import checkpoint as ckpt
from .errors import NicknameError  # noqa: F401
from .i18n import msg
from .runs.recovery import owner_digest

PASSWORD_ENV = "CNNLAB_TEACHER_PASSWORD"
TOKEN_ENV = "CNNLAB_TEACHER_TOKEN"
NICKNAMES = ".nicknames.json"   # the older store: every nickname in one file (read as a fallback, never written)
NICK_FOLDER = ".nicknames"      # one record per student: <root>/.nicknames/<owner digest>.json
NICK_FORMAT = "cnnlab-nickname"
MAX_NICKNAME = 24
MAX_NICKNAMES = 5000
MAX_PASSWORD = 200

_token_lock = threading.Lock()


def enabled() -> bool:
    """Whether this server has a teacher at all (CNNLAB_TEACHER_PASSWORD set and not empty)."""
    return bool(os.environ.get(PASSWORD_ENV))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def check_password(given: str) -> bool:
    """True when `given` is the teacher password; constant time in the password's length and content."""
    expected = os.environ.get(PASSWORD_ENV) or ""
    if not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(_digest(given[:MAX_PASSWORD]), _digest(expected))


def server_token() -> str | None:
    """The owner token the executor accepts from the teacher (None without teacher mode or token).

    CNNLAB_TEACHER_TOKEN when set (an API client may use it); otherwise a random secret made on first use and
    put into this process's environment, so the executor (``Limits.from_env``) created after it accepts it.
    """
    tok = os.environ.get(TOKEN_ENV)
    if tok:
        return tok
    if not enabled():
        return None
    with _token_lock:
        tok = os.environ.get(TOKEN_ENV)
        if not tok:
            tok = secrets.token_urlsafe(24)
            os.environ[TOKEN_ENV] = tok
    return tok


class Guard:
    """Wrong teacher passwords, counted for the whole server process, so a new browser session starts with no
    free tries (the per-session Throttle did: 63 guesses in 14 s from fresh sessions):

    - per client address: after `free` wrong tries each try waits `delay_s` × 2^(extra), at most `max_delay_s`;
      after `lock_after` wrong tries the address is locked out for `lock_s` (the log says so);
    - for everyone together: beyond `global_free` wrong tries in `window_s`, tries are spaced `global_gap_s`
      apart (many addresses cannot guess faster than that either).
    """

    def __init__(self, free: int = 3, delay_s: float = 2.0, max_delay_s: float = 300.0, lock_after: int = 20,
                 lock_s: float = 900.0, global_free: int = 30, window_s: float = 600.0, global_gap_s: float = 2.0):
        self.free, self.delay_s, self.max_delay_s = free, delay_s, max_delay_s
        self.lock_after, self.lock_s = lock_after, lock_s
        self.global_free, self.window_s, self.global_gap_s = global_free, window_s, global_gap_s
        self._lock = threading.Lock()
        self._by_addr: dict[str, list] = {}      # address → [failures, next try (monotonic)]
        self._recent: list[float] = []           # times of wrong tries, all addresses (within window_s)
        self._next_global = 0.0

    def wait_s(self, addr: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            mine = self._by_addr.get(addr, [0, 0.0])[1]
            return max(0.0, mine - now, self._next_global - now)

    def failed(self, addr: str, now: float | None = None) -> None:
        import logging

        now = time.monotonic() if now is None else now
        with self._lock:
            rec = self._by_addr.setdefault(addr, [0, 0.0])
            rec[0] += 1
            extra = rec[0] - self.free
            if rec[0] >= self.lock_after:
                rec[1] = now + self.lock_s
                if rec[0] == self.lock_after:
                    logging.getLogger("cnnlab.teacher").warning(
                        "teacher sign-in: %s locked out for %.0f s after %d wrong passwords", addr, self.lock_s,
                        rec[0])
            elif extra >= 0:
                rec[1] = now + min(self.max_delay_s, self.delay_s * (2 ** extra))
            self._recent = [t for t in self._recent if now - t < self.window_s] + [now]
            if len(self._recent) > self.global_free:
                self._next_global = now + self.global_gap_s
            if len(self._by_addr) > 10_000:  # bounded: forget the oldest addresses
                for k in list(self._by_addr)[:5_000]:
                    del self._by_addr[k]

    def succeeded(self, addr: str) -> None:
        with self._lock:
            self._by_addr.pop(addr, None)


GUARD = Guard()  # one per server process: every browser session's tries count together


# -- the teacher's sign-in, kept for a browser session ------------------------------------------
SESSIONS = os.path.join(".teacher", "sessions")
SESSION_S = 12 * 3600      # a sign-in lasts a school day at most, then the password is asked again
_SESSION_RE = re.compile(r"[A-Za-z0-9_-]{32,64}")


def _session_path(root: str | os.PathLike, token: str) -> str:
    return os.path.join(os.fspath(root), SESSIONS, hashlib.sha256(token.encode()).hexdigest() + ".json")


def _session_bind(token: str) -> str:
    """Ties a session to the password it was opened with: a changed password ends every session. The record
    keeps neither the token (its file is named by the token's digest) nor the password."""
    pw = os.environ.get(PASSWORD_ENV) or ""
    return hashlib.sha256(f"cnnlab-teacher\0{pw}\0{token}".encode("utf-8", "surrogatepass")).hexdigest()


def open_session(root: str | os.PathLike, now: float | None = None) -> str:
    """After a right password: a new random session token (for a cookie), recorded on the server as one file."""
    token = secrets.token_urlsafe(32)
    path = _session_path(root, token)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    now = time.time() if now is None else now
    ckpt.atomic_write_json(path, {"expires": now + SESSION_S, "bind": _session_bind(token)})
    return token


def session_valid(root: str | os.PathLike, token: object, now: float | None = None) -> bool:
    """Whether a cookie's token is a live teacher session of this password (teacher mode on, not expired)."""
    if not enabled() or not isinstance(token, str) or not _SESSION_RE.fullmatch(token):
        return False
    try:
        data = ckpt._parse_json(ckpt._read_capped(_session_path(root, token), 4096), "session")
    except (ckpt.CheckpointError, ValueError, UnicodeDecodeError):
        return False
    if not isinstance(data, dict) or not isinstance(data.get("expires"), (int, float)):
        return False
    if (time.time() if now is None else now) > data["expires"]:
        close_session(root, token)
        return False
    return hmac.compare_digest(str(data.get("bind", "")), _session_bind(token))


def close_session(root: str | os.PathLike, token: object) -> None:
    """Sign-out: the session's record is removed, so its cookie opens nothing any more."""
    if isinstance(token, str) and _SESSION_RE.fullmatch(token):
        try:
            os.remove(_session_path(root, token))
        except OSError:
            pass


# -- nicknames --------------------------------------------------------------------------------

_NICK_OK = re.compile(r"^[\w .'\-]+$", re.UNICODE)
_DIGEST_RE = re.compile(r"[0-9a-f]{32}")





def clean_nickname(text: str) -> str:
    """A nickname as kept: NFC, spaces folded, at most 24 characters of letters, digits, space . ' - _."""
    if not isinstance(text, str):
        raise NicknameError(msg("msg.nick_text"))
    t = " ".join(unicodedata.normalize("NFC", text).split())
    if not t:
        return ""
    if len(t) > MAX_NICKNAME:
        raise NicknameError(msg("msg.nick_long", most=MAX_NICKNAME))
    if not _NICK_OK.match(t):
        raise NicknameError(msg("msg.nick_chars"))
    return t


def anonymous(digest: str | None) -> str:
    """The label of a student without a nickname: "student 3f2a" (from the owner digest)."""
    return msg("msg.student", id=digest[:4]) if digest else "—"


@dataclass
class Nicknames:
    """Nicknames by owner digest: one record per student, ``<root>/.nicknames/<owner digest>.json``.

    A record is ``{"format": "cnnlab-nickname", "owner": <digest>, "nickname": ..., "set": <time>}``, written
    whole (temp file, then rename) by that student's own sessions only: no file is shared by two students, so
    students setting nicknames at the same moment, on one server or on two sharing a folder (a Storage Bucket
    mount has no locks and the last writer wins), never overwrite each other. A removed nickname is a record
    too (``"nickname": ""``), so an entry in the older store does not come back.

    Reading is by name (no listing): a record that is missing, late, unreadable or half-written falls back to the
    older store's one file ``<root>/.nicknames.json`` (written before this layout; read, never written), and then
    to no nickname. A Nicknames is one look at the store: what it has read is remembered for its life (the
    Class page makes one per refresh), so make a new one to see later changes.
    """
    root: str
    _seen: dict = field(default_factory=dict, repr=False)
    _legacy: dict | None = field(default=None, repr=False)

    @property
    def folder(self) -> str:
        return os.path.join(os.fspath(self.root), NICK_FOLDER)

    @property
    def legacy_path(self) -> str:
        return os.path.join(os.fspath(self.root), NICKNAMES)

    def record_path(self, digest: str) -> str:
        return os.path.join(self.folder, digest + ".json")

    def _read_legacy(self) -> dict:
        if self._legacy is None:
            try:
                data = ckpt._parse_json(ckpt._read_capped(self.legacy_path, 1 << 20), self.legacy_path)
            except (ckpt.CheckpointError, ValueError, UnicodeDecodeError):
                data = {}
            good = {}
            if isinstance(data, dict):
                for k, v in list(data.items())[:MAX_NICKNAMES]:
                    if isinstance(k, str) and _DIGEST_RE.fullmatch(k) and isinstance(v, str):
                        try:
                            nick = clean_nickname(v)
                        except NicknameError:
                            continue
                        if nick:
                            good[k] = nick
            self._legacy = good
        return self._legacy

    def _read_record(self, digest: str) -> str | None:
        """The record's nickname ("" for a removed one), or None when there is no usable record."""
        try:
            data = ckpt._parse_json(ckpt._read_capped(self.record_path(digest), 4096), digest)
        except (ckpt.CheckpointError, ValueError, UnicodeDecodeError):
            return None
        if (not isinstance(data, dict) or data.get("format") != NICK_FORMAT or data.get("owner") != digest
                or not isinstance(data.get("nickname"), str)):
            return None
        try:
            return clean_nickname(data["nickname"])
        except NicknameError:
            return None

    def get(self, digest: str | None) -> str | None:
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            return None
        if digest not in self._seen:
            nick = self._read_record(digest)
            if nick is None:
                nick = self._read_legacy().get(digest)
            self._seen[digest] = nick or None
        return self._seen[digest]

    def of_owner(self, owner_token: str) -> str | None:
        return self.get(owner_digest(owner_token)) if owner_token else None

    def label(self, digest: str | None) -> str:
        return self.get(digest) or anonymous(digest)

    def _full(self) -> bool:
        try:
            with os.scandir(self.folder) as it:
                return sum(1 for _ in itertools.islice(it, MAX_NICKNAMES)) >= MAX_NICKNAMES
        except OSError:
            return False

    def set(self, owner_token: str, nickname: str) -> str:
        """Give this owner a nickname ("" removes it); returns the nickname as kept. Raises NicknameError.
        Writes this owner's record only (whole, by rename); reads no other student's."""
        nick = clean_nickname(nickname)
        if not owner_token:
            raise NicknameError(msg("msg.nick_nobody"))
        d = owner_digest(owner_token)
        path = self.record_path(d)
        if not os.path.lexists(path):
            if not nick and not self._read_legacy().get(d):
                self._seen[d] = None
                return nick  # nothing to remove
            if nick and self._full():
                raise NicknameError(msg("msg.nick_full"))
        os.makedirs(self.folder, exist_ok=True)
        ckpt.atomic_write_json(path, {"format": NICK_FORMAT, "owner": d, "nickname": nick, "set": time.time()})
        self._seen[d] = nick or None
        return nick


__all__ = ["enabled", "check_password", "server_token", "Guard", "GUARD", "open_session", "session_valid",
           "close_session", "Nicknames", "NicknameError", "clean_nickname", "anonymous"]
