"""The languages a job may be written in, their aliases and file extensions."""

from __future__ import annotations

from enum import StrEnum

from odin.errors import InvalidInput
from odin.jobs._text import show


class Language(StrEnum):
    """A job's language, as written in its YAML (``python``, ``go``, ``node``)."""

    PYTHON = "python"
    GO = "go"
    NODE = "node"

    @property
    def extension(self) -> str:
        """The extension ``odin generate`` gives the code file."""
        return self.extensions[0]

    @property
    def extensions(self) -> tuple[str, ...]:
        """Every extension a code file in this language may have."""
        return _EXTENSIONS[self]

    @classmethod
    def parse(cls, text: str) -> Language:
        """The language named by ``text`` (any case, aliases included)."""
        language = _ALIASES.get(text.strip().lower()) if isinstance(text, str) else None
        if language is None:
            raise InvalidInput(f"unknown language {show(text)}: use {accepted_languages()}")
        return language


_EXTENSIONS: dict[Language, tuple[str, ...]] = {
    Language.PYTHON: (".py",),
    Language.GO: (".go",),
    Language.NODE: (".js", ".mjs", ".cjs"),
}

_ALIASES: dict[str, Language] = {
    "python": Language.PYTHON,
    "python3": Language.PYTHON,
    "py": Language.PYTHON,
    "go": Language.GO,
    "golang": Language.GO,
    "node": Language.NODE,
    "nodejs": Language.NODE,
    "javascript": Language.NODE,
    "js": Language.NODE,
}


def accepted_languages() -> str:
    """``python, go or node (also python3, ...)``, for help texts and errors."""
    aliases = ", ".join(name for name in _ALIASES if name not in set(Language))
    return f"python, go or node (also {aliases})"
