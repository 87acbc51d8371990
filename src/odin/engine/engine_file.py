"""The engine's settings file: the same settings as ``odin-engine``'s flags, in YAML.

```yaml
# /etc/odin/engine.yml
smtp: smtp://alerts@mail.example.org:587
smtp-password-file: /etc/odin/smtp.password
smtp-from: odin@example.org
webhook-secret-file: /etc/odin/webhook.secret
launch-slots: 64
```

Keys are the flags' long names (``smtp_from`` is read as ``smtp-from``); a flag
given on the command line wins over the file. An unknown key, or a file that
group or others may write, stops the engine with an error naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import yaml

DEFAULT_PATH = Path("/etc/odin/engine.yml")


def load_defaults(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """Click callback of ``--config``: the file's settings become the flags' defaults."""
    path = value
    if path is None:
        if not DEFAULT_PATH.exists():
            return
        path = DEFAULT_PATH
    settings = read(path)
    known = {p.name: p for p in ctx.command.params if isinstance(p, click.Option) and p.name}
    defaults: dict[str, Any] = {}
    for key, setting in settings.items():
        name = str(key).replace("-", "_")
        if name not in known or name == "config_file":
            names = ", ".join(sorted(n.replace("_", "-") for n in known if n != "config_file"))
            raise click.BadParameter(f"{path}: unknown setting {key!r} (known: {names})")
        defaults[name] = setting
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def read(path: Path) -> dict[str, Any]:
    """The settings in ``path``; refuses what another user could have written."""
    try:
        info = path.stat()
        text = path.read_text()
    except OSError as error:
        raise click.BadParameter(f"cannot read {path}: {error.strerror}") from None
    if info.st_mode & 0o022 or (info.st_uid not in (0, os.geteuid())):
        raise click.BadParameter(
            f"{path} may be changed by other users: chown it to the engine's user and chmod 644"
        )
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise click.BadParameter(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a mapping of setting: value")
    return data
