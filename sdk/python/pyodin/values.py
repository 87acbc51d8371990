"""Small value objects without ``dataclasses``.

A job pays for every module the SDK imports, at every run: ``dataclasses`` brings
``inspect`` and ``ast`` with it, about 10 ms of CPU here, more than the rest of the
SDK. These few classes need only what a dataclass would give them: fields set once,
equality, a hash and a readable repr, all from their ``__slots__``.
"""

from __future__ import annotations


class Value:
    """A value compared, hashed and shown by the fields named in ``__slots__``."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"
