"""API tokens: made, listed and revoked over the socket, checked at each use over HTTPS.

A member (or root) makes a token for their own jobs with ``odin token create``; the engine
draws its id and 256-bit secret, hands the string ``odin_<id>_<secret>`` back once, and
replicates only the SHA-256 of that string (``AddToken``), so every node can check it and no
file, journal, snapshot or backup holds it in clear. A request presenting it is looked up by
id and compared in constant time; the caller is then the token's owner as the host knows
them now (``caller_from_uid``, so leaving group ``odin`` ends their tokens too), limited to
that owner's jobs (``TokenCaller.is_root`` is False even for root's tokens) and to the
token's scopes. A token can never make tokens, see nodes or back up: the token API has no
such route (``odin.api.token_api``).

When a token was last used is kept exactly in this node's memory and replicated at most
every ``TOKEN_TOUCH_INTERVAL_S`` per token (``TouchToken``, proposed in the background), so
a request never waits for a Raft write; ``odin token list`` shows the later of the two.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from odin import config
from odin.cluster import commands as c
from odin.cluster.tokens import ApiToken, TokenScope, grants
from odin.engine.identity import Caller, caller_from_uid
from odin.engine.node import EngineNode
from odin.engine.views import iso
from odin.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from odin.tasks import Background

log = logging.getLogger("odin.tokens")

TOKEN_PREFIX = "odin"
_TOKEN_RE = re.compile(
    rf"{TOKEN_PREFIX}_(?P<id>[0-9a-f]{{{2 * config.TOKEN_ID_BYTES}}})"
    rf"_[0-9a-f]{{{2 * config.TOKEN_SECRET_BYTES}}}"
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:/+-]*")

NO_TOKEN = (
    "this API needs an API token: send 'Authorization: Bearer odin_...' "
    "(make one with odin token create on a node's host)"
)
NOT_A_TOKEN = "this is not an Odin API token (they look like odin_<16 hex>_<64 hex>)"
UNKNOWN = "unknown API token: it is mistyped, or it was made for another cluster"
ROOT_DEPLOY = (
    "root's tokens may not deploy: root's jobs run as root, so a token that deploys them would "
    "be a root login from wherever it leaks; give root's tokens the read and run scopes, or "
    "deploy as a member"
)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) of a whole token string: what the replicated state keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class TokenRequest:
    """What ``odin token create`` asks for; ``expires_in_s`` None: it never expires."""

    name: str
    scopes: tuple[TokenScope, ...]
    expires_in_s: float | None


@dataclass(frozen=True)
class TokenCreated:
    """A new token: ``token`` is its secret string, shown this once and never again."""

    token: str
    id: str
    name: str
    owner: str
    scopes: Sequence[TokenScope]
    created_at: str
    expires_at: str | None
    url: str | None  # this node's dashboard address (ODIN_URL), if it serves one


@dataclass(frozen=True)
class TokenView:
    """A token as ``odin token list`` shows it (never its secret nor its hash)."""

    id: str
    name: str
    owner: str
    owner_uid: int
    scopes: Sequence[TokenScope]
    state: TokenState
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


@dataclass(frozen=True)
class TokenRevoked:
    id: str
    name: str
    owner: str
    revoked_at: str


@dataclass(frozen=True)
class TokenCaller(Caller):
    """The owner of an API token, acting through it: on their own jobs only, in its scopes."""

    token_id: str = ""
    token_name: str = ""
    scopes: tuple[TokenScope, ...] = ()

    @property
    def is_root(self) -> bool:
        """Never root's powers through a token, even one of root's: its own jobs only."""
        return False

    def require(self, needed: TokenScope, action: str) -> None:
        """Refuse ``action`` unless the token's scopes grant ``needed`` (naming it)."""
        if not grants(self.scopes, needed):
            log.info(
                "API token %s of %s (uid %d) refused: %s needs scope %s",
                self.token_id,
                self.user,
                self.uid,
                action,
                needed,
            )
            raise PermissionDenied(
                f"this API token ({self.token_name}, scopes {', '.join(self.scopes)}) may not "
                f"{action}: that needs the '{needed}' scope"
            )

    def used(self, action: str, target: str = "") -> None:
        """Log one use with the owner's other actions (the audit trail, #27, will carry it)."""
        log.info(
            "API token %s of %s (uid %d): %s%s",
            self.token_id,
            self.user,
            self.uid,
            action,
            f" {target}" if target else "",
        )


def check_name(name: str) -> str:
    """A token's name, checked: a short label of letters, digits and a little punctuation."""
    name = name.strip()
    if not name or len(name) > config.TOKEN_NAME_CHARS or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"a token's name is 1 to {config.TOKEN_NAME_CHARS} letters, digits, spaces and "
            "._@:/+- (starting with a letter or digit), such as ci or deploy-from-gitlab"
        )
    return name


class TokenService:
    """Make, list, revoke and check API tokens for the socket API and the token API."""

    def __init__(
        self,
        node: EngineNode,
        background: Background,
        *,
        api_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.background = background
        self.api_url = api_url
        self._clock = clock
        self._used: OrderedDict[str, float] = OrderedDict()  # token id -> last use on this node
        self._touched: dict[str, float] = {}  # token id -> when a TouchToken was last sent

    # -- over the socket ------------------------------------------------------

    async def create(self, caller: Caller, request: TokenRequest) -> TokenCreated:
        """Make a token for ``caller``'s own jobs; its string is in the answer, only once."""
        if isinstance(caller, TokenCaller):
            raise PermissionDenied("an API token cannot make tokens")
        name = check_name(request.name)
        if not request.scopes:
            raise InvalidInput(f"a token needs a scope: {', '.join(TokenScope)}")
        if caller.uid == 0 and TokenScope.DEPLOY in request.scopes:
            raise PermissionDenied(ROOT_DEPLOY)
        expires = request.expires_in_s
        if expires is not None and not config.MIN_DURATION_S <= expires <= config.MAX_DURATION_S:
            raise InvalidInput(
                f"a token expires within {config.MAX_DURATION_S / 86400:.0f} days "
                "(or never: --expires never)"
            )
        token_id = secrets.token_hex(config.TOKEN_ID_BYTES)
        text = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_hex(config.TOKEN_SECRET_BYTES)}"
        now = self._clock()
        record = ApiToken(
            id=token_id,
            owner_uid=caller.uid,
            owner=caller.user,
            name=name,
            scopes=tuple(s for s in TokenScope if s in request.scopes),
            digest=token_digest(text),
            created_at=now,
            expires_at=None if expires is None else now + expires,
        )
        command = c.AddToken(record, config.MAX_TOKENS_PER_USER, config.TOKEN_KEPT_ENDED_S)
        saved: ApiToken = await self.node.propose(command)
        log.info("%s (uid %d) made API token %s (%s)", caller.user, caller.uid, token_id, name)
        return TokenCreated(
            token=text,
            id=saved.id,
            name=saved.name,
            owner=saved.owner,
            scopes=saved.scopes,
            created_at=iso(saved.created_at) or "",
            expires_at=iso(saved.expires_at),
            url=self.api_url,
        )

    def list_tokens(self, caller: Caller) -> list[TokenView]:
        """The caller's tokens (root: everyone's), oldest first."""
        found = self.node.read(
            lambda state: [
                t
                for t in state.tokens.by_id.values()
                if caller.is_root or t.owner_uid == caller.uid
            ]
        )
        found.sort(key=lambda t: (t.created_at, t.id))
        now = self._clock()
        return [self._view(token, now) for token in found]

    async def revoke(self, caller: Caller, token_id: str) -> TokenRevoked:
        """Revoke one of the caller's tokens (root: anyone's); it stops working on every node."""
        if isinstance(caller, TokenCaller):
            raise PermissionDenied("an API token cannot revoke tokens")
        token = self.node.read(lambda state: state.tokens.get(token_id))
        if token is None or not (caller.is_root or token.owner_uid == caller.uid):
            raise NotFound(f"no token with id {token_id} (see odin token list)")
        revoked: ApiToken = await self.node.propose(c.RevokeToken(token_id, self._clock()))
        log.info("%s (uid %d) revoked API token %s", caller.user, caller.uid, token_id)
        return TokenRevoked(
            id=revoked.id,
            name=revoked.name,
            owner=revoked.owner,
            revoked_at=iso(revoked.revoked_at) or "",
        )

    def _view(self, token: ApiToken, now: float) -> TokenView:
        if token.revoked_at is not None:
            state = TokenState.REVOKED
        elif token.expires_at is not None and now >= token.expires_at:
            state = TokenState.EXPIRED
        else:
            state = TokenState.ACTIVE
        uses = [t for t in (token.last_used_at, self._used.get(token.id)) if t is not None]
        return TokenView(
            id=token.id,
            name=token.name,
            owner=token.owner,
            owner_uid=token.owner_uid,
            scopes=token.scopes,
            state=state,
            created_at=iso(token.created_at) or "",
            expires_at=iso(token.expires_at),
            revoked_at=iso(token.revoked_at),
            last_used_at=iso(max(uses)) if uses else None,
        )

    # -- at each use ------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> TokenCaller:
        """The caller an ``Authorization: Bearer`` header stands for; ``NotAuthenticated``
        (401) if it names no live token, ``NotAMember`` if its owner may no longer use Odin."""
        text = (authorization or "").strip()
        scheme, _, value = text.partition(" ")
        if not text or scheme.lower() != "bearer":
            raise NotAuthenticated(NO_TOKEN)
        who = await asyncio.to_thread(self._verify, value.strip())  # user lookups may block
        self._note(who.token_id)
        return who

    def _verify(self, text: str) -> TokenCaller:
        match = _TOKEN_RE.fullmatch(text)
        if match is None:
            raise NotAuthenticated(NOT_A_TOKEN)
        token = self.node.read(lambda state: state.tokens.get(match["id"]))
        given = token_digest(text)
        # Compared in constant time even for an unknown id, so that timing tells nothing.
        if not hmac.compare_digest(given, token.digest if token else "0" * len(given)):
            raise NotAuthenticated(UNKNOWN)
        assert token is not None
        if token.revoked_at is not None:
            raise NotAuthenticated(
                f"API token {token.id} ({token.name}) was revoked at {iso(token.revoked_at)}: "
                "ask its owner for a new one (odin token create)"
            )
        if token.expires_at is not None and self._clock() >= token.expires_at:
            raise NotAuthenticated(
                f"API token {token.id} ({token.name}) expired at {iso(token.expires_at)}: "
                "make a new one with odin token create"
            )
        owner = caller_from_uid(token.owner_uid)  # NotAMember once they left group odin
        if owner.user != token.owner:
            raise NotAuthenticated(
                f"API token {token.id} was made by {token.owner}, but uid {token.owner_uid} "
                f"is {owner.user} now: it no longer works"
            )
        base = {f.name: getattr(owner, f.name) for f in dataclasses.fields(Caller)}
        return TokenCaller(**base, token_id=token.id, token_name=token.name, scopes=token.scopes)

    def _note(self, token_id: str) -> None:
        """Keep this use in memory; replicate it if this node has not for a while."""
        now = self._clock()
        self._used[token_id] = now
        self._used.move_to_end(token_id)
        while len(self._used) > config.TOKEN_TRACKED:
            gone, _ = self._used.popitem(last=False)
            self._touched.pop(gone, None)
        if now - self._touched.get(token_id, float("-inf")) >= config.TOKEN_TOUCH_INTERVAL_S:
            self._touched[token_id] = now
            self.background.start(self.node.propose(c.TouchToken(token_id, now)))
