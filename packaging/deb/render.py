"""Writes the files the Debian package ships from Odin's own code, so they match `odin install`.

Run by build.sh with the package's venv (at its final path, /opt/odin) as
``/opt/odin/bin/python render.py STAGE``: the unit is ``render_unit`` with the
venv's engine, /etc/default/odin is ``DEFAULTS`` and the completions are the
ones ``odin install`` writes, each at the place Debian packages use for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from odin.cli.install_cmd import completion_sources
from odin.install.layout import DEFAULTS_FILE, UNIT_NAME
from odin.install.unit import DEFAULTS, render_unit

ENGINE = Path("/opt/odin/bin/odin-engine")
UNIT_DIR = "lib/systemd/system"  # the package manager's units (bookworm still ships in /lib)
COMPLETIONS = {
    "bash": "usr/share/bash-completion/completions/odin",
    "zsh": "usr/share/zsh/vendor-completions/_odin",
    "fish": "usr/share/fish/vendor_completions.d/odin.fish",
}
HEADER = "# Installed by the odin Debian package; `apt purge odin` removes it.\n"


def packaged_unit() -> str:
    """The unit `odin install` renders for this venv, its first line saying who installed it."""
    unit = render_unit(ENGINE)
    return HEADER + unit.split("\n", 1)[1]


def write(stage: Path, relative: str, text: str) -> None:
    path = stage / relative.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)


def main(stage: Path) -> None:
    write(stage, f"{UNIT_DIR}/{UNIT_NAME}", packaged_unit())
    write(stage, DEFAULTS_FILE, DEFAULTS)
    for shell, source in completion_sources().items():
        write(stage, COMPLETIONS[shell], source)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
