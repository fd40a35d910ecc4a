"""The engine's one error type and its codes.

Every failure a user can see is a :class:`SymbiError` carrying a stable code
(the seed's ``AGENT_001`` ... ``POLICY_001`` plus our own numbered ones), a
message for humans, the offending input and a hint saying what to do. The CLI
and the console render these; neither ever shows a traceback.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    """Stable error codes. The first eleven are the seed's."""

    AGENT_001 = "AGENT_001"  # agent not found
    RESOURCE_001 = "RESOURCE_001"  # insufficient resources
    COMM_001 = "COMM_001"  # communication failure
    SCHED_001 = "SCHED_001"  # scheduling refused
    SEC_001 = "SEC_001"  # security violation
    CTX_001 = "CTX_001"  # context storage
    RAG_001 = "RAG_001"  # retrieval
    VDB_001 = "VDB_001"  # vector database
    MCP_001 = "MCP_001"  # MCP client
    SCHEMA_001 = "SCHEMA_001"  # schema verification
    POLICY_001 = "POLICY_001"  # policy denied / invalid

    AGENT_002 = "AGENT_002"  # illegal lifecycle transition
    AGENT_003 = "AGENT_003"  # max_agents reached
    AGENT_004 = "AGENT_004"  # invalid agent configuration
    AGENT_005 = "AGENT_005"  # agent program could not be launched
    AGENT_006 = "AGENT_006"  # duplicate agent name
    RESOURCE_002 = "RESOURCE_002"  # resource limit exceeded at run time
    RESOURCE_003 = "RESOURCE_003"  # allocation already held / not held
    SCHED_002 = "SCHED_002"  # scheduler queue full
    CIRCUIT_001 = "CIRCUIT_001"  # circuit breaker open
    RETRY_001 = "RETRY_001"  # retries exhausted
    CONFIG_001 = "CONFIG_001"  # invalid configuration value
    CONFIG_002 = "CONFIG_002"  # configuration file unreadable / unparsable
    STORE_001 = "STORE_001"  # persistence failure
    RUNTIME_001 = "RUNTIME_001"  # runtime not open / closed
    RUNTIME_002 = "RUNTIME_002"  # data dir in use by another engine
    RUNTIME_003 = "RUNTIME_003"  # data dir with loose permissions or owned by another user
    CONSOLE_001 = "CONSOLE_001"  # action refused in read-only mode

    AUDIT_001 = "AUDIT_001"  # audit append failed: the action did not happen (fail closed)
    AUDIT_002 = "AUDIT_002"  # audit chain verification failed
    AUDIT_003 = "AUDIT_003"  # audit query / export input invalid
    COMM_002 = "COMM_002"  # bad envelope signature
    COMM_003 = "COMM_003"  # payload decryption / tag failure
    COMM_004 = "COMM_004"  # replayed message id
    COMM_005 = "COMM_005"  # message expired (TTL)
    COMM_006 = "COMM_006"  # message over max_message_size
    COMM_007 = "COMM_007"  # unknown recipient / topic
    COMM_008 = "COMM_008"  # recipient queue full (backpressure)
    COMM_009 = "COMM_009"  # request timed out waiting for a response
    POLICY_002 = "POLICY_002"  # policy file invalid
    POLICY_003 = "POLICY_003"  # policy reload failed; last good policy kept
    POLICY_004 = "POLICY_004"  # policy test case failed / bad request
    SEC_002 = "SEC_002"  # wrong key, tampered or truncated secret file
    SEC_003 = "SEC_003"  # key file or secret file with loose permissions
    SEC_004 = "SEC_004"  # secret not found
    SEC_005 = "SEC_005"  # invalid secret path / name
    SEC_006 = "SEC_006"  # master key unavailable / invalid
    SANDBOX_001 = "SANDBOX_001"  # requested security tier unavailable on this machine
    SANDBOX_002 = "SANDBOX_002"  # sandbox image missing or stale
    SANDBOX_003 = "SANDBOX_003"  # sandbox set-up failed
    PROTO_001 = "PROTO_001"  # malformed agent protocol message
    PROTO_002 = "PROTO_002"  # agent protocol message too large
    PROTO_003 = "PROTO_003"  # unknown protocol method
    PROTO_004 = "PROTO_004"  # protocol method not available in this runtime
    PROTO_005 = "PROTO_005"  # protocol authentication failed
    MCP_002 = "MCP_002"  # unknown MCP tool or server
    MCP_003 = "MCP_003"  # tool not approved (pending review, rejected, or changed since approval)
    MCP_004 = "MCP_004"  # MCP call or connection timed out
    MCP_005 = "MCP_005"  # MCP server unreachable / connection failed / transport error
    MCP_006 = "MCP_006"  # per-call approval denied, expired or not matching the arguments
    MCP_007 = "MCP_007"  # review decision refused: illegal state transition, missing reason, bad scope
    SCHEMA_002 = "SCHEMA_002"  # SchemaPin signature invalid / missing
    SCHEMA_003 = "SCHEMA_003"  # SchemaPin key revoked
    SCHEMA_004 = "SCHEMA_004"  # pinned key changed for a domain (blocked until the operator decides)
    SCHEMA_005 = "SCHEMA_005"  # SchemaPin key discovery failed
    SCHEMA_006 = "SCHEMA_006"  # operator signing key unusable (loose permissions, unreadable, not P-256)
    SCHEMA_007 = "SCHEMA_007"  # external SchemaPin verifier (binary_path) missing, timed out or failed
    CTX_002 = "CTX_002"  # agent context over max_context_size_mb
    CTX_003 = "CTX_003"  # context item invalid (empty / too large / bad kind)
    CTX_004 = "CTX_004"  # context item not found or not visible to this agent
    CTX_005 = "CTX_005"  # context encryption key missing, wrong or with loose permissions
    CTX_006 = "CTX_006"  # context store in use by another engine
    RAG_002 = "RAG_002"  # embedding model unavailable / failed
    RAG_003 = "RAG_003"  # RAG query invalid (empty, too long, bad parameter)
    RAG_004 = "RAG_004"  # RAG query timed out
    VDB_002 = "VDB_002"  # vector dimension mismatch
    VDB_003 = "VDB_003"  # vector store corrupted / unreadable
    VDB_004 = "VDB_004"  # vector store locked by another engine
    API_001 = "API_001"  # engine interface: a value that does not fit the declared type
    API_002 = "API_002"  # engine interface: an event stream position that is not this engine run's
    API_003 = "API_003"  # HTTP API: missing, malformed or wrong bearer token
    API_004 = "API_004"  # HTTP API: rate limit exceeded
    API_005 = "API_005"  # HTTP API: request body too large
    API_006 = "API_006"  # HTTP API: refused to start (a non-loopback bind without a token, port in use)
    API_007 = "API_007"  # remote engine unreachable or the connection dropped
    API_008 = "API_008"  # HTTP API: an unexpected error inside the engine (a bug: see the engine log)
    WORKFLOW_001 = "WORKFLOW_001"  # unknown workflow


class SymbiError(Exception):
    """An error a user can act on.

    ``offending`` is the input that caused it (a key, a value, an agent id);
    ``hint`` says what to do next. Neither may ever contain a secret value.
    """

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        hint: str | None = None,
        offending: Any = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = ErrorCode(code)
        self.message = message
        self.hint = hint
        self.offending = offending
        self.details = details or {}
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.code.value}: {self.message}"
        if self.offending is not None:
            text += f" (input: {self.offending!r})"
        if self.hint:
            text += f". Hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "message": self.message,
            "hint": self.hint,
            "offending": None if self.offending is None else str(self.offending),
            "details": self.details,
        }
