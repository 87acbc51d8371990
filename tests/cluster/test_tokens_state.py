"""API tokens in the replicated state: the commands round-trip, apply deterministically, purge
ended tokens, keep a per-owner limit, and survive a snapshot (which holds only their hashes)."""

from __future__ import annotations

import orjson
import pytest

from odin.cluster import commands as c
from odin.cluster.state import StateMachine
from odin.cluster.tokens import ApiToken, TokenScope, grants
from odin.errors import InvalidInput, LimitExceeded, NotFound

DAY = 86400.0


def token(
    token_id: str = "0123456789abcdef", uid: int = 1001, at: float = 1000.0, **kw: object
) -> ApiToken:
    fields: dict[str, object] = {
        "id": token_id,
        "owner_uid": uid,
        "owner": "alice",
        "name": "ci",
        "scopes": (TokenScope.DEPLOY, TokenScope.RUN),
        "digest": "ab" * 32,
        "created_at": at,
        "expires_at": at + 30 * DAY,
    }
    fields.update(kw)
    return ApiToken(**fields)  # type: ignore[arg-type]


def add(sm: StateMachine, made: ApiToken, limit: int = 100) -> ApiToken:
    result, events = sm.apply(c.AddToken(made, limit, 30 * DAY))
    assert events == []
    assert isinstance(result, ApiToken)
    return result


def test_the_commands_round_trip_through_their_wire_form() -> None:
    for command in (
        c.AddToken(token(), 100, 30 * DAY),
        c.RevokeToken("0123456789abcdef", 2000.0),
        c.TouchToken("0123456789abcdef", 3000.0),
    ):
        assert c.decode(c.encode(command)) == command
        assert c.replayable(command)
    decoded = c.decode(c.encode(c.AddToken(token(), 100, 30 * DAY)))
    assert isinstance(decoded, c.AddToken)
    assert decoded.token.scopes == (TokenScope.DEPLOY, TokenScope.RUN)


def test_add_revoke_and_touch_apply_deterministically_and_replay_harmlessly() -> None:
    sm = StateMachine()
    made = token()
    assert add(sm, made) == made
    assert add(sm, made) == made  # the same command again: nothing new
    with pytest.raises(InvalidInput, match="is taken"):
        add(sm, token(digest="cd" * 32))
    sm.apply(c.TouchToken(made.id, 1500.0))
    sm.apply(c.TouchToken(made.id, 1200.0))  # an older use never moves it back
    sm.apply(c.TouchToken("ffffffffffffffff", 1500.0))  # a token gone: nothing
    revoked, _ = sm.apply(c.RevokeToken(made.id, 2000.0))
    again, _ = sm.apply(c.RevokeToken(made.id, 2500.0))
    assert revoked.revoked_at == again.revoked_at == 2000.0
    assert sm.tokens.get(made.id) == token(last_used_at=1500.0, revoked_at=2000.0)
    with pytest.raises(NotFound):
        sm.apply(c.RevokeToken("ffffffffffffffff", 2000.0))


def test_each_owner_has_a_limit_and_ended_tokens_are_purged_after_a_while() -> None:
    sm = StateMachine()
    add(sm, token("a" * 16, expires_at=1000.0 + DAY), limit=2)
    add(sm, token("b" * 16), limit=2)
    with pytest.raises(LimitExceeded, match="MAX_TOKENS_PER_USER"):
        add(sm, token("c" * 16, at=2000.0), limit=2)
    add(sm, token("d" * 16, uid=1002, owner="bob"), limit=2)  # Bob's count is his own
    later = 1000.0 + DAY + 30 * DAY  # 30 days after the first one expired
    add(sm, token("c" * 16, at=later), limit=2)
    assert sorted(sm.tokens.by_id) == ["b" * 16, "c" * 16, "d" * 16]


def test_a_snapshot_keeps_tokens_and_an_empty_table_leaves_the_snapshot_as_it_was() -> None:
    sm = StateMachine()
    assert b'"tokens"' not in sm.snapshot()
    add(sm, token())
    sm.apply(c.TouchToken(token().id, 1500.0))
    blob = sm.snapshot()
    assert orjson.loads(blob)["tokens"][0]["digest"] == "ab" * 32
    copy = StateMachine()
    copy.restore(blob)
    assert copy.tokens.by_id == sm.tokens.by_id
    assert copy.snapshot() == blob


def test_scopes_parse_and_every_scope_reads() -> None:
    assert TokenScope.parse("run, deploy") == (TokenScope.DEPLOY, TokenScope.RUN)
    with pytest.raises(InvalidInput, match="no scope named 'admin'"):
        TokenScope.parse("read,admin")
    with pytest.raises(InvalidInput, match="needs a scope"):
        TokenScope.parse(" , ")
    assert grants((TokenScope.RUN,), TokenScope.READ)
    assert not grants((TokenScope.READ,), TokenScope.RUN)
    assert not grants((TokenScope.RUN,), TokenScope.DEPLOY)
