"""Where an installed Odin lives, relative to a root directory.

A real install uses the root ``/``; tests pass a temporary directory so that
every path is written under it and nothing on the host changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from odin import config

UNIT_NAME = "odin-engine.service"
UNIT_DIR = "/etc/systemd/system"  # the administrator's units, not the package manager's
DEFAULTS_FILE = "/etc/default/odin"  # ODIN_ENGINE_ARGS for the unit (Debian convention)
BIN_DIR = "/usr/local/bin"  # where `odin` and `odin-engine` are linked for every user
BASH_COMPLETION_DIR = "/etc/bash_completion.d"
ZSH_COMPLETION_DIRS = ("/usr/local/share/zsh/site-functions", "/usr/share/zsh/vendor-completions")
FISH_COMPLETION_DIRS = ("/etc/fish/completions", "/usr/share/fish/vendor_completions.d")
SYSTEMD_RUNNING_MARK = "/run/systemd/system"  # exists only when systemd is PID 1 (sd_booted)

COMPLETION_FILE = {"bash": "odin", "zsh": "_odin", "fish": "odin.fish"}


@dataclass(frozen=True)
class Layout:
    """The paths of one install; ``root`` is ``/`` except in tests."""

    root: Path

    def at(self, absolute: str) -> Path:
        """``absolute`` (a host path) as seen under this root."""
        return self.root / absolute.lstrip("/")

    @property
    def is_host(self) -> bool:
        return self.root.resolve() == Path("/")

    @property
    def data_dir(self) -> Path:
        return self.at(config.ROOT_DATA_DIR)

    @property
    def secret(self) -> Path:
        return self.data_dir / "cluster.secret"

    @property
    def run_dir(self) -> Path:
        return self.at(str(Path(config.ROOT_SOCKET_PATH).parent))

    @property
    def unit(self) -> Path:
        return self.at(UNIT_DIR) / UNIT_NAME

    @property
    def defaults(self) -> Path:
        return self.at(DEFAULTS_FILE)

    @property
    def bin_dir(self) -> Path:
        return self.at(BIN_DIR)

    def completion_files(self) -> dict[str, Path]:
        """Shell → completion file; zsh and fish only where their directory exists."""
        files = {"bash": self.at(BASH_COMPLETION_DIR) / COMPLETION_FILE["bash"]}
        for shell, candidates in (("zsh", ZSH_COMPLETION_DIRS), ("fish", FISH_COMPLETION_DIRS)):
            found = next((self.at(d) for d in candidates if self.at(d).is_dir()), None)
            if found is not None:
                files[shell] = found / COMPLETION_FILE[shell]
        return files

    def all_completion_files(self) -> list[Path]:
        """Every place install may have written a completion (for uninstall)."""
        dirs = [BASH_COMPLETION_DIR, *ZSH_COMPLETION_DIRS, *FISH_COMPLETION_DIRS]
        shells = (
            ["bash"] + ["zsh"] * len(ZSH_COMPLETION_DIRS) + ["fish"] * len(FISH_COMPLETION_DIRS)
        )
        return [self.at(d) / COMPLETION_FILE[s] for d, s in zip(dirs, shells, strict=True)]

    def systemd_running(self) -> bool:
        """Whether systemctl may be used: only on the host itself, with systemd as PID 1."""
        return self.is_host and Path(SYSTEMD_RUNNING_MARK).is_dir()
