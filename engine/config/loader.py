"""Reading ``runtime_config.toml`` and the environment; writing the effective config back as TOML.

:func:`load_config`: defaults, then the TOML file, then environment overrides
(:data:`ENV_OVERRIDES`). Unknown sections and keys are warnings, never errors;
a bad value is ``CONFIG_001``; an unreadable or unparsable file is
``CONFIG_002``. :func:`dump_toml` renders a config that loads back equal.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.config.runtime_config import _LOG_LEVEL_SPEC, _SECTIONS, RuntimeConfig, _validate_across
from engine.config.schema import _coerce, _Spec
from engine.errors import ErrorCode, SymbiError


@dataclass
class LoadedConfig:
    """What :func:`load_config` returns."""

    config: RuntimeConfig
    warnings: list[str] = field(default_factory=list)
    source: Path | None = None
    # dotted key -> environment variable that set it
    env_overrides: dict[str, str] = field(default_factory=dict)


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
        if isinstance(table, list):  # [[notify]]
            for item in table:
                _write_table(lines, name, item, array=True)
        else:
            _write_table(lines, name, table)
    return "\n".join(lines).rstrip() + "\n"
