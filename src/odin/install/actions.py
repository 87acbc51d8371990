"""The idempotent steps of an install or uninstall.

Each action knows whether it would change anything (``pending``), says what it
does in one line (``describe``) and does it (``apply``). Running a plan twice
changes nothing the second time: that is what makes ``odin install`` safe to
repeat after an upgrade. Everything created is owned by root (uid 0, gid 0).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from odin.errors import Conflict, ExecutionError

SECRET_BYTES = 32  # the same size of secret the engine makes when it finds none


class Action(Protocol):
    """One step; ``apply`` is only called when ``pending()`` is true."""

    def describe(self) -> str: ...

    def pending(self) -> bool: ...

    def apply(self) -> None: ...


def _owned_by_root(path: Path) -> bool:
    info = path.lstat()
    return info.st_uid == 0 and info.st_gid == 0


def _chown_root(path: Path) -> None:
    os.chown(path, 0, 0, follow_symlinks=False)


@dataclass(frozen=True)
class EnsureDir:
    """A directory owned by root:root with exactly ``mode``."""

    path: Path
    mode: int

    def describe(self) -> str:
        return f"directory {self.path} (root:root {self.mode:04o})"

    def pending(self) -> bool:
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_dir()):
            raise Conflict(f"{self.path} exists and is not a directory; move it away first")
        if not self.path.exists():
            return True
        mode = stat.S_IMODE(self.path.lstat().st_mode)
        return mode != self.mode or not _owned_by_root(self.path)

    def apply(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _chown_root(self.path)
        os.chmod(self.path, self.mode)


@dataclass(frozen=True)
class WriteFile:
    """A root-owned file with ``content``; ``replace=False`` keeps an existing one (config)."""

    path: Path
    content: str
    mode: int = 0o644
    replace: bool = True

    def describe(self) -> str:
        kept = "" if self.replace else ", kept if present"
        return f"file {self.path} ({self.mode:04o}{kept})"

    def pending(self) -> bool:
        if not self.path.exists():
            return True
        if not self.replace:
            return False
        same = self.path.read_text(errors="replace") == self.content
        mode = stat.S_IMODE(self.path.lstat().st_mode)
        return not same or mode != self.mode or not _owned_by_root(self.path)

    def apply(self) -> None:
        """Write beside the target and rename: a reader never sees half a unit file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.content)
        _chown_root(partial)
        os.chmod(partial, self.mode)
        os.replace(partial, self.path)


@dataclass(frozen=True)
class MakeSecret:
    """The cluster secret (0600 root), made once and never replaced: peers share it."""

    path: Path

    def describe(self) -> str:
        return f"cluster secret {self.path} (root:root 0600, kept if present)"

    def pending(self) -> bool:
        return not self.path.exists()

    def apply(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(SECRET_BYTES))
        _chown_root(self.path)


@dataclass(frozen=True)
class Symlink:
    """``path`` → ``target``; only ever replaces a symlink, never a real file."""

    path: Path
    target: Path

    def describe(self) -> str:
        return f"link {self.path} -> {self.target}"

    def pending(self) -> bool:
        if self.path.is_symlink():
            return Path(os.readlink(self.path)) != self.target
        if self.path.exists():
            raise Conflict(f"{self.path} exists and is not a link; remove it or use --no-links")
        return True

    def apply(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.symlink_to(self.target)


@dataclass(frozen=True)
class Remove:
    """Remove a file, a link or (``tree``) a whole directory; absent is fine."""

    path: Path
    tree: bool = False
    only_links: bool = False

    def describe(self) -> str:
        what = "tree" if self.tree else "link" if self.only_links else "file"
        return f"{what} {self.path} removed"

    def pending(self) -> bool:
        if self.only_links:
            return self.path.is_symlink()
        return self.path.exists() or self.path.is_symlink()

    def apply(self) -> None:
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        else:
            self.path.unlink()


def _group_exists(root: Path, name: str) -> bool:
    """Read the group file under ``root`` directly: ``grp`` only knows the host's."""
    group_file = root / "etc" / "group"
    if not group_file.exists():
        return False
    return any(line.split(":", 1)[0] == name for line in group_file.read_text().splitlines())


def _shadow_tool(tool: str, root: Path, *args: str) -> None:
    """``groupadd``/``groupdel``, with ``--prefix`` when the root is not the host's."""
    prefix = [] if root.resolve() == Path("/") else ["--prefix", str(root)]
    argv = [f"/usr/sbin/{tool}", *prefix, *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ExecutionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class AddGroup:
    """The system group whose members may use Odin."""

    root: Path
    name: str

    def describe(self) -> str:
        return f"system group {self.name}"

    def pending(self) -> bool:
        return not _group_exists(self.root, self.name)

    def apply(self) -> None:
        if self.root.resolve() != Path("/"):
            for name in ("group", "gshadow"):  # a bare test root: groupadd needs both files
                (self.root / "etc").mkdir(parents=True, exist_ok=True)
                (self.root / "etc" / name).touch()
        _shadow_tool("groupadd", self.root, "--system", self.name)


@dataclass(frozen=True)
class DeleteGroup:
    root: Path
    name: str

    def describe(self) -> str:
        return f"delete group {self.name}"

    def pending(self) -> bool:
        return _group_exists(self.root, self.name)

    def apply(self) -> None:
        _shadow_tool("groupdel", self.root, self.name)


@dataclass(frozen=True)
class Systemctl:
    """A systemctl call; always pending (systemd itself makes these idempotent)."""

    args: tuple[str, ...]

    def describe(self) -> str:
        return f"systemctl {' '.join(self.args)}"

    def pending(self) -> bool:
        return True

    def apply(self) -> None:
        done = subprocess.run(
            ["systemctl", *self.args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ExecutionError(f"systemctl {' '.join(self.args)} failed: {done.stderr.strip()}")
