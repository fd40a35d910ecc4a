"""``symbiont tools ...``: SchemaPin on schema files, and the operator's review of MCP tools.

Schema files (no data dir needed):

* ``symbiont tools sign SCHEMA.json --key PRIVATE.pem`` prints the base64 signature.
* ``symbiont tools verify SCHEMA.json --signature SIG --domain DOMAIN (--key PUBLIC.pem | --discovery schemapin.json)``
  exits 0 when valid, 1 with the reason when not. ``SCHEMA.json`` may also be a
  signed package ``{"schema": ..., "signature": ...}`` (what ``schemapin-sign`` writes);
  then ``--signature`` may be left out.

The review (on the data dir's ``mcp_tools.db``; safe while an engine runs — SQLite WAL,
and a waiting engine polls the decisions of per-call approvals)::

    symbiont tools list [--state S] [--json]
    symbiont tools show TOOL_ID [--json]
    symbiont tools approve TOOL_ID [--scope always|session|once] [--note N] [--hash DEF_HASH]
    symbiont tools reject TOOL_ID --reason R
    symbiont tools defer TOOL_ID [--note N]
    symbiont tools reanalyze TOOL_ID
    symbiont tools calls [--all] [--json]
    symbiont tools allow-call CALL_ID --sha ARGUMENTS_SHA256
    symbiont tools deny-call CALL_ID [--reason R]
    symbiont tools keys [--json]
    symbiont tools accept-key DOMAIN | reject-key DOMAIN

Decisions are made as ``cli:<user>`` (``--actor`` to name someone else) and audited:
straight into the audit trail when no engine runs, otherwise through the registry's
outbox, which the running engine copies into its trail within a second (the trail has
one writer). Errors print ``CODE: message`` and a hint, exit 2; ``approve`` whose
signing failed exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import find_config_file, load_config, resolve_data_dir, resolve_under
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.schemapin import (
    KeyResolver,
    SchemaVerifier,
    load_public_key,
    public_key_pem,
    sign_schema,
    well_known_document,
)
from engine.safeparse import NestingTooDeep, loads_json

if TYPE_CHECKING:
    from engine.mcp_tools.registry import ToolRecord


def _read_json(path: str) -> Any:
    try:
        return loads_json(Path(path).read_text(encoding="utf-8"), what=path)
    except OSError as exc:
        raise SymbiError(ErrorCode.SCHEMA_001, f"cannot read {path}: {exc.strerror}", offending=path) from exc
    except NestingTooDeep as exc:
        raise SymbiError(
            ErrorCode.SCHEMA_001,
            str(exc),
            offending=path,
            hint="a tool schema or discovery document is a few levels deep; check the file",
        ) from None
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


# -- the review, from another process ------------------------------------------------------


class _CliAudit:
    """The audit hook of a CLI decision: the trail itself when no engine holds it, else the outbox."""

    def __init__(self, data_dir: Path, registry: Any, audit_config: Any = None) -> None:
        self.data_dir = data_dir
        self.registry = registry
        self.audit_config = audit_config  # the [audit] section: witness path, checkpoint cadence
        self.trail: Any = None
        self.via_outbox = False
        self.notes: list[dict[str, Any]] = []

    async def open(self) -> None:
        from engine.audit import AuditTrail

        ac = self.audit_config
        trail = (
            AuditTrail(self.data_dir)
            if ac is None
            else AuditTrail(
                self.data_dir,
                durability=ac.durability,
                checkpoint_every=ac.checkpoint_every,
                checkpoint_interval=ac.checkpoint_interval,
                witness_path=ac.witness_path,
            )
        )
        try:
            await trail.open()
        except SymbiError as exc:
            if exc.code is ErrorCode.AUDIT_001 and "already open" in exc.message:
                self.via_outbox = True  # an engine runs: it copies our records into its trail
                return
            raise
        self.trail = trail

    async def __call__(self, **fields: Any) -> None:
        fields.setdefault("details", {})
        fields["details"] = dict(fields["details"], via="cli")
        if self.trail is not None:
            await self.trail.append(**fields)
        else:
            await self.registry.outbox_add(fields)

    def on_change(self, kind: str, details: dict[str, Any]) -> None:
        self.notes.append({"kind": kind, "details": details})

    async def close(self) -> None:
        if self.via_outbox:
            for note in self.notes:  # the engine publishes them to the console
                await self.registry.outbox_add({"notify": note})
        if self.trail is not None:
            await self.trail.close()


async def _records_nothing(**fields: Any) -> None:
    """The audit hook of a read-only command: it has nothing to record, so an attempt is refused (fail closed)."""
    raise SymbiError(
        ErrorCode.AUDIT_001,
        f"a read-only command cannot record {fields.get('type')!r}",
        hint="use a command that opens the audit trail",
    )


async def _with_service(
    args: argparse.Namespace, work: Callable[[Any], Awaitable[int]], *, audited: bool = True
) -> int:
    from engine.mcp_tools.client import McpClientPool
    from engine.mcp_tools.gate import ToolService, refuse_every_call
    from engine.mcp_tools.keystore import KeyStore
    from engine.mcp_tools.operator_key import OperatorKey
    from engine.mcp_tools.registry import ToolRegistry

    data_dir = resolve_data_dir(getattr(args, "data_dir", None))
    db = data_dir / "mcp_tools.db"
    if not db.is_file():
        raise SymbiError(
            ErrorCode.MCP_002,
            f"no tool registry in {data_dir}",
            offending=str(db),
            hint="start the engine with MCP servers configured first, or pass --data-dir",
        )
    config = load_config(find_config_file(getattr(args, "config", None), data_dir)).config
    registry = await ToolRegistry(db).open()
    audit = _CliAudit(data_dir, registry, config.audit)
    service = None
    try:
        if audited:
            await audit.open()
        service = ToolService(
            registry=registry,
            pool=McpClientPool(),
            verifier=None,
            keystore=KeyStore(resolve_under(data_dir, config.schemapin.key_store_path)),
            policy_check=refuse_every_call,  # the CLI makes no tool calls
            audit=audit if audited else _records_nothing,
            on_change=audit.on_change,
            operator_key=OperatorKey.in_data_dir(data_dir),
            require_review=config.mcp.require_review,
            auto_approve_at=config.mcp.auto_approve_at,
            auto_reject_at=config.mcp.auto_reject_at,
            review_timeout=config.mcp.review_timeout,
        )
        return await work(service)
    finally:
        try:
            await audit.close()
        finally:
            await registry.close()


def _run(args: argparse.Namespace, work: Callable[[Any], Awaitable[int]], *, audited: bool = True) -> int:
    return asyncio.run(_with_service(args, work, audited=audited))


def _actor(args: argparse.Namespace) -> str:
    """``cli:<name>`` (the audit trail's ``<kind>:<id>`` actor form): ``--actor`` or the login name."""
    name = getattr(args, "actor", None)
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "operator"
    name = "".join(c for c in str(name) if c.isprintable() and not c.isspace())[:64] or "operator"
    return name if name.startswith("cli:") else f"cli:{name}"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _rec_json(rec: ToolRecord) -> dict[str, Any]:
    out = rec.to_dict()
    out["approved"] = rec.approved
    out["max_severity"] = rec.max_severity
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from engine.mcp_tools.registry import STATES

    state = None
    if args.state:
        state = next((s for s in STATES if s.lower() == args.state.lower()), None)
        if state is None:
            raise SymbiError(
                ErrorCode.MCP_007,
                f"unknown review state {args.state!r}",
                offending=args.state,
                hint=f"one of {', '.join(STATES)}",
            )

    async def work(svc: Any) -> int:
        await svc.expire_reviews()
        recs = await svc.registry.list_tools(state=state)
        if args.json:
            print(json.dumps([_rec_json(r) for r in recs], indent=2, default=str))
            return 0
        if not recs:
            print("no tools" + (f" in {state}" if state else ""))
            return 0
        print(f"{'TOOL':<32} {'STATE':<20} {'SCORE':>5} {'WORST':<8} {'SIGNED':<6} {'SCOPE':<7} UPDATED")
        for r in recs:
            print(
                f"{r.id:<32} {r.state + ('*' if r.deferred else ''):<20} {r.score:>5} {r.max_severity or '-':<8} "
                f"{'yes' if r.verified else 'no':<6} {r.scope or '-':<7} {_when(r.updated_at)}"
            )
        if any(r.deferred for r in recs):
            print("* deferred")
        return 0

    return _run(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        rec = await svc.get_tool(args.tool_id)
        history = await svc.tool_history(args.tool_id)
        if args.json:
            print(json.dumps({**_rec_json(rec), "history": history}, indent=2, default=str))
            return 0
        v = rec.verification
        print(f"{rec.id}   {rec.state}{' (deferred)' if rec.deferred else ''}")
        print(f"definition hash: {rec.def_hash}")
        print(
            f"approved hash:   {rec.approved_hash or '-'}   scope: {rec.scope or '-'}   usable: {'yes' if rec.approved else 'no'}"
        )
        print(
            f"risk score:      {rec.score} ({rec.analyzer or 'not analysed'})   worst finding: {rec.max_severity or '-'}"
        )
        if v.get("valid"):
            print(f"signature:       valid, {v.get('domain')} key {v.get('fingerprint')} (pin: {v.get('pin_status')})")
        else:
            print(f"signature:       NOT verified: {v.get('error_code')}: {v.get('error')}")
        if rec.note or rec.decided_by:
            print(f"last decision:   {rec.decided_by or '-'}: {rec.note}")
        print("definition:")
        for line in json.dumps(rec.definition, indent=2, ensure_ascii=False).splitlines():
            print("  " + line)
        print(f"findings ({len(rec.findings)}):")
        for f in rec.findings:
            where = f" [{f.get('field')}]" if f.get("field") else ""
            print(f"  {f.get('severity', '?'):<8} {f.get('kind', '?')}{where}: {f.get('reason', '')}")
            if f.get("evidence"):
                print(f"           {str(f['evidence'])[:300]!r}")
        if rec.diff:
            print("diff against the approved definition:")
            for line in rec.diff.splitlines():
                print("  " + line)
        print("history:")
        for h in history:
            print(f"  {_when(h['ts'])}  {h['from_state'] or '-':>19} -> {h['to_state']:<19} {h['actor']}: {h['note']}")
        return 0

    return _run(args, work)


def cmd_approve(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        rec = await svc.approve_tool(
            args.tool_id, args.note or "", actor=_actor(args), expected_hash=args.hash, scope=args.scope
        )
        if rec.state == "SigningFailed":
            note = (await svc.tool_history(args.tool_id))[-1]["note"]
            print(f"{rec.id}: SigningFailed: {note}", file=sys.stderr)
            return 1
        extra = f", signed by operator key {svc.operator_fingerprint()}" if rec.state == "Signed" else ""
        print(f"{rec.id}: {rec.state} (scope {rec.scope}{extra})")
        return 0

    return _run(args, work)


def cmd_reject(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        rec = await svc.reject_tool(args.tool_id, args.reason, actor=_actor(args))
        print(f"{rec.id}: {rec.state}")
        return 0

    return _run(args, work)


def cmd_defer(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        rec = await svc.defer_tool(args.tool_id, args.note or "", actor=_actor(args))
        print(f"{rec.id}: {rec.state} (deferred)")
        return 0

    return _run(args, work)


def cmd_reanalyze(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        rec = await svc.reanalyze_tool(args.tool_id, actor=_actor(args))
        print(f"{rec.id}: {rec.state} (score {rec.score}, {len(rec.findings)} findings)")
        return 0

    return _run(args, work)


def cmd_calls(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        rows = await svc.registry.calls(undecided=not args.all)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return 0
        if not rows:
            print("no calls waiting for approval")
            return 0
        now = time.time()
        print(f"{'CALL':<22} {'TOOL':<24} {'AGENT':<14} {'DECISION':<10} {'EXPIRES':<8} SHA256 / ARGUMENTS")
        for r in rows:
            left = r["expires_at"] - now
            expires = "expired" if left <= 0 else f"{int(left)}s"
            print(
                f"{r['id']:<22} {r['tool_id']:<24} {r['agent_id'][:14]:<14} {r['decision'] or 'waiting':<10} {expires:<8} {r['arguments_sha256']}"
            )
            print(f"{'':<22} {json.dumps(r['arguments'], ensure_ascii=False)[:200]}")
        return 0

    return _run(args, work, audited=False)


async def _decide_call(svc: Any, args: argparse.Namespace, decision: str) -> int:
    row = await svc.registry.decide_call(
        args.call_id,
        decision,
        actor=_actor(args),
        sha=getattr(args, "sha", None),
        reason=getattr(args, "reason", "") or "",
    )
    await svc._audit(
        type="tool.call",
        action=f"call-{decision}",
        resource=row["tool_id"],
        decision="allow" if decision == "approved" else "deny",
        actor=_actor(args),
        agent=row["agent_id"],
        details={"call_id": row["id"], "arguments_sha256": row["arguments_sha256"], "reason": row["reason"]},
    )
    print(f"{row['id']}: {decision} (the waiting engine picks it up within a second)")
    return 0


def cmd_allow_call(args: argparse.Namespace) -> int:
    return _run(args, lambda svc: _decide_call(svc, args, "approved"))


def cmd_deny_call(args: argparse.Namespace) -> int:
    return _run(args, lambda svc: _decide_call(svc, args, "denied"))


def cmd_keys(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        pins = svc.keystore.domains()
        changes = svc.key_changes()
        try:
            operator = svc.operator_fingerprint()
        except SymbiError as exc:
            operator = f"unusable ({exc.code.value}: {exc.message})"
        if args.json:
            safe = [{k: v for k, v in c.items() if k != "new_public_key_pem"} for c in changes]
            print(json.dumps({"operator_key": operator, "pinned": pins, "key_changes": safe}, indent=2, default=str))
            return 0
        print(f"operator key: {operator}")
        print("pinned domains:" if pins else "pinned domains: none")
        for domain, e in sorted(pins.items()):
            print(f"  {domain:<28} {e['fingerprint']}  pinned {_when(e.get('pinned_at'))}  ({e.get('source') or '-'})")
        if changes:
            print("pending key changes (the domain's tools are blocked until you decide):")
            for c in changes:
                print(
                    f"  {c['domain']}\n    pinned: {c.get('old_fingerprint')}\n    new:    {c['new_fingerprint']}  seen {_when(c.get('seen_at'))}"
                )
        return 0

    return _run(args, work, audited=False)


def cmd_accept_key(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        change = await svc.accept_key_change(args.domain, actor=_actor(args))
        print(f"{args.domain}: now pinned to {change['new_fingerprint']}")
        return 0

    return _run(args, work)


def cmd_reject_key(args: argparse.Namespace) -> int:
    async def work(svc: Any) -> int:
        await svc.reject_key_change(args.domain, actor=_actor(args))
        print(f"{args.domain}: key change rejected; the pinned key stays")
        return 0

    return _run(args, work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tools ...`` to the ``symbiont`` command line."""
    tools = subparsers.add_parser("tools", help="SchemaPin signing and verification; review of MCP tools and calls")
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

    def review(name: str, help_text: str, func: Any, *, decides: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        # SUPPRESS: when absent, keep `symbiont --data-dir D tools ...` from the top-level parser
        p.add_argument("--data-dir", default=argparse.SUPPRESS, help="engine data dir (holds mcp_tools.db)")
        p.add_argument("--config", help="runtime_config.toml (default: the data dir's, or SYMBI_CONFIG)")
        if decides:
            p.add_argument("--actor", help="who decides, recorded as cli:NAME (default: your login name)")
        p.set_defaults(func=func)
        return p

    p = review("list", "list MCP tools and their review state", cmd_list, decides=False)
    p.add_argument("--state", help="only this state (PendingReview, AwaitingHumanReview, Signed, ...)")
    p.add_argument("--json", action="store_true")
    p = review("show", "a tool's definition, findings, score, signature, diff and history", cmd_show, decides=False)
    p.add_argument("tool_id", help="server/tool")
    p.add_argument("--json", action="store_true")
    p = review("approve", "approve the definition a tool serves now", cmd_approve)
    p.add_argument("tool_id")
    p.add_argument(
        "--scope",
        choices=("always", "session", "once"),
        default="always",
        help="always (signed with your operator key), session (until the engine restarts), once (one call)",
    )
    p.add_argument("--note", help="why (kept in the history and the audit trail)")
    p.add_argument("--hash", help="the definition hash you reviewed (from `tools show`); refused if it changed since")
    p = review("reject", "reject a tool (a reason is required)", cmd_reject)
    p.add_argument("tool_id")
    p.add_argument("--reason", required=True)
    p = review("defer", "decide later: the tool stays waiting", cmd_defer)
    p.add_argument("tool_id")
    p.add_argument("--note")
    p = review("reanalyze", "run the analyzer on a tool again", cmd_reanalyze)
    p.add_argument("tool_id")
    p = review("calls", "tool calls waiting for a human's approval", cmd_calls, decides=False)
    p.add_argument("--all", action="store_true", help="decided ones too")
    p.add_argument("--json", action="store_true")
    p = review("allow-call", "approve one waiting call (its arguments' hash is required)", cmd_allow_call)
    p.add_argument("call_id")
    p.add_argument("--sha", required=True, help="arguments_sha256 shown by `tools calls`")
    p = review("deny-call", "deny one waiting call", cmd_deny_call)
    p.add_argument("call_id")
    p.add_argument("--reason", default="")
    p = review("keys", "pinned SchemaPin domains, pending key changes, the operator key", cmd_keys, decides=False)
    p.add_argument("--json", action="store_true")
    p = review("accept-key", "accept a domain's new SchemaPin key", cmd_accept_key)
    p.add_argument("domain")
    p = review("reject-key", "reject a domain's new key (keep the pinned one)", cmd_reject_key)
    p.add_argument("domain")
