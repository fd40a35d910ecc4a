"""Errors as the HTTP API answers them: ``{"error": {"code", "message", "hint", "offending"}}``
with the status that fits the engine's code. Bad input is a 4xx, never a 500."""

from __future__ import annotations

from typing import Any

from engine.errors import ErrorCode, SymbiError

C = ErrorCode
NOT_FOUND = {C.AGENT_001, C.SEC_004, C.CTX_004, C.MCP_002, C.WORKFLOW_001}
CONFLICT = {C.AGENT_002, C.AGENT_003, C.AGENT_006, C.RESOURCE_001, C.RESOURCE_003, C.MCP_007, C.SCHED_002, C.API_002}
FORBIDDEN = {C.CONSOLE_001, C.POLICY_001, C.SEC_001}
UNPROCESSABLE = {
    C.API_001,
    C.AGENT_004,
    C.POLICY_002,
    C.POLICY_004,
    C.SEC_005,
    C.AUDIT_003,
    C.CONFIG_001,
    C.CTX_002,
    C.CTX_003,
    C.RAG_003,
    C.PROTO_001,
    C.SANDBOX_001,
}
STATUS = {C.API_003: 401, C.API_004: 429, C.API_005: 413, C.MCP_006: 409, C.SCHEMA_004: 404}
UNAVAILABLE = {C.RUNTIME_001, C.AUDIT_001, C.STORE_001, C.MCP_005, C.RAG_002, C.SEC_006}


def status_for(code: ErrorCode) -> int:
    """The HTTP status of an engine error."""
    if code in STATUS:
        return STATUS[code]
    if code in NOT_FOUND:
        return 404
    if code in CONFLICT:
        return 409
    if code in FORBIDDEN:
        return 403
    if code in UNPROCESSABLE:
        return 422
    if code in UNAVAILABLE:
        return 503
    return 400


def error_body(error: SymbiError) -> dict[str, Any]:
    return {
        "error": {
            "code": error.code.value,
            "message": error.message,
            "hint": error.hint,
            "offending": None if error.offending is None else str(error.offending),
        }
    }


def error_from_body(body: Any, status: int) -> SymbiError:
    """The SymbiError an API error body describes (the remote client raises it)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        return SymbiError(
            ErrorCode.API_001, f"the engine answered HTTP {status} without an error body", offending=status
        )
    try:
        code = ErrorCode(str(detail.get("code")))
    except ValueError:
        code = ErrorCode.API_001
    return SymbiError(
        code,
        str(detail.get("message") or ""),
        hint=detail.get("hint"),
        offending=detail.get("offending"),
    )
