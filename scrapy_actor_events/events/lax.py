"""Field values in the lax forms the Apify SDK accepts (pydantic's lax mode, crawlee's validators).

The platform sends booleans and numbers as JSON values, but the SDK also takes ``"false"``, ``0``
and ``1`` for a boolean, ``"30"`` for a number, and, for ``timeRemainingSecs`` (crawlee's
``timedelta_secs``), a duration string such as ``"PT30S"`` or ``"00:00:30"``. An event the SDK
understands must mean the same here (``tests/events/test_sdk_parity.py`` compares the two).

Each function returns None for a value it cannot use; the caller decides what that means.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Pydantic's lax booleans: these strings (any case, no surrounding blanks), and exactly 0 or 1.
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})

_NUMBER = r"\d+(?:[.,]\d*)?"
#: ISO 8601 durations as pydantic reads them: Y = 365 days, M = 30 days (before T), W = 7 days.
_ISO = re.compile(
    rf"(?P<sign>[+-]?)P(?P<date>(?:{_NUMBER}[YMWD])*)(?:T(?P<time>(?:{_NUMBER}[HMS])*))?",
    re.ASCII,
)
_ISO_PART = re.compile(rf"({_NUMBER})([YMWDHS])", re.ASCII)
_DATE_UNITS = {"Y": 365 * 86_400, "M": 30 * 86_400, "W": 7 * 86_400, "D": 86_400}
_TIME_UNITS = {"H": 3_600, "M": 60, "S": 1}
_CLOCK = r"(?P<h>\d+):(?P<m>\d\d)(?::(?P<s>\d\d)(?:[.,](?P<f>\d+))?)?"
#: ``HH:MM[:SS[.ffffff]]``, alone or after ``N d``, ``N days,`` and the like.
_CLOCK_ONLY = re.compile(rf"(?P<sign>[+-]?){_CLOCK}", re.ASCII)
_DAYS_CLOCK = re.compile(
    rf"(?P<sign>[+-]?)(?P<days>\d+) ?[dD](?:[aA][yY][sS]?)?,? ?(?:{_CLOCK})?", re.ASCII
)


def lax_bool(value: Any) -> bool | None:
    """``value`` as the SDK reads a boolean field, or None if it would refuse it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def lax_number(value: Any) -> float | None:
    """A number, a numeric string (``"30"``, ``" 1e3 "``) or a boolean, as a float; else None.

    The result may be infinite or NaN: range checks are the caller's.
    """
    if isinstance(value, bool | int | float):
        try:
            return float(value)
        except OverflowError:  # an integer with hundreds of digits
            return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def lax_seconds(value: Any) -> float | None:
    """``value`` as crawlee reads a duration in seconds (``timeRemainingSecs``), or None.

    Numbers and numeric strings are seconds; other strings are durations (ISO 8601 ``PT30S``,
    ``00:00:30``, ``1 day, 00:00:30``). The result may be negative, infinite or NaN.
    """
    number = lax_number(value)
    if number is not None:
        return number
    if isinstance(value, str):
        return parse_duration(value)
    return None


def parse_duration(text: str) -> float | None:
    """The seconds in a duration string, or None if it is not one."""
    iso = _ISO.fullmatch(text)
    if iso is not None and (iso["date"] or iso["time"]):
        total = sum(_amount(n) * _DATE_UNITS[u] for n, u in _ISO_PART.findall(iso["date"]))
        total += sum(_amount(n) * _TIME_UNITS[u] for n, u in _ISO_PART.findall(iso["time"] or ""))
        return -total if iso["sign"] == "-" else total
    clock = _CLOCK_ONLY.fullmatch(text) or _DAYS_CLOCK.fullmatch(text)
    if clock is None:
        return None
    days = clock["days"] if "days" in clock.groupdict() else None
    total = float(int(days or 0) * 86_400)
    if clock["h"] is not None:
        minutes, seconds = int(clock["m"]), int(clock["s"] or 0)
        if minutes > 59 or seconds > 59:
            return None
        # Fractions beyond microseconds are cut off, not rounded (as pydantic does).
        micro = int((clock["f"] or "0")[:6].ljust(6, "0"))
        total += int(clock["h"]) * 3_600 + minutes * 60 + seconds + micro / 1_000_000
    return -total if clock["sign"] == "-" else total


def _amount(number: str) -> float:
    return float(number.replace(",", ".").rstrip("."))


def is_finite_between(value: float, low: float, high: float) -> bool:
    return math.isfinite(value) and low <= value <= high
