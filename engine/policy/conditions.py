"""Condition kinds: parsing each from YAML, matching it, explaining a match.

Every condition's value may be one item or a list (any of them matches);
separate items of a policy's ``conditions`` list must all hold.

=========================  ===================================================
``resource_type``          File, Network, Database, API, Tool, Secret,
                           Message, ResourceAllocation, Command, Environment
``agent_security_level``   the request's level, compared without case
``agent_id``/``agent_name`` globs over the request's agent id / name
``tool_name``              globs over the tool name (MCP tool calls)
``capability``             globs; holds if any of the agent's capabilities match
``tier``                   ``Native``, ``Tier1``..``Tier3``, 0-3, or a
                           comparison such as ``">=Tier2"``
``time_window``            ``{days: [Mon..Fri], start: "09:00", end: "17:00",
                           tz: "Europe/Paris"}``; end before start wraps past
                           midnight (the early hours belong to the previous
                           day); start == end is the whole day
``metadata``               ``{key: spec}`` over ``request.metadata`` (dotted
                           keys reach into nested objects)
``attributes``             ``{key: spec}`` over the request's top-level keys
=========================  ===================================================

A *spec* is a glob string, a number/boolean (equal, type-sensitive), null
(absent or null), a numeric comparison string (``">4096"``, ``"<=0.5"``;
numeric strings in the request count as numbers), or a list of these.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.policy.globs import GlobError, compile_glob, glob_covers, is_literal
from engine.policy.model import RESOURCE_TYPES, TIER_NAMES, canonical_resource_type, suggest
from engine.policy.report import Report
from engine.policy.request import Req, parse_tier
from engine.policy.yamlpos import is_str, kind, plain, position, scalar

CONDITION_KINDS = (
    "resource_type",
    "agent_security_level",
    "agent_id",
    "agent_name",
    "tool_name",
    "capability",
    "tier",
    "time_window",
    "metadata",
    "attributes",
)
_ALIASES = {
    "security_level": "agent_security_level",
    "capabilities": "capability",
    "security_tier": "tier",
    "tool": "tool_name",
    "agent": "agent_name",
}

Test = Callable[[Req], bool]


@dataclass(slots=True, eq=False)
class Condition:
    """One compiled condition. ``key`` is a hashable form used to compare conditions."""

    kind: str
    key: Any
    label: str
    test: Test
    explain: Callable[[Req], str]
    line: int
    column: int
    cost: int = 1
    literals: frozenset[str] | None = None  # exact values, when the condition is a plain any-of
    types: frozenset[str] | None = None  # for resource_type
    tiers: frozenset[int] | None = None  # for tier
    globs: tuple[str, ...] = field(default=())

    def implies(self, other: Condition) -> bool:
        """True if whenever this condition holds, ``other`` holds (sound, incomplete)."""
        if self.kind != other.kind:
            return False
        if self.key == other.key:
            return True
        if self.kind == "tier" and self.tiers is not None and other.tiers is not None:
            return self.tiers <= other.tiers
        if self.kind == "agent_security_level" and self.literals is not None and other.literals is not None:
            return self.literals <= other.literals
        if self.globs and other.globs:
            return all(any(glob_covers(a, b, None) for a in other.globs) for b in self.globs)
        return False


def _items(node: Node) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else [node]


def _strings(node: Node, report: Report, what: str) -> list[tuple[str, Node]] | None:
    items = _items(node)
    if not items:
        report.error(node, f"{what} is an empty list; give at least one value or leave the condition out")
        return None
    out = []
    for item in items:
        if not isinstance(item, ScalarNode) or scalar(item) is None:
            report.error(item, f"{what} values must be strings, not {kind(item)}")
            return None
        value = item.value  # the text as written: 'yes' stays 'yes', '007' stays '007'
        if not value.strip():
            report.error(item, f"{what} value is empty")
            return None
        out.append((value, item))
    return out


def _short(values: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    vals = sorted(values) if isinstance(values, frozenset) else list(values)
    text = ", ".join(vals[:6]) + (", ..." if len(vals) > 6 else "")
    return f"[{text}]"


# --- simple kinds -------------------------------------------------------------


def _resource_type(node: Node, report: Report, line: int, col: int) -> Condition | None:
    values = _strings(node, report, "resource_type")
    if values is None:
        return None
    types = set()
    for text, item in values:
        canon = canonical_resource_type(text)
        if canon is None:
            report.error(
                item,
                f"unknown resource type '{text}'{suggest(text, RESOURCE_TYPES)}; known: {', '.join(RESOURCE_TYPES)}",
            )
            return None
        types.add(canon)
    fs = frozenset(types)
    label = f"resource_type in {_short(fs)}" if len(fs) > 1 else f"resource_type is {next(iter(fs))}"
    return Condition(
        "resource_type",
        ("rt", fs),
        label,
        lambda r: r.rtype in fs,
        lambda r: f"resource_type is {r.rtype}",
        line,
        col,
        0,
        types=fs,
    )


def _level(node: Node, report: Report, line: int, col: int) -> Condition | None:
    values = _strings(node, report, "agent_security_level")
    if values is None:
        return None
    levels = frozenset(v.strip().lower() for v, _ in values)
    label = f"agent_security_level in {_short(levels)}"
    return Condition(
        "agent_security_level",
        ("lvl", levels),
        label,
        lambda r: r.level in levels,
        lambda r: f"agent_security_level '{r.level}' in {_short(levels)}",
        line,
        col,
        1,
        literals=levels,
    )


def _compile_globs(values: list[tuple[str, Node]], report: Report, what: str) -> list[re.Pattern[str]] | None:
    out = []
    for text, item in values:
        try:
            out.append(compile_glob(text, None))
        except GlobError as exc:
            report.error(item, f"bad glob in {what}: {exc}", exc.offset)
            return None
    return out


def _named_glob(kind_name: str, attr: str) -> Callable[[Node, Report, int, int], Condition | None]:
    def parse(node: Node, report: Report, line: int, col: int) -> Condition | None:
        values = _strings(node, report, kind_name)
        if values is None:
            return None
        texts = tuple(v for v, _ in values)
        label = f"{kind_name} matches {_short(texts)}"
        if all(is_literal(t) for t in texts):
            lits = frozenset(texts)

            def test(r: Req) -> bool:
                return getattr(r, attr) in lits

            return Condition(
                kind_name,
                (kind_name, lits),
                label,
                test,
                lambda r: f"{kind_name} '{getattr(r, attr)}' in {_short(lits)}",
                line,
                col,
                1,
                literals=lits,
                globs=texts,
            )

        regexes = _compile_globs(values, report, kind_name)
        if regexes is None:
            return None

        def test_glob(r: Req) -> bool:
            value = getattr(r, attr)
            return value is not None and any(rx.fullmatch(value) for rx in regexes)

        def explain(r: Req) -> str:
            value = getattr(r, attr)
            hit = next(t for t, rx in zip(texts, regexes, strict=True) if rx.fullmatch(value))
            return f"{kind_name} '{value}' matches '{hit}'"

        return Condition(kind_name, (kind_name, frozenset(texts)), label, test_glob, explain, line, col, 2, globs=texts)

    return parse


def _capability(node: Node, report: Report, line: int, col: int) -> Condition | None:
    values = _strings(node, report, "capability")
    if values is None:
        return None
    regexes = _compile_globs(values, report, "capability")
    if regexes is None:
        return None
    texts = tuple(v for v, _ in values)
    label = f"capability matches {_short(texts)}"

    def test(r: Req) -> bool:
        return any(rx.fullmatch(c) for c in r.caps for rx in regexes)

    def explain(r: Req) -> str:
        for c in r.caps:
            for t, rx in zip(texts, regexes, strict=True):
                if rx.fullmatch(c):
                    return f"capability '{c}' matches '{t}'"
        return label

    return Condition("capability", ("cap", frozenset(texts)), label, test, explain, line, col, 2, globs=texts)


_CMP_RE = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


def _tier(node: Node, report: Report, line: int, col: int) -> Condition | None:
    items = _items(node)
    if not items:
        report.error(node, "tier is an empty list")
        return None
    allowed: set[int] = set()
    for item in items:
        if not isinstance(item, ScalarNode):
            report.error(item, f"tier values must be tiers, not {kind(item)}")
            return None
        value = scalar(item)
        text = str(value) if not isinstance(value, bool) else ""
        m = _CMP_RE.fullmatch(text) if isinstance(value, str) else None
        if m:
            bound = parse_tier(m.group(2))
            if bound is None:
                report.error(item, f"'{m.group(2)}' is not a tier; use Native, Tier1, Tier2, Tier3 or 0-3")
                return None
            allowed |= {t for t in range(4) if _OPS[m.group(1)](t, bound)}
            continue
        tier = parse_tier(value)
        if tier is None:
            report.error(item, f"'{item.value}' is not a tier; use Native, Tier1, Tier2, Tier3, 0-3 or '>=Tier2'")
            return None
        allowed.add(tier)
    tiers = frozenset(allowed)
    names = _short([TIER_NAMES[t] for t in sorted(tiers)])
    return Condition(
        "tier",
        ("tier", tiers),
        f"tier in {names}",
        lambda r: r.tier in tiers,
        lambda r: f"tier {TIER_NAMES[cast(int, r.tier)]} in {names}",
        line,
        col,
        1,
        tiers=tiers,
    )


# --- time windows ---------------------------------------------------------------

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_GROUPS = {
    "weekdays": range(0, 5),
    "weekday": range(0, 5),
    "weekend": range(5, 7),
    "weekends": range(5, 7),
    "daily": range(7),
    "everyday": range(7),
    "*": range(7),
}
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})")
_OFFSET_RE = re.compile(r"(?:utc|gmt)?([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(text: str) -> int | None:
    t = text.strip().lower()
    if len(t) < 3:
        return None
    for i, full in enumerate(_FULL_DAYS):
        if full.startswith(t):
            return i
    return None


def _parse_days(node: Node, report: Report) -> frozenset[int] | None:
    items: list[tuple[str, Node]] = []
    for item in _items(node):
        if not is_str(item):
            report.error(item, f"days must be day names like Mon or ranges like Mon-Fri, not {kind(item)}")
            return None
        items.extend((part, item) for part in item.value.split(","))
    days: set[int] = set()
    for text, item in items:
        t = text.strip().lower()
        if t in _DAY_GROUPS:
            days.update(_DAY_GROUPS[t])
            continue
        parts = re.split(r"\s*(?:\.\.|-)\s*", t)
        if len(parts) == 2:
            a, b = _day(parts[0]), _day(parts[1])
            if a is None or b is None:
                report.error(item, f"bad day range '{text.strip()}'; use e.g. Mon-Fri or Mon..Fri")
                return None
            i = a
            while True:
                days.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
            continue
        d = _day(t)
        if d is None:
            report.error(item, f"unknown day '{text.strip()}'; use Mon, Tue, ... Sun, Mon-Fri, weekdays or weekend")
            return None
        days.add(d)
    if not days:
        report.error(node, "days is empty")
        return None
    return frozenset(days)


def _parse_time(node: Node, report: Report, what: str, allow_24: bool) -> int | None:
    if not isinstance(node, ScalarNode):
        report.error(node, f'{what} must be a time like "09:00", not {kind(node)}')
        return None
    m = _TIME_RE.fullmatch(node.value.strip())
    if not m:
        report.error(node, f"{what} must be a time like \"09:00\" (24-hour HH:MM), not '{node.value}'")
        return None
    hour, minute = int(m.group(1)), int(m.group(2))
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not allow_24)):
        report.error(node, f"{what} '{node.value}' is not a valid time of day")
        return None
    return hour * 60 + minute


def _parse_tz(node: Node, report: Report) -> dt.tzinfo | None:
    if not is_str(node):
        report.error(node, f"tz must be a time zone name like UTC or Europe/Paris, not {kind(node)}")
        return None
    name = node.value.strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    m = _OFFSET_RE.fullmatch(name)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            report.error(node, f"bad UTC offset '{name}'")
            return None
        sign = 1 if m.group(1) == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd keys, OSError
        report.error(node, f"unknown time zone '{name}'; use an IANA name like Europe/Paris, UTC, or +02:00")
        return None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    days: frozenset[int]
    start: int  # minutes after midnight
    end: int
    tz: dt.tzinfo
    tz_name: str

    def contains(self, when: float) -> bool:
        local = dt.datetime.fromtimestamp(when, self.tz)
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        if self.start > self.end:
            return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)
        return day in self.days

    def describe(self) -> str:
        days = ",".join(_DAY_NAMES[d] for d in sorted(self.days)) if len(self.days) < 7 else "every day"
        return f"{days} {self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d} {self.tz_name}"


def _one_window(node: Node, report: Report) -> TimeWindow | None:
    if not isinstance(node, MappingNode):
        report.error(node, f"a time window is a mapping {{days, start, end, tz}}, not {kind(node)}")
        return None
    fields: dict[str, Node] = {}
    for key, value in node.value:
        name = key.value if is_str(key) else None
        if name == "timezone":
            name = "tz"
        if name not in ("days", "start", "end", "tz"):
            shown = key.value if isinstance(key, ScalarNode) else kind(key)
            report.error(
                key,
                f"unknown key '{shown}' in time_window{suggest(str(shown), ['days', 'start', 'end', 'tz'])}"
                "; known: days, start, end, tz",
            )
            return None
        if name in fields:
            report.error(key, f"duplicate key '{name}' in time_window")
            return None
        fields[name] = value
    for required in ("start", "end"):
        if required not in fields:
            report.error(node, f"time_window needs '{required}' (HH:MM)")
            return None
    start = _parse_time(fields["start"], report, "start", allow_24=False)
    end = _parse_time(fields["end"], report, "end", allow_24=True)
    days = _parse_days(fields["days"], report) if "days" in fields else frozenset(range(7))
    tz = _parse_tz(fields["tz"], report) if "tz" in fields else dt.UTC
    if start is None or end is None or days is None or tz is None:
        return None
    tz_name = fields["tz"].value.strip() if "tz" in fields else "UTC"
    return TimeWindow(days, start, end % (24 * 60) if end == 24 * 60 and start == 0 else end, tz, tz_name)


def _time_window(node: Node, report: Report, line: int, col: int) -> Condition | None:
    items = _items(node)
    if not items:
        report.error(node, "time_window is an empty list")
        return None
    windows = []
    for item in items:
        window = _one_window(item, report)
        if window is None:
            return None
        windows.append(window)
    wins = tuple(windows)
    label = "time_window " + " or ".join(w.describe() for w in wins)

    def test(r: Req) -> bool:
        now = r.now()
        return any(w.contains(now) for w in wins)

    def explain(r: Req) -> str:
        now = r.now()
        w = next(w for w in wins if w.contains(now))
        local = dt.datetime.fromtimestamp(now, w.tz)
        return f"time {local:%a %H:%M} {w.tz_name} is within {w.describe()}"

    key = ("time", tuple((w.days, w.start, w.end, w.tz_name) for w in wins))
    return Condition("time_window", key, label, test, explain, line, col, 5)


# --- metadata / attributes ---------------------------------------------------------

_MISSING = object()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _spec_matcher(spec: Any, node: Node, report: Report, where: str) -> Callable[[Any], bool] | None:
    if isinstance(spec, list):
        if not spec:
            report.error(node, f"{where}: empty list of values")
            return None
        subs = []
        for item_node, item in zip(node.value, spec, strict=True):
            if isinstance(item, (list, dict)):
                report.error(item_node, f"{where}: list items must be single values, not {kind(item_node)}")
                return None
            sub = _spec_matcher(item, item_node, report, where)
            if sub is None:
                return None
            subs.append(sub)
        return lambda v: any(s(v) for s in subs)
    if isinstance(spec, dict):
        report.error(node, f"{where}: a value must be a string, number, boolean, null or a list, not a mapping")
        return None
    if spec is None:
        return lambda v: v is None or v is _MISSING
    if isinstance(spec, bool):
        return lambda v: v is spec
    if isinstance(spec, (int, float)):
        return lambda v: not isinstance(v, bool) and isinstance(v, (int, float)) and v == spec
    text = str(spec)
    m = _CMP_RE.fullmatch(text)
    if m:
        bound = _number(m.group(2))
        if bound is None:
            report.error(node, f"{where}: '{m.group(2)}' is not a number to compare with")
            return None
        op = _OPS[m.group(1)]

        def compare(v: Any) -> bool:
            n = _number(v)
            return n is not None and op(n, bound)

        return compare
    try:
        rx = compile_glob(text, None)
    except GlobError as exc:
        report.error(node, f"{where}: bad glob: {exc}", exc.offset)
        return None

    def glob(v: Any) -> bool:
        if isinstance(v, str):
            return rx.fullmatch(v) is not None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return rx.fullmatch(str(v)) is not None
        return False

    return glob


def _lookup(source: Any, key: str) -> Any:
    if not isinstance(source, dict):
        return _MISSING
    if key in source:
        return source[key]
    if "." in key:
        cur = source
        for part in key.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return _MISSING
            cur = cur[part]
        return cur
    return _MISSING


def _keyed(kind_name: str) -> Callable[[Node, Report, int, int], Condition | None]:
    def parse(node: Node, report: Report, line: int, col: int) -> Condition | None:
        if not isinstance(node, MappingNode) or not node.value:
            report.error(node, f"{kind_name} must be a non-empty mapping of key: value, not {kind(node)}")
            return None
        checks: list[tuple[str, Callable[[Any], bool]]] = []
        raw: list[tuple[str, str]] = []
        for key_node, value_node in node.value:
            if not is_str(key_node) or not key_node.value:
                report.error(key_node, f"{kind_name} keys must be non-empty strings")
                return None
            name = key_node.value
            if name in (k for k, _ in checks):
                report.error(key_node, f"duplicate key '{name}' in {kind_name}")
                return None
            try:
                spec = plain(value_node)
            except Exception:
                report.error(value_node, f"{kind_name}.{name}: value too large or nested")
                return None
            matcher = _spec_matcher(spec, value_node, report, f"{kind_name}.{name}")
            if matcher is None:
                return None
            checks.append((name, matcher))
            raw.append((name, repr(spec)))
        pairs = tuple(checks)
        label = f"{kind_name} " + ", ".join(f"{k}={v}" for k, v in raw)
        attr = kind_name == "attributes"

        def test(r: Req) -> bool:
            source = r.raw if attr else r.metadata
            return all(m(_lookup(source, k)) for k, m in pairs)

        def explain(r: Req) -> str:
            source = r.raw if attr else r.metadata
            shown = ", ".join(f"{k}={_lookup(source, k)!r}" for k, _ in pairs)
            return f"{kind_name} {shown} match {', '.join(f'{k}={v}' for k, v in raw)}"

        return Condition(kind_name, (kind_name, tuple(sorted(raw))), label, test, explain, line, col, 3)

    return parse


PARSERS: dict[str, Callable[[Node, Report, int, int], Condition | None]] = {
    "resource_type": _resource_type,
    "agent_security_level": _level,
    "agent_id": _named_glob("agent_id", "agent_id"),
    "agent_name": _named_glob("agent_name", "agent_name"),
    "tool_name": _named_glob("tool_name", "tool"),
    "capability": _capability,
    "tier": _tier,
    "time_window": _time_window,
    "metadata": _keyed("metadata"),
    "attributes": _keyed("attributes"),
}


def parse_condition(key_node: Node, value_node: Node, report: Report) -> Condition | None:
    """One ``kind: value`` pair of a policy's conditions."""
    if not is_str(key_node):
        report.error(key_node, f"a condition name must be a string, not {kind(key_node)}")
        return None
    name = key_node.value
    canon = _ALIASES.get(name, name)
    parser = PARSERS.get(canon)
    if parser is None:
        report.error(
            key_node, f"unknown condition '{name}'{suggest(name, CONDITION_KINDS)}; known: {', '.join(CONDITION_KINDS)}"
        )
        return None
    line, col = position(key_node)
    return parser(value_node, report, line, col)
