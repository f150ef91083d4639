"""Teacher mode and student nicknames (plain Python; no streamlit).

- Teacher mode exists only when ``CNNLAB_TEACHER_PASSWORD`` is set. The password is compared in constant time
  (``hmac.compare_digest`` over SHA-256 digests, so neither the length nor a prefix leaks), and a session that
  keeps guessing is slowed down (`Throttle`).
- A signed-in teacher acts on runs through the executor with the server's teacher token (`server_token`): the
  executor's ``Limits.teacher`` (``CNNLAB_TEACHER_TOKEN`` if set, else a random secret made once per server
  process). Students never see it; it never leaves the server.
- Nicknames: a student may give one (no account). It is kept on the server keyed by the digest of the owner
  token (the one in each run folder's ``.owner``), so the teacher sees it on every run of that student, old
  ones too.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field

from . import checkpoint as ckpt
from .i18n import msg
from .runs.recovery import owner_digest

PASSWORD_ENV = "CNNLAB_TEACHER_PASSWORD"
TOKEN_ENV = "CNNLAB_TEACHER_TOKEN"
NICKNAMES = ".nicknames.json"
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


@dataclass
class Throttle:
    """Slows a session that keeps guessing: after `free` failures, each try waits `delay_s` × 2^(extra fails)
    (at most `max_delay_s`). Kept per session by the caller."""
    free: int = 3
    delay_s: float = 2.0
    max_delay_s: float = 60.0
    failures: int = 0
    next_try: float = 0.0

    def wait_s(self, now: float | None = None) -> float:
        return max(0.0, self.next_try - (time.monotonic() if now is None else now))

    def failed(self, now: float | None = None) -> None:
        self.failures += 1
        extra = self.failures - self.free
        if extra >= 0:
            now = time.monotonic() if now is None else now
            self.next_try = now + min(self.max_delay_s, self.delay_s * (2 ** extra))

    def succeeded(self) -> None:
        self.failures, self.next_try = 0, 0.0


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


class NicknameError(ValueError):
    """One sentence: a nickname that cannot be used."""


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
    """Nicknames by owner digest, kept in ``<root>/.nicknames.json`` (written atomically; read defensively)."""
    root: str
    _cache: dict = field(default_factory=dict, repr=False)
    _mtime: float = field(default=-1.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> str:
        return os.path.join(os.fspath(self.root), NICKNAMES)

    def _load(self) -> dict:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return {}
        if mtime == self._mtime:
            return self._cache
        try:
            data = ckpt._parse_json(ckpt._read_capped(self.path, 1 << 20), self.path)
        except (ckpt.CheckpointError, ValueError, UnicodeDecodeError):
            data = {}
        good = {}
        if isinstance(data, dict):
            for k, v in list(data.items())[:MAX_NICKNAMES]:
                if isinstance(k, str) and re.fullmatch(r"[0-9a-f]{32}", k) and isinstance(v, str):
                    try:
                        nick = clean_nickname(v)
                    except NicknameError:
                        continue
                    if nick:
                        good[k] = nick
        self._cache, self._mtime = good, mtime
        return good

    def get(self, digest: str | None) -> str | None:
        if not digest:
            return None
        with self._lock:
            return self._load().get(digest)

    def of_owner(self, owner_token: str) -> str | None:
        return self.get(owner_digest(owner_token)) if owner_token else None

    def label(self, digest: str | None) -> str:
        return self.get(digest) or anonymous(digest)

    def set(self, owner_token: str, nickname: str) -> str:
        """Give this owner a nickname ("" removes it); returns the nickname as kept. Raises NicknameError."""
        nick = clean_nickname(nickname)
        if not owner_token:
            raise NicknameError(msg("msg.nick_nobody"))
        d = owner_digest(owner_token)
        with self._lock:
            data = dict(self._load())
            if nick:
                data[d] = nick
            else:
                data.pop(d, None)
            if len(data) > MAX_NICKNAMES:
                raise NicknameError(msg("msg.nick_full"))
            os.makedirs(os.fspath(self.root), exist_ok=True)
            ckpt.atomic_write_json(self.path, data)
            self._mtime = -1.0
        return nick


__all__ = ["enabled", "check_password", "server_token", "open_session", "session_valid", "close_session", "Throttle", "Nicknames", "NicknameError", "clean_nickname",
           "anonymous"]
