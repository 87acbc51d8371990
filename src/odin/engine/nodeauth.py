"""Signed requests between the nodes of a cluster: how a node's internal API knows its caller.

Each node-to-node HTTP request carries one header, ``X-Odin-Node-Auth: t=<ms>,n=<nonce>,s=<sig>``:
the sender's clock in milliseconds since the epoch, a random nonce and an HMAC-SHA256 over the
method, the path with its query, that time, that nonce and the SHA-256 of the body. The HMAC key
is derived from the cluster secret; neither the secret nor the key ever travels, so a request
seen on the wire proves nothing about any other request. The receiver refuses (``PermissionDenied``,
403) a request that is not signed with the key, whose time is more than ``NODE_CLOCK_SKEW_S`` from
its own clock, or whose nonce it has already accepted within that window (``ReplayCache``).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from odin import config
from odin.errors import PermissionDenied, Unavailable

log = logging.getLogger("odin.nodeauth")

AUTH_HEADER = "X-Odin-Node-Auth"
_KEY_LABEL = b"odin node request signing key v2"  # not v1's label: that derived the old token
_MESSAGE_TAG = b"odin-node-request-v2"
_HEADER_RE = re.compile(r"t=(?P<t>[0-9]{1,16}),n=(?P<n>[0-9a-f]{16,128}),s=(?P<s>[0-9a-f]{64})")
_REFUSED = "this endpoint is for the cluster's nodes only"


def node_key(secret: str) -> bytes:
    """The request-signing key, derived from the cluster secret so that the secret signs nothing."""
    return hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class Stamp:
    """The signed fields of one request as its header carries them."""

    millis: int
    nonce: str
    signature: str

    def header(self) -> str:
        """The header value that carries this stamp."""
        return f"t={self.millis},n={self.nonce},s={self.signature}"


def parse(value: str) -> Stamp:
    """The stamp in a header value; a malformed one is refused like a wrong signature."""
    match = _HEADER_RE.fullmatch(value.strip())
    if match is None:
        raise PermissionDenied(_REFUSED)
    return Stamp(int(match["t"]), match["n"], match["s"])


def signature(key: bytes, method: str, target: bytes, millis: int, nonce: str, body: bytes) -> str:
    """The HMAC of one request: method, path with query, time, nonce and the body's SHA-256."""
    fields = (
        _MESSAGE_TAG,
        method.upper().encode("ascii"),
        target,
        str(millis).encode("ascii"),
        nonce.encode("ascii"),
        hashlib.sha256(body).hexdigest().encode("ascii"),
    )
    return hmac.new(key, b"\n".join(fields), hashlib.sha256).hexdigest()


def stamp(key: bytes, method: str, target: bytes, body: bytes, now: float) -> Stamp:
    """A fresh stamp for a request sent at ``now`` (a new random nonce each time)."""
    millis = int(now * 1000)
    nonce = os.urandom(config.NODE_NONCE_BYTES).hex()
    return Stamp(millis, nonce, signature(key, method, target, millis, nonce, body))


class ReplayCache:
    """The nonces accepted within the clock-skew window: size-capped, each kept until its
    request's time is outside the window (after which the time check refuses it anyway)."""

    def __init__(self, capacity: int, window_s: float) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def admit(self, nonce: str, sent_at: float, now: float) -> None:
        """Remember ``nonce`` (of a request sent at ``sent_at``); refuse one already seen."""
        with self._lock:
            self._purge(now)
            if nonce in self._expiry:
                raise PermissionDenied(f"{_REFUSED} (a replayed request)")
            if len(self._expiry) >= self.capacity:
                raise Unavailable(
                    f"more than {self.capacity} node requests in {self.window_s:g} s; retry later"
                )
            expiry = sent_at + self.window_s
            self._expiry[nonce] = expiry
            heapq.heappush(self._heap, (expiry, nonce))

    def _purge(self, now: float) -> None:
        """Forget nonces whose requests the time check now refuses by itself."""
        while self._heap and self._heap[0][0] < now:
            _, nonce = heapq.heappop(self._heap)
            del self._expiry[nonce]


class NodeAuth:
    """Signs this node's requests to other nodes and verifies theirs (with its replay cache)."""

    def __init__(
        self,
        secret: str,
        *,
        window_s: float = config.NODE_CLOCK_SKEW_S,
        capacity: int = config.NODE_REPLAY_CACHE_MAX,
    ) -> None:
        self._key = node_key(secret)
        self.window_s = window_s
        self.replays = ReplayCache(capacity, window_s)

    def headers(
        self, method: str, target: str, body: bytes = b"", now: float | None = None
    ) -> dict[str, str]:
        """The header that authenticates one request from this node."""
        when = time.time() if now is None else now
        made = stamp(self._key, method, target.encode("ascii"), body, when)
        return {AUTH_HEADER: made.header()}

    def verify(
        self, method: str, target: bytes, body: bytes, value: str, now: float | None = None
    ) -> None:
        """Pass a request signed with the key, on time and not seen before; else raise."""
        when = time.time() if now is None else now
        got = parse(value)
        expected = signature(self._key, method, target, got.millis, got.nonce, body)
        if not hmac.compare_digest(expected, got.signature):
            raise PermissionDenied(_REFUSED)
        sent_at = got.millis / 1000
        self._check_time(sent_at, when)
        self.replays.admit(got.nonce, sent_at, when)

    def _check_time(self, sent_at: float, now: float) -> None:
        """Refuse a request signed further from ``now`` than the clock-skew window allows."""
        if abs(now - sent_at) <= self.window_s:
            return
        reason = (
            f"its time is {now - sent_at:+.1f} s off this node's clock; "
            f"nodes' clocks must agree within {self.window_s:g} s"
        )
        log.warning("refused a signed request from a node: %s", reason)
        raise PermissionDenied(f"{_REFUSED} ({reason})")
