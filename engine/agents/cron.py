"""Five-field cron expressions for Scheduled agents (minute hour day month weekday).

Supports ``*``, lists ``a,b``, ranges ``a-b``, steps ``*/n`` and ``a-b/n``,
month and weekday names, weekday 7 = Sunday, and the usual rule that when
both day-of-month and weekday are restricted either may match. Times are the
engine's local time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import ErrorCode, SymbiError

_NAMES = {
    3: {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
    4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_FIELDS = ["minute", "hour", "day of month", "month", "day of week"]


def _bad(expr: str, why: str) -> SymbiError:
    return SymbiError(
        ErrorCode.AGENT_004,
        f"invalid cron expression: {why}",
        offending=expr,
        hint="five fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'",
    )


def _value(token: str, index: int, expr: str) -> int:
    token = token.lower()
    if index in _NAMES and token in _NAMES[index]:
        return _NAMES[index][token]
    if not token.isdigit():
        raise _bad(expr, f"{token!r} is not a number in the {_FIELDS[index]} field")
    return int(token)


def _parse_field(text: str, index: int, expr: str) -> frozenset[int]:
    lo, hi = _BOUNDS[index]
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _bad(expr, f"empty list item in the {_FIELDS[index]} field")
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise _bad(expr, f"bad step {step_text!r} in the {_FIELDS[index]} field")
            step = int(step_text)
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, index, expr), _value(b, index, expr)
        else:
            start = end = _value(part, index, expr)
            if step != 1:
                end = hi
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise _bad(expr, f"{part!r} is outside {lo}-{hi} in the {_FIELDS[index]} field")
        out.update(range(start, end + 1, step))
    if index == 4 and 7 in out:
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True)
class CronExpr:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        if not isinstance(text, str):
            raise _bad(str(text), "not a string")
        fields = text.split()
        if len(fields) != 5:
            raise _bad(text, f"expected 5 fields, got {len(fields)}")
        minutes, hours, days, months, weekdays = (_parse_field(f, i, text) for i, f in enumerate(fields))
        return cls(text, minutes, hours, days, months, weekdays, fields[2] != "*", fields[4] != "*")

    def _day_matches(self, dt: datetime) -> bool:
        dom = dt.day in self.days
        dow = (dt.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, ts: float) -> float:
        """The first matching minute strictly after ``ts`` (epoch seconds, local time)."""
        dt = datetime.fromtimestamp(ts).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = dt + timedelta(days=366 * 5)
        while dt < limit:
            if dt.month not in self.months:
                dt = (dt.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(dt):
                dt = dt.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if dt.hour not in self.hours:
                dt = dt.replace(minute=0) + timedelta(hours=1)
                continue
            if dt.minute not in self.minutes:
                dt += timedelta(minutes=1)
                continue
            return time.mktime(dt.timetuple())
        raise _bad(self.text, "it never matches (e.g. February 30)")
