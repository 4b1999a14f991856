"""Complaint numbers: the formats a profile may choose, and the one way to recognise a number.

Pure: no database. The gap-free serial itself comes from `models.actions.number_complaint`
(the period's counter row, locked until the submitting transaction commits).

Shipped formats (a profile's `[numbering] format`):

- "YYYYMM-NNNN" (the default): 202612-0001. Year, month, a serial of at least four digits.
- "YYMM-NN" (R17 "年度(××)月份(××)流水编号(××)"): 2612-01. Two-digit year and month, a serial of
  at least two digits.

The serial width is a minimum, not a limit: the 100th complaint of a month under "YYMM-NN" is
2612-100, the 10000th under "YYYYMM-NNNN" is 202612-10000. A desk that files more than the
seed's two digits allow keeps working instead of refusing complaints.

Both formats count per calendar month in the deployment's time zone, so they share the counter
row keyed by YYYYMM: a deployment that changes format mid-month continues the month's serial,
and no number can be handed out twice (the two formats never produce the same text).

Every place that reads a number a person typed or a link carries (the chat's /status and /find,
/c/<number>, the API, Open311, the desk search, the staff's "already decided" case) asks
`normalise_number`, which accepts every shipped format, so numbers issued before a profile
changed its format keep working.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class NumberFormat:
    name: str  # as written in the profile: "YYMM-NN"
    year_digits: int  # 4: 2026, 2: 26
    serial_width: int  # minimum digits of the serial, zero-padded; more when needed

    @property
    def prefix_digits(self) -> int:
        return self.year_digits + 2

    @property
    def pattern(self) -> str:
        """This format's regular expression, unanchored (the same text in Python and JS)."""
        return rf"\d{{{self.prefix_digits}}}-\d{{{self.serial_width},}}"


FORMATS: dict[str, NumberFormat] = {
    "YYYYMM-NNNN": NumberFormat("YYYYMM-NNNN", year_digits=4, serial_width=4),
    "YYMM-NN": NumberFormat("YYMM-NN", year_digits=2, serial_width=2),
}
DEFAULT_FORMAT = "YYYYMM-NNNN"

# Any shipped format, longest prefix first. This body is also handed to the web chat's script
# (web/webchat.py), so the browser recognises numbers by the same rule.
NUMBER_SOURCE = "(?:" + "|".join(f.pattern for f in FORMATS.values()) + ")"
NUMBER_PATTERN = re.compile(rf"^{NUMBER_SOURCE}$", re.ASCII)  # "２６" is no number
# A number inside a longer text (a receipt, a notification): not part of a longer digit run.
NUMBER_IN_TEXT = re.compile(rf"(?<![\d-]){NUMBER_SOURCE}(?![\d-])", re.ASCII)

# Dashes people type for "-" (full-width, em, en, minus sign).
_DASHES = str.maketrans({"－": "-", "—": "-", "–": "-", "−": "-"})


def number_format(name: str) -> NumberFormat:
    """The shipped format called `name`; KeyError naming the choices when there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        choices = ", ".join(f'"{n}"' for n in FORMATS)
        raise KeyError(f"unknown complaint number format {name!r} (one of {choices})") from None


def period_of(local: datetime) -> str:
    """The counter key of the period a complaint filed at `local` (local time) counts in."""
    return local.strftime("%Y%m")


def number_prefix(name: str, period: str) -> str:
    """What every number of `period` (YYYYMM) in format `name` starts with, its dash included:
    the serial, zero-padded to the format's `serial_width`, follows. (The database writes
    numbers from this too: models.actions.number_complaint.)"""
    fmt = number_format(name)
    if not (len(period) == 6 and period.isascii() and period.isdigit()):
        raise ValueError(f"a numbering period is YYYYMM, not {period!r}")
    return f"{period if fmt.year_digits == 4 else period[2:]}-"


def format_number(name: str, period: str, serial: int) -> str:
    """The number of the `serial`-th complaint of `period` (YYYYMM) in format `name`."""
    prefix = number_prefix(name, period)
    if serial < 1:
        raise ValueError(f"serials start at 1, not {serial}")
    return f"{prefix}{serial:0{number_format(name).serial_width}d}"


# A filing's number until its serial is taken, the last thing it writes (models.actions): no
# shipped format starts with it, so nothing can ever find a complaint by one, and no other
# transaction sees one (it is replaced before the filing commits).
PROVISIONAL_MARK = "~"


def provisional_number() -> str:
    """A unique stand-in for a filing's number (19 characters; numbers are at most 20)."""
    return PROVISIONAL_MARK + secrets.token_hex(9)


def is_provisional(number: str | None) -> bool:
    return bool(number) and number.startswith(PROVISIONAL_MARK)  # type: ignore[union-attr]


def example_number(name: str) -> str:
    """A number to show people what one looks like: the first of December 2026."""
    return format_number(name, "202612", 1)


def normalise_number(typed: str | None) -> str | None:
    """A typed or linked complaint number in stored form, or None when it cannot be one (of any
    shipped format: numbers keep working after a profile changes its format)."""
    cleaned = (typed or "").strip().translate(_DASHES)
    return cleaned if NUMBER_PATTERN.match(cleaned) else None


def is_number(text: str | None) -> bool:
    return normalise_number(text) is not None
