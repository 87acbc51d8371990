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
# Per-user quotas (odin.cluster.quotas; docs/operations.md): a deploy over one is refused naming
# it. The job count and code bytes travel in the deploy's command, so that the state machine
# checks them against the replicated state (race-free, the same on every node).
MAX_CODE_BYTES_PER_USER: Final = 32 * MIB  # sum of the code of a user's jobs (1 MiB each at most)
# The largest request body the API takes (odin.api.bodylimit; root's restore takes
# MAX_BACKUP_BYTES), refused from its Content-Length or as it streams, before it is read.
# A deploy is the largest legitimate body: code 1 MiB + YAML 64 KiB of UTF-8, which JSON
# may escape to 6 bytes a byte (a control character is \u00XX): 6.4 MiB, plus the envelope.
MAX_REQUEST_BODY_BYTES: Final = 8 * MIB
# A refused body this small is read and dropped before the answer, so that the client reads
# the answer (closing on unread bytes makes the kernel reset the connection); a longer one is
# left unread and the connection closed.
REFUSED_BODY_DRAIN_BYTES: Final = 64 * KIB

# Runs.
MAX_OUTPUT_BYTES: Final = 1 * MIB  # captured per run: head and tail kept
OUTPUT_TAIL_BYTES: Final = 4 * KIB  # replicated with the run summary
LIVE_OUTPUT_KEPT_BYTES: Final = 64 * KIB  # a live run's latest output, replayed to a new follower
DEFAULT_TIMEOUT_GRACE_S: Final = 5.0
MAX_RETRIES: Final = 10
RETRY_BACKOFF_BASE_S: Final = 1.0
RETRY_BACKOFF_MAX_S: Final = 300.0
RUNS_KEPT_IN_STATE_PER_JOB: Final = 20  # replicated window; older runs live in SQLite
RUNS_KEPT_IN_STORE_PER_JOB: Final = 1000
STORE_SAVES_PER_COMMIT: Final = 200  # queued saves written in one transaction at most
STORE_SETTLE_POLL_S: Final = 0.05  # a read waiting for earlier saves looks this often
STORE_TRIM_EVERY: Final = 20  # saves of a job between two trims of its history (bounds overshoot)
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
# A run's records go whole to its node's run store; the replicated state keeps a summary of at
# most this many bytes (all of them when they fit, else the last of each series, result first).
RECORDS_SUMMARY_BYTES: Final = 4 * KIB
# Bytes of records a user's runs hold on a node: live runs' records (more are refused, 413) and,
# separately, the records kept in the run store (the oldest runs' records are dropped first).
RECORD_BYTES_KEPT_PER_USER: Final = 256 * MIB
OUTPUT_BYTES_KEPT_PER_USER: Final = 1024 * MIB  # output a node's run store keeps per user
STORE_TRIM_BYTES: Final = 16 * MIB  # bytes saved for a job or user between two trims at most
STORE_CHECKPOINT_BYTES: Final = 1 * MIB  # output and records saved: then the WAL is emptied
# Free space kept on the data disk (and Raft's): below it deploys and new runs are refused and
# the run store keeps only output tails, so that Raft and a restart always find room. The
# reserve is DISK_RESERVE_FRACTION of the disk, at least DISK_RESERVE_MIN_BYTES, at most
# DISK_RESERVE_BYTES.
DISK_RESERVE_BYTES: Final = 256 * MIB
DISK_RESERVE_FRACTION: Final = 0.01
DISK_RESERVE_MIN_BYTES: Final = 4 * MIB

# Scheduling.
PLAN_LOOKAHEAD_S: Final = 1.0  # runs are committed this far ahead of their instant
TICK_INTERVAL_S: Final = 0.1
GC_THRESHOLDS: Final = (20_000, 20, 20)  # the engine's cycle collector: fewer, larger young passes
HOLD_AHEAD_S: Final = 1.0  # a run's process is made this long before its instant, held at its gate
# A node makes and starts at most LAUNCH_SLOTS runs' processes at once (odin.engine.admission);
# the rest wait, manual runs first, then in instant order. Measured in bench/bench_burst.py.
LAUNCH_SLOTS: Final = 64
# At most this many held runs start their interpreter early (odin.executor.pystart), about
# 3 MB of memory each while they wait; the others wait at the gate, before their exec.
EARLY_HELD_MAX: Final = 256
# Owners' Python nurseries (odin.executor.nursery): at most this many at once; each exits
# after this long unused (an owner has no process left soon after their last run). A run
# that would wait longer than NURSERY_QUEUE_S for its turn, or that waits while its nursery
# answers nothing for NURSERY_REPLY_S, starts through the gate. A forked run waiting for its
# instant shares most of its memory with its nursery: more of them may wait than EARLY_HELD_MAX.
# One user has at most NURSERY_USER_MAX of them (a new one ends their least recently used).
NURSERY_MAX: Final = 32
NURSERY_USER_MAX: Final = 4
NURSERY_IDLE_S: Final = 5.0
NURSERY_QUEUE_S: Final = 2.0
NURSERY_REPLY_S: Final = 1.0
NURSERY_START_S: Final = 10.0
NURSED_HELD_MAX: Final = 1024
START_REPORT_DELAY_S: Final = 1.0  # a run still going after this is replicated as running
# A node's run ends are committed in batches: the first end waits this long for others
# (one Raft entry for all), and a batch this big is sent at once.
FINISH_BATCH_S: Final = 0.02
FINISH_BATCH_MAX: Final = 100
FINISH_BATCH_RECORDS: Final = 64  # SDK records (each <= MAX_RECORD_BYTES) in one batch at most
OWNER_CACHE_S: Final = 5.0  # a run's owner (uid, groups, home) is looked up again after this
STARTED_FILE_MAX_BYTES: Final = 1 << 20  # the local file of started runs is then rewritten
PLAN_STALE_S: Final = 3.0  # a scheduled run committed this late (past its instant) is skipped

# Job file parsing (odin.jobs).
MAX_YAML_DEPTH: Final = 16  # nesting of mappings/lists in a job file; a real one needs 3
MAX_DURATION_S: Final = 366 * 24 * 3600.0  # longest accepted duration (timeouts)

# Executor (spawning runs, capturing output, reaping, Go builds).
SETPRIV_PATH: Final = "/usr/bin/setpriv"  # util-linux; switches a run to its owner before exec
PRLIMIT_PATH: Final = "/usr/bin/prlimit"  # util-linux; applies the rlimits above before exec
OUTPUT_CHUNK_BYTES: Final = 64 * KIB  # one read from a run's output pipe
OUTPUT_DRAIN_S: Final = 2.0  # after a run's group is killed, how long a leftover may hold the pipe
GROUP_POLL_S: Final = 0.02  # how often a terminating run's process group is checked
REAPER_INTERVAL_S: Final = 0.5  # how often orphaned descendants are looked for
JOB_PATH: Final = "/usr/local/bin:/usr/bin:/bin"  # PATH a job starts with
GO_BUILD_TIMEOUT_S: Final = 300.0
MAX_BUILD_OUTPUT_BYTES: Final = 64 * KIB  # compiler output kept for the error message
MAX_PATH_CHARS: Final = 4096  # a job's file and workdir paths (PATH_MAX)
MAX_PATH_SYMLINKS: Final = 40  # symlinks `odin recover` follows to its target (MAXSYMLINKS)

# Raft (PySyncObj) timing and log compaction; see odin.cluster.raft.
RAFT_TICK_S: Final = 0.01  # the raft thread's poll period when idle
RAFT_LONE_TICK_S: Final = 0.05  # the same for a node without partners (nothing to hear)
RAFT_HEARTBEAT_S: Final = 0.1  # append_entries period; < RAFT_ELECTION_MIN_S / 3
RAFT_ELECTION_MIN_S: Final = 0.5  # a follower waits this long (at least) before an election
RAFT_ELECTION_MAX_S: Final = 1.0
RAFT_CONNECT_RETRY_S: Final = 0.5  # reconnect period to a partner that went away
RAFT_CONNECTION_TIMEOUT_S: Final = 3.5  # silence after which a connection is dead
RAFT_LEADER_STEPDOWN_S: Final = 1.5  # a leader cut off from a majority this long steps down
RAFT_COMPACTION_ENTRIES: Final = 10_000  # journal entries that trigger a snapshot
RAFT_COMPACTION_S: Final = 600.0  # or this long since the last snapshot
RAFT_DUMP_TIMEOUT_S: Final = 120.0  # a child writing the snapshot this long is killed
RAFT_DUMP_RETRY_S: Final = 10.0  # after a snapshot failed, the next is tried this much later
RAFT_BIND_RETRIES: Final = 20
RAFT_BIND_RETRY_S: Final = 0.25
RAFT_PROPOSE_TIMEOUT_S: Final = 5.0
RAFT_RESEND_PAUSE_S: Final = 0.05  # first wait before a write that met a new leader is resent
RAFT_RESEND_PAUSE_MAX_S: Final = 0.5  # the wait doubles up to this
RAFT_MEMBERSHIP_TIMEOUT_S: Final = 10.0

# Schedules (odin.schedule, odin schedule).
MAX_SCHEDULE_PERIOD_S: Final = 366 * 24 * 3600  # longest "every N seconds|minutes|hours|days"
MAX_SCHEDULE_PREVIEW: Final = 1000  # most fire times `odin schedule --count` lists
MAX_PAST_THE_HOUR_STEP_H: Final = 23  # longest step of "every N hours at :MM" (hours from midnight)
MIN_DURATION_S: Final = 0.001  # shortest accepted duration; keeps formatted durations exact
# CGO_ENABLED for Go builds. Measured cold (new user cache) for a net/http job: 17.9 s with
# cgo off (std's net is recompiled), 1.5 s with cgo on (Debian's precompiled std; needs gcc).
GO_BUILD_CGO_ENABLED: Final = False

# Dashboard (odin.dashboard).
DASHBOARD_LINK_TTL_S: Final = 60.0  # a one-time login link from `odin dashboard` is valid this long
DASHBOARD_MAX_PENDING_LINKS: Final = 1000  # unredeemed links kept; the oldest are dropped first
DASHBOARD_SESSION_TTL_S: Final = 12 * 3600.0  # a session ends this long after its login
DASHBOARD_MAX_SESSIONS: Final = 10_000  # stored sessions; expired ones are purged first
DASHBOARD_POLL_S: Final = 1.0  # how often a page's event stream looks for changes
# A page's fingerprint computed this recently serves every stream of that page and caller
# (odin.dashboard.live.SharedPolls): 25 streams of one page cost at most 2 computations a second.
DASHBOARD_SHARED_POLL_S: Final = DASHBOARD_POLL_S / 2
DASHBOARD_RUNS_SHOWN: Final = 50  # runs in a job page's table and charts
DASHBOARD_SUCCESS_WINDOW: Final = 20  # runs behind the jobs page's success rate
DASHBOARD_LIVE_QUEUE: Final = 1024  # output chunks buffered for one live viewer
# Password logins: PAM runs on the dashboard's own pool (pam_faildelay holds a failure ~3 s), so
# that a flood of bad logins cannot take the threads the engine's API and launcher need.
DASHBOARD_PAM_THREADS: Final = 2  # password checks at once; one more is refused at once (503)
DASHBOARD_LOGIN_WINDOW_S: Final = 60.0  # the window of the two login rate limits below
DASHBOARD_LOGIN_PER_ADDRESS: Final = 10  # password attempts per client address per window
DASHBOARD_LOGIN_PER_USER: Final = 5  # password attempts per user name per window
DASHBOARD_LOGIN_TRACKED: Final = 10_000  # addresses and names tracked; least recent dropped first
DASHBOARD_LOGIN_FAILURE_S: Final = 3.0  # a refused password is answered no sooner (hides timing)
DASHBOARD_MAX_OUTPUT_SHOWN: Final = 1 * MIB  # output bytes rendered on a run page

# API tokens for automation (odin.engine.tokens; docs/api.md#tokens). A token is
# odin_<id>_<secret>; the state keeps only the SHA-256 of the whole string.
TOKEN_ID_BYTES: Final = 8  # random bytes of a token's id (sent as hex): how it is looked up
TOKEN_SECRET_BYTES: Final = 32  # random bytes of its secret (256 bits; sent as hex)
TOKEN_NAME_CHARS: Final = 64  # longest token name
MAX_TOKENS_PER_USER: Final = (
    100  # tokens a user holds (revoked and expired ones count until purged)
)
TOKEN_DEFAULT_EXPIRY_S: Final = 90 * 24 * 3600.0  # `odin token create` without --expires
TOKEN_KEPT_ENDED_S: Final = 30 * 24 * 3600.0  # a revoked or expired token is purged this long after
# When a token was last used: exact in each node's memory; replicated (TouchToken) at most this
# often per token and node, in the background, so that a request never waits for a Raft write.
TOKEN_TOUCH_INTERVAL_S: Final = 300.0
TOKEN_FAILURES_PER_ADDRESS: Final = 20  # refused tokens per client address per window, then 429
TOKEN_FAILURE_WINDOW_S: Final = 60.0
TOKEN_TRACKED: Final = 10_000  # addresses (and last uses) tracked; least recent dropped first

# Cluster membership and health (odin.engine.cluster).
NODE_HEALTH_POLL_S: Final = 1.0  # how often each node reads its Raft connections
NODE_LEASE_S: Final = 5.0  # a node unreachable this long loses its running runs (marked lost)
# Start leases (odin.cluster.lease): a node opens a start gate only within START_LEASE_S of
# its last contact with a quorum; the leader moves a silent node's runs due SURE_S or more
# after it last heard from it (its lease surely over: the slack covers a heartbeat and its
# trip, and clock rates that differ by up to DRIFT); SUSPECT_S of silence and a node gets
# no new runs. The watch runs every NODE_WATCH_S on the leader.
DASHBOARD_MAX_BODY_BYTES: Final = 64 * 1024  # the login forms; a bigger body gets 413 unread
START_LEASE_S: Final = 0.5
CONTACT_SLACK_S: Final = 0.15
DRIFT: Final = 0.1
SURE_S: Final = START_LEASE_S * (1 + DRIFT) + CONTACT_SLACK_S
SUSPECT_S: Final = 0.35
NODE_WATCH_S: Final = 0.1
RAFT_PING_S: Final = 0.1  # every node tells every other it is here, and how far it applied
NODE_JOIN_TIMEOUT_S: Final = 60.0  # how long `odin nodes add` waits for a node to catch up
NODE_RECORDS_TIMEOUT_S: Final = 30.0  # a node sending a run's whole records (odin stats)

# Signed node-to-node HTTP requests (odin.engine.nodeauth; docs/cluster.md). The nodes' clocks
# are assumed to agree within NODE_CLOCK_SKEW_S: a request whose signed time is further from the
# receiver's clock (late, replayed later or from the future) is refused with 403.
NODE_CLOCK_SKEW_S: Final = 5.0
NODE_REPLAY_CACHE_MAX: Final = 100_000  # nonces kept per window; when full: 503 till some expire
NODE_NONCE_BYTES: Final = 16  # random bytes of each request's nonce (sent as hex)

# Install and backups (odin.install, odin install, odin backup).
UNIT_TASKS_MAX: Final = 65536  # processes+threads of the engine and all its runs (systemd TasksMax)
UNIT_LIMIT_NOFILE: Final = 65536  # the engine's own open files; each run is cut to RLIMIT_NOFILE
UNIT_RESTART_S: Final = 2.0  # systemd waits this long before restarting a failed engine
UNIT_STOP_TIMEOUT_S: Final = 30.0  # after SIGTERM, leftovers of the engine's cgroup get SIGKILL
MAX_BACKUP_BYTES: Final = 1024 * MIB  # largest backup file `odin restore` reads

# Run containment with cgroup v2 (odin.executor.cgroup); process groups + reaper otherwise.
CGROUP_MOUNTS_FILE: Final = "/proc/self/mounts"  # where the cgroup2 mount is looked up
CGROUP_DIR_PREFIX: Final = "odin-"  # one directory per engine process: odin-<pid>
CGROUP_SPARES: Final = 256  # emptied run cgroups kept for later runs (see Containment)
CGROUP_EMPTY_WAIT_S: Final = 2.0  # after cgroup.kill, how long the run's cgroup may take to empty
# A root engine creates every file with no access for group and others (its store, Raft
# journal, dumps, logs hold users' output and records); its runs get a login's usual umask.
ENGINE_UMASK: Final = 0o077
JOB_UMASK: Final = 0o022  # also in gate.c: the compiled gate sets it before the exec
# overlap: queue: runs waiting for their turn on a node; more are skipped, with the bound named.
MAX_QUEUED_PER_JOB: Final = 16
MAX_QUEUED_PER_USER: Final = 64
SH_PATH: Final = "/bin/sh"  # runs the start gate that holds a run until it is in its cgroup
# C compilers tried, in order, for the compiled start gate (odin.executor.gate says why musl's
# comes first); without any, runs use setpriv + prlimit + sh, about 2.4 ms more CPU per run.
C_COMPILERS: Final = ("/usr/bin/musl-gcc", "/usr/bin/cc", "/usr/bin/gcc")
GATE_BUILD_TIMEOUT_S: Final = 60.0

# The event loop's stall watch (odin.engine.loopwatch): a task sleeps LOOP_WATCH_INTERVAL_S and
# records how late it woke; the worst of each second is kept for LOOP_WATCH_WINDOW_S.
LOOP_WATCH_INTERVAL_S: Final = 0.05
LOOP_WATCH_WINDOW_S: Final = 60
LOOP_STALL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# docs/operations.md: under 1,500 jobs, 25 dashboard event streams and `odin log --output`
# calls for a run kept on a frozen node, the loop never stalls longer than this (tested).
LOOP_STALL_BOUND_S: Final = 0.25
# Threads that ask other nodes for the output of runs they keep (`odin log --output`, a run's
# page): a node that does not answer holds one for its timeout, never the loop; more wait.
REMOTE_OUTPUT_THREADS: Final = 4

# Alerts (odin.notify, docs/alerts.md): decided in the state machine, delivered by the leader.
ALERT_BACKOFF_FIRST_S: Final = 1.0  # the wait before the second attempt; it doubles each time
ALERT_BACKOFF_MAX_S: Final = 600.0  # the longest wait between two attempts
ALERT_MAX_ATTEMPTS: Final = 20  # then the alert is "failed" (about 2 hours of tries)
ALERT_SEND_TIMEOUT_S: Final = 10.0  # one attempt: connect, send and read the answer
ALERT_SENDS_AT_ONCE: Final = 16  # deliveries the leader has in flight at once; more wait
ALERTS_KEPT_PER_JOB: Final = 50  # replicated; older alerts are dropped
ALERT_OUTPUT_TAIL_BYTES: Final = 2 * KIB  # of the run's output, in a webhook body or a mail
MAX_NOTIFY_PER_JOB: Final = 10  # destinations under notify:
MAX_DESTINATION_CHARS: Final = 2000
DEFAULT_MISSED_GRACE_S: Final = 60.0  # a tick not started this long after its instant is missed
ALERT_WATCH_INTERVAL_S: Final = 1.0  # how often the leader looks for missed and overdue runs

# Cluster views (odin.engine.nodes): what every node shows of every member.
NODE_ROWS_FRESH_S: Final = 1.0  # `odin nodes get`'s run counts are at most this old
