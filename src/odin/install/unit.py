"""The systemd unit of the engine, and why each hardening option is (or is not) set.

The rule behind every choice: the service's sandbox is inherited by every job
the engine starts, so an option that would change what a job may do compared
with the same program run from cron is left out, even when it would harden the
engine itself. docs/operations.md has the full table.
"""

from __future__ import annotations

from pathlib import Path

from odin import config
from odin.install.layout import DEFAULTS_FILE

# The engine switches to each job's owner (SETUID/SETGID, and CHOWN/FOWNER for the
# run's files), signals runs of every user (KILL), lowers limits and raises its own
# (SYS_RESOURCE), reads every user's job files and working directory
# (DAC_OVERRIDE/DAC_READ_SEARCH), logs dashboard logins through PAM (AUDIT_WRITE)
# and may be told to listen on a port below 1024 (NET_BIND_SERVICE). Root-owned
# jobs get no more than this set: no module loading, no mounts, no raw I/O.
CAPABILITIES = (
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SYS_RESOURCE",
)

TEMPLATE = """\
# Installed by `odin install`; `odin uninstall` removes it.
# Local changes belong in a drop-in: systemctl edit odin-engine
[Unit]
Description=Odin job scheduler engine
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile=-{defaults}
ExecStart={engine} --data-dir {data_dir} --socket {socket} $ODIN_ENGINE_ARGS
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec={restart_s}
TimeoutStopSec={stop_s}
# SIGTERM to the engine first (it ends its runs its own way), SIGKILL to leftovers.
KillMode=mixed
# Each run gets its own cgroup below the engine's, so that nothing a job leaves behind survives it.
Delegate=yes
# A job killed by the kernel's OOM killer must not take the scheduler down with it.
OOMPolicy=continue
RuntimeDirectory=odin
RuntimeDirectoryMode=0755
UMask=0077
LimitNOFILE={nofile}
TasksMax={tasks}
CapabilityBoundingSet={capabilities}
ProtectClock=yes
ProtectKernelLogs=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
ProtectHostname=yes
LockPersonality=yes
RestrictRealtime=yes
SystemCallArchitectures=native
# Deliberately not set, because jobs inherit them (see docs/operations.md):
# ProtectHome, PrivateTmp, ProtectSystem, NoNewPrivileges, RestrictSUIDSGID,
# RestrictNamespaces, MemoryDenyWriteExecute, PrivateDevices, ProtectKernelModules.

[Install]
WantedBy=multi-user.target
"""


def render_unit(engine: Path) -> str:
    """The unit text for the ``odin-engine`` executable at ``engine`` (an absolute path)."""
    return TEMPLATE.format(
        defaults=DEFAULTS_FILE,
        engine=engine,
        data_dir=config.ROOT_DATA_DIR,
        socket=config.ROOT_SOCKET_PATH,
        restart_s=f"{config.UNIT_RESTART_S:g}s",
        stop_s=f"{config.UNIT_STOP_TIMEOUT_S:g}s",
        nofile=config.UNIT_LIMIT_NOFILE,
        tasks=config.UNIT_TASKS_MAX,
        capabilities=" ".join(CAPABILITIES),
    )


DEFAULTS = """\
# Options for odin-engine, read by odin-engine.service. `odin install` never
# overwrites this file; `odin uninstall --purge` removes it. Then:
#   systemctl restart odin-engine
# Examples (see `odin-engine --help`):
#   ODIN_ENGINE_ARGS="--name node2 --http 10.0.0.2:3939 --raft 10.0.0.2:12000 --join 10.0.0.1:12000"
#   ODIN_ENGINE_ARGS="--no-dashboard"
ODIN_ENGINE_ARGS=""
"""
