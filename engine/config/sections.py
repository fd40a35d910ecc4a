"""The engine's config sections (one dataclass per ``[table]``), except MCP and the console.

Field names follow the seed (``symbi-runtime``'s ``LifecycleConfig``,
``ResourceManagerConfig``, ``SchedulerConfig``, ``CommunicationConfig``,
``ErrorHandlerConfig``, ``ContextManagerConfig``, ...); ``audit``, ``sandbox``
and part of ``secrets`` are our own. The MCP sections are in
:mod:`engine.config.mcp_sections`, the console's in
:mod:`engine.config.console_section`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar

from engine.config.schema import _bad, _fld, _key_label, _Section, _type_name
from engine.errors import ErrorCode, SymbiError


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
    # At start, arm Scheduled agents again and start agents with restart_policy "always" that
    # the last engine stopped (cleanly or not) while they ran.
    resume_on_start: bool = _fld(True, "bool")


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
    # requests a second per caller (a token bucket; 0 = no limit) and the burst it allows
    rate_limit: float = _fld(50.0, "float", min=0)
    rate_burst: int = _fld(200, "int", min=1)

    @classmethod
    def _from_raw(cls, raw: Mapping[str, Any], path: str, warnings: list[str]) -> Any:
        """The seed's ``bind_address = "host:port"`` is read as ``host`` and ``port``."""
        raw = dict(raw)
        bind = raw.pop("bind_address", None)
        if bind is not None:
            host, sep, port = str(bind).rpartition(":")
            if not sep or not host or not port.isdigit():
                raise SymbiError(
                    ErrorCode.CONFIG_001,
                    f"invalid value for '{path}.bind_address'",
                    offending=bind,
                    hint='write it as "host:port", e.g. "127.0.0.1:8080"',
                )
            for key, value in (("host", host.strip("[]")), ("port", int(port))):
                if key in raw and raw[key] != value:
                    raise SymbiError(
                        ErrorCode.CONFIG_001,
                        f"'{path}.bind_address' and '{path}.{key}' disagree",
                        offending=f"{bind} / {raw[key]}",
                        hint="keep one of them",
                    )
                raw[key] = value
        return super()._from_raw(raw, path, warnings)


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
