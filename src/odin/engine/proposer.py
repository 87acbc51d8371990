"""The launcher's one way to propose a command, with its retry rule (see ``Proposer``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from odin.cluster import commands as c
from odin.errors import OdinError

log = logging.getLogger("odin.launcher")

Propose = Callable[[c.Command], Awaitable[Any]]
Sleep = Callable[[float], Awaitable[None]]

TRIES: Final = 5
PAUSE_S: Final = 0.2


class Proposer:
    """Proposes the launcher's commands (``StartRun``, ``FinishRun``, ``FinishRuns``); a
    failure is logged, never raised into a run.

    The rule: at most ``TRIES`` (5) tries. Each try is one ``EngineNode.propose``, which
    itself waits out changes of leader within ``RAFT_PROPOSE_TIMEOUT_S``. A try that fails
    with an ``OdinError`` (no leader, no quorum, timed out) is logged as a warning and,
    unless it was the last, followed by a pause that grows linearly: ``PAUSE_S`` times the
    number of tries so far (0.2, 0.4, 0.6, 0.8 s). After the last failed try the command
    is given up, loudly: an error naming the runs it concerned. A run whose end is given up
    that way stays running (or planned) in the cluster's state until the leader marks it
    lost (its node silent) or this engine restarts (``Launcher.reconcile`` marks it lost);
    a given-up ``StartRun`` costs nothing, as the run's ``FinishRun`` carries its start.
    Any other exception is not caught.
    """

    def __init__(self, propose: Propose, sleep: Sleep = asyncio.sleep) -> None:
        self._propose = propose
        self._sleep = sleep

    async def propose(self, command: c.Command) -> bool:
        """Propose ``command`` by the rule above: True once committed, False if given up."""
        name = type(command).__name__
        for attempt in range(1, TRIES + 1):
            try:
                await self._propose(command)
                return True
            except OdinError as error:
                log.warning(
                    "proposing %s failed (%s), attempt %d of %d", name, error, attempt, TRIES
                )
            if attempt < TRIES:
                await self._sleep(PAUSE_S * attempt)
        _give_up(command, name)
        return False


def _give_up(command: c.Command, name: str) -> None:
    runs = ", ".join(run_ids(command)) or "none"
    if isinstance(command, c.FinishRun | c.FinishRuns):
        log.error(
            "gave up proposing %s after %d tries: the end of run(s) %s is NOT recorded in the "
            "cluster (it stays running or planned there until marked lost)",
            name,
            TRIES,
            runs,
        )
    else:
        log.error("gave up proposing %s after %d tries (run(s): %s)", name, TRIES, runs)


def run_ids(command: c.Command) -> list[str]:
    """The ids of the runs a launcher's command is about (none for other commands)."""
    if isinstance(command, c.FinishRuns):
        return [end.run_id for end in command.runs]
    run_id = getattr(command, "run_id", None)
    return [run_id] if isinstance(run_id, str) else []
