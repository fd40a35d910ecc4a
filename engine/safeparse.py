"""JSON, YAML and TOML from users, files and agents, with a nesting limit.

``json.loads``, PyYAML's composer and ``tomllib`` all recurse once per
level of ``[``/``{`` (or YAML block indentation). A few hundred kilobytes of
``[[[[...`` therefore raise ``RecursionError`` (an agent's request) or hang
in quadratic bookkeeping (a TOML key with 100,000 dotted parts). Every entry
point that parses outside input goes through here instead: the nesting
depth is measured first, without recursion, and input deeper than the limit
is refused with :class:`NestingTooDeep` naming the depth found, the limit
and where the limit was crossed. ``RecursionError`` from the parser itself
is converted too, as a second line of defence.

The limit, :data:`MAX_DEPTH` = 64 levels, is far above anything real: an
agent request is ``{"params": {"arguments": {...}}}`` (3 levels before the
agent's own data), a policy file 7 or 8 (``policies`` > policy >
``conditions`` > condition > value), a runtime config 4 or 5. It is also far
below where the engine's own recursive walkers (``json.dumps``, canonical
JSON for the audit trail, audit redaction, which cuts at 64 too) come near
Python's 1,000-frame recursion limit.

The errors are ``ValueError`` subclasses that also are the parser's own
error type (:class:`JsonTooDeep` is a ``json.JSONDecodeError``,
:class:`TomlTooDeep` a ``tomllib.TOMLDecodeError``, :class:`YamlTooDeep` a
``yaml.YAMLError``), so a caller that already turns syntax errors into a
``SymbiError`` handles these the same way.
"""

from __future__ import annotations

import json
import re
import tomllib
from itertools import accumulate
from typing import IO, Any

import yaml

__all__ = [
    "MAX_DEPTH",
    "JsonTooDeep",
    "NestingTooDeep",
    "TomlTooDeep",
    "YamlTooDeep",
    "check_yaml_depth",
    "json_depth",
    "load_toml",
    "load_yaml",
    "loads_json",
    "loads_toml",
]

MAX_DEPTH = 64

_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_BRACKET = re.compile(r"[\[\]{}]")
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
# Everything in JSON text that is not a bracket outside a string (one pass, for the depth count).
_JSON_NOISE = re.compile(r'[^\[\]{}"]+|"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\Z)')
# A JSON string, or an unterminated one up to the end (the parser fails there; its brackets are not structure).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\Z)')
# TOML strings (multi-line first) and comments: what is inside them is not structure.
_TOML_SKIP = re.compile(
    r'"""(?:[^"\\]|\\[\s\S]|"(?!""))*(?:"""(?:""|")?|\Z)'
    r"|'''(?:[^']|'(?!''))*(?:'''(?:''|')?|\Z)"
    r'|"(?:[^"\\\n]|\\.)*(?:"|(?=\n)|\Z)'
    r"|'[^'\n]*(?:'|(?=\n)|\Z)"
    r"|#[^\n]*"
)
# A dotted key (``a.b.c``, parts bare or quoted); after masking, quoted parts are runs of "s".
_TOML_DOTTED = re.compile(r"[A-Za-z0-9_-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_-]+)+")


class NestingTooDeep(ValueError):
    """Input nested deeper than ``limit``: ``depth`` levels (at least, when ``at_least``; None: unknown)."""

    def __init__(
        self,
        what: str,
        depth: int | None,
        limit: int,
        line: int,
        column: int,
        *,
        at_least: bool = False,
        found: str | None = None,
    ) -> None:
        self.what = what
        self.depth = depth
        self.limit = limit
        self.line = line
        self.column = column
        if found is None:
            found = (
                "is nested deeper than the parser can follow"
                if depth is None
                else f"is nested {'at least ' if at_least else ''}{depth} levels deep"
            )
        self.message = f"{what} {found}; the limit is {limit}"
        ValueError.__init__(self, self.describe())

    def describe(self) -> str:
        return f"{self.message} (over the limit at line {self.line}, column {self.column})"

    def __str__(self) -> str:
        return self.describe()


class JsonTooDeep(NestingTooDeep, json.JSONDecodeError):
    """Too deep JSON; also a ``JSONDecodeError`` (``msg``, ``lineno``, ``colno``, ``pos`` are set)."""

    def __init__(self, what: str, depth: int | None, limit: int, doc: str, pos: int) -> None:
        line, col = _line_col(doc, pos)
        NestingTooDeep.__init__(self, what, depth, limit, line, col)
        self.msg, self.doc, self.pos, self.lineno, self.colno = self.message, doc, pos, line, col


class TomlTooDeep(NestingTooDeep, tomllib.TOMLDecodeError):
    """Too deep TOML; also a ``TOMLDecodeError``, with the position in tomllib's ``(at line L, column C)`` form."""

    def describe(self) -> str:
        return f"{self.message} (at line {self.line}, column {self.column})"


class YamlTooDeep(NestingTooDeep, yaml.YAMLError):  # type: ignore[misc]  # PyYAML has no type hints: YAMLError is Any
    """Too deep YAML; also a ``yaml.YAMLError``."""


def _line_col(text: str | bytes, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    nl = "\n" if isinstance(text, str) else b"\n"
    line = text.count(nl, 0, index) + 1  # type: ignore[arg-type]
    return line, index - (text.rfind(nl, 0, index) + 1) + 1  # type: ignore[arg-type]


def _first_over(masked: str, limit: int) -> int:
    """Index of the first opener that takes the depth of ``masked`` (strings blanked) past ``limit``."""
    depth = 0
    for m in _BRACKET.finditer(masked):
        depth += _STEP[m.group()]
        if depth > limit:
            return m.start()
    return 0


def _running_max(brackets: str) -> int:
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _bracket_depth(structure: str) -> int:
    """The deepest running count of openers minus closers (strings already blanked)."""
    return _running_max(_NOT_BRACKETS.sub("", structure))


def _blank(match: re.Match[str]) -> str:
    return "s" * len(match.group())


# ---------------------------------------------------------------------- JSON


def json_depth(text: str) -> int:
    """How deep ``text`` nests ``[``/``{`` outside strings (exact for valid JSON; iterative)."""
    if text.count("[") + text.count("{") == 0:
        return 0
    return _running_max(_JSON_NOISE.sub("", text))


def _json_text(data: str | bytes | bytearray) -> str:
    if isinstance(data, str):
        return data
    # what json.loads does with bytes (UTF-8, -16 or -32 by the first bytes); UnicodeDecodeError as it would
    return bytes(data).decode(json.detect_encoding(data), "surrogatepass")


def loads_json(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, what: str = "the JSON") -> Any:
    """``json.loads`` that refuses more than ``max_depth`` levels with :class:`JsonTooDeep`.

    Other failures are ``json.loads``'s own (``JSONDecodeError``, ``UnicodeDecodeError``).
    """
    text = _json_text(data)
    if text.count("[") + text.count("{") > max_depth:  # fewer openers cannot nest deeper: no scan
        depth = json_depth(text)
        if depth > max_depth:
            masked = _JSON_STRING.sub(_blank, text)
            raise JsonTooDeep(what, depth, max_depth, text, _first_over(masked, max_depth))
    try:
        return json.loads(text)
    except RecursionError:  # not reached with a sane max_depth; never let it escape
        raise JsonTooDeep(what, None, max_depth, text, 0) from None


# ---------------------------------------------------------------------- TOML


def _toml_check(text: str, limit: int, what: str) -> None:
    if text.count("[") + text.count("{") <= limit and text.count(".") < limit:
        return
    masked = _TOML_SKIP.sub(_blank, text)
    depth = _bracket_depth(masked)
    if depth > limit:  # inline arrays / tables: tomllib recurses once per level
        line, col = _line_col(text, _first_over(masked, limit))
        raise TomlTooDeep(what, depth, limit, line, col)
    longest, where = 0, 0
    for m in _TOML_DOTTED.finditer(masked):  # dotted keys: one table per part (and quadratic in tomllib)
        parts = m.group().count(".") + 1
        if parts > longest:
            longest, where = parts, m.start()
    if longest > limit:
        line, col = _line_col(text, where)
        raise TomlTooDeep(what, longest, limit, line, col, found=f"has a dotted key of {longest} parts (a table each)")


def loads_toml(text: str, *, max_depth: int = MAX_DEPTH, what: str = "the TOML") -> dict[str, Any]:
    """``tomllib.loads`` that refuses nesting past ``max_depth`` with :class:`TomlTooDeep`.

    Counted: inline arrays/tables inside each other, and the parts of a dotted key or table header.
    """
    _toml_check(text, max_depth, what)
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise TomlTooDeep(what, None, max_depth, 1, 1) from None


def load_toml(fh: IO[bytes], *, max_depth: int = MAX_DEPTH, what: str = "the TOML") -> dict[str, Any]:
    """``tomllib.load`` with the nesting limit (a binary file; ``UnicodeDecodeError`` when not UTF-8)."""
    data = fh.read()
    if isinstance(data, str):
        raise TypeError("load_toml needs a file opened in binary mode")
    return loads_toml(data.decode(), max_depth=max_depth, what=what)


# ---------------------------------------------------------------------- YAML

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def check_yaml_depth(
    text: str, *, max_depth: int = MAX_DEPTH, what: str = "the YAML", loader: type = _YAML_LOADER
) -> None:
    """Refuse YAML nested (flow ``[ {`` or block indentation) past ``max_depth`` with :class:`YamlTooDeep`.

    Reads the event stream, which is iterative, before anything composes the
    (recursive) node tree. A syntax error is left for the real load to report,
    unless the text was already too deep before it (libyaml itself gives up at
    1,000 levels); then the depth is reported as "at least".
    """
    depth = deepest = 0
    mark = None
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, _OPEN):
                depth += 1
                if depth > deepest:
                    deepest = depth
                    if depth == max_depth + 1:
                        mark = event.start_mark
            elif isinstance(event, _CLOSE):
                depth -= 1
    except RecursionError:
        raise YamlTooDeep(what, None, max_depth, 1, 1) from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. a lone surrogate libyaml cannot encode
        if mark is not None:
            raise YamlTooDeep(what, deepest, max_depth, mark.line + 1, mark.column + 1, at_least=True) from None
        problem = getattr(exc, "problem", None) or ""
        at = getattr(exc, "problem_mark", None)
        if "nesting depth" in problem and at is not None:  # libyaml's own cap (1,000), hit while looking ahead
            raise YamlTooDeep(what, None, max_depth, at.line + 1, at.column + 1) from None
        return  # a syntax error: the real load reports it with its position
    if mark is not None:
        raise YamlTooDeep(what, deepest, max_depth, mark.line + 1, mark.column + 1)


def load_yaml(text: str, *, max_depth: int = MAX_DEPTH, what: str = "the YAML") -> Any:
    """``yaml.safe_load`` (libyaml when present) that refuses nesting past ``max_depth`` with :class:`YamlTooDeep`."""
    check_yaml_depth(text, max_depth=max_depth, what=what)
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except RecursionError:  # aliases can still nest a constructed value; never let it escape
        raise YamlTooDeep(what, None, max_depth, 1, 1) from None
