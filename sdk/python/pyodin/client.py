"""The job-facing API: ``Odin(config)`` with ``watch``, ``condition``, ``result``.

Records of one process share one numbering and one buffer (a run is a
process), so several ``Odin`` objects in one job interleave correctly.
"""

from __future__ import annotations

import atexit
import operator
import os
import sys
import threading
from collections.abc import Mapping

from .errors import OdinLimitError
from .jobfile import resolve_identity
from .limits import ENV_NODE, ENV_RUN_ID
from .outbox import EngineAddress, EngineSink, StderrSink, warn
from .records import Numbering, RecordType

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a job about 4 ms to import; annotations stay text
    from typing import NoReturn

    from .outbox import Sink


class Recorder:
    """Numbers records, enforces the bounds and hands records to the sink, under one lock."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.numbering = Numbering()
        self._lock = threading.RLock()

    def record(self, kind: RecordType, desc: object, value: object, *, strict: bool) -> None:
        """Record; past a bound raise when ``strict``, else drop with a warning."""
        with self._lock:
            try:
                record = self.numbering.make(kind, desc, value)
            except OdinLimitError as exc:
                if strict:
                    raise
                warn(f"{str(exc).removeprefix('odin: ')}; dropped")
                return
            self.sink.put(record)

    def flush(self, *, final: bool) -> bool:
        with self._lock:
            return self.sink.flush(final=final)


_RECORDER: Recorder | None = None
_RECORDER_LOCK = threading.Lock()


def process_recorder(env: Mapping[str, str]) -> Recorder:
    """The one recorder of this process, made on first use; it flushes at exit."""
    global _RECORDER
    with _RECORDER_LOCK:
        if _RECORDER is None:
            address = EngineAddress.from_env(env)
            sink: Sink = StderrSink() if address is None else EngineSink(address)
            _RECORDER = Recorder(sink)
            atexit.register(_RECORDER.flush, final=True)
        return _RECORDER


class Odin:
    """A job's handle on Odin.

    ``config`` is the job's YAML file (relative to the current directory), read
    for ``job: id`` and ``job: name``; inside a run the engine's environment
    wins and the file may be missing. Outside Odin records go to stderr.
    """

    def __init__(self, config: str = "job.yml") -> None:
        env = os.environ
        self._recorder = process_recorder(env)
        self.inside = isinstance(self._recorder.sink, EngineSink)
        identity = resolve_identity(config, env, inside=self.inside)
        self.config = config
        self.job_id = identity.job_id
        self.job_name = identity.job_name
        self.run_id = env.get(ENV_RUN_ID, "")
        self.node = env.get(ENV_NODE, "")

    def watch(self, desc: str, value: object) -> None:
        """Record ``value`` (any JSON-able value; others as ``str(value)``).

        Raises ``OdinLimitError`` past ``MAX_RECORD_BYTES`` or ``MAX_RECORDS_PER_RUN``.
        """
        self._recorder.record(RecordType.WATCH, desc, value, strict=True)

    def condition(self, desc: str, expr: object) -> bool:
        """Record ``bool(expr)`` and return it, so that ``if odin.condition(...):`` works."""
        ok = bool(expr)
        self._recorder.record(RecordType.CONDITION, desc, ok, strict=False)
        return ok

    def result(self, desc: str, status: int) -> NoReturn:
        """Record the result, deliver everything, and end the job with exit ``status``.

        0 is success, 1 failure. ``sys.exit`` is used, so ``finally`` blocks run.
        """
        code = operator.index(status)
        self._recorder.record(RecordType.RESULT, desc, code, strict=False)
        self._recorder.flush(final=True)
        sys.exit(code)

    def flush(self) -> bool:
        """Try to deliver buffered records now; True when none is left waiting."""
        return self._recorder.flush(final=False)
