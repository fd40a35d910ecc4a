"""The agent protocol's wire format: JSON-RPC 2.0, one message per line.

An agent talks to the runtime over one channel (a Unix socket, never its log
output). The first message must be ``hello`` with the launch token. Errors
carry a JSON-RPC code and, in ``data``, our error code, message and hint, so
an agent sees e.g. ``PROTO_003: unknown method 'fly'``. A message nested
deeper than :data:`engine.safeparse.MAX_DEPTH` (64) levels is refused with
``PROTO_001`` before the recursive JSON decoder sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.safeparse import MAX_DEPTH, NestingTooDeep, loads_json

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
APPLICATION_ERROR = -32000

METHODS = (
    "hello",
    "log",
    "heartbeat",
    "status",
    "input",
    "result",
    "tool.call",
    "bus.send",
    "bus.receive",
    "bus.subscribe",
    "memory.put",
    "memory.query",
    "secret.get",
)


@dataclass(frozen=True)
class Request:
    id: int | str | None  # None for a notification (no response expected)
    method: str
    params: dict[str, Any]


class ProtocolError(Exception):
    """A request that cannot be served, with its JSON-RPC and Symbi codes."""

    def __init__(self, rpc_code: int, error: SymbiError, request_id: Any = None) -> None:
        super().__init__(error.render())
        self.rpc_code = rpc_code
        self.error = error
        self.request_id = request_id


def parse(line: bytes) -> Request:
    try:
        msg = loads_json(line, max_depth=MAX_DEPTH, what="the request")
    except NestingTooDeep as exc:
        raise ProtocolError(
            INVALID_REQUEST,
            SymbiError(
                ErrorCode.PROTO_001,
                exc.message,
                offending=f"line {exc.line}, column {exc.column}",
                hint=f"send at most {MAX_DEPTH} levels of nested arrays and objects; "
                "large or deep data belongs in a file in the workspace",
            ),
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(
            PARSE_ERROR,
            SymbiError(ErrorCode.PROTO_001, f"malformed JSON: {exc}", hint="send one JSON-RPC object per line"),
        ) from None
    if not isinstance(msg, dict):
        raise ProtocolError(
            INVALID_REQUEST,
            SymbiError(ErrorCode.PROTO_001, "a request must be a JSON object", offending=type(msg).__name__),
        )
    request_id = msg.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (int, str))):
        raise ProtocolError(INVALID_REQUEST, SymbiError(ErrorCode.PROTO_001, "id must be a string or an integer"))
    if msg.get("jsonrpc") != "2.0":
        raise ProtocolError(
            INVALID_REQUEST,
            SymbiError(ErrorCode.PROTO_001, 'missing "jsonrpc": "2.0"', offending=msg.get("jsonrpc")),
            request_id,
        )
    method = msg.get("method")
    if not isinstance(method, str) or not method:
        raise ProtocolError(
            INVALID_REQUEST, SymbiError(ErrorCode.PROTO_001, "method must be a non-empty string"), request_id
        )
    params = msg.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ProtocolError(
            INVALID_PARAMS,
            SymbiError(ErrorCode.PROTO_001, "params must be an object", offending=method, hint="use named parameters"),
            request_id,
        )
    return Request(request_id, method, params)


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode() + b"\n"


def response(request_id: Any, result: Any) -> bytes:
    return encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_response(request_id: Any, rpc_code: int, error: SymbiError) -> bytes:
    return encode(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {
                "code": rpc_code,
                "message": error.render(),
                "data": {"code": error.code.value, "message": error.message, "hint": error.hint},
            },
        }
    )


def rpc_code_for(error: SymbiError) -> int:
    if error.code is ErrorCode.PROTO_003:
        return METHOD_NOT_FOUND
    if error.code is ErrorCode.PROTO_001:
        return INVALID_PARAMS
    return APPLICATION_ERROR
