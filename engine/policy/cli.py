"""``symbiont policy ...``: check, eval, test and replay a policy file.

* ``policy check FILE [--json]``: every error and warning as
  ``FILE:LINE:COL: CODE message``; exit 0 if there are no errors, 1 if any.
* ``policy eval FILE --request JSON [--at TIME] [--trace]``: the decision and
  its explanation as JSON. ``JSON`` may be ``@path`` or ``-`` (stdin).
* ``policy test FILE CASES.yaml [-v]``: exit 0 if every case holds, 1 with a
  ``-expected``/``+actual`` diff per failing case.
* ``policy replay FILE [--data-dir D] [--json]``: decisions recorded in the
  audit trail that FILE would decide differently; exit 0 if none, 1 if some.

The default effect is ``--default-effect``, else the runtime config's
``policy.default_effect``, else Deny. Unusable input (missing file, bad
JSON, malformed cases, JSON nested deeper than 64 levels) exits 2 with
``CODE: message`` on stderr, like every ``symbiont`` command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.policy.cases import format_results, load_cases, run_cases
from engine.policy.engine import PolicyEngine
from engine.policy.files import read_policy_bytes
from engine.policy.model import EFFECTS
from engine.policy.parser import load_document, parse_document
from engine.policy.replay import iter_recorded_decisions, parse_time, replay
from engine.safeparse import MAX_DEPTH, NestingTooDeep, loads_json


def _default_effect(args: argparse.Namespace) -> str:
    if getattr(args, "default_effect", None):
        effect: str = args.default_effect  # argparse: one of EFFECTS (choices=)
        return effect
    from engine.config import find_config_file, load_config, resolve_data_dir

    path = find_config_file(None, resolve_data_dir(getattr(args, "data_dir", None)))
    if path is None:
        return "Deny"
    return load_config(path).config.policy.default_effect


def _engine(args: argparse.Namespace) -> PolicyEngine:
    data = read_policy_bytes(args.file)
    document = load_document(data, args.file)
    return PolicyEngine(document, default_effect=_default_effect(args), enable_cache=False)


def cmd_check(args: argparse.Namespace) -> int:
    data = read_policy_bytes(args.file)
    document, diagnostics = parse_document(data, args.file, analyze=True)
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    if args.json:
        print(
            json.dumps(
                {"file": args.file, "ok": errors == 0, "diagnostics": [d.to_dict() for d in diagnostics]}, indent=2
            )
        )
        return 0 if errors == 0 else 1
    for d in diagnostics:
        print(d.format(args.file))
    if errors:
        print(f"{args.file}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
        return 1
    count = len(document.policies) if document else 0
    tail = f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""
    print(f"ok: {args.file}: {count} polic{'ies' if count != 1 else 'y'}{tail}")
    return 0


def _read_request(text: str) -> Any:
    source = "--request"
    if text == "-":
        text, source = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        path = text[1:]
        try:
            text, source = Path(path).read_text(encoding="utf-8"), path
        except OSError as exc:
            raise SymbiError(
                ErrorCode.POLICY_004, f"cannot read the request file: {exc.strerror or exc}", offending=path
            ) from None
    try:
        return loads_json(text, what="the request")
    except NestingTooDeep as exc:
        raise SymbiError(
            ErrorCode.POLICY_004,
            f"{exc.message} (over the limit at line {exc.line} column {exc.column})",
            offending=source,
            hint=f"a policy request is a flat object of a few fields; at most {MAX_DEPTH} levels are read",
        ) from None
    except json.JSONDecodeError as exc:
        raise SymbiError(
            ErrorCode.POLICY_004,
            f"the request is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            offending=source,
            hint='e.g. --request \'{"resource_type": "File", "resource_path": "/tmp/x", "operation": "Read"}\'',
        ) from None


def cmd_eval(args: argparse.Namespace) -> int:
    engine = _engine(args)
    request = _read_request(args.request)
    at = None
    if args.at is not None:
        at = parse_time(args.at)
        if at is None:
            raise SymbiError(ErrorCode.POLICY_004, "--at must be epoch seconds or an ISO 8601 time", offending=args.at)
    decision = engine.evaluate(request, at=at)
    out = decision.to_dict()
    out.pop("cached", None)
    if args.trace:
        out["trace"] = engine.trace(request, at=at)
    print(json.dumps(out, indent=2))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        data = Path(args.cases).read_bytes()
    except OSError as exc:
        raise SymbiError(
            ErrorCode.POLICY_004, f"cannot read the cases file: {exc.strerror or exc}", offending=args.cases
        ) from None
    cases = load_cases(data, args.cases)
    results = run_cases(engine, cases)
    print(format_results(results, args.cases, verbose=args.verbose))
    return 0 if all(r.passed for r in results) else 1


def cmd_replay(args: argparse.Namespace) -> int:
    engine = _engine(args)
    from engine.config import resolve_data_dir

    data_dir = resolve_data_dir(args.replay_data_dir or args.data_dir)
    try:
        records = list(iter_recorded_decisions(data_dir))
    except SymbiError as exc:
        if exc.code is not ErrorCode.AUDIT_003:
            raise
        print(f"{exc.message}: {exc.offending} does not exist (nothing recorded yet)")
        return 0
    report = replay(engine, records)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return 1 if report.changed else 0
    shown = report.changed if args.limit is None else report.changed[: args.limit]
    for change in shown:
        print(change.describe())
    if len(shown) < len(report.changed):
        print(f"... and {len(report.changed) - len(shown)} more")
    for record, error in report.errors:
        print(f"#{record.seq}: cannot replay: {error.render()}")
    print(
        f"{report.total} recorded decision{'s' * (report.total != 1)}: {len(report.changed)} would change, "
        f"{report.unchanged} unchanged" + (f", {len(report.errors)} not replayable" if report.errors else "")
    )
    return 1 if report.changed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy check|eval|test|replay`` to the ``symbiont`` command line."""
    policy = subparsers.add_parser("policy", help="check, evaluate, test and replay access policies")
    sub = policy.add_subparsers(dest="policy_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", help="the policy file (access_policies.yaml)")
        p.add_argument("--default-effect", choices=EFFECTS, help="when no policy matches (default: config, else Deny)")

    check = sub.add_parser("check", help="validate a policy file: errors and warnings with line:column")
    check.add_argument("file", help="the policy file (access_policies.yaml)")
    check.add_argument("--json", action="store_true", help="print the diagnostics as JSON")
    check.set_defaults(func=cmd_check)

    ev = sub.add_parser("eval", help="decide one request and explain the decision (JSON)")
    common(ev)
    ev.add_argument("--request", required=True, help="the request as JSON, @file.json, or - for stdin")
    ev.add_argument("--at", help="evaluate time windows at this time (epoch seconds or ISO 8601)")
    ev.add_argument("--trace", action="store_true", help="also show every policy and why it did or did not match")
    ev.set_defaults(func=cmd_eval)

    test = sub.add_parser("test", help="run test cases against a policy file")
    common(test)
    test.add_argument("cases", help="YAML file of cases: name, request, expect")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.set_defaults(func=cmd_test)

    rp = sub.add_parser("replay", help="replay decisions recorded in the audit trail against a policy file")
    common(rp)
    rp.add_argument("--data-dir", dest="replay_data_dir", help="engine data dir holding audit.db")
    rp.add_argument("--json", action="store_true", help="print the report as JSON")
    rp.add_argument("--limit", type=int, help="show at most this many changes")
    rp.set_defaults(func=cmd_replay)
