"""``odin generate``: a fresh job's YAML template and a small job beside it.

What must hold: both files are new (an existing file is never touched, and if
either exists nothing is written), the YAML carries a fresh id and loads as
soon as the user fills in ``name`` and ``schedule``, and the code file sits
beside the YAML with the language's extension: a commented job that uses the
language's SDK (watch, condition, result), deploys unchanged and succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import string
from importlib import resources
from pathlib import Path

from odin.errors import Conflict, InvalidInput
from odin.jobs._text import show
from odin.jobs.ids import new_job_id
from odin.jobs.language import Language
from odin.jobs.spec import PROVIDER_NAME, PROVIDER_VERSION

YAML_SUFFIXES = (".yml", ".yaml")

_TEMPLATE = """\
# An Odin job. Fill in name, description and schedule, write your code in
# {code_file}, then deploy with:  odin deploy -f {yaml_file}
provider:
  name: {provider}
  version: {version}
job:
  id: {id}  # identifies the job: redeploying this file updates it
  name: ""  # a short name, e.g. {example_name}
  description: ""  # what the job does (optional)
  language: {language}
  file: {file}  # the code, relative to this file
  schedule: ""  # plain English, e.g. "every day at 18:00", "every Monday at 09:30",
  #               "every 15 minutes between 09:00 and 17:00", or "never" (run by hand or by link);
  #               check one with: odin schedule "every day at 18:00"
  # Optional settings: remove the # to use one.
  # timezone: Europe/Dublin  # zone of the schedule's times (default: the engine's)
  # timeout: 5m              # stop a run after this long: 30s, 5m, 1h, 1h30m
  # retries: 2               # run again up to this many times after a failure
  # overlap: skip            # due while still running: skip | queue | allow
  # catchup: latest          # runs missed while Odin was down: none | latest | all
  # workdir: /home/you/work  # working directory (default: your home)
  # nodes: [worker1]         # cluster nodes it may run on, see odin nodes get (default: any)
  # env:                     # extra environment variables
  #   GREETING: hello
  # Alerts: where to be told when the job fails (check them with: odin notify test -i ID).
  # notify:
  #   - to: https://hooks.example.org/odin  # a webhook: the alert as a JSON POST
  #     on: [failure, recovery]             # failure, recovery, missed, overdue, lost
  #     after: 3                            # alert after 3 failures in a row (default 1)
  #   - to: mailto:you@example.org          # a mail (the engine's --smtp server sends it)
  #     on: [failure, missed]
  # warn_after: 10m          # alert "overdue" when a run is still going after this long
  # grace: 1m                # alert "missed" when a run has not started this long after its time
"""


def generate(yaml_path: Path, language: str) -> tuple[Path, Path]:
    """Write ``NAME.yml`` and an example job ``NAME.<ext>``; return both paths.

    Raises ``InvalidInput`` for a bad file name, language or folder and
    ``Conflict`` when either file already exists (then nothing is written).
    """
    chosen = Language.parse(language)
    _check_yaml_name(yaml_path)
    code_path = yaml_path.with_suffix(chosen.extension)
    _check_folder(yaml_path)
    for path in (yaml_path, code_path):
        _refuse_existing(path)
    _create(yaml_path, render_template(yaml_path, code_path, chosen))
    try:
        _create(code_path, render_code(yaml_path, code_path, chosen))
    except BaseException:
        with contextlib.suppress(OSError):
            yaml_path.unlink()
        raise
    return yaml_path, code_path


def render_template(yaml_path: Path, code_path: Path, language: Language) -> str:
    """The YAML text of a new job (fresh id, empty name, description and schedule)."""
    return _TEMPLATE.format(
        code_file=_printable(code_path.name),
        yaml_file=_printable(str(yaml_path)),
        provider=PROVIDER_NAME,
        version=PROVIDER_VERSION,
        id=json.dumps(new_job_id()),
        example_name=_printable(yaml_path.stem),
        language=language.value,
        file=json.dumps(code_path.name),
    )


def render_code(yaml_path: Path, code_path: Path, language: Language) -> str:
    """The example job in ``language``: it names its YAML file and records with the SDK."""
    template = resources.files("odin.jobs") / "templates" / f"job{language.extension}.tmpl"
    return string.Template(template.read_text(encoding="utf-8")).substitute(
        name=_printable(yaml_path.stem),
        yaml=_printable(yaml_path.name),
        code=_printable(code_path.name),
        config=_literal(yaml_path.name, language),
    )


def _literal(text: str, language: Language) -> str:
    """``text`` as a string literal of ``language`` (single-quoted in JavaScript)."""
    quote = "'" if language is Language.NODE else '"'
    return quote + "".join(_literal_char(ch, quote, language) for ch in text) + quote


def _literal_char(ch: str, quote: str, language: Language) -> str:
    """One character of a string literal: itself, or an escape ``language`` reads back."""
    code = ord(ch)
    if ch in (quote, "\\"):
        return "\\" + ch
    if ch.isprintable():
        return ch
    if language is Language.GO and 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte of an undecodable name (surrogateescape)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\u{{{code:x}}}" if language is Language.NODE else f"\\U{code:08x}"


def _printable(text: str) -> str:
    """``text`` safe inside a one-line comment (YAML or code)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _check_yaml_name(yaml_path: Path) -> None:
    if yaml_path.suffix.lower() not in YAML_SUFFIXES or not yaml_path.stem:
        raise InvalidInput(
            f"{show(str(yaml_path))} is not a YAML file name: "
            "use NAME.yml or NAME.yaml (NAME also names the code file)"
        )


def _check_folder(yaml_path: Path) -> None:
    folder = yaml_path.parent
    if not folder.is_dir():
        raise InvalidInput(f"the folder {show(str(folder))} does not exist: create it first")


def _refuse_existing(path: Path) -> None:
    if path.exists() or path.is_symlink():
        raise Conflict(f"{path} already exists: not overwriting it (choose another name)")


def _create(path: Path, text: str) -> None:
    """Create ``path`` only if it does not exist yet (O_EXCL: no race, no overwrite)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise Conflict(f"{path} already exists: not overwriting it (choose another name)") from None
    except OSError as error:
        raise InvalidInput(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
