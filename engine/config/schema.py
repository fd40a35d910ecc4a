"""The field/section framework every config section is built on.

A section is a dataclass mixing in :class:`_Section`; each field is declared
with :func:`_fld` (default, kind and limits). :func:`_coerce` turns a TOML or
environment value into the field's type or raises ``CONFIG_001`` naming the
key, the offending value and what is allowed; :func:`_render` turns it back
into plain data for ``config show``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from engine.config.values import (
    DURATION_HINT,
    SIZE_HINT,
    format_duration,
    format_size,
    parse_bool,
    parse_duration,
    parse_size,
)
from engine.errors import ErrorCode, SymbiError


@dataclass(frozen=True)
class _Spec:
    """How one field is read from TOML/env, validated and rendered back."""

    kind: str  # int | float | bool | str | duration | size | enum | strmap
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    nonempty: bool = False
    pattern: str | None = None
    doc: str = ""


def _fld(default: Any, kind: str, **spec: Any) -> Any:
    meta = {"spec": _Spec(kind, **spec)}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _norm_choice(text: str) -> str:
    return text.replace("_", "").replace("-", "").replace(" ", "").lower()


class _Section:
    """Mix-in for section dataclasses: generic read, validate, render."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def _from_raw(cls, raw: Mapping[str, Any], path: str, warnings: list[str]) -> Any:
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            dotted = f"{path}.{key}"
            fdef = known.get(key)
            if fdef is None:
                warnings.append(f"unknown key {dotted!r} ignored")
                continue
            special = getattr(cls, "_read_special", None)
            if special is not None and key in getattr(cls, "SPECIAL_FIELDS", ()):
                kwargs[key] = special(key, value, dotted, warnings)
            else:
                kwargs[key] = _coerce(fdef.metadata["spec"], value, _key_label(dotted), from_env=False)
        for name, fdef in known.items():
            if name not in kwargs and fdef.default is MISSING and fdef.default_factory is MISSING:
                raise SymbiError(
                    ErrorCode.CONFIG_001,
                    f"missing required key '{path}.{name}'",
                    hint=f"add {name} = ... to {path}",
                    offending=f"{path}.{name}",
                )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fdef in fields(self):  # type: ignore[arg-type]
            value = getattr(self, fdef.name)
            spec: _Spec | None = fdef.metadata.get("spec")
            out[fdef.name] = _render(spec, value)
        return out


def _key_label(dotted: str) -> str:
    return f"'{dotted}'"


def _render(spec: _Spec | None, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [item.to_dict() if isinstance(item, _Section) else item for item in value]
    if spec is None:
        return value
    if spec.kind == "duration":
        return format_duration(value)
    if spec.kind == "size":
        return format_size(value)
    if spec.kind == "strmap":
        return dict(value)
    return value


def _bad(label: str, value: Any, problem: str, hint: str) -> SymbiError:
    return SymbiError(
        ErrorCode.CONFIG_001,
        f"invalid value for {label}: {problem}",
        hint=hint,
        offending=value,
    )


def _range_hint(spec: _Spec, noun: str) -> str:
    parts = []
    if spec.min is not None:
        parts.append(f"{'>' if spec.min_exclusive else '>='} {_num(spec.min)}")
    if spec.max is not None:
        parts.append(f"<= {_num(spec.max)}")
    return f"use {noun}" + (" " + " and ".join(parts) if parts else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_range(spec: _Spec, number: float, label: str, raw: Any, noun: str, shown: str | None = None) -> None:
    low, high = spec.min, spec.max
    if low is not None and not (number > low if spec.min_exclusive else number >= low):
        shown = shown if shown is not None else _num(number)
        problem = f"{shown} is {'not above' if spec.min_exclusive else 'below'} the minimum {_num(low)}"
    elif high is not None and not number <= high:
        shown = shown if shown is not None else _num(number)
        problem = f"{shown} is above the maximum {_num(high)}"
    else:
        return
    raise _bad(label, raw, problem, _range_hint(spec, noun))


def _coerce(spec: _Spec, value: Any, label: str, *, from_env: bool) -> Any:
    """Turn a TOML (or, with ``from_env``, an environment string) value into the field's type."""
    if value is None:
        if spec.optional:
            return None
        raise _bad(label, value, "a value is required", "remove the key to get the default")
    if spec.optional and isinstance(value, str):
        if spec.kind != "str" and value.strip().lower() == "auto":
            return None
        if spec.kind == "str" and value == "":
            return None
    kind = spec.kind
    if kind == "int":
        if from_env and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise _bad(label, value, "not a whole number", _range_hint(spec, "a whole number")) from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(
                label, value, f"expected a whole number, got {_type_name(value)}", _range_hint(spec, "a whole number")
            )
        _check_range(spec, value, label, value, "a whole number")
        return value
    if kind == "float":
        if from_env and isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _bad(label, value, "not a number", _range_hint(spec, "a number")) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _bad(label, value, f"expected a number, got {_type_name(value)}", _range_hint(spec, "a number"))
        _check_range(spec, float(value), label, value, "a number")
        return float(value)
    if kind == "bool":
        if from_env:
            try:
                return parse_bool(value)
            except ValueError:
                raise _bad(label, value, "not a boolean", "use true/false, 1/0, yes/no or on/off") from None
        if not isinstance(value, bool):
            raise _bad(
                label, value, f"expected true or false, got {_type_name(value)}", "use true or false (no quotes)"
            )
        return value
    if kind == "duration":
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _bad(label, value, str(exc), DURATION_HINT) from None
        _check_range(spec, seconds, label, value, "a duration", shown=format_duration(seconds))
        return seconds
    if kind == "size":
        try:
            size = parse_size(value)
        except ValueError as exc:
            raise _bad(label, value, str(exc), SIZE_HINT) from None
        _check_range(spec, size, label, value, "a size")
        return size
    if kind == "enum":
        if not isinstance(value, str):
            raise _bad(
                label, value, f"expected a string, got {_type_name(value)}", f"use one of: {', '.join(spec.choices)}"
            )
        wanted = _norm_choice(value)
        for choice in spec.choices:
            if _norm_choice(choice) == wanted:
                return choice
        raise _bad(label, value, f"{value!r} is not a known choice", f"use one of: {', '.join(spec.choices)}")
    if kind == "str":
        if not isinstance(value, str):
            raise _bad(label, value, f"expected a string, got {_type_name(value)}", "put the value in double quotes")
        if spec.nonempty and not value.strip():
            raise _bad(label, value, "must not be empty", "give a non-empty string")
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            raise _bad(label, value, "has characters that are not allowed", f"match the pattern {spec.pattern}")
        return value
    if kind == "strmap":
        if not isinstance(value, Mapping):
            raise _bad(
                label, value, f"expected a table, got {_type_name(value)}", 'use a table of "name" = "value" pairs'
            )
        out: dict[str, str] = {}
        for key, item in value.items():
            entry = f"{label} entry {key!r}"
            if not isinstance(item, str):
                raise _bad(entry, item, f"expected a string, got {_type_name(item)}", "put the value in double quotes")
            if spec.nonempty and not item.strip():
                raise _bad(entry, item, "must not be empty", "give a non-empty string")
            out[str(key)] = item
        return out
    raise AssertionError(f"unknown field kind {kind}")  # pragma: no cover


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
