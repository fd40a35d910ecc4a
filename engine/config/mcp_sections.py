"""The MCP sections: ``[mcp]`` with its ``[[mcp.servers]]``, and ``[schemapin]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar

from engine.config.schema import _bad, _fld, _key_label, _Section, _Spec, _type_name
from engine.errors import ErrorCode, SymbiError


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
