"""Runtime configuration: ``runtime_config.toml``, environment overrides, data dirs.

This package owns everything the engine and the console read from configuration:

* :class:`RuntimeConfig` and one dataclass per section (``lifecycle``,
  ``resource``, ``context``, ``vector_db``, ``rag``, ``mcp``, ``schemapin``,
  ``policy``, ``scheduler``, ``communication``, ``error_handler``,
  ``http_api``, ``sandbox``, ``audit``, ``secrets`` and our own ``console``),
  plus the top-level ``log_level``. Field names follow the seed
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

Modules
-------
==================  ==========================================================
``values``          parse/format durations and sizes, ``parse_bool``
``schema``          the field/section framework: ``_fld``, ``_Section``, validation
``sections``        the engine's sections (lifecycle ... sandbox)
``mcp_sections``    ``[mcp]``, ``[[mcp.servers]]``, ``[schemapin]``
``console_section`` ``[console]`` (kept in the engine: ``config check``/``show`` validate it)
``runtime_config``  :class:`RuntimeConfig` and the section registry
``loader``          TOML and environment in, TOML out, ``ENV_OVERRIDES``
``paths``           data dir, config file, ``resolve_under``
==================  ==========================================================

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
``SYMBI_AUDIT_WITNESS``         ``audit.witness_path``
``SYMBI_NATIVE_ISOLATION``      ``sandbox.native_isolation`` (auto, bwrap, landlock, none)
==============================  ===============================================

Where files are found: ``SYMBI_DATA_DIR`` (beaten by ``--data-dir``) names the
data dir, ``SYMBI_CONFIG`` (beaten by ``--config``) the config file. An empty
variable counts as unset. A bad environment value is ``CONFIG_001`` naming the
variable.
"""

from __future__ import annotations

# Re-exported so `engine.config.platformdirs` stays the module tests patch.
import platformdirs as platformdirs

from engine.config.console_section import ConsoleConfig
from engine.config.loader import ENV_OVERRIDES, LoadedConfig, dump_toml, load_config
from engine.config.mcp_sections import McpConfig, McpServerConfig, SchemaPinConfig
from engine.config.paths import APP_NAME, CONFIG_FILENAME, find_config_file, resolve_data_dir, resolve_under
from engine.config.runtime_config import LOG_LEVELS as LOG_LEVELS
from engine.config.runtime_config import RuntimeConfig
from engine.config.sections import DISTANCE_METRICS as DISTANCE_METRICS
from engine.config.sections import LOAD_BALANCING_STRATEGIES as LOAD_BALANCING_STRATEGIES
from engine.config.sections import NATIVE_ISOLATION as NATIVE_ISOLATION
from engine.config.sections import POLICY_EFFECTS as POLICY_EFFECTS
from engine.config.sections import SCHEDULING_ALGORITHMS as SCHEDULING_ALGORITHMS
from engine.config.sections import VECTOR_BACKENDS as VECTOR_BACKENDS
from engine.config.sections import VIOLATION_ACTIONS as VIOLATION_ACTIONS
from engine.config.sections import AuditConfig as AuditConfig
from engine.config.sections import (
    CommunicationConfig,
    ContextConfig,
    ErrorHandlerConfig,
    HttpApiConfig,
    LifecycleConfig,
    PolicyConfig,
    PoolConfig,
    RagConfig,
    ResourceConfig,
    SchedulerConfig,
    VectorDbConfig,
)
from engine.config.sections import SandboxConfig as SandboxConfig
from engine.config.sections import SecretsSectionConfig as SecretsSectionConfig
from engine.config.values import DURATION_HINT as DURATION_HINT
from engine.config.values import SIZE_HINT as SIZE_HINT
from engine.config.values import format_duration, format_size, parse_bool, parse_duration, parse_size

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
