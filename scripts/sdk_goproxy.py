"""Write a Go module proxy directory that serves the Go SDK, standard library only.

    python3 scripts/sdk_goproxy.py sdk/go/odinlib dist/goproxy

It lays out what GOPROXY=file:///.../dist/goproxy reads (the GOPROXY protocol):
``<module>/@v/list``, ``vX.Y.Z.info``, ``.mod`` and ``.zip``, with the version from
the module's version.go (``const Version = "X.Y.Z"``). A user's module then requires
the SDK by its documented import path, offline:

    GOPROXY=file:///path/to/dist/goproxy GONOSUMDB=github.com/theycallmemac/odin \\
        GOFLAGS=-mod=mod go build

Archives are reproducible: every file gets SOURCE_DATE_EPOCH (default 1980-01-01).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "vendor"})


def module_path(module_dir: Path) -> str:
    """The ``module`` line of go.mod."""
    found = re.search(r"^module\s+(\S+)", (module_dir / "go.mod").read_text(), re.M)
    if found is None:
        raise SystemExit(f"{module_dir}/go.mod has no module line")
    return found.group(1)


def module_version(module_dir: Path) -> str:
    """``v`` + the ``Version`` constant of version.go."""
    text = (module_dir / "version.go").read_text()
    found = re.search(r'^const Version = "(\d+\.\d+\.\d+)"$', text, re.M)
    if found is None:
        raise SystemExit(f'{module_dir}/version.go has no const Version = "X.Y.Z"')
    return "v" + found.group(1)


def escaped(path: str) -> str:
    """A module path as the proxy protocol spells it: each capital letter as ! + lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def module_files(module_dir: Path) -> list[Path]:
    """The files of the module zip: regular files, not in VCS or vendor folders nor in
    nested modules (folders with a go.mod of their own), no symlinks."""
    nested = [p.parent for p in module_dir.rglob("go.mod") if p.parent != module_dir]
    files = []
    for path in sorted(module_dir.rglob("*")):
        relative = path.relative_to(module_dir)
        skipped = SKIPPED_DIRS & set(relative.parts[:-1]) or any(n in path.parents for n in nested)
        if not skipped and path.is_file() and not path.is_symlink():
            files.append(relative)
    return files


def epoch() -> int:
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def write_zip(target: Path, prefix: str, module_dir: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in module_files(module_dir):
            member = zipfile.ZipInfo(f"{prefix}/{relative.as_posix()}", time.gmtime(epoch())[:6])
            member.external_attr = 0o644 << 16
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, (module_dir / relative).read_bytes())


def build(module_dir: Path, out: Path) -> Path:
    """Write (or add this version to) the proxy directory ``out``; return the zip's path."""
    path, version = module_path(module_dir), module_version(module_dir)
    versions = out / escaped(path) / "@v"
    versions.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch()))
    (versions / f"{version}.info").write_text(json.dumps({"Version": version, "Time": stamp}))
    (versions / f"{version}.mod").write_bytes((module_dir / "go.mod").read_bytes())
    write_zip(versions / f"{version}.zip", f"{path}@{version}", module_dir)
    listed = versions / "list"
    known = set(listed.read_text().split()) if listed.exists() else set()
    listed.write_text("".join(f"{v}\n" for v in sorted(known | {version})))
    return versions / f"{version}.zip"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: sdk_goproxy.py MODULE_DIR OUT_DIR")
    print(build(Path(sys.argv[1]), Path(sys.argv[2])))
