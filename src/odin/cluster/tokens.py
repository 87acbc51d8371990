"""API tokens as the replicated state holds them: who owns each, what it may do, only its hash.

A token is ``odin_<id>_<secret>`` (``odin.engine.tokens`` makes it); the state keeps its id,
owner, name, scopes, times and the SHA-256 of the whole string, never the string. The
``TokenTable`` is the part of the state machine that holds them: ``add``, ``revoke`` and
``touch`` are deterministic like the rest of ``apply`` (every time comes in the command).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Self

from odin.errors import InvalidInput, LimitExceeded, NotFound


class TokenScope(StrEnum):
    """What a token may do with its owner's jobs; every scope may read them."""

    READ = "read"  # list, describe, log, stats, alerts
    DEPLOY = "deploy"  # deploy, apply, modify, remove, link, unlink, recover, notify test
    RUN = "run"  # run now

    @classmethod
    def parse(cls, text: str) -> tuple[TokenScope, ...]:
        """``deploy,run`` → its scopes, in this enum's order; an unknown one is named."""
        names = [part.strip().lower() for part in text.split(",") if part.strip()]
        if not names:
            raise InvalidInput(f"a token needs a scope: {', '.join(cls)}")
        known = {str(scope) for scope in cls}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise InvalidInput(
                f"no scope named {', '.join(map(repr, unknown))}: the scopes are {', '.join(cls)}"
            )
        return tuple(scope for scope in cls if scope in names)


def grants(scopes: Iterable[TokenScope], needed: TokenScope) -> bool:
    """Whether a token with ``scopes`` may do what needs ``needed`` (any scope reads)."""
    return needed is TokenScope.READ or needed in tuple(scopes)


@dataclasses.dataclass(frozen=True)
class ApiToken:
    """One token: ``digest`` is the SHA-256 (hex) of its whole string; the string is not kept."""

    id: str
    owner_uid: int
    owner: str
    name: str
    scopes: tuple[TokenScope, ...]
    digest: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None  # as replicated (at most every TOKEN_TOUCH_INTERVAL_S)

    def ended_at(self) -> float | None:
        """When it stopped working (revoked or expired), or None while it may still work."""
        ends = [t for t in (self.revoked_at, self.expires_at) if t is not None]
        return min(ends) if ends else None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["scopes"] = [str(scope) for scope in self.scopes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept["scopes"] = tuple(TokenScope(s) for s in data.get("scopes", ()))
        return cls(**kept)


class TokenTable:
    """Every user's tokens, by id: the state machine's part for ``AddToken``, ``RevokeToken``
    and ``TouchToken``."""

    def __init__(self) -> None:
        self.by_id: dict[str, ApiToken] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, token_id: str) -> ApiToken | None:
        return self.by_id.get(token_id)

    def add(self, token: ApiToken, limit: int, keep_ended_s: float) -> ApiToken:
        """Add ``token`` (the same token again: nothing new), first purging its owner's tokens
        that ended ``keep_ended_s`` before it was made; refused past ``limit`` per owner."""
        old = self.by_id.get(token.id)
        if old is not None:
            if old.digest != token.digest or old.owner_uid != token.owner_uid:
                raise InvalidInput(f"token id {token.id} is taken")
            return old
        now = token.created_at
        for other in [t for t in self.by_id.values() if t.owner_uid == token.owner_uid]:
            ended = other.ended_at()
            if ended is not None and ended <= now - keep_ended_s:
                del self.by_id[other.id]
        held = sum(1 for t in self.by_id.values() if t.owner_uid == token.owner_uid)
        if held >= limit:
            raise LimitExceeded(
                f"{token.owner} holds {held} API tokens, the limit (MAX_TOKENS_PER_USER): "
                "revoke some with odin token revoke"
            )
        self.by_id[token.id] = token
        return token

    def revoke(self, token_id: str, at: float) -> ApiToken:
        """Revoke a token from ``at`` on; one already revoked keeps its first revocation."""
        token = self.by_id.get(token_id)
        if token is None:
            raise NotFound(f"no token with id {token_id}")
        if token.revoked_at is None:
            token = dataclasses.replace(token, revoked_at=at)
            self.by_id[token_id] = token
        return token

    def touch(self, token_id: str, at: float) -> None:
        """Note a use at ``at`` (never moving it back); a token gone meanwhile is left gone."""
        token = self.by_id.get(token_id)
        if token is not None and (token.last_used_at is None or at > token.last_used_at):
            self.by_id[token_id] = dataclasses.replace(token, last_used_at=at)

    def snapshot(self) -> list[dict[str, Any]]:
        return [token.to_dict() for token in self.by_id.values()]

    def restore(self, data: Iterable[Mapping[str, Any]]) -> None:
        self.by_id = {}
        for item in data:
            token = ApiToken.from_dict(item)
            self.by_id[token.id] = token
