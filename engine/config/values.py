"""Value formats: durations, byte sizes and booleans (public: the CLI and other modules reuse them).

Durations are stored as float seconds. In TOML they may be a plain number of
seconds (``30``, ``0.5``) or a string of one or more ``<number><unit>`` parts:
``"500ms"``, ``"60s"``, ``"5m"``, ``"1h"``, ``"1h30m"``, ``"7d"`` (units ms, s,
m, h, d; long forms like ``sec``/``min``/``hours`` also work). Sizes (byte
counts) may be an integer or a string such as ``"512KB"``, ``"64MiB"``,
``"1GiB"``: KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

_DURATION_UNITS: dict[str, Decimal] = {
    "ms": Decimal("0.001"),
    "msec": Decimal("0.001"),
    "msecs": Decimal("0.001"),
    "millisecond": Decimal("0.001"),
    "milliseconds": Decimal("0.001"),
    "s": Decimal(1),
    "sec": Decimal(1),
    "secs": Decimal(1),
    "second": Decimal(1),
    "seconds": Decimal(1),
    "m": Decimal(60),
    "min": Decimal(60),
    "mins": Decimal(60),
    "minute": Decimal(60),
    "minutes": Decimal(60),
    "h": Decimal(3600),
    "hr": Decimal(3600),
    "hrs": Decimal(3600),
    "hour": Decimal(3600),
    "hours": Decimal(3600),
    "d": Decimal(86400),
    "day": Decimal(86400),
    "days": Decimal(86400),
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Longest unit names first so "ms" is not read as "m" + garbage.
_UNIT_ALT = "|".join(sorted(_DURATION_UNITS, key=len, reverse=True))
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*({_UNIT_ALT})(?![A-Za-z])", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(rf"^\s*{_NUMBER}\s*$")

DURATION_HINT = 'use a number of seconds or a duration such as "500ms", "60s", "5m", "1h" or "1h30m"'
SIZE_HINT = 'use a whole number of bytes or a size such as "512KB", "64MiB" or "1GiB"'


def parse_duration(value: Any) -> float:
    """Parse a duration into float seconds.

    Accepts int/float seconds, numeric strings (``"30"``) and unit strings
    (``"500ms"``, ``"1h30m"``). Raises ``ValueError`` for anything else,
    including negative or non-finite values.
    """
    if isinstance(value, bool):
        raise ValueError("a duration cannot be true/false")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError("a duration must be a finite number >= 0")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"a duration must be a number or a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    if _PLAIN_NUMBER.match(text):
        return float(Decimal(text))
    total = Decimal(0)
    pos = 0
    count = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"cannot read a duration from {value!r}")
        total += Decimal(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        pos = match.end()
        count += 1
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if count == 0:
        raise ValueError(f"cannot read a duration from {value!r}")
    return float(total)


def format_duration(seconds: float) -> str:
    """Render float seconds as a compact duration string (``"1h30m"``, ``"500ms"``).

    Under two minutes the value stays in seconds (``"60s"``, ``"90s"``);
    ``parse_duration(format_duration(x)) == x`` for every finite ``x >= 0``.
    """
    if seconds == 0:
        return "0s"
    exact = Decimal(repr(float(seconds)))
    plain = f"{exact.normalize():f}s"
    if exact < 120:
        if exact < 1 and (exact * 1000) == (exact * 1000).to_integral_value():
            return f"{int(exact * 1000)}ms"
        return plain
    rest = exact
    parts: list[str] = []
    for unit, size in (("d", Decimal(86400)), ("h", Decimal(3600)), ("m", Decimal(60)), ("s", Decimal(1))):
        count = rest // size
        if count:
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest:
        millis = rest * 1000
        if millis != millis.to_integral_value():
            # Not a whole number of milliseconds: plain seconds keep it exact.
            return plain
        parts.append(f"{int(millis)}ms")
    return "".join(parts)


_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z]*)\s*$")


def parse_size(value: Any) -> int:
    """Parse a byte size: an int, or a string like ``"512MB"`` / ``"1GiB"`` / ``"4096"``."""
    if isinstance(value, bool):
        raise ValueError("a size cannot be true/false")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size must be >= 0")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0 or value != int(value):
            raise ValueError("a size must be a whole number of bytes")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"a size must be a number or a string, not {type(value).__name__}")
    match = _SIZE_RE.match(value)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"cannot read a size from {value!r}")
    amount = Decimal(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if amount != amount.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(amount)


def format_size(size: int) -> str:
    """Render a byte count with the largest binary unit that divides it exactly."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


_TRUE_WORDS = frozenset({"true", "1", "yes", "on", "y"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off", "n"})


def parse_bool(value: Any) -> bool:
    """Parse a boolean from a bool or one of true/false/1/0/yes/no/on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(f"cannot read true/false from {value!r}")
