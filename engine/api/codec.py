"""JSON for the engine interface's data classes, driven by their type hints.

:func:`encode` turns a value of any interface type (data classes, enums,
tuples, mappings, events) into plain JSON data; :func:`decode` turns that data
back into the declared type. ``decode(T, json.loads(json.dumps(encode(x))))``
equals ``x`` for every type the interface returns; a test walks them all.

Events carry their class name under ``"event_type"`` so a stream of mixed events
decodes to the right classes. Data that does not fit the declared type is
refused with ``API_001`` naming the field, never half-decoded.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from engine import events as events_module
from engine.errors import ErrorCode, SymbiError

T = TypeVar("T")
EVENT_TAG = "event_type"


def encode(value: Any) -> Any:
    """``value`` as JSON data (dicts, lists, strings, numbers, booleans, None)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, enum.Enum):
            return value.value
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: encode(getattr(value, f.name)) for f in _fields(type(value))}
        if isinstance(value, events_module.Event):
            out[EVENT_TAG] = type(value).__name__
        return out
    if isinstance(value, Mapping):
        return {str(k.value if isinstance(k, enum.Enum) else k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        raise _bad("bytes are not part of the interface", value)
    raise _bad(f"{type(value).__name__} is not an interface type", type(value).__name__)


def decode(tp: Any, data: Any, *, where: str = "value") -> Any:
    """``data`` (JSON data) as a value of type ``tp``; ``API_001`` if it does not fit."""
    if tp is Any or tp is object:
        return data
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _decode_union(tp, data, where)
    if origin is typing.Literal:
        if data in typing.get_args(tp):
            return data
        raise _bad(f"{where}: expected one of {typing.get_args(tp)}", data)
    if origin in (list, Sequence) or tp in (list, Sequence):
        (item,) = typing.get_args(tp) or (Any,)
        return [decode(item, v, where=f"{where}[{i}]") for i, v in enumerate(_list(data, where))]
    if origin is tuple or tp is tuple:
        args = typing.get_args(tp)
        items = _list(data, where)
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            item = args[0] if args else Any
            return tuple(decode(item, v, where=f"{where}[{i}]") for i, v in enumerate(items))
        if len(args) != len(items):
            raise _bad(f"{where}: expected {len(args)} items", data)
        return tuple(decode(a, v, where=f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, items, strict=True)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)
        if not isinstance(data, dict):
            raise _bad(f"{where}: expected an object", data)
        return {decode(key_tp, k, where=where): decode(value_tp, v, where=f"{where}.{k}") for k, v in data.items()}
    if isinstance(tp, type):
        if issubclass(tp, events_module.Event):
            return _decode_event(tp, data, where)
        if dataclasses.is_dataclass(tp):
            return _decode_dataclass(tp, data, where)
        if issubclass(tp, enum.Enum):
            try:
                return tp(data)
            except ValueError:
                raise _bad(f"{where}: not a {tp.__name__}", data) from None
        if tp is float:
            if isinstance(data, (int, float)) and not isinstance(data, bool):
                return float(data)
            raise _bad(f"{where}: expected a number", data)
        if tp is int:
            if isinstance(data, int) and not isinstance(data, bool):
                return data
            raise _bad(f"{where}: expected an integer", data)
        if tp in (str, bool):
            if isinstance(data, tp) and not (tp is str and isinstance(data, bool)):
                return data
            raise _bad(f"{where}: expected a {tp.__name__}", data)
        if tp is type(None):
            if data is None:
                return None
            raise _bad(f"{where}: expected null", data)
    raise _bad(f"{where}: {tp!r} is not an interface type", type(data).__name__)


def roundtrip(tp: type[T], value: T) -> T:
    """``value`` through JSON text and back (tests use it to prove a type travels)."""
    import json

    return cast(T, decode(tp, json.loads(json.dumps(encode(value)))))


# -- internals ---------------------------------------------------------------------------


def _bad(message: str, offending: Any) -> SymbiError:
    text = repr(offending)
    return SymbiError(
        ErrorCode.API_001,
        message,
        offending=text if len(text) <= 80 else text[:77] + "...",
        hint="send the value in the shape the engine interface documents (see /openapi.json or engine/api)",
    )


def _list(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise _bad(f"{where}: expected a list", data)
    return data


def _decode_union(tp: Any, data: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if data is None and type(None) in args:
        return None
    last: SymbiError | None = None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return decode(arg, data, where=where)
        except SymbiError as exc:
            last = exc
    raise last if last is not None else _bad(f"{where}: no alternative fits", data)


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if not f.name.startswith("_"))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    module = __import__(cls.__module__, fromlist=["*"])
    return typing.get_type_hints(cls, vars(module))


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _bad(f"{where}: expected an object for {cls.__name__}", data)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        if f.name in data:
            kwargs[f.name] = decode(hints.get(f.name, Any), data[f.name], where=f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _bad(f"{where}: {cls.__name__} needs {f.name!r}", sorted(data))
    return cls(**kwargs)


@functools.cache
def event_classes() -> dict[str, type[events_module.Event]]:
    """Every event class by name (as its module names it: ``dataclass(slots=True)`` leaves the
    class it replaced among the subclasses, which must not be picked)."""
    found: dict[str, type[events_module.Event]] = {}
    pending: list[type[events_module.Event]] = [events_module.Event]
    while pending:
        cls = pending.pop()
        module = __import__(cls.__module__, fromlist=["*"])
        named = getattr(module, cls.__name__, None)
        if named is cls:
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _decode_event(tp: type[events_module.Event], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _bad(f"{where}: expected an event object", data)
    name = data.get(EVENT_TAG, tp.__name__)
    cls = event_classes().get(str(name))
    if cls is None or not issubclass(cls, tp):
        raise _bad(f"{where}: unknown event {name!r}", name)
    body = {k: v for k, v in data.items() if k != EVENT_TAG}
    return _decode_dataclass(cls, body, where)
