"""The whole configuration: :class:`RuntimeConfig` (``log_level`` plus one object per section).

``_SECTIONS`` is the registry of sections by table name, in the order
``config show`` prints them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.config.console_section import ConsoleConfig
from engine.config.mcp_sections import McpConfig, SchemaPinConfig
from engine.config.notify_section import NotifyConfig, read_notify
from engine.config.schema import _bad, _coerce, _key_label, _Section, _Spec, _type_name
from engine.config.sections import (
    AuditConfig,
    CommunicationConfig,
    ContextConfig,
    ErrorHandlerConfig,
    HttpApiConfig,
    LifecycleConfig,
    PolicyConfig,
    RagConfig,
    ResourceConfig,
    SandboxConfig,
    SchedulerConfig,
    SecretsSectionConfig,
    VectorDbConfig,
)
from engine.config.values import format_duration

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error")
_PY_LOG_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

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
    notify: list[NotifyConfig] = field(default_factory=list)  # [[notify]] webhooks

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
            if key == "notify":
                kwargs["notify"] = read_notify(value, sink)
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
        out["notify"] = [target.to_dict() for target in self.notify]
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
