"""The vocabulary of the schedule language, and how its values are spelled back."""

from __future__ import annotations

import difflib

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTH_LENGTHS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb 29th exists
WORKDAYS = frozenset(range(5))
WEEKEND = frozenset({5, 6})


def _weekday_words() -> dict[str, frozenset[int]]:
    table: dict[str, frozenset[int]] = {}
    extra = {1: ("tues",), 2: ("weds",), 3: ("thur", "thurs")}
    for number, name in enumerate(WEEKDAY_NAMES):
        day = frozenset({number})
        for spelling in (name.lower(), name[:3].lower(), *extra.get(number, ())):
            table[spelling] = day
        table[name.lower() + "s"] = day
    for spelling in ("weekday", "weekdays"):
        table[spelling] = WORKDAYS
    for spelling in ("weekend", "weekends"):
        table[spelling] = WEEKEND
    return table


def _month_words() -> dict[str, int]:
    table: dict[str, int] = {}
    for number, name in enumerate(MONTH_NAMES[1:], start=1):
        table[name.lower()] = number
        table[name[:3].lower()] = number
    table["sept"] = 9
    return table


WEEKDAYS = _weekday_words()
SINGLE_WEEKDAYS = {word: min(days) for word, days in WEEKDAYS.items() if len(days) == 1}
MONTHS = _month_words()

# "every first Monday", "the last Friday of the month": a weekday's place in its month.
LAST_NTH = -1
NTH_NAMES = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", LAST_NTH: "last"}
NTH_WORDS = {name: nth for nth, name in NTH_NAMES.items()} | {
    f"{nth}{suffix}": nth for nth, suffix in ((1, "st"), (2, "nd"), (3, "rd"), (4, "th"), (5, "th"))
}

# unit word -> seconds; "day" is a calendar day, not 86400 s (see the parser).
UNITS: dict[str, int] = {}
for _seconds, _spellings in (
    (1, ("second", "seconds", "sec", "secs")),
    (60, ("minute", "minutes", "min", "mins")),
    (3600, ("hour", "hours", "hr", "hrs")),
    (86400, ("day", "days")),
):
    for _spelling in _spellings:
        UNITS[_spelling] = _seconds
SINGULAR_UNITS = frozenset({"second", "sec", "minute", "min", "hour", "hr", "day"})

KEYWORDS = (
    "every",
    "each",
    "on",
    "at",
    "and",
    "in",
    "the",
    "of",
    "month",
    "daily",
    "everyday",
    "hourly",
    "between",
    "from",
    "to",
    "until",
    "last",
    "never",
    "noon",
    "midnight",
    "am",
    "pm",
    "other",
    "cron:",
    "first",
    "third",
    "fourth",
    "fifth",
    "synchronized",  # App Engine's (odin.schedule.appengine)
    "quarter",
)


def _display() -> dict[str, str]:
    table = {word: word for word in (*KEYWORDS, *UNITS)}
    table.update({w: w for w in WEEKDAYS})
    table.update({name.lower(): name for name in WEEKDAY_NAMES})
    table.update({name.lower(): name for name in MONTH_NAMES[1:]})
    return table


DISPLAY = _display()


def suggest(word: str, choices: tuple[str, ...] | list[str] | None = None) -> str | None:
    """The closest known word to a misspelt one, spelt for display, if any is close."""
    pool = list(DISPLAY) if choices is None else list(choices)
    matches = difflib.get_close_matches(word.lower()[:64], pool, n=1, cutoff=0.75)
    if not matches:
        return None
    return DISPLAY.get(matches[0], matches[0])


def ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def join_list(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
