"""Password logins that cannot hurt the engine: PAM on its own small pool, behind rate limits.

PAM blocks, and ``pam_faildelay`` holds every failure about 3 s on purpose. Run
in the shared default thread pool, a dozen bad logins took every thread the
socket API and the launcher use. So a ``PasswordGate`` (built by the
dashboard's composition root) gives PAM ``DASHBOARD_PAM_THREADS`` threads of
its own and, before any thread is used:

- refuses at once (``TooManyLogins``, HTTP 429) a client address or a user name
  that already made its allowance of attempts in the last minute;
- refuses at once (``Unavailable``, HTTP 503) when every PAM thread is busy,
  instead of queueing without bound.

Every refused password (wrong password, unknown user, non-member, root) is the
same ``PermissionDenied(LOGIN_FAILED)``, answered no sooner than
``DASHBOARD_LOGIN_FAILURE_S`` after the attempt began, so that neither the text
nor the timing tells which it was.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from odin import config
from odin.dashboard.auth import LOGIN_FAILED, check_password
from odin.engine.identity import Caller
from odin.errors import LimitExceeded, PermissionDenied, Unavailable

BUSY = "Too many logins are being checked right now: try again in a few seconds."


class TooManyLogins(LimitExceeded):
    """A client address or user name made its allowance of attempts; ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most ``limit`` attempts per key in any ``window_s`` seconds; the keys kept are bounded."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_keys: int = config.DASHBOARD_LOGIN_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        """The key's attempts still inside the window (the caller holds the lock)."""
        times = self._seen.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may try again: 0 if it may now."""
        now = self._clock()
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return 0.0
            return times[-self.limit] + self.window_s - now

    def record(self, key: str) -> None:
        """Count one attempt of ``key`` now; the least recently seen keys go beyond the bound."""
        now = self._clock()
        with self._lock:
            times = self._recent(key, now)
            times.append(now)
            self._seen[key] = times
            self._seen.move_to_end(key)
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)


class PasswordGate:
    """Checks passwords with PAM on a bounded pool of its own, behind address and user limits."""

    def __init__(self, pam_service: str, *, threads: int = config.DASHBOARD_PAM_THREADS) -> None:
        self.pam_service = pam_service
        self.threads = threads
        self.by_address = RateLimiter(
            config.DASHBOARD_LOGIN_PER_ADDRESS, config.DASHBOARD_LOGIN_WINDOW_S
        )
        self.by_user = RateLimiter(config.DASHBOARD_LOGIN_PER_USER, config.DASHBOARD_LOGIN_WINDOW_S)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="odin-pam")
        self._in_flight = 0
        self._lock = threading.Lock()

    async def check(self, address: str, user: str, password: str) -> Caller:
        """The member logging in; LimitExceeded, Unavailable or the one generic PermissionDenied."""
        self._admit(address, user.lower())
        started = time.monotonic()
        try:
            return await asyncio.wrap_future(self._submit(user, password))
        except PermissionDenied:
            await asyncio.sleep(started + config.DASHBOARD_LOGIN_FAILURE_S - time.monotonic())
            raise PermissionDenied(LOGIN_FAILED) from None

    def _admit(self, address: str, user: str) -> None:
        """Count the attempt unless a limit refuses it; then refuse it if every thread is busy."""
        wait = max(self.by_address.wait_s(address), self.by_user.wait_s(user))
        if wait > 0:
            raise TooManyLogins(LOGIN_FAILED, retry_after=wait)
        self.by_address.record(address)
        self.by_user.record(user)
        with self._lock:
            if self._in_flight >= self.threads:
                raise Unavailable(BUSY)
            self._in_flight += 1

    def _submit(self, user: str, password: str) -> Future[Caller]:
        """Start the PAM check on a free thread; the slot is given back when it ends."""
        try:
            future = self._pool.submit(check_password, user, password, self.pam_service)
        except RuntimeError:  # the interpreter is shutting down: the engine is stopping
            self._leave(None)
            raise Unavailable("the engine is stopping") from None
        future.add_done_callback(self._leave)
        return future

    def _leave(self, _: Future[Caller] | None) -> None:
        """A PAM thread is free again (called when its check ends, on that thread)."""
        with self._lock:
            self._in_flight -= 1
