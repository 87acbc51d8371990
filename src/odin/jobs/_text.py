"""How user input is quoted inside error messages."""

from __future__ import annotations

SHOWN_CHARS = 40


def show(value: object) -> str:
    """``value`` quoted, cut to a few words, with unprintable characters masked.

    Messages are one line on a terminal: user input must not be able to break
    the line, ring the bell or flood the screen.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 3] + "..."
    return '"' + "".join(ch if ch.isprintable() else "?" for ch in text) + '"'
