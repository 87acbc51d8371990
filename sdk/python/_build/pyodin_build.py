"""A build backend for pyodin (PEP 517 and PEP 660), standard library only.

pyodin has no dependencies and neither has its build, so ``pip install sdk/python``,
``pip wheel`` and ``python -m build`` need no registry. Builds are reproducible: every
file of a wheel or sdist gets the time of SOURCE_DATE_EPOCH (default 1980-01-01) and
fixed modes. Run as a script it writes the wheel: ``python3 _build/pyodin_build.py DIR``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pyodin"
TAG = "py3-none-any"
SDIST_FILES = ("pyproject.toml", "README.md", "_build/pyodin_build.py")


def _project() -> dict[str, object]:
    """The [project] table of pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def _version() -> str:
    """pyodin's version: ``__version__`` in pyodin/__init__.py (one place for it)."""
    text = (ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if found is None:
        raise RuntimeError("no __version__ in pyodin/__init__.py")
    return found.group(1)


def _metadata() -> str:
    """The core metadata (METADATA, PKG-INFO), version 2.1."""
    project = _project()
    license_table = project.get("license")
    classifiers = project.get("classifiers")
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {PACKAGE}",
        f"Version: {_version()}",
        f"Summary: {project['description']}",
        f"License: {license_table['text'] if isinstance(license_table, dict) else ''}",
        f"Requires-Python: {project['requires-python']}",
        *(f"Classifier: {c}" for c in (classifiers if isinstance(classifiers, list) else [])),
        "Description-Content-Type: text/markdown",
    ]
    readme = (ROOT / str(project["readme"])).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + readme


def _dist_info() -> str:
    return f"{PACKAGE}-{_version()}.dist-info"


def _source_files() -> list[Path]:
    """The package's files, relative to ROOT: modules and py.typed, no caches."""
    files = [p for p in sorted((ROOT / PACKAGE).rglob("*")) if p.is_file()]
    kept = [p for p in files if "__pycache__" not in p.parts and p.suffix in (".py", ".typed")]
    return [p.relative_to(ROOT) for p in kept]


def _epoch() -> int:
    """The time every archived file gets: SOURCE_DATE_EPOCH, 1980 at the earliest (zip's)."""
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(directory: str, entries: list[tuple[str, bytes]]) -> str:
    """Write the wheel with ``entries`` and its dist-info (METADATA, WHEEL, RECORD)."""
    info = _dist_info()
    wheel = f"Wheel-Version: 1.0\nGenerator: pyodin_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"
    entries = [
        *entries,
        (f"{info}/METADATA", _metadata().encode()),
        (f"{info}/WHEEL", wheel.encode()),
    ]
    record = [_record_line(name, data) for name, data in entries] + [f"{info}/RECORD,,"]
    entries.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    name = f"{PACKAGE}-{_version()}-{TAG}.whl"
    with zipfile.ZipFile(Path(directory) / name, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            member = zipfile.ZipInfo(path, date_time=time.gmtime(_epoch())[:6])
            member.external_attr = 0o644 << 16
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, data)
    return name


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, object] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """PEP 517: write ``pyodin-VERSION-py3-none-any.whl`` into ``wheel_directory``."""
    entries = [(p.as_posix(), (ROOT / p).read_bytes()) for p in _source_files()]
    return _write_wheel(wheel_directory, entries)


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, object] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """PEP 660: a wheel whose .pth file puts this folder on ``sys.path``."""
    return _write_wheel(wheel_directory, [(f"{PACKAGE}.pth", f"{ROOT}\n".encode())])


def build_sdist(sdist_directory: str, config_settings: dict[str, object] | None = None) -> str:
    """PEP 517: write ``pyodin-VERSION.tar.gz`` (the sources and PKG-INFO)."""
    base = f"{PACKAGE}-{_version()}"
    members = [(p.as_posix(), (ROOT / p).read_bytes()) for p in map(Path, SDIST_FILES)]
    members += [(p.as_posix(), (ROOT / p).read_bytes()) for p in _source_files()]
    members.append(("PKG-INFO", _metadata().encode()))
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path, data in members:
            member = tarfile.TarInfo(f"{base}/{path}")
            member.size, member.mode, member.mtime = len(data), 0o644, _epoch()
            archive.addfile(member, io.BytesIO(data))
    return name


def get_requires_for_build_wheel(config_settings: dict[str, object] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict[str, object] | None = None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings: dict[str, object] | None = None) -> list[str]:
    return []


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    print(out / build_wheel(str(out)))
