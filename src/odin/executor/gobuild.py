"""Compiling a Go job once, offline, as its owner.

The build runs through the same executor as a job (owner's uid/gid/groups, fresh
environment, resource limits, a timeout, capped output): the Go toolchain executes
code paths chosen by the source (``//go:generate`` is not run, but cgo and module
resolution are), so it must never run as root for somebody else. It is offline
(``GOPROXY=off``, cgo off unless ``config.GO_BUILD_CGO_ENABLED``): the only importable
modules are the standard library and, when given, the Odin SDK through a ``replace``
onto a local directory. No ``-trimpath``: it changes every package's build id, so the
distribution's precompiled standard library would not be reused (a first build many
times slower: bench/limits.md, "Executor measurements").

Everything lives under ``cache_dir/<uid>/``, owned by that user: ``go/<key>/`` holds
the generated ``go.mod``, the source as ``main.go`` and the binary ``job``; ``gocache``
and ``gopath`` are the user's own Go caches (never shared: a build cache written by
one user must not feed another's binary). ``key`` is the sha256 of the source and of
the SDK's files, so the same code is compiled once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from odin import config
from odin.errors import ExecutionError
from odin.executor.files import check_plain_name, stat_user_file, write_user_file
from odin.executor.port import ExecutorPort
from odin.executor.spec import LaunchSpec

GO_CANDIDATES: tuple[str, ...] = ("/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go")
SDK_MODULE = "github.com/theycallmemac/odin/odin-libraries/go/odinlib"
BINARY_NAME = "job"
_SOURCE_NAME = "main.go"
_GO_DIRECTIVE = "1.18"
# Build as the user, then rename into place, so a concurrent build never exposes half a file.
_BUILD_SCRIPT = 'set -e; "$1" build -o "$2" .; mv -f "$2" "$3"'


def go_path() -> str:
    """The Go toolchain from a fixed list of system paths."""
    for path in GO_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ExecutionError(
        f"cannot build Go jobs: go is not installed (looked for {', '.join(GO_CANDIDATES)}); "
        "install it with: apt-get install golang-go"
    )


async def build_go(
    code: str,
    *,
    executor: ExecutorPort,
    filename: str,
    uid: int,
    gid: int,
    groups: Iterable[int],
    cache_dir: Path,
    sdk_go_dir: Path | None,
) -> Path:
    """The path of the compiled binary for ``code``, building it if not cached (a run of
    ``executor``).

    Raises ``ExecutionError`` with the compiler's message when the code does not build.
    """
    check_plain_name(filename, "file name")
    go = go_path()
    key = build_key(code, sdk_go_dir)
    dirs = ("go", key)
    if _is_built(cache_dir, uid, dirs):
        return cache_dir.joinpath(str(uid), *dirs, BINARY_NAME)
    write_user_file(code.encode(), root=cache_dir, uid=uid, gid=gid, dirs=dirs, name=_SOURCE_NAME)
    go_mod = go_mod_text(sdk_go_dir).encode()
    write_user_file(go_mod, root=cache_dir, uid=uid, gid=gid, dirs=dirs, name="go.mod")
    home = cache_dir / str(uid)
    spec = _build_spec(go, home, home.joinpath(*dirs), uid, gid, tuple(groups))
    outcome = await (await executor.prepare(spec)).open()
    if not outcome.ok or not _is_built(cache_dir, uid, dirs):
        raise ExecutionError(_failure_message(filename, outcome.output, outcome.timed_out))
    return home.joinpath(*dirs, BINARY_NAME)


def build_key(code: str, sdk_go_dir: Path | None) -> str:
    """sha256 of what the binary depends on: the source and the SDK's files."""
    digest = hashlib.sha256(code.encode())
    if sdk_go_dir is not None:
        digest.update(b"\0sdk\0" + str(sdk_go_dir.resolve()).encode())
        for path in sorted(sdk_go_dir.rglob("*")):
            if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
                digest.update(b"\0" + str(path.relative_to(sdk_go_dir)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def go_mod_text(sdk_go_dir: Path | None) -> str:
    """The generated go.mod: a main module that may import the SDK and nothing else."""
    lines = ["module odinjob", "", f"go {_GO_DIRECTIVE}", ""]
    if sdk_go_dir is not None:
        lines += [f"require {SDK_MODULE} v0.0.0", "", f"replace {SDK_MODULE} => {sdk_go_dir}", ""]
    return "\n".join(lines)


def _is_built(cache_dir: Path, uid: int, dirs: tuple[str, ...]) -> bool:
    info = stat_user_file(cache_dir, uid=uid, dirs=dirs, name=BINARY_NAME)
    return info is not None and bool(info.st_mode & stat.S_IXUSR)


def _build_spec(
    go: str, home: Path, build_dir: Path, uid: int, gid: int, groups: tuple[int, ...]
) -> LaunchSpec:
    token = secrets.token_hex(6)
    temp = f".{BINARY_NAME}.{token}.tmp"
    return LaunchSpec(
        run_id=f"go-build:{build_dir.name}:{token}",  # builds of the same code may overlap
        argv=("/bin/sh", "-c", _BUILD_SCRIPT, "sh", go, temp, BINARY_NAME),
        uid=uid,
        gid=gid,
        groups=groups,
        env=_build_env(home),
        cwd=str(build_dir),
        timeout_s=config.GO_BUILD_TIMEOUT_S,
        max_output_bytes=config.MAX_BUILD_OUTPUT_BYTES,
    )


def _build_env(home: Path) -> dict[str, str]:
    return {
        "PATH": config.JOB_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GOCACHE": str(home / "gocache"),
        "GOPATH": str(home / "gopath"),
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GO111MODULE": "on",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "1" if config.GO_BUILD_CGO_ENABLED else "0",
    }


def _failure_message(filename: str, output: bytes, timed_out: bool) -> str:
    if timed_out:
        return f"go build of {filename} timed out after {config.GO_BUILD_TIMEOUT_S:g}s"
    text = output.decode(errors="replace").replace(f"./{_SOURCE_NAME}", filename)
    text = text.replace(_SOURCE_NAME, filename).strip()
    return f"go build of {filename} failed:\n{text}"
