"""Every bound and timing of pyodin, named once.

The two record bounds mirror ``odin.config`` (a test keeps them equal); the
engine enforces them too, so the SDK only fails earlier and more clearly.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a job about 4 ms to import; annotations stay text
    from typing import Final

KIB: Final = 1024

# Mirrors of odin.config (the engine's table).
MAX_RECORD_BYTES: Final = 64 * KIB
MAX_RECORDS_PER_RUN: Final = 1000

# One send (connect, request and response) never blocks the job longer than this.
SEND_TIMEOUT_S: Final = 0.5
# At exit, all remaining sends share this budget.
EXIT_FLUSH_BUDGET_S: Final = 1.0
# After a failed send, records wait in the buffer this long before the next try
# (doubling up to the maximum), so a slow engine costs one timeout, not one per call.
RETRY_BACKOFF_FIRST_S: Final = 1.0
RETRY_BACKOFF_MAX_S: Final = 30.0
# When flushing, an engine that answered 5xx is asked again after this pause.
BUSY_PAUSE_S: Final = 0.1
# One request carries at most this many records / bytes of records.
MAX_BATCH_RECORDS: Final = 100
MAX_BATCH_BYTES: Final = 1024 * KIB

# The environment the engine sets inside a run.
ENV_SOCKET: Final = "ODIN_SOCKET"
ENV_JOB_ID: Final = "ODIN_JOB_ID"
ENV_JOB_NAME: Final = "ODIN_JOB_NAME"
ENV_RUN_ID: Final = "ODIN_RUN_ID"
ENV_RUN_TOKEN: Final = "ODIN_RUN_TOKEN"
ENV_NODE: Final = "ODIN_NODE"

STDERR_PREFIX: Final = "odin: "
