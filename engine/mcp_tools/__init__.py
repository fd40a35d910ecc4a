"""External tools over MCP: the client, SchemaPin, key pinning, the review registry and the call gate.

Public face:

* :class:`ToolService` — the guarded call path (``call``), analysis at discovery and
  the operator API (``tools``, ``pending_reviews``, ``get_tool``, ``tool_history``,
  ``approve_tool``, ``reject_tool``, ``defer_tool``, ``reanalyze_tool``,
  ``pending_calls``, ``approve_call``, ``deny_call``, ``key_changes``,
  ``accept_key_change``, ``reject_key_change``, ``operator_fingerprint``);
  :func:`open_tool_service` builds one from the runtime config and a data dir.
* :class:`OperatorKey` — the operator's P-256 key that signs approvals (``operator_key.pem``).
* :class:`ServerConfig`, :class:`McpClientPool`, :class:`ToolDefinition` — MCP servers (stdio / HTTP).
* :class:`ToolRegistry`, :class:`ToolRecord` — pinned definitions and review states (SQLite).
* :class:`KeyStore` — TOFU pins per domain (JSON, 0600), pending key changes.
* :class:`SchemaVerifier`, :class:`KeyResolver` and the SchemaPin primitives
  (:func:`sign_schema`, :func:`verify_signature`, :func:`canonicalize`, :func:`fingerprint`).

Named ``mcp_tools`` (not ``tools``): the reference ``schemapin`` package installs a top-level ``tools``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.mcp_tools.client import McpClientPool, ServerConfig, ToolDefinition
from engine.mcp_tools.gate import (
    AuditHook,
    PendingCall,
    PolicyCheck,
    ToolResult,
    ToolService,
    arguments_hash,
    refuse_every_call,
)
from engine.mcp_tools.keystore import KeyStore
from engine.mcp_tools.operator_key import OperatorKey
from engine.mcp_tools.registry import (
    APPROVED,
    AWAITING_HUMAN,
    EXPIRED,
    PENDING,
    REJECTED,
    SCOPES,
    SIGNED,
    SIGNING_FAILED,
    STATES,
    TRANSITIONS,
    UNDER_REVIEW,
    USABLE_STATES,
    WAITING_STATES,
    ToolRecord,
    ToolRegistry,
)
from engine.mcp_tools.review import definition_diff, definition_hash, shadowing_findings
from engine.mcp_tools.schemapin import (
    BinarySchemaVerifier,
    Discovery,
    KeyResolver,
    SchemaVerifier,
    VerificationResult,
    canonicalize,
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    schema_hash,
    sign_schema,
    verify_signature,
    well_known_document,
)

__all__ = [
    "APPROVED",
    "AWAITING_HUMAN",
    "EXPIRED",
    "PENDING",
    "REJECTED",
    "SCOPES",
    "SIGNED",
    "SIGNING_FAILED",
    "STATES",
    "TRANSITIONS",
    "UNDER_REVIEW",
    "USABLE_STATES",
    "WAITING_STATES",
    "BinarySchemaVerifier",
    "Discovery",
    "KeyResolver",
    "KeyStore",
    "McpClientPool",
    "OperatorKey",
    "PendingCall",
    "SchemaVerifier",
    "ServerConfig",
    "ToolDefinition",
    "ToolRecord",
    "ToolRegistry",
    "ToolResult",
    "ToolService",
    "VerificationResult",
    "arguments_hash",
    "refuse_every_call",
    "canonicalize",
    "definition_diff",
    "definition_hash",
    "fingerprint",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
    "open_tool_service",
    "private_key_pem",
    "public_key_pem",
    "schema_hash",
    "shadowing_findings",
    "sign_schema",
    "verify_signature",
    "well_known_document",
]


async def open_tool_service(
    config: Any, data_dir: str | Path, *, policy_check: PolicyCheck, audit: AuditHook, start: bool = True, **kwargs: Any
) -> ToolService:
    """A :class:`ToolService` from a ``RuntimeConfig`` (``[mcp]``, ``[[mcp.servers]]``, ``[schemapin]``) over ``data_dir``.

    ``policy_check`` and ``audit`` are required (see :class:`ToolService`); the other
    ``kwargs`` go to :class:`ToolService` (``clock``,
    ``on_wait_start``, ``on_wait_end``, ``on_change``, ...). The configured servers
    are added; with ``start`` the engine-start recovery runs and the servers are
    discovered in the background (one that fails is logged and audited, never fatal).
    More servers can be added with ``service.add_server(ServerConfig(...))``.
    """
    data_dir = Path(data_dir)
    mcp, sp = config.mcp, config.schemapin

    def under(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else data_dir / path

    keystore = KeyStore(under(sp.key_store_path), clock=kwargs.get("clock"))
    resolver = KeyResolver(trust_bundle=under(sp.trust_bundle) if sp.trust_bundle else None, timeout=sp.timeout)
    verifier: SchemaVerifier
    if sp.binary_path:
        verifier = BinarySchemaVerifier(sp.binary_path, resolver, keystore, allow_tofu=sp.allow_tofu, timeout=sp.timeout,
                                        environment=dict(sp.environment), capture_stderr=sp.capture_stderr)
    else:
        verifier = SchemaVerifier(resolver, keystore, allow_tofu=sp.allow_tofu)
    registry = await ToolRegistry(data_dir / "mcp_tools.db", clock=kwargs.get("clock")).open()
    pool = McpClientPool(max_concurrent_connections=mcp.max_concurrent_connections, connection_timeout=mcp.connection_timeout)
    kwargs.setdefault("call_timeout", mcp.call_timeout)
    kwargs.setdefault("enforce_verification", mcp.enforce_verification and not mcp.allow_unverified_in_dev)
    kwargs.setdefault("require_review", mcp.require_review)
    kwargs.setdefault("auto_approve_at", getattr(mcp, "auto_approve_at", -1))
    kwargs.setdefault("auto_reject_at", getattr(mcp, "auto_reject_at", 101))
    kwargs.setdefault("review_timeout", getattr(mcp, "review_timeout", 0.0))
    kwargs.setdefault("operator_key", OperatorKey.in_data_dir(data_dir))
    service = ToolService(
        registry=registry, pool=pool, verifier=verifier, keystore=keystore, policy_check=policy_check, audit=audit, **kwargs
    )
    try:
        for server in getattr(mcp, "servers", None) or []:
            service.add_server(server.to_server_config() if hasattr(server, "to_server_config") else server)
        if start:
            await service.start()
    except BaseException:
        await service.close()
        raise
    return service
