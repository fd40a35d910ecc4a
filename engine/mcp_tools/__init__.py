"""External tools over MCP: the client, SchemaPin, key pinning, the review registry and the call gate.

Public face:

* :class:`ToolService` — the guarded call path (``call``) and the operator API
  (``pending_reviews``, ``approve_tool``, ``reject_tool``, ``pending_calls``,
  ``approve_call``, ``deny_call``, ``key_changes``, ``accept_key_change``);
  :func:`open_tool_service` builds one from the runtime config and a data dir.
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
from engine.mcp_tools.gate import PendingCall, ToolResult, ToolService, arguments_hash
from engine.mcp_tools.keystore import KeyStore
from engine.mcp_tools.registry import APPROVED, PENDING, REJECTED, ToolRecord, ToolRegistry
from engine.mcp_tools.review import definition_diff, definition_hash, shadowing_findings
from engine.mcp_tools.schemapin import (
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
    "PENDING",
    "REJECTED",
    "Discovery",
    "KeyResolver",
    "KeyStore",
    "McpClientPool",
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


async def open_tool_service(config: Any, data_dir: str | Path, **kwargs: Any) -> ToolService:
    """A :class:`ToolService` from a ``RuntimeConfig`` (``[mcp]``, ``[schemapin]``) over ``data_dir``.

    ``kwargs`` go to :class:`ToolService` (``policy_check``, ``audit``, ``clock``,
    ``on_wait_start``, ``on_wait_end``, ``on_change``, ...). Servers are added
    afterwards with ``service.add_server(ServerConfig(...))``.
    """
    data_dir = Path(data_dir)
    mcp, sp = config.mcp, config.schemapin

    def under(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else data_dir / path

    keystore = KeyStore(under(sp.key_store_path), clock=kwargs.get("clock"))
    resolver = KeyResolver(trust_bundle=under(sp.trust_bundle) if sp.trust_bundle else None, timeout=sp.timeout)
    verifier = SchemaVerifier(resolver, keystore, allow_tofu=sp.allow_tofu)
    registry = await ToolRegistry(data_dir / "mcp_tools.db", clock=kwargs.get("clock")).open()
    pool = McpClientPool(max_concurrent_connections=mcp.max_concurrent_connections, connection_timeout=mcp.connection_timeout)
    kwargs.setdefault("call_timeout", mcp.call_timeout)
    kwargs.setdefault("enforce_verification", mcp.enforce_verification and not mcp.allow_unverified_in_dev)
    kwargs.setdefault("require_review", mcp.require_review)
    return ToolService(registry=registry, pool=pool, verifier=verifier, keystore=keystore, **kwargs)
