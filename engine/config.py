"""Runtime configuration: ``runtime_config.toml``, environment overrides, data dirs.

This module owns everything the engine and the console read from configuration:

* :class:`RuntimeConfig` and one dataclass per section (``lifecycle``,
  ``resource``, ``context``, ``vector_db``, ``mcp``, ``schemapin``, ``policy``,
  ``scheduler``, ``communication``, ``error_handler``, ``http_api`` and our own
  ``console``), plus the top-level ``log_level``. Field names follow the seed
  (``symbi-runtime``'s ``LifecycleConfig``, ``ResourceManagerConfig``,
  ``SchedulerConfig``, ``CommunicationConfig``, ``ErrorHandlerConfig``,
  ``ContextManagerConfig``, ``McpClientConfig``, ``SchemaPinConfig``, ...).
* :func:`load_config`: defaults, then the TOML file, then environment
  overrides. Unknown sections and keys are warnings, never errors; a bad value
  is ``CONFIG_001`` naming the dotted key (or the environment variable), the
  offending value and what is allowed; an unreadable or unparsable file is
  ``CONFIG_002`` naming the file (and line/column for TOML syntax errors).
* :func:`dump_toml` / :meth:`RuntimeConfig.to_dict`: the effective
  configuration rendered back (``symbiont config show``); ``load(dump(cfg))``
  gives ``cfg`` again.
* :func:`resolve_data_dir` and :func:`find_config_file`: where things live.

Value formats
-------------
Durations are stored as float seconds. In TOML they may be a plain number of
seconds (``30``, ``0.5``) or a string of one or more ``<number><unit>`` parts:
``"500ms"``, ``"60s"``, ``"5m"``, ``"1h"``, ``"1h30m"``, ``"7d"`` (units ms, s,
m, h, d; long forms like ``sec``/``min``/``hours`` also work). Sizes (byte
counts) may be an integer or a string such as ``"512KB"``, ``"64MiB"``,
``"1GiB"``: KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024. Optional
numeric fields accept ``"auto"`` for "not set". Enumerations are matched
without regard to case, ``_`` or ``-`` (``"round_robin"`` == ``"RoundRobin"``).

Relative paths (``vector_db.data_path``, ``policy.file``, ``context.storage_path``,
``schemapin.key_store_path``) are relative to the data dir; see
:func:`resolve_under`.

Environment overrides (the seed's names; they beat the file)
------------------------------------------------------------
==============================  ===============================================
``SYMBI_LOG_LEVEL``             ``log_level`` (trace, debug, info, warn, warning, error)
``SYMBI_MAX_AGENTS``            ``lifecycle.max_agents``
``SYMBI_RESOURCE_ENFORCEMENT``  ``resource.enforcement_enabled`` (true/false/1/0/yes/no/on/off)
``SYMBI_MAX_CONCURRENT_TASKS``  ``scheduler.max_concurrent_tasks``
``SYMBIONT_VECTOR_BACKEND``     ``vector_db.backend`` (lancedb, qdrant, noop)
``SYMBIONT_VECTOR_DATA_PATH``   ``vector_db.data_path`` (LanceDB directory)
``SYMBIONT_VECTOR_HOST``        ``vector_db.host`` (Qdrant)
``SYMBIONT_VECTOR_PORT``        ``vector_db.port`` (Qdrant)
``SYMBIONT_VECTOR_URL``         ``vector_db.url`` (Qdrant; beats host/port)
``SYMBIONT_VECTOR_COLLECTION``  ``vector_db.collection_name``
``SYMBIONT_VECTOR_DIMENSION``   ``vector_db.dimension``
``SYMBI_HTTP_ENABLED``          ``http_api.enabled``
``SYMBI_HTTP_HOST``             ``http_api.host``
``SYMBI_HTTP_PORT``             ``http_api.port``
==============================  ===============================================

Where files are found: ``SYMBI_DATA_DIR`` (beaten by ``--data-dir``) names the
data dir, ``SYMBI_CONFIG`` (beaten by ``--config``) the config file. An empty
variable counts as unset. A bad environment value is ``CONFIG_001`` naming the
variable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import platformdirs

from engine.errors import ErrorCode, SymbiError

__all__ = [
    "APP_NAME",
    "CONFIG_FILENAME",
    "ENV_OVERRIDES",
    "CommunicationConfig",
    "ConsoleConfig",
    "ContextConfig",
    "ErrorHandlerConfig",
    "HttpApiConfig",
    "LifecycleConfig",
    "LoadedConfig",
    "McpConfig",
    "McpServerConfig",
    "PolicyConfig",
    "PoolConfig",
    "RagConfig",
    "ResourceConfig",
    "RuntimeConfig",
    "SchedulerConfig",
    "SchemaPinConfig",
    "VectorDbConfig",
    "dump_toml",
    "find_config_file",
    "format_duration",
    "format_size",
    "load_config",
    "parse_bool",
    "parse_duration",
    "parse_size",
    "resolve_data_dir",
    "resolve_under",
]

APP_NAME = "symbi-console"
CONFIG_FILENAME = "runtime_config.toml"

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error")
_PY_LOG_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# --------------------------------------------------------------------------- #
# Value parsers (public: the CLI and other modules reuse them)
# --------------------------------------------------------------------------- #

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


# --------------------------------------------------------------------------- #
# Field specifications
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Sections
# --------------------------------------------------------------------------- #


@dataclass
class LifecycleConfig(_Section):
    """Agent lifecycle controller (seed: ``LifecycleConfig``)."""

    SECTION: ClassVar[str] = "lifecycle"

    max_agents: int = _fld(1000, "int", min=1)
    initialization_timeout: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    # Grace between SIGTERM and SIGKILL when an agent is stopped.
    termination_timeout: float = _fld(10.0, "duration", min=0)
    state_check_interval: float = _fld(10.0, "duration", min=0, min_exclusive=True)
    enable_auto_recovery: bool = _fld(True, "bool")
    max_restart_attempts: int = _fld(3, "int", min=0)
    restart_backoff_base: float = _fld(1.0, "duration", min=0, min_exclusive=True)
    restart_backoff_max: float = _fld(60.0, "duration", min=0, min_exclusive=True)
    # What happens to a persistent agent silent (no heartbeat or call) for its idle_timeout.
    idle_action: str = _fld("suspend", "enum", choices=("suspend", "terminate"))


VIOLATION_ACTIONS = ("warn", "suspend", "terminate")


@dataclass
class ResourceConfig(_Section):
    """Resource manager (seed: ``ResourceManagerConfig``). ``None`` totals come from the machine."""

    SECTION: ClassVar[str] = "resource"

    total_memory_mb: int | None = _fld(None, "int", min=1, optional=True)
    total_cpu_cores: float | None = _fld(None, "float", min=0, min_exclusive=True, optional=True)
    total_disk_io_mbps: int = _fld(1000, "int", min=1)
    total_network_io_mbps: int = _fld(1000, "int", min=1)
    enforcement_enabled: bool = _fld(True, "bool")
    monitoring_interval: float = _fld(1.0, "duration", min=0, min_exclusive=True)
    violation_action: str = _fld("terminate", "enum", choices=VIOLATION_ACTIONS)
    # Consecutive samples over the CPU limit before the violation action runs.
    cpu_violation_samples: int = _fld(5, "int", min=1)
    # Percentage of the totals kept back from allocation (seed: resource_reservation_percentage).
    reservation_percentage: float = _fld(0.0, "float", min=0, max=50)
    # Per-agent log file cap before rotation.
    log_max_bytes: int = _fld(1_048_576, "size", min=1024)


@dataclass
class ContextConfig(_Section):
    """Context manager (seed: ``ContextManagerConfig`` + ``RetentionPolicy``)."""

    SECTION: ClassVar[str] = "context"

    max_contexts_in_memory: int = _fld(1000, "int", min=1)
    enable_auto_archiving: bool = _fld(True, "bool")
    archiving_interval: float = _fld(3600.0, "duration", min=0, min_exclusive=True)
    max_memory_items_per_agent: int = _fld(10_000, "int", min=1)
    max_knowledge_items_per_agent: int = _fld(5_000, "int", min=1)
    enable_vector_db: bool = _fld(True, "bool")
    enable_persistence: bool = _fld(True, "bool")
    storage_path: str = _fld("contexts", "str", nonempty=True)
    session_retention: float = _fld(86_400.0, "duration", min=0, min_exclusive=True)
    memory_retention: float = _fld(604_800.0, "duration", min=0, min_exclusive=True)
    knowledge_retention: float = _fld(2_592_000.0, "duration", min=0, min_exclusive=True)
    # Seal item content and metadata at rest (AES-256-GCM, key in <storage_path>/context.key).
    encryption_required: bool = _fld(True, "bool")
    # zlib-compress item content and metadata before sealing.
    compression: bool = _fld(True, "bool")
    # Per agent, content + metadata bytes; past it: on_size_limit.
    max_context_size_mb: float = _fld(100.0, "float", min=0, min_exclusive=True)
    # error: CTX_002 naming the agent and size; prune: drop the agent's items, working memory first.
    on_size_limit: str = _fld("error", "enum", choices=("error", "prune"))
    max_item_bytes: int = _fld(1_048_576, "size", min=1, max=64 * 1_048_576)
    # How often expired items are dropped and the vector index maintained.
    cleanup_interval: float = _fld(3600.0, "duration", min=1)


VECTOR_BACKENDS = ("lancedb", "qdrant", "noop")
DISTANCE_METRICS = ("cosine", "l2", "dot")


@dataclass
class VectorDbConfig(_Section):
    """Vector backend (seed: ``resolve_vector_config`` / ``LanceDbConfig`` / ``QdrantConfig``)."""

    SECTION: ClassVar[str] = "vector_db"

    backend: str = _fld("lancedb", "enum", choices=VECTOR_BACKENDS)
    data_path: str = _fld("vector_db", "str", nonempty=True)
    collection_name: str = _fld("symbiont_context", "str", nonempty=True, pattern=r"[A-Za-z0-9_.-]+")
    dimension: int = _fld(384, "int", min=1, max=65536)
    distance_metric: str = _fld("cosine", "enum", choices=DISTANCE_METRICS)
    embedding_model: str = _fld("all-MiniLM-L6-v2", "str", nonempty=True)
    batch_size: int = _fld(100, "int", min=1)
    host: str = _fld("localhost", "str", nonempty=True)
    port: int = _fld(6333, "int", min=1, max=65535)
    url: str | None = _fld(None, "str", optional=True)
    timeout: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    # LanceDB: build the ANN index (in the background) once the table has this many rows.
    index_threshold: int = _fld(50_000, "int", min=256)
    index_type: str = _fld("ivf_pq", "enum", choices=("ivf_pq", "ivf_hnsw_sq"))
    # LanceDB search: IVF partitions probed, and how many times k candidates are re-ranked with full vectors.
    nprobes: int = _fld(128, "int", min=1, max=4096)
    refine_factor: int = _fld(20, "int", min=1, max=1000)

    @property
    def qdrant_url(self) -> str:
        """``url`` when set, else ``http://host:port``."""
        return self.url or f"http://{self.host}:{self.port}"


@dataclass
class RagConfig(_Section):
    """RAG engine (seed: ``RAGConfig``); the generator is any OpenAI-compatible ``/chat/completions``."""

    SECTION: ClassVar[str] = "rag"

    max_results: int = _fld(5, "int", min=1, max=100)
    # On cosine similarity, -1..1; passages below it are not used.
    relevance_threshold: float = _fld(0.25, "float", min=-1, max=1)
    timeout: float = _fld(10.0, "duration", min=0, min_exclusive=True)
    # Share of the vector score in the hybrid (vector + BM25) rerank, 0..1.
    hybrid_weight: float = _fld(0.75, "float", min=0, max=1)
    candidate_multiplier: int = _fld(4, "int", min=1, max=50)
    max_answer_sentences: int = _fld(3, "int", min=1, max=50)
    # Unset: extractive answers. Set: e.g. "http://localhost:11434/v1".
    llm_url: str | None = _fld(None, "str", optional=True)
    llm_model: str = _fld("gpt-4o-mini", "str", nonempty=True)
    llm_max_tokens: int = _fld(400, "int", min=1)
    # Vault secret holding the endpoint's API key (env SYMBIONT_RAG_API_KEY beats it); never the key itself.
    llm_api_key_secret: str | None = _fld(None, "str", optional=True)


@dataclass
class McpConfig(_Section):
    """MCP client (seed: ``McpClientConfig``) plus connection limits."""

    SECTION: ClassVar[str] = "mcp"

    enforce_verification: bool = _fld(True, "bool")
    allow_unverified_in_dev: bool = _fld(False, "bool")
    # New external tools wait in the review queue until a human approves them.
    require_review: bool = _fld(True, "bool")
    verification_timeout: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    max_concurrent_verifications: int = _fld(5, "int", min=1)
    max_concurrent_connections: int = _fld(10, "int", min=1)
    connection_timeout: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    call_timeout: float = _fld(60.0, "duration", min=0, min_exclusive=True)
    # Review automation on the analyzer's risk score (0..100): approve without a human at or
    # below auto_approve_at (-1 = never; never with a High/Critical finding or an unverified
    # tool), reject at or above auto_reject_at (101 = never).
    auto_approve_at: int = _fld(-1, "int", min=-1, max=100)
    auto_reject_at: int = _fld(101, "int", min=0, max=101)
    # A tool awaiting a human longer than this becomes Expired (0 = never).
    review_timeout: float = _fld(0.0, "duration", min=0)
    servers: list[McpServerConfig] = field(default_factory=list)

    SPECIAL_FIELDS: ClassVar[tuple[str, ...]] = ("servers",)

    def __post_init__(self) -> None:
        if self.auto_approve_at >= self.auto_reject_at:
            raise _bad(
                _key_label("mcp.auto_approve_at"),
                self.auto_approve_at,
                f"is not below mcp.auto_reject_at ({self.auto_reject_at})",
                "make auto_approve_at smaller than auto_reject_at (-1 disables auto-approval, 101 auto-rejection)",
            )

    @classmethod
    def _read_special(cls, key: str, value: Any, dotted: str, warnings: list[str]) -> Any:
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise _bad(
                _key_label(dotted),
                value,
                f"expected an array of tables, got {_type_name(value)}",
                "write each server as [[mcp.servers]] with name and command (or url)",
            )
        servers: list[McpServerConfig] = []
        seen: set[str] = set()
        for i, item in enumerate(value):
            path = f"{dotted}[{i}]"
            if "name" not in item:
                raise SymbiError(
                    ErrorCode.CONFIG_001,
                    f"missing required key '{path}.name'",
                    hint="give each [[mcp.servers]] a name (it prefixes its tools: name/tool)",
                    offending=f"{path}.name",
                )
            server = McpServerConfig._from_raw(item, path, warnings)
            if (server.command is None) == (server.url is None):
                raise _bad(
                    _key_label(path),
                    server.name,
                    "needs exactly one of command or url" + (" (both are set)" if server.command else ""),
                    'set command = ["program", "arg", ...] for a stdio server, or url = "https://..." for HTTP',
                )
            if server.name in seen:
                raise _bad(
                    _key_label(f"{path}.name"),
                    server.name,
                    "duplicate MCP server name",
                    "give each server its own name",
                )
            seen.add(server.name)
            servers.append(server)
        return servers


@dataclass
class McpServerConfig(_Section):
    """One MCP server: ``[[mcp.servers]]`` with name, command (a list: program and arguments) or url,
    env, cwd, the SchemaPin domain that signs its tools, allow_unsigned and detached signatures."""

    SECTION: ClassVar[str] = "mcp.servers"
    SPECIAL_FIELDS: ClassVar[tuple[str, ...]] = ("command", "paths", "writable_paths")

    name: str = _fld(MISSING, "str", nonempty=True, pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
    command: list[str] | None = field(default=None, metadata={"spec": _Spec("strlist", optional=True)})
    url: str | None = _fld(None, "str", optional=True, pattern=r"https?://\S+")
    env: dict[str, str] = _fld({}, "strmap")
    cwd: str | None = _fld(None, "str", optional=True)
    domain: str | None = _fld(None, "str", optional=True, pattern=r"[A-Za-z0-9.-]+(:[0-9]+)?")
    allow_unsigned: bool = _fld(False, "bool")
    # tool name -> base64 SchemaPin signature, for servers that do not carry their own
    signatures: dict[str, str] = _fld({}, "strmap", nonempty=True)
    # confine a stdio server with bubblewrap (engine/mcp_tools/confine.py): only the system dirs,
    # its interpreter, the files on its command line, cwd and `paths` (read-only) and
    # `writable_paths`; no network unless `network`
    sandbox: bool = _fld(False, "bool")
    network: bool = _fld(False, "bool")
    paths: list[str] = field(default_factory=list, metadata={"spec": _Spec("strlist")})
    writable_paths: list[str] = field(default_factory=list, metadata={"spec": _Spec("strlist")})

    @classmethod
    def _read_special(cls, key: str, value: Any, dotted: str, warnings: list[str]) -> Any:
        if isinstance(value, str):
            value = [value]
        empty_ok = key != "command"
        if (
            not isinstance(value, list)
            or (not value and not empty_ok)
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise _bad(
                _key_label(dotted),
                value,
                "expected an array of non-empty strings"
                if empty_ok
                else "expected a non-empty array of non-empty strings",
                f'write {key} = ["/some/dir", ...]' if empty_ok else 'write command = ["program", "arg", ...]',
            )
        return list(value)

    def to_server_config(self) -> Any:
        """The :class:`engine.mcp_tools.ServerConfig` the tool service connects with."""
        from engine.mcp_tools.client import ServerConfig

        return ServerConfig(
            self.name,
            command=self.command[0] if self.command else None,
            args=list(self.command[1:]) if self.command else [],
            env=dict(self.env) or None,
            cwd=self.cwd,
            url=self.url,
            domain=self.domain,
            allow_unsigned=self.allow_unsigned,
            signatures=dict(self.signatures),
            sandbox=self.sandbox,
            network=self.network,
            paths=list(self.paths),
            writable_paths=list(self.writable_paths),
        )


@dataclass
class SchemaPinConfig(_Section):
    """SchemaPin verification (seed: ``SchemaPinConfig``); ``binary_path`` None = built-in verifier."""

    SECTION: ClassVar[str] = "schemapin"

    binary_path: str | None = _fld(None, "str", optional=True)
    timeout: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    capture_stderr: bool = _fld(True, "bool")
    environment: dict[str, str] = _fld({}, "strmap")
    key_store_path: str = _fld("schemapin_keys.json", "str", nonempty=True)
    trust_bundle: str | None = _fld(None, "str", optional=True)
    # Trust a domain's key on first use (pinned only after a valid signature).
    allow_tofu: bool = _fld(True, "bool")


POLICY_EFFECTS = ("Allow", "Deny")


@dataclass
class PolicyConfig(_Section):
    """Policy enforcement (seed: ``ResourceAccessConfig``)."""

    SECTION: ClassVar[str] = "policy"

    file: str = _fld("access_policies.yaml", "str", nonempty=True)
    default_effect: str = _fld("Deny", "enum", choices=POLICY_EFFECTS)
    enable_caching: bool = _fld(True, "bool")
    cache_ttl: float = _fld(300.0, "duration", min=0)
    enable_audit: bool = _fld(True, "bool")


LOAD_BALANCING_STRATEGIES = ("RoundRobin", "LeastConnections", "ResourceBased", "WeightedRoundRobin")
SCHEDULING_ALGORITHMS = (
    "FirstComeFirstServe",
    "PriorityBased",
    "RoundRobin",
    "ShortestJobFirst",
    "WeightedFairQueuing",
)


@dataclass
class PoolConfig(_Section):
    """One worker pool: ``[[scheduler.pools]]`` with name, capacity and weight."""

    SECTION: ClassVar[str] = "scheduler.pools"

    name: str = _fld(MISSING, "str", nonempty=True, pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
    capacity: int = _fld(MISSING, "int", min=1)
    weight: int = _fld(1, "int", min=1)


def _default_pools() -> list[PoolConfig]:
    return [PoolConfig(name="native", capacity=32, weight=1)]


@dataclass
class SchedulerConfig(_Section):
    """Agent scheduler (seed: ``SchedulerConfig``)."""

    SECTION: ClassVar[str] = "scheduler"
    SPECIAL_FIELDS: ClassVar[tuple[str, ...]] = ("pools",)

    max_concurrent_tasks: int = _fld(32, "int", min=1)
    scheduling_algorithm: str = _fld("PriorityBased", "enum", choices=SCHEDULING_ALGORITHMS)
    load_balancing_strategy: str = _fld("RoundRobin", "enum", choices=LOAD_BALANCING_STRATEGIES)
    priority_levels: int = _fld(4, "int", min=1, max=16)
    # Queued tasks gain one priority level per interval waited (no starvation).
    aging_interval: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    max_queue_size: int = _fld(10_000, "int", min=1)
    task_timeout: float = _fld(3600.0, "duration", min=0, min_exclusive=True)
    health_check_interval: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    pools: list[PoolConfig] = field(default_factory=_default_pools)

    @classmethod
    def _read_special(cls, key: str, value: Any, dotted: str, warnings: list[str]) -> Any:
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise _bad(
                _key_label(dotted),
                value,
                f"expected an array of tables, got {_type_name(value)}",
                "write each pool as [[scheduler.pools]] with name, capacity and weight",
            )
        if not value:
            raise _bad(_key_label(dotted), value, "at least one pool is required", "add a [[scheduler.pools]] table")
        pools = [PoolConfig._from_raw(item, f"{dotted}[{i}]", warnings) for i, item in enumerate(value)]
        seen: set[str] = set()
        for i, pool in enumerate(pools):
            if pool.name in seen:
                raise _bad(
                    _key_label(f"{dotted}[{i}].name"), pool.name, "duplicate pool name", "give each pool its own name"
                )
            seen.add(pool.name)
        return pools


@dataclass
class CommunicationConfig(_Section):
    """Secure message bus (seed: ``CommunicationConfig``)."""

    SECTION: ClassVar[str] = "communication"

    max_message_size: int = _fld(1_048_576, "size", min=1)
    message_ttl: float = _fld(3600.0, "duration", min=0, min_exclusive=True)
    max_queue_size: int = _fld(10_000, "int", min=1)
    delivery_timeout: float = _fld(30.0, "duration", min=0, min_exclusive=True)
    retry_attempts: int = _fld(3, "int", min=0)
    enable_encryption: bool = _fld(True, "bool")
    enable_signing: bool = _fld(True, "bool")
    dead_letter_queue_size: int = _fld(1000, "int", min=0)


@dataclass
class ErrorHandlerConfig(_Section):
    """Error handler, circuit breakers and recovery (seed: ``ErrorHandlerConfig``)."""

    SECTION: ClassVar[str] = "error_handler"

    max_error_history: int = _fld(1000, "int", min=1)
    error_aggregation_window: float = _fld(300.0, "duration", min=0, min_exclusive=True)
    escalation_threshold: int = _fld(5, "int", min=1)
    circuit_breaker_threshold: int = _fld(10, "int", min=1)
    circuit_breaker_timeout: float = _fld(60.0, "duration", min=0, min_exclusive=True)
    enable_auto_recovery: bool = _fld(True, "bool")
    max_recovery_attempts: int = _fld(3, "int", min=0)
    recovery_backoff_multiplier: float = _fld(2.0, "float", min=1)


@dataclass
class HttpApiConfig(_Section):
    """Optional HTTP API (seed: ``ApiConfig``). The bearer token comes from ``auth_token_env``, never the file."""

    SECTION: ClassVar[str] = "http_api"

    enabled: bool = _fld(False, "bool")
    host: str = _fld("127.0.0.1", "str", nonempty=True)
    # 0 asks the OS for a free port.
    port: int = _fld(8080, "int", min=0, max=65535)
    timeout: float = _fld(60.0, "duration", min=0, min_exclusive=True)
    max_body_size: int = _fld(16 * 1_048_576, "size", min=1024)
    enable_cors: bool = _fld(False, "bool")
    auth_token_env: str = _fld("SYMBI_API_TOKEN", "str", nonempty=True, pattern=r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class ConsoleConfig(_Section):
    """Our own section: the Textual console's look and key bindings."""

    SECTION: ClassVar[str] = "console"

    theme: str = _fld("symbi-dark", "str", nonempty=True)
    # binding id -> comma-separated keys, e.g. {"quit" = "ctrl+q,q"}.
    keymap: dict[str, str] = _fld({}, "strmap", nonempty=True)
    refresh_interval: float = _fld(1.0, "duration", min=0.05)

    def keys_for(self, binding_id: str) -> list[str] | None:
        """The override keys for ``binding_id`` as a list, or None when not overridden."""
        raw = self.keymap.get(binding_id)
        if raw is None:
            return None
        return [key.strip() for key in raw.split(",") if key.strip()]


@dataclass
class AuditConfig(_Section):
    """Our own section: the tamper-evident audit trail (``data_dir/audit.db``)."""

    SECTION: ClassVar[str] = "audit"

    # "batch": one durable commit (synchronous=FULL) per group of concurrent appends; "event": one per event.
    durability: str = _fld("batch", "enum", choices=("batch", "event"))
    # Sign a checkpoint of the chain head every N events (and at open and close).
    checkpoint_every: int = _fld(1000, "int", min=1)
    busy_timeout: float = _fld(5.0, "duration", min=0)
    max_batch: int = _fld(4096, "int", min=1)
    # Also sign one this long after the first event no checkpoint covers yet ("0s": only every N events).
    checkpoint_interval: float = _fld(30.0, "duration", min=0)
    # Where every signed head is also appended (outside the data dir): a directory (one <hash>.jsonl per
    # data dir) or a .jsonl file; unset: <user_state_dir>/witness/. Relative: under the data dir.
    witness_path: str | None = _fld(None, "str", optional=True)


@dataclass
class SecretsSectionConfig(_Section):
    """The seed's file secrets backend plus our key handling (see engine/secrets/config.py)."""

    SECTION: ClassVar[str] = "secrets"

    backend: str = _fld("file", "enum", choices=("file",))
    base_path: str = _fld("secrets", "str", nonempty=True)
    file_extension: str = _fld("enc", "str", nonempty=True, pattern=r"[A-Za-z0-9]{1,16}")
    # Mode of secret files, as a number (384 = 0o600); no bits for "other".
    permissions: int = _fld(0o600, "int", min=0o400, max=0o770)
    keep_versions: int = _fld(3, "int", min=0, max=100)
    key_source: str = _fld("auto", "enum", choices=("auto", "env", "file", "passphrase"))
    keys_dir: str = _fld("keys", "str", nonempty=True)
    argon2_memory_kib: int = _fld(65536, "int", min=32)
    argon2_iterations: int = _fld(3, "int", min=1)
    argon2_lanes: int = _fld(4, "int", min=1)


NATIVE_ISOLATION = ("auto", "bwrap", "landlock", "none")


@dataclass
class SandboxConfig(_Section):
    """Our own section: how agents are isolated (the seed's security tiers made real)."""

    SECTION: ClassVar[str] = "sandbox"

    # Native tier: bubblewrap when bwrap works, else the built-in confinement (uid change, Landlock, seccomp)
    # ("auto"); only bubblewrap ("bwrap"); only the built-in one ("landlock"); or none at all ("none": agents
    # run unconfined as the engine's user, and the console warns while one runs). "auto" refuses agents
    # (SANDBOX_001) on a machine where neither works.
    native_isolation: str = _fld("auto", "enum", choices=NATIVE_ISOLATION)
    # The user a confined native agent runs as when the engine is root (65534 = nobody/nogroup).
    native_uid: int = _fld(65534, "int", min=1, max=2**31 - 1)
    native_gid: int = _fld(65534, "int", min=1, max=2**31 - 1)
    # A requested tier that is unavailable is an error; with this set the agent runs natively instead (logged).
    allow_fallback: bool = _fld(False, "bool")
    docker_image: str = _fld("symbi-agent:latest", "str", nonempty=True)
    gvisor_runtime: str = _fld("runsc", "str", nonempty=True)
    max_pids: int = _fld(64, "int", min=4)
    max_open_files: int = _fld(256, "int", min=16)
    workspace_tmpfs_mb: int = _fld(64, "int", min=1)
    cgroup_root: str = _fld("/sys/fs/cgroup", "str", nonempty=True)
    firecracker_binary: str = _fld("firecracker", "str", nonempty=True)
    firecracker_kernel: str | None = _fld(None, "str", optional=True)
    # Largest JSON-RPC message an agent may send on its protocol channel.
    max_rpc_message_bytes: int = _fld(1_048_576, "size", min=1024)


# --------------------------------------------------------------------------- #
# The whole configuration
# --------------------------------------------------------------------------- #

_SECTIONS: dict[str, type[_Section]] = {
    cls.SECTION: cls
    for cls in (
        LifecycleConfig,
        ResourceConfig,
        ContextConfig,
        VectorDbConfig,
        RagConfig,
        McpConfig,
        SchemaPinConfig,
        PolicyConfig,
        SchedulerConfig,
        CommunicationConfig,
        ErrorHandlerConfig,
        HttpApiConfig,
        SandboxConfig,
        AuditConfig,
        SecretsSectionConfig,
        ConsoleConfig,
    )
}
_LOG_LEVEL_SPEC = _Spec("enum", choices=LOG_LEVELS)


@dataclass
class RuntimeConfig:
    """The effective runtime configuration: ``log_level`` plus one object per section."""

    log_level: str = "info"
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    resource: ResourceConfig = field(default_factory=ResourceConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    vector_db: VectorDbConfig = field(default_factory=VectorDbConfig)
    rag: RagConfig = field(default_factory=RagConfig)
    mcp: McpConfig = field(default_factory=McpConfig)
    schemapin: SchemaPinConfig = field(default_factory=SchemaPinConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    communication: CommunicationConfig = field(default_factory=CommunicationConfig)
    error_handler: ErrorHandlerConfig = field(default_factory=ErrorHandlerConfig)
    http_api: HttpApiConfig = field(default_factory=HttpApiConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    secrets: SecretsSectionConfig = field(default_factory=SecretsSectionConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)

    @classmethod
    def default(cls) -> RuntimeConfig:
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], warnings: list[str] | None = None) -> RuntimeConfig:
        """Build from a parsed-TOML-shaped mapping, validating every value.

        Unknown sections/keys are appended to ``warnings`` (when given).
        Raises :class:`SymbiError` ``CONFIG_001`` on a bad value.
        """
        sink: list[str] = warnings if warnings is not None else []
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "log_level":
                kwargs["log_level"] = _coerce(_LOG_LEVEL_SPEC, value, _key_label("log_level"), from_env=False)
                continue
            section = _SECTIONS.get(key)
            if section is None:
                sink.append(f"unknown {'section' if isinstance(value, Mapping) else 'key'} {key!r} ignored")
                continue
            if not isinstance(value, Mapping):
                raise _bad(_key_label(key), value, f"expected a table, got {_type_name(value)}", f"write it as [{key}]")
            kwargs[key] = section._from_raw(value, key, sink)
        cfg = cls(**kwargs)
        _validate_across(cfg)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain data (durations as ``"60s"``, sizes as ``"1MiB"``, unset values as None)."""
        out: dict[str, Any] = {"log_level": self.log_level}
        for name in _SECTIONS:
            out[name] = getattr(self, name).to_dict()
        return out

    @property
    def python_log_level(self) -> int:
        """``log_level`` as a :mod:`logging` level number (trace is 5)."""
        return _PY_LOG_LEVELS[self.log_level]


def _validate_across(cfg: RuntimeConfig) -> None:
    """Rules that involve more than one field."""
    life = cfg.lifecycle
    if life.restart_backoff_max < life.restart_backoff_base:
        raise _bad(
            _key_label("lifecycle.restart_backoff_max"),
            format_duration(life.restart_backoff_max),
            f"is below lifecycle.restart_backoff_base ({format_duration(life.restart_backoff_base)})",
            "make restart_backoff_max at least restart_backoff_base",
        )


@dataclass
class LoadedConfig:
    """What :func:`load_config` returns."""

    config: RuntimeConfig
    warnings: list[str] = field(default_factory=list)
    source: Path | None = None
    # dotted key -> environment variable that set it
    env_overrides: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #

ENV_OVERRIDES: tuple[tuple[str, str], ...] = (
    ("SYMBI_LOG_LEVEL", "log_level"),
    ("SYMBI_MAX_AGENTS", "lifecycle.max_agents"),
    ("SYMBI_RESOURCE_ENFORCEMENT", "resource.enforcement_enabled"),
    ("SYMBI_MAX_CONCURRENT_TASKS", "scheduler.max_concurrent_tasks"),
    ("SYMBIONT_VECTOR_BACKEND", "vector_db.backend"),
    ("SYMBIONT_VECTOR_DATA_PATH", "vector_db.data_path"),
    ("SYMBIONT_VECTOR_HOST", "vector_db.host"),
    ("SYMBIONT_VECTOR_PORT", "vector_db.port"),
    ("SYMBIONT_VECTOR_URL", "vector_db.url"),
    ("SYMBIONT_VECTOR_COLLECTION", "vector_db.collection_name"),
    ("SYMBIONT_VECTOR_DIMENSION", "vector_db.dimension"),
    ("SYMBI_HTTP_ENABLED", "http_api.enabled"),
    ("SYMBI_AUDIT_WITNESS", "audit.witness_path"),
    ("SYMBI_NATIVE_ISOLATION", "sandbox.native_isolation"),
    ("SYMBI_HTTP_HOST", "http_api.host"),
    ("SYMBI_HTTP_PORT", "http_api.port"),
)

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def _read_toml(path: Path) -> dict[str, Any]:
    from engine.safeparse import load_toml  # tomllib with a nesting limit; TomlTooDeep is a TOMLDecodeError

    try:
        with path.open("rb") as fh:
            return load_toml(fh)
    except FileNotFoundError:
        raise SymbiError(
            ErrorCode.CONFIG_002,
            f"config file not found: {path}",
            hint="check the --config / SYMBI_CONFIG path, or omit it to use the defaults",
            offending=str(path),
        ) from None
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        pos = _TOML_POS.search(text)
        details: dict[str, Any] = {"path": str(path)}
        if pos:
            details["line"], details["column"] = int(pos.group(1)), int(pos.group(2))
        raise SymbiError(
            ErrorCode.CONFIG_002,
            f"cannot parse {path}: {text}",
            hint="fix the TOML syntax at that line (strings need double quotes, tables are [name])",
            offending=str(path),
            details=details,
        ) from None
    except UnicodeDecodeError:
        raise SymbiError(
            ErrorCode.CONFIG_002,
            f"cannot parse {path}: the file is not UTF-8 text",
            hint="save the file as UTF-8",
            offending=str(path),
        ) from None
    except OSError as exc:
        raise SymbiError(
            ErrorCode.CONFIG_002,
            f"cannot read config file {path}: {exc.strerror or exc}",
            hint="check that the path names a readable file",
            offending=str(path),
        ) from None


def _spec_for(dotted: str) -> tuple[Any, str, _Spec]:
    """(owner class or None for top level, attribute, spec) for a dotted key."""
    if dotted == "log_level":
        return None, "log_level", _LOG_LEVEL_SPEC
    section_name, attr = dotted.split(".", 1)
    section = _SECTIONS[section_name]
    for fdef in fields(section):  # type: ignore[arg-type]
        if fdef.name == attr:
            return section_name, attr, fdef.metadata["spec"]
    raise KeyError(dotted)  # pragma: no cover - ENV_OVERRIDES is static


def _apply_env(cfg: RuntimeConfig, env: Mapping[str, str]) -> dict[str, str]:
    applied: dict[str, str] = {}
    for var, dotted in ENV_OVERRIDES:
        raw = env.get(var)
        if raw is None or not raw.strip():
            continue
        section_name, attr, spec = _spec_for(dotted)
        label = f"environment variable {var} (sets '{dotted}')"
        value = _coerce(spec, raw.strip(), label, from_env=True)
        target = cfg if section_name is None else getattr(cfg, section_name)
        setattr(target, attr, value)
        applied[dotted] = var
    _validate_across(cfg)
    return applied


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Defaults, then the TOML file at ``path`` (if given), then environment overrides.

    ``env=None`` reads ``os.environ``. A missing or unparsable file raises
    ``CONFIG_002``; a bad value (file or environment) raises ``CONFIG_001``.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    warnings: list[str] = []
    source: Path | None = None
    if path is not None:
        source = Path(path).expanduser()
        data = _read_toml(source)
        try:
            cfg = RuntimeConfig.from_dict(data, warnings)
        except SymbiError as exc:
            exc.details.setdefault("path", str(source))
            raise
    else:
        cfg = RuntimeConfig.default()
    applied = _apply_env(cfg, environ)
    return LoadedConfig(config=cfg, warnings=warnings, source=source, env_overrides=applied)


# --------------------------------------------------------------------------- #
# Writing TOML
# --------------------------------------------------------------------------- #

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")  # pragma: no cover


def _write_table(lines: list[str], header: str, table: Mapping[str, Any], *, array: bool = False) -> None:
    lines.append(f"[[{header}]]" if array else f"[{header}]")
    nested: list[tuple[str, Any]] = []
    for key, value in table.items():
        if value is None:
            lines.append(f"# {key}: not set")
        elif isinstance(value, Mapping) or (isinstance(value, list) and value and isinstance(value[0], Mapping)):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    lines.append("")
    for key, value in nested:
        sub = f"{header}.{_toml_key(key)}"
        if isinstance(value, Mapping):
            _write_table(lines, sub, value)
        else:
            for item in value:
                _write_table(lines, sub, item, array=True)


def dump_toml(cfg: RuntimeConfig) -> str:
    """Render ``cfg`` as ``runtime_config.toml`` text; ``load_config`` reads it back equal."""
    data = cfg.to_dict()
    lines = ["# symbi-console runtime configuration (effective values)", ""]
    lines.append(f"log_level = {_toml_value(data.pop('log_level'))}")
    lines.append("")
    for name, table in data.items():
        _write_table(lines, name, table)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- #
# Where things live
# --------------------------------------------------------------------------- #


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    return Path(raw.strip()).expanduser()


def resolve_data_dir(cli_value: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """``--data-dir`` beats ``SYMBI_DATA_DIR`` beats ``platformdirs.user_data_dir("symbi-console")``.

    The directory is not created here.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if cli_value is not None and str(cli_value).strip():
        return Path(cli_value).expanduser()
    from_env = _env_path(environ, "SYMBI_DATA_DIR")
    if from_env is not None:
        return from_env
    return Path(platformdirs.user_data_dir(APP_NAME))


def find_config_file(
    cli_value: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path | None:
    """Pick the config file to load.

    ``--config`` beats ``SYMBI_CONFIG`` (both returned even when absent, so
    loading reports the missing file) beats ``<data_dir>/runtime_config.toml``
    if it exists beats ``<user_config_dir>/runtime_config.toml`` if it exists;
    otherwise None (defaults).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if cli_value is not None and str(cli_value).strip():
        return Path(cli_value).expanduser()
    from_env = _env_path(environ, "SYMBI_CONFIG")
    if from_env is not None:
        return from_env
    if data_dir is not None:
        candidate = Path(data_dir).expanduser() / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    candidate = Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILENAME
    if candidate.is_file():
        return candidate
    return None


def resolve_under(base: str | os.PathLike[str], value: str | os.PathLike[str]) -> Path:
    """A configured path: ``~`` expanded, absolute kept, relative taken under ``base`` (the data dir)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base).expanduser() / path
