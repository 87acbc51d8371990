"""Where records go: the engine of the current run, or stderr outside Odin.

What must hold: a call never blocks the job longer than ``SEND_TIMEOUT_S``;
records the engine could not take yet wait in a bounded buffer (at most
``MAX_RECORDS_PER_RUN``, since no more are ever made) and are retried on the
next call once the back-off has passed and at exit; a record the engine
refuses (4xx) is never retried; a record that is finally not delivered is
printed to stderr so that it still lands in the run's output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from enum import Enum
from urllib.parse import quote

from . import transport
from .limits import (
    BUSY_PAUSE_S,
    ENV_RUN_ID,
    ENV_RUN_TOKEN,
    ENV_SOCKET,
    EXIT_FLUSH_BUDGET_S,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    RETRY_BACKOFF_FIRST_S,
    RETRY_BACKOFF_MAX_S,
    SEND_TIMEOUT_S,
    STDERR_PREFIX,
)
from .records import Record, dumps
from .values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a job about 4 ms to import; annotations stay text
    from typing import Protocol

    class Sink(Protocol):
        def put(self, record: Record) -> None: ...

        def flush(self, *, final: bool) -> bool:
            """Try to deliver what waits; True when nothing is left undelivered."""
            ...


# Statuses after which no record of this run will ever be accepted.
CLOSING_STATUSES = frozenset({401, 403, 404, 410})

Post = Callable[[str, str, dict[str, str], bytes, float], transport.Reply]


def warn(message: str) -> None:
    """One line on stderr; never raises (stderr may be closed at exit)."""
    try:
        sys.stderr.write(STDERR_PREFIX + message + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class StderrSink:
    """Outside Odin: each record is one JSON line on stderr, prefixed ``odin: ``."""

    def put(self, record: Record) -> None:
        warn(record.to_json())

    def flush(self, *, final: bool) -> bool:
        return True


class EngineAddress(Value):
    __slots__ = ("socket_path", "run_id", "token")

    def __init__(self, socket_path: str, run_id: str, token: str) -> None:
        self.socket_path = socket_path
        self.run_id = run_id
        self.token = token

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EngineAddress | None:
        """The engine of the current run, or None when not running inside Odin."""
        parts = (env.get(ENV_SOCKET), env.get(ENV_RUN_ID), env.get(ENV_RUN_TOKEN))
        if not all(parts):
            return None
        return cls(*(str(part) for part in parts))

    @property
    def path(self) -> str:
        return f"/v1/runs/{quote(self.run_id, safe='')}/records"


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    BUSY = "busy"  # the engine answered 5xx: alive, so worth another try soon
    REFUSED = "refused"
    CLOSED = "closed"


class EngineSink:
    """Inside Odin: POST records to the engine, buffering through slowness and outages."""

    def __init__(
        self,
        address: EngineAddress,
        *,
        post: Post = transport.post,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address, self._post, self._clock = address, post, clock
        self.pending: list[Record] = []
        self._retry_at = 0.0
        self._backoff = RETRY_BACKOFF_FIRST_S
        self._closed = False
        self._problem = ""
        self._reported: set[str] = set()

    def put(self, record: Record) -> None:
        if self._closed:
            warn(record.to_json())
            return
        self.pending.append(record)
        if self._clock() >= self._retry_at:
            self._deliver(self._clock() + SEND_TIMEOUT_S, persist=False)

    def flush(self, *, final: bool) -> bool:
        budget = EXIT_FLUSH_BUDGET_S if final else SEND_TIMEOUT_S
        self._deliver(self._clock() + budget, persist=True)
        if final and self.pending:
            self._give_up()
        return not self.pending

    def _deliver(self, deadline: float, *, persist: bool) -> None:
        """Send batches until done or ``deadline``; ``persist`` retries an engine that said 5xx."""
        while self.pending and not self._closed:
            left = deadline - self._clock()
            if left <= 0:
                return
            batch = take_batch(self.pending)
            outcome = self._send(batch, min(left, SEND_TIMEOUT_S))
            if outcome is Outcome.BUSY and persist and deadline - self._clock() > BUSY_PAUSE_S:
                time.sleep(BUSY_PAUSE_S)
                continue
            if outcome in (Outcome.RETRY, Outcome.BUSY):
                self._retry_at = self._clock() + self._backoff
                self._backoff = min(self._backoff * 2, RETRY_BACKOFF_MAX_S)
                return
            del self.pending[: len(batch)]
            self._backoff = RETRY_BACKOFF_FIRST_S
            if outcome is not Outcome.DELIVERED:
                self._print(batch)
            if outcome is Outcome.CLOSED:
                self._closed = True
                self._print(self.pending)
                self.pending.clear()

    def _send(self, batch: list[Record], timeout: float) -> Outcome:
        body = dumps({"records": [record.as_dict() for record in batch]}).encode("utf-8")
        headers = {
            "Authorization": f"Bearer {self._address.token}",
            "Content-Type": "application/json",
        }
        try:
            address = self._address
            reply = self._post(address.socket_path, address.path, headers, body, timeout)
        except transport.TransportError as exc:
            self._problem = str(exc)
            return Outcome.RETRY
        if reply.status < 300:
            return Outcome.DELIVERED
        self._problem = f"HTTP {reply.status} {describe_error(reply.body)}"
        if reply.status >= 500 or reply.status in (408, 429):
            return Outcome.BUSY
        self._report_refusal(reply.status)
        return Outcome.CLOSED if reply.status in CLOSING_STATUSES else Outcome.REFUSED

    def _report_refusal(self, status: int) -> None:
        if self._problem in self._reported:
            return
        self._reported.add(self._problem)
        scope = "no more records will be sent" if status in CLOSING_STATUSES else "not retried"
        warn(f"the engine refused records ({self._problem}); {scope}; they follow")

    def _give_up(self) -> None:
        warn(
            f"the engine did not take {len(self.pending)} record(s) before exit "
            f"({self._problem or 'no time left'}); they follow"
        )
        self._print(self.pending)
        self.pending.clear()

    @staticmethod
    def _print(records: list[Record]) -> None:
        for record in records:
            warn(record.to_json())


def take_batch(pending: list[Record]) -> list[Record]:
    """The longest prefix of ``pending`` within the per-request bounds (at least one)."""
    size, count = 0, 0
    for record in pending[:MAX_BATCH_RECORDS]:
        size += len(record.to_json().encode("utf-8")) + 1
        if count and size > MAX_BATCH_BYTES:
            break
        count += 1
    return pending[:count]


def describe_error(body: bytes) -> str:
    """``Type: message`` from the engine's error body, or the start of the raw body."""
    try:
        error = json.loads(body)["error"]
        return f"{error['type']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")
