"""Handing the memory a big transient freed back to the system.

Restoring a snapshot parses it whole: at 100,000 jobs the parsed JSON takes about
110 MB, freed as soon as the state is built, but glibc's allocator keeps the pages
for later use, so the engine's resident memory stays that much higher for good
(measured: 299 MB after a restore, 187 MB once trimmed).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def give_back() -> None:
    """Return the C heap's free pages to the kernel (glibc's ``malloc_trim``)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
