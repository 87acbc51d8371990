"""Every bound and default of Odin, named once.

Other modules import these names; no limit is written as a bare number elsewhere.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

# Ports and addresses (the original's defaults).
DEFAULT_NODE_NAME: Final = "master-node"
DEFAULT_HTTP_PORT: Final = 3939
DEFAULT_RAFT_PORT: Final = 12000
DEFAULT_DASHBOARD_PORT: Final = 4200

# Paths when the engine runs as root; a non-root engine uses per-user paths.
ROOT_SOCKET_PATH: Final = "/run/odin/odin.sock"
ROOT_DATA_DIR: Final = "/var/lib/odin"
ODIN_GROUP: Final = "odin"

# Job files.
MAX_CODE_BYTES: Final = 1 * MIB
MAX_YAML_BYTES: Final = 64 * KIB
MAX_NAME_CHARS: Final = 200
MAX_DESCRIPTION_CHARS: Final = 2000
MAX_SCHEDULE_CHARS: Final = 1000
MAX_ENV_VARS: Final = 100
MAX_JOBS_PER_USER: Final = 100_000

# Runs.
MAX_OUTPUT_BYTES: Final = 1 * MIB  # captured per run: head and tail kept
OUTPUT_TAIL_BYTES: Final = 4 * KIB  # replicated with the run summary
DEFAULT_TIMEOUT_GRACE_S: Final = 5.0
MAX_RETRIES: Final = 10
RETRY_BACKOFF_BASE_S: Final = 1.0
RETRY_BACKOFF_MAX_S: Final = 300.0
RUNS_KEPT_IN_STATE_PER_JOB: Final = 20  # replicated window; older runs live in SQLite
RUNS_KEPT_IN_STORE_PER_JOB: Final = 1000
OUTPUT_BYTES_KEPT_PER_JOB: Final = 64 * MIB
CATCHUP_ALL_MAX_RUNS: Final = 100
CATCHUP_ALL_WINDOW_S: Final = 24 * 3600.0

# Resource limits applied to every run (soft = hard).
RLIMIT_NOFILE: Final = 1024
RLIMIT_NPROC: Final = 512
RLIMIT_AS_BYTES: Final = 4096 * MIB
RLIMIT_CORE: Final = 0

# SDK records.
MAX_RECORD_BYTES: Final = 64 * KIB
MAX_RECORDS_PER_RUN: Final = 1000

# Scheduling.
PLAN_LOOKAHEAD_S: Final = 1.0  # runs are committed this far ahead of their instant
TICK_INTERVAL_S: Final = 0.1
