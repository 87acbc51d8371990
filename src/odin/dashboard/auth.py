"""Who is looking at the dashboard: one-time links, PAM passwords, sessions and CSRF.

Three ways in, all ending in a kernel-style uid that ``caller_from_uid`` turns
into a ``Caller`` at every request (so removing a user from group ``odin``
takes effect at once):

- a one-time link minted over the engine's Unix socket for the peer-credential
  caller (``LinkMinter``; single use, valid ``DASHBOARD_LINK_TTL_S``), which
  logs in only when the browser that opened it confirms (``link_nonce``);
- a Linux user name and password checked by PAM (``check_password``, run by
  ``odin.dashboard.throttle.PasswordGate``); never root;
- an OpenID Connect login (``odin.dashboard.oidc``).

A session is a random id in a signed cookie; the id is looked up in a SQLite
table in the data directory, so sessions survive a restart, end at their
expiry and end at logout. Secrets (cookie key, metrics token, the table) are
files of mode 0600 in the data directory.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from odin import config
from odin.engine.identity import Caller, caller_from_uid
from odin.errors import PermissionDenied

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LINK_FIELD = "link"
LOGIN_FAILED = "Login failed: wrong user name or password, or this user may not log in here."


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- one-time links -----------------------------------------------------------


@dataclass(frozen=True)
class LoginLink:
    url: str
    expires_in: float


@dataclass(frozen=True)
class MintedLink:
    """The answer of ``POST /v1/dashboard/link`` (``odin dashboard``)."""

    url: str
    expires_in: float  # seconds
    user: str  # whom it logs in


class LinkMinter:
    """Single-use login tokens, valid ``ttl_s`` seconds; only their hashes are kept.

    The same instance must serve the socket API (minting) and the dashboard
    (redeeming). Tokens live in memory: a restart voids the unredeemed ones.
    """

    def __init__(
        self,
        public_url: str,
        *,
        ttl_s: float = config.DASHBOARD_LINK_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.ttl_s = ttl_s
        self._clock = clock
        self._pending: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def mint(self, uid: int) -> LoginLink:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._pending[_digest(token)] = (uid, self._clock() + self.ttl_s)
            while len(self._pending) > config.DASHBOARD_MAX_PENDING_LINKS:
                self._pending.popitem(last=False)
        return LoginLink(url=f"{self.public_url}/login/{token}", expires_in=self.ttl_s)

    def peek(self, token: str) -> int | None:
        """The uid the token was minted for, leaving it unused; None if unknown, used or expired."""
        with self._lock:
            entry = self._pending.get(_digest(token))
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def redeem(self, token: str) -> int | None:
        """The uid the token was minted for, once; None if unknown, used or expired."""
        with self._lock:
            entry = self._pending.pop(_digest(token), None)
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]


def login_link_router(minter: LinkMinter) -> APIRouter:
    """``POST /v1/dashboard/link`` for the engine's socket API (caller from SO_PEERCRED)."""
    from odin.api.app import caller

    router = APIRouter()

    @router.post("/v1/dashboard/link")
    async def mint_link(who: Caller = Depends(caller)) -> MintedLink:  # noqa: B008
        link = minter.mint(who.uid)
        return MintedLink(url=link.url, expires_in=link.expires_in, user=who.user)

    return router


# -- passwords ----------------------------------------------------------------


def check_password(user: str, password: str, service: str) -> Caller:
    """The member ``user`` if PAM accepts ``password``; PermissionDenied(LOGIN_FAILED) otherwise.

    Blocking (PAM delays failures on purpose): ``PasswordGate`` runs it on its
    own pool. Every refusal is the same error, so that the answer never tells a
    right password from a wrong one. Unknown users, non-members and root are
    refused before PAM is asked, so the dashboard never tests their passwords
    (root logs in with ``odin dashboard`` links over the socket).
    """
    import pam  # type: ignore[import-untyped]

    if not user or not password or len(user) > 256 or len(password) > 4096:
        raise PermissionDenied(LOGIN_FAILED)
    try:
        who = caller_from_uid(pwd.getpwnam(user).pw_uid)
    except (KeyError, ValueError, PermissionDenied):
        raise PermissionDenied(LOGIN_FAILED) from None
    if who.is_root or not pam.pam().authenticate(user, password, service=service):
        raise PermissionDenied(LOGIN_FAILED)
    return who


# -- secrets and sessions -----------------------------------------------------


def private_token(path: Path) -> str:
    """The token in ``path``, created (mode 0600, 32 random bytes) on first use."""
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


@dataclass(frozen=True)
class Session:
    uid: int
    method: str
    created: float
    expires: float


class SessionStore:
    """Logged-in sessions by the hash of their id, in a private SQLite file."""

    def __init__(self, path: Path, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, uid INTEGER NOT NULL,"
                " method TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL)"
            )

    def create(self, uid: int, method: str) -> str:
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self._db.execute(
                "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY created"
                " LIMIT max(0, (SELECT count(*) FROM sessions) - ?))",
                (config.DASHBOARD_MAX_SESSIONS - 1,),
            )
            self._db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?)",
                (_digest(sid), uid, method, now, now + self.ttl_s),
            )
        return sid

    def get(self, sid: str) -> Session | None:
        with self._lock:
            row = self._db.execute(
                "SELECT uid, method, created, expires FROM sessions WHERE id = ?", (_digest(sid),)
            ).fetchone()
        if row is None or row[3] < self._clock():
            return None
        return Session(uid=int(row[0]), method=str(row[1]), created=row[2], expires=row[3])

    def delete(self, sid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (_digest(sid),))

    def close(self) -> None:
        with self._lock:
            self._db.close()


# -- CSRF ---------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """This browser session's CSRF token (made on first use, kept in the signed cookie)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session[CSRF_FIELD] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Every state-changing request must echo the token (form field or X-CSRF-Token)."""
    expected = request.session.get(CSRF_FIELD)
    given = submitted or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(expected, str) or not secrets.compare_digest(expected, given):
        raise PermissionDenied("this form has expired (CSRF check failed): reload the page")


# -- confirming a login link ----------------------------------------------------


def link_nonce(request: Request, token: str) -> str:
    """A nonce for the page that confirms ``token``, kept in this browser's signed cookie.

    Opening a link only shows who it logs in; the login happens when the page's
    form is posted back with this nonce, which only this browser holds, within
    ``DASHBOARD_LINK_TTL_S``. So a link sent to someone else logs no one in by
    being followed, and another site cannot post the form for them.
    """
    nonce = secrets.token_urlsafe(24)
    until = time.time() + config.DASHBOARD_LINK_TTL_S
    request.session[LINK_FIELD] = {"nonce": nonce, "link": _digest(token), "until": until}
    return nonce


def check_link_nonce(request: Request, token: str, submitted: str) -> None:
    """The confirmation must echo the nonce this browser got with the page for ``token``."""
    pending = request.session.pop(LINK_FIELD, None)
    if not isinstance(pending, dict) or not _same_link(pending, token, submitted):
        raise PermissionDenied(
            "This confirmation has expired or belongs to another browser: open the link again."
        )


def _same_link(pending: dict[str, Any], token: str, submitted: str) -> bool:
    """Whether the stored confirmation is for ``token``, unexpired, and ``submitted`` echoes it."""
    nonce, link, until = pending.get("nonce"), pending.get("link"), pending.get("until")
    return (
        isinstance(nonce, str)
        and isinstance(link, str)
        and isinstance(until, int | float)
        and until >= time.time()
        and secrets.compare_digest(nonce, submitted)
        and secrets.compare_digest(link, _digest(token))
    )
