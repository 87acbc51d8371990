"""A daily wall-clock window, like "between 09:00 and 17:00", that filters fire times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from odin.schedule.wall import ONE_DAY, format_minute


@dataclass(frozen=True)
class Window:
    """Wall-clock minutes of the day, both ends included; ``start > end`` wraps midnight."""

    start: int
    end: int

    @property
    def wraps(self) -> bool:
        return self.start > self.end

    def opened_on(self, day: date, second: int) -> date | None:
        """The day whose window holds the wall time ``second`` of ``day``, or None if outside."""
        if not self.contains(second):
            return None
        return day - ONE_DAY if self.wraps and second < self.start * 60 else day

    def contains(self, second: int) -> bool:
        low, high = self.start * 60, self.end * 60
        if low <= high:
            return low <= second <= high
        return second >= low or second <= high

    def length_seconds(self) -> int:
        return ((self.end - self.start) % (24 * 60)) * 60

    def describe(self) -> str:
        return f"between {format_minute(self.start)} and {format_minute(self.end)}"
