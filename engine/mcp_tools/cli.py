"""``symbiont tools sign|verify``: SchemaPin on standalone schema files, for scripts and interop checks.

* ``symbiont tools sign SCHEMA.json --key PRIVATE.pem`` prints the base64 signature.
* ``symbiont tools verify SCHEMA.json --signature SIG --domain DOMAIN (--key PUBLIC.pem | --discovery schemapin.json)``
  exits 0 when valid, 1 with the reason when not. ``SCHEMA.json`` may also be a
  signed package ``{"schema": ..., "signature": ...}`` (what ``schemapin-sign`` writes);
  then ``--signature`` may be left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.schemapin import (
    KeyResolver,
    SchemaVerifier,
    load_public_key,
    public_key_pem,
    sign_schema,
    well_known_document,
)


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SymbiError(ErrorCode.SCHEMA_001, f"cannot read {path}: {exc.strerror}", offending=path) from exc
    except ValueError as exc:
        raise SymbiError(ErrorCode.SCHEMA_001, f"{path} is not JSON: {exc}", offending=path) from exc


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SymbiError(ErrorCode.SCHEMA_001, f"cannot read {path}: {exc.strerror}", offending=path) from exc


def cmd_sign(args: argparse.Namespace) -> int:
    schema = _read_json(args.schema)
    print(sign_schema(schema, _read_text(args.key)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    doc = _read_json(args.schema)
    signature = args.signature
    if signature is None and isinstance(doc, dict) and "schema" in doc and "signature" in doc:
        doc, signature = doc["schema"], doc["signature"]
    if signature is None:
        raise SymbiError(ErrorCode.SCHEMA_002, "no signature given", hint="pass --signature or a signed package file")
    if args.key:
        pem = _read_text(args.key)
        load_public_key(pem)
        discovery = well_known_document(public_key_pem(load_public_key(pem)))
    else:
        discovery = _read_json(args.discovery)
    resolver = KeyResolver(allow_network=False)
    resolver.add_document(args.domain, discovery)
    result = asyncio.run(SchemaVerifier(resolver, None).verify(doc, signature, args.domain))
    if result.valid:
        print(f"valid: signed by {result.fingerprint} for {args.domain}")
        return 0
    print(f"invalid: {result.error_code}: {result.error}", file=sys.stderr)
    return 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``tools sign|verify`` to the ``symbiont`` command line."""
    tools = subparsers.add_parser("tools", help="SchemaPin signing and verification of MCP tool schemas")
    sub = tools.add_subparsers(dest="tools_command", required=True)
    sign = sub.add_parser("sign", help="print the SchemaPin signature of a schema file")
    sign.add_argument("schema", help="the schema / tool definition (JSON)")
    sign.add_argument("--key", required=True, help="ECDSA P-256 private key (PEM)")
    sign.set_defaults(func=cmd_sign)
    ver = sub.add_parser("verify", help="verify a schema's SchemaPin signature (exit 0 valid, 1 not)")
    ver.add_argument("schema", help="the schema (JSON), or a signed package {schema, signature}")
    ver.add_argument("--signature", help="base64 signature (default: from a signed package)")
    ver.add_argument("--domain", required=True, help="the signing domain")
    src = ver.add_mutually_exclusive_group(required=True)
    src.add_argument("--key", help="the domain's public key (PEM)")
    src.add_argument("--discovery", help="the domain's .well-known/schemapin.json (checks revoked_keys too)")
    ver.set_defaults(func=cmd_verify)
