"""``symbiont audit ...``: verify, query, tail, export the audit trail, and export its key.

Owns the ``audit`` subcommands (registered through :func:`register`). All of
them only read ``audit.db`` (WAL readers), so they are safe while an engine
runs. ``verify`` exits 0 when the chain is intact and 1 when it is not,
naming the first bad seq and what is wrong; bad input is ``AUDIT_003`` (exit 2
through ``engine.cli.main``). ``verify`` also compares the log with its
witness file (every signed head the engine wrote, kept outside the data dir:
``audit.witness_path`` of the data dir's config, or ``--witness FILE``), and
``--public-key`` pins the key the checkpoints must be signed with (an export
from ``symbiont audit key``), which catches a log re-signed with a new key.

    symbiont audit verify [--data-dir D] [--public-key PEM] [--witness FILE | --no-witness]
                          [--config FILE] [--json]
    symbiont audit query  [--since T] [--until T] [--type T] [--agent A] [--actor X]
                          [--decision D] [--text S] [--limit N] [--offset N] [--json]
    symbiont audit tail   [-n N] [-f] [filters] [--json]
    symbiont audit export [--out FILE] [filters]
    symbiont audit key    [--out FILE]

Times are ISO 8601 (``2026-11-27T10:00``, ``...Z``), epoch seconds, ``now``,
or relative (``10m``, ``2h``, ``1d`` = that long ago).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from engine.audit.keys import PRIVATE_NAME, PUBLIC_NAME, key_id, load_public_key, public_pem
from engine.audit.model import AuditRecord
from engine.audit.query import AuditFilter, AuditReader
from engine.audit.store import resolve_db_path
from engine.audit.verify import verify
from engine.audit.witness import resolve_witness_path
from engine.config import find_config_file, load_config, resolve_data_dir
from engine.errors import ErrorCode, SymbiError

__all__ = ["format_record", "register"]


def _db(args: argparse.Namespace) -> Path:
    return resolve_db_path(resolve_data_dir(getattr(args, "data_dir", None)))


def _filter(args: argparse.Namespace) -> AuditFilter:
    return AuditFilter.build(
        since=args.since,
        until=args.until,
        types=args.type,
        agent=args.agent,
        actor=args.actor,
        decision=args.decision,
        text=args.text,
    )


def format_record(rec: AuditRecord) -> str:
    """One line per event: local time, seq, type, decision, actor, agent, action, resource."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.ts)) + f".{rec.ts_us % 1_000_000 // 1000:03d}"
    parts = [stamp, f"#{rec.seq:<7}", f"{rec.type:<18}", f"{rec.decision:<5}", rec.actor]
    if rec.agent and f"agent:{rec.agent}" != rec.actor:
        parts.append(f"agent={rec.agent}")
    if rec.action:
        parts.append(rec.action)
    if rec.resource:
        parts.append(rec.resource)
    return "  ".join(parts)


def _emit(records: list[AuditRecord], as_json: bool) -> None:
    for rec in records:
        if as_json:
            print(json.dumps(rec.to_dict(), ensure_ascii=False, separators=(",", ":")))
        else:
            print(format_record(rec))


def _witness(args: argparse.Namespace, db: Path) -> Path | None:
    """``--witness``, else the one the engine writes for this data dir (its config's ``audit.witness_path``)."""
    if args.no_witness:
        return None
    if args.witness:
        return Path(args.witness).expanduser()
    data_dir = db.parent
    configured = load_config(find_config_file(args.config, data_dir)).config.audit.witness_path
    return resolve_witness_path(data_dir, configured)


def cmd_verify(args: argparse.Namespace) -> int:
    db = _db(args)
    report = verify(db, public_key=args.public_key, witness=_witness(args, db))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0 if report.ok else 1


def cmd_query(args: argparse.Namespace) -> int:
    flt = _filter(args)

    async def run() -> tuple[list[AuditRecord], int]:
        async with AuditReader(_db(args)) as reader:
            rows = await reader.query(flt, limit=args.limit, offset=args.offset, newest_first=args.newest_first)
            total = await reader.count(flt) if not args.json else -1
            return rows, total

    rows, total = asyncio.run(run())
    _emit(rows, args.json)
    if not args.json:
        shown = f"{args.offset + 1}-{args.offset + len(rows)}" if rows else "none"
        print(f"-- {shown} of {total} matching events", file=sys.stderr)
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    flt = _filter(args)
    if args.n < 0:
        raise SymbiError(ErrorCode.AUDIT_003, "-n must be >= 0", offending=args.n)

    async def run() -> None:
        async with AuditReader(_db(args)) as reader:
            records = await reader.tail(args.n, flt) if args.n else []
            _emit(records, args.json)
            if not args.follow:
                return
            after = records[-1].seq if records else (await reader.head())[0]
            followed = 0
            sys.stdout.flush()
            async for rec in reader.follow(flt, after_seq=after, poll_interval=args.interval):
                _emit([rec], args.json)
                sys.stdout.flush()
                followed += 1
                if args.max and followed >= args.max:
                    return

    asyncio.run(run())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    flt = _filter(args)

    async def run() -> int:
        async with AuditReader(_db(args)) as reader:
            return await reader.export_jsonl(args.out if args.out and args.out != "-" else sys.stdout, flt)

    count = asyncio.run(run())
    if args.out and args.out != "-":
        print(f"exported {count} events to {args.out}", file=sys.stderr)
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    kdir = _db(args).parent / "keys"
    source = kdir / PUBLIC_NAME if (kdir / PUBLIC_NAME).is_file() else kdir / PRIVATE_NAME
    if not source.is_file():
        raise SymbiError(
            ErrorCode.AUDIT_003,
            "no runtime signing key in this data dir",
            offending=str(kdir),
            hint="start the engine once",
        )
    key = load_public_key(source)
    pem = public_pem(key)
    if args.out:
        Path(args.out).write_bytes(pem)
        print(f"{key_id(key)} written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(pem.decode("ascii"))
        print(f"# key id: {key_id(key)}", file=sys.stderr)
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: when absent, keep `symbiont --data-dir D audit ...` from the top-level parser
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help="engine data dir (holds audit.db)")


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help='start time: ISO 8601, epoch seconds, or relative like "10m" (ago)')
    p.add_argument("--until", help="end time (same formats)")
    p.add_argument("--type", action="append", help="event type, repeatable or comma-separated; 'agent.*' = prefix")
    p.add_argument("--agent", help="agent id")
    p.add_argument("--actor", help="engine, operator or agent:<id>")
    p.add_argument("--decision", help="allow, deny, n/a, ...")
    p.add_argument("--text", help="substring of type, agent, actor, action, resource or details")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def register(subparsers: Any) -> None:
    """Add ``audit`` and its subcommands to ``symbiont``."""
    audit = subparsers.add_parser("audit", help="verify, query, tail and export the tamper-evident audit trail")
    sub = audit.add_subparsers(dest="audit_command", required=True)

    v = sub.add_parser("verify", help="check the hash chain and signed checkpoints (exit 0 intact, 1 not)")
    _add_common(v)
    v.add_argument(
        "--public-key",
        help="verify against this exported public key (PEM, from `symbiont audit key`) instead of the data dir's: "
        "catches a log re-signed with a new key",
    )
    w = v.add_mutually_exclusive_group()
    w.add_argument(
        "--witness",
        help="the witness file of signed heads to check the log against (default: the one the engine writes "
        "for this data dir, see audit.witness_path)",
    )
    w.add_argument("--no-witness", action="store_true", help="do not check the log against a witness file")
    v.add_argument("--config", help="runtime_config.toml to read audit.witness_path from (default: as the engine)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=cmd_verify)

    q = sub.add_parser("query", help="find events by time, type, agent, decision and text, with paging")
    _add_common(q)
    _add_filters(q)
    q.add_argument("--limit", type=_int, default=50, help="events per page (default 50)")
    q.add_argument("--offset", type=_int, default=0, help="skip this many matching events")
    q.add_argument("--newest-first", action="store_true", help="newest events first")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=cmd_query)

    t = sub.add_parser("tail", help="show the newest events; -f keeps following new ones")
    _add_common(t)
    _add_filters(t)
    t.add_argument("-n", type=_int, default=20, help="how many recent events (default 20)")
    t.add_argument("-f", "--follow", action="store_true", help="keep printing new events as they are written")
    t.add_argument("--max", type=_int, default=0, help="with -f: stop after this many new events")
    t.add_argument("--interval", type=float, default=0.25, help="with -f: poll interval in seconds")
    t.add_argument("--json", action="store_true", help="one JSON object per line")
    t.set_defaults(func=cmd_tail)

    e = sub.add_parser("export", help="write matching events as JSON lines")
    _add_common(e)
    _add_filters(e)
    e.add_argument("--out", help="output file (default: standard output)")
    e.set_defaults(func=cmd_export)

    k = sub.add_parser("key", help="print the runtime's public signing key (PEM) for independent verification")
    _add_common(k)
    k.add_argument("--out", help="write the PEM to this file")
    k.set_defaults(func=cmd_key)
