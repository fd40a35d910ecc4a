"""Verification of an audit log: is the chain exactly what the engine wrote?

Owns :func:`verify` and :class:`VerifyReport`. One streaming pass over
``events`` in ``seq`` order recomputes every hash (SQLite builds each record's
canonical bytes, Python hashes them), checks every ``prev_hash`` link and the
numbering, and compares the chain with every signed checkpoint. The first
anomaly is then *diagnosed* (slow path, a few lookups) to name what happened:

===========================  ==================================================
``modified``                 an event's fields changed (its hash, or the next link, no longer matches)
``inserted``                 an event that the engine never wrote sits in the chain
``deleted``                  an event is missing (a gap, or the rest renumbered down)
``reordered``                an event sits at another sequence number than it was written with
``truncated``                events after the end were removed (a signed checkpoint, or a clean
                             close, vouches for more than is there)
``bad_checkpoint_signature`` a checkpoint's signature does not verify (forged or edited)
``rewritten``                the chain is self-consistent but a signed checkpoint's head no longer exists
``missing_checkpoint``       a checkpoint the writer always writes is gone
``missing_key``              checkpoints exist but no public key was found to check them
``unreadable``               the file is damaged beyond reading
===========================  ==================================================

With a *witness* (``witness=``: the file where the engine also appended every
signed head, outside the data dir; see :mod:`engine.audit.witness`), the log
must also agree with every witnessed head: a log that ends before a witnessed
seq is ``truncated`` (even if the newest checkpoints were deleted too and the
session marked as crashed), one whose event at a witnessed seq has another
hash is ``rewritten``, and one whose checkpoints are checked with another key
than the witnessed heads were signed with is ``rewritten`` (re-signed with a
new key). A missing witness file for a log with checkpoints is a warning.

Events after the last checkpoint are covered by hashes but no signature; the
report counts them (``unsigned_tail``): normal while an engine runs or after a
crash (the next open records ``engine.recovered``). A writer that closed
cleanly leaves a ``close`` checkpoint at the head, so after a clean close any
removal of tail events is detected.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.audit.canonical import GENESIS_HASH, RECORD_CANONICAL_SQL, record_hash
from engine.audit.keys import PRIVATE_NAME, PUBLIC_NAME, key_id, load_public_key, verify_b64
from engine.audit.store import EVENT_COLUMNS, Checkpoint, connect_readonly, read_checkpoints, read_meta, resolve_db_path
from engine.audit.witness import WitnessLog, read_witness
from engine.errors import ErrorCode, SymbiError

__all__ = ["PROBLEM_KINDS", "VerifyReport", "check_witness", "verify", "verify_connection"]

PROBLEM_KINDS = (
    "modified",
    "inserted",
    "deleted",
    "reordered",
    "truncated",
    "bad_checkpoint_signature",
    "rewritten",
    "missing_checkpoint",
    "missing_key",
    "unreadable",
)
_FETCH = 8192


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`."""

    ok: bool
    path: str
    problem: str | None = None
    first_bad_seq: int | None = None
    message: str = ""
    events_checked: int = 0
    checkpoints_checked: int = 0
    last_seq: int = 0
    head_hash: str = GENESIS_HASH
    key_id: str | None = None
    clean_close: bool = False
    unsigned_tail: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    witness_path: str | None = None  # the witness file checked (None: no witness check)
    witness_heads: int = 0  # witnessed heads the log was compared with
    witness_seq: int | None = None  # the highest witnessed seq

    def render(self) -> str:
        """Plain text for humans: the verdict first, then the detail."""
        if self.ok:
            lines = [
                f"OK: audit chain intact: {self.events_checked} events, {self.checkpoints_checked} signed checkpoints "
                f"verified in {self.seconds:.2f}s",
                f"head: seq {self.last_seq} {self.head_hash}",
            ]
            if self.witness_heads:
                lines.append(
                    f"witness: agrees with {self.witness_heads} witnessed heads up to seq {self.witness_seq} "
                    f"({self.witness_path})"
                )
        else:
            where = f" at seq {self.first_bad_seq}" if self.first_bad_seq is not None else ""
            lines = [f"FAILED: {self.problem}{where}: {self.message}"]
            lines.append(f"checked {self.events_checked} events in {self.seconds:.2f}s")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Problem:
    kind: str
    seq: int | None
    message: str


def _default_public_key(db: Path) -> Ed25519PublicKey | None:
    kdir = db.parent / "keys"
    for name in (PUBLIC_NAME, PRIVATE_NAME):
        if (kdir / name).is_file():
            return load_public_key(kdir / name)
    return None


def verify(
    target: str | Path,
    public_key: str | Path | bytes | Ed25519PublicKey | None = None,
    *,
    witness: str | Path | None = None,
) -> VerifyReport:
    """Verify the audit log in data dir (or database file) ``target``.

    ``public_key`` (a PEM path, PEM bytes or key) defaults to the data dir's
    ``keys/runtime_ed25519.pub.pem``. Pass an exported copy to detect a log
    whose key files were replaced along with the log. ``witness`` is the
    witness file to compare the log with (None: no witness check; the CLI
    passes the configured one). Raises ``AUDIT_003`` only for bad input (no
    such log, unreadable key or witness file).
    """
    db = resolve_db_path(target)
    key = load_public_key(public_key) if public_key is not None else _default_public_key(db)
    wlog: WitnessLog | None = None
    if witness is not None:
        try:
            wlog = read_witness(witness)
        except OSError as exc:
            raise SymbiError(
                ErrorCode.AUDIT_003,
                f"cannot read the witness file: {exc.strerror or exc}",
                offending=str(witness),
                hint="check the path given with --witness (or audit.witness_path) and its permissions",
            ) from exc
    con = connect_readonly(db)
    try:
        return verify_connection(con, key, str(db), witness=wlog)
    finally:
        con.close()


def verify_connection(
    con: sqlite3.Connection,
    key: Ed25519PublicKey | None,
    path: str = "",
    *,
    tail_only: bool = False,
    witness: WitnessLog | None = None,
) -> VerifyReport:
    """Verify over an open connection (one read snapshot). ``tail_only``: trust the
    last checkpoint whose signature verifies and check only what follows it (used
    when a writer opens the log). ``witness``: also check the log against these
    witnessed heads."""
    started = time.perf_counter()
    report = VerifyReport(ok=True, path=path, key_id=key_id(key) if key is not None else None)
    con.execute("BEGIN")  # one consistent snapshot even while a writer appends
    try:
        problem = _run(con, key, report, tail_only, witness)
    except sqlite3.DatabaseError as exc:
        problem = _Problem("unreadable", report.last_seq + 1, f"the database could not be read: {exc}")
    finally:
        con.rollback()
    if problem is not None:
        report.ok = False
        report.problem, report.first_bad_seq, report.message = problem.kind, problem.seq, problem.message
    report.seconds = time.perf_counter() - started
    return report


def _run(
    con: sqlite3.Connection,
    key: Ed25519PublicKey | None,
    report: VerifyReport,
    tail_only: bool,
    witness: WitnessLog | None = None,
) -> _Problem | None:
    meta = read_meta(con)
    all_cps = read_checkpoints(con)
    problems: list[_Problem] = []

    # 1. signatures: only checkpoints that verify are trusted
    trusted: list[Checkpoint] = []
    if all_cps and key is None:
        return _Problem("missing_key", None, "the log has signed checkpoints but no public key was found to check them")
    kid = report.key_id
    for cp in all_cps:
        if cp.key_id != kid:
            why = f"signed by key {cp.key_id}, expected {kid}"
        elif cp.count != cp.seq:
            why = f"count {cp.count} does not match seq {cp.seq}"
        elif not verify_b64(key, cp.signature, cp.payload()):  # type: ignore[arg-type]
            why = "the Ed25519 signature does not verify (forged or edited checkpoint)"
        else:
            trusted.append(cp)
            continue
        problems.append(_Problem("bad_checkpoint_signature", cp.seq, f"checkpoint #{cp.id} at seq {cp.seq}: {why}"))
        if tail_only:
            break
    report.checkpoints_checked = len(all_cps)
    by_seq = sorted(trusted, key=lambda c: (c.seq, c.id or 0))

    # 2. the chain
    start_seq, start_hash = 0, GENESIS_HASH
    if tail_only and by_seq:
        # trust the newest valid checkpoint; re-hash its own event and everything after it
        anchor = trusted[-1]
        by_seq = [c for c in by_seq if c.seq >= anchor.seq]
        if anchor.seq > 0:
            row = con.execute("SELECT prev_hash FROM events WHERE seq = ?", (anchor.seq,)).fetchone()
            if row is None:
                return _Problem(
                    "truncated", anchor.seq, f"the event signed by the last checkpoint (seq {anchor.seq}) is gone"
                )
            start_seq, start_hash = anchor.seq - 1, row[0]
    chain_problem = _stream(con, report, by_seq, start_seq, start_hash)
    if chain_problem is not None:
        problems.append(chain_problem)
    else:
        present = sorted(all_cps, key=lambda c: (c.seq, c.id or 0))  # forged ones are reported, not "missing"
        problems += _session_checks(report, by_seq, present, meta, tail_only)
    if witness is not None:
        found = check_witness(con, witness, key, report.warnings, has_checkpoints=bool(all_cps), report=report)
        if found is not None:
            problems.append(found)
    if not problems:
        return None
    return min(problems, key=lambda p: p.seq if p.seq is not None else 1 << 62)


def _stream(
    con: sqlite3.Connection, report: VerifyReport, cps: list[Checkpoint], start_seq: int, start_hash: str
) -> _Problem | None:
    sha = hashlib.sha256
    cp_index = 0
    cp_seq = cps[0].seq if cps else -1
    last, expect = start_hash, start_seq + 1
    matched_upto = start_seq  # highest seq vouched for by a matching checkpoint
    pending: _Problem | None = None  # a checkpoint mismatch, reported unless an event anomaly explains it
    while cp_seq == start_seq:  # checkpoints at the starting point (e.g. seq 0 = empty log)
        if cps[cp_index].head_hash != last:
            pending = _rewritten(cps[cp_index], matched_upto)
        cp_index += 1
        cp_seq = cps[cp_index].seq if cp_index < len(cps) else -1
    cur = con.execute(
        f"SELECT seq, prev_hash, hash, {RECORD_CANONICAL_SQL} FROM events WHERE seq > ? ORDER BY seq", (start_seq,)
    )
    checked = 0
    while True:
        rows = cur.fetchmany(_FETCH)
        if not rows:
            break
        for seq, prev, h, canon in rows:
            if seq != expect or prev != last or canon is None or sha(canon).hexdigest() != h:
                if not (seq == expect and prev == last and _python_hash(con, seq) == h):
                    report.events_checked = checked
                    return _diagnose(con, expect, last, seq)
            if seq == cp_seq:
                while cp_seq == seq:
                    cp = cps[cp_index]
                    if cp.head_hash != h:
                        pending = pending or _rewritten(cp, matched_upto)
                    elif pending is None:
                        matched_upto = seq
                    cp_index += 1
                    cp_seq = cps[cp_index].seq if cp_index < len(cps) else -1
            last = h
            expect += 1
            checked += 1
        if pending is not None and pending.seq is not None and expect - 1 > _window_end(cps, cp_index):
            break
    report.events_checked = checked
    report.last_seq = expect - 1
    report.head_hash = last
    if pending is not None:
        return pending
    if cp_index < len(cps):  # signed checkpoints beyond the end of the log
        cp = cps[-1]
        return _Problem(
            "truncated",
            expect,
            f"a signed checkpoint vouches for {cp.seq} events but the log ends at seq {expect - 1}: "
            f"events {expect}..{cp.seq} were removed",
        )
    return None


def _window_end(cps: list[Checkpoint], cp_index: int) -> int:
    return cps[cp_index].seq if cp_index < len(cps) else 1 << 62


def _rewritten(cp: Checkpoint, matched_upto: int) -> _Problem:
    return _Problem(
        "rewritten",
        matched_upto + 1,
        f"the chain is self-consistent but checkpoint #{cp.id} signed head {cp.head_hash[:16]}... at seq {cp.seq}, "
        f"which no longer exists: events {matched_upto + 1}..{cp.seq} were rewritten (hashes recomputed)",
    )


def _session_checks(
    report: VerifyReport, cps: list[Checkpoint], present: list[Checkpoint], meta: dict[str, str], tail_only: bool
) -> list[_Problem]:
    """Rules about where checkpoints must be (``cps``: trusted; ``present``: all rows, in seq order)."""
    out: list[_Problem] = []
    last_seq = report.last_seq
    # the writer signs an 'open' checkpoint before its first event, and then one every `interval` events
    if not tail_only and last_seq > 0 and (not present or present[0].seq > 0):
        first = present[0].seq if present else last_seq
        out.append(_Problem("missing_checkpoint", 1, f"no signed checkpoint covers events 1..{first}"))
    for a, b in zip(present, present[1:], strict=False):
        if b.seq - a.seq > a.interval:
            out.append(
                _Problem(
                    "missing_checkpoint",
                    a.seq + 1,
                    f"signed checkpoints at seq {a.seq} and {b.seq} are more than {a.interval} events apart",
                )
            )
    final = max(cps, key=lambda c: c.id or 0) if cps else None
    report.clean_close = meta.get("session") == "closed" and final is not None and final.kind == "close"
    if meta.get("session") == "closed":
        if final is None or final.kind != "close":
            out.append(
                _Problem(
                    "truncated",
                    last_seq + 1,
                    "the log was closed cleanly but its final 'close' checkpoint is missing: the tail was cut",
                )
            )
        elif final.seq < last_seq:
            out.append(
                _Problem(
                    "inserted",
                    final.seq + 1,
                    f"{last_seq - final.seq} events were appended after the engine closed the log at seq {final.seq}",
                )
            )
    tail_from = max((c.seq for c in cps), default=0)
    report.unsigned_tail = max(0, last_seq - tail_from)
    if cps and report.unsigned_tail > max(cps, key=lambda c: c.seq).interval:
        anchor = max(cps, key=lambda c: c.seq)
        out.append(
            _Problem(
                "missing_checkpoint",
                anchor.seq + 1,
                f"{report.unsigned_tail} events follow the last signed checkpoint (seq {anchor.seq}); "
                f"the writer signs one every {anchor.interval}",
            )
        )
    if report.unsigned_tail and meta.get("session") != "closed":
        report.warnings.append(
            f"{report.unsigned_tail} newest events are hash-chained but not yet covered by a signed checkpoint "
            "(an engine is writing, or the last one stopped without closing)"
        )
    return out


# -- the witness ------------------------------------------------------------------


def check_witness(
    con: sqlite3.Connection,
    wlog: WitnessLog,
    key: Ed25519PublicKey | None,
    warnings: list[str],
    *,
    has_checkpoints: bool,
    report: VerifyReport | None = None,
) -> _Problem | None:
    """Compare the log (inside the caller's read snapshot) with the witnessed heads in ``wlog``.

    Returns the first inconsistency (``truncated`` or ``rewritten``, the message naming the
    witnessed seq) or None; notes about the witness itself go to ``warnings``."""
    where = str(wlog.path)
    if report is not None:
        report.witness_path = where
    if not wlog.exists or not wlog.heads:
        if has_checkpoints:
            what = "no witness file" if not wlog.exists else "no witnessed heads in the witness file"
            warnings.append(
                f"{what} at {where}: the log cannot be checked against the heads it signed before, so deleting "
                "the newest events together with their checkpoints would go unnoticed"
            )
        return None
    if wlog.unreadable:
        warnings.append(f"{wlog.unreadable} unreadable line(s) in the witness file {where} were ignored")
    kid = key_id(key) if key is not None else None
    heads = []
    forged = 0
    for h in wlog.heads:
        # heads signed with the key we check with must carry a valid signature; heads signed with
        # another key cannot be checked here, but still say which head existed (and with which key)
        if (
            key is not None
            and h.key_id == kid
            and (h.count != h.seq or not verify_b64(key, h.signature, h.checkpoint().payload()))
        ):
            forged += 1
            continue
        heads.append(h)
    if forged:
        warnings.append(f"{forged} witnessed head(s) in {where} do not carry a valid signature and were ignored")
    if not heads:
        return None
    heads.sort(key=lambda h: (h.seq, h.line))
    top = heads[-1]
    if report is not None:
        report.witness_heads, report.witness_seq = len(heads), top.seq
    last = int(con.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    matched = 0
    for h in heads:
        if h.seq > last:
            return _Problem(
                "truncated",
                last + 1,
                f"the witness ({where}) holds a signed head at seq {top.seq} ({top.kind} checkpoint of "
                f"{top.time}) but the log ends at seq {last}: events {last + 1}..{top.seq} were removed "
                "(with the checkpoints that signed them)",
            )
        if h.seq == 0:
            actual: str | None = GENESIS_HASH
        else:
            found = con.execute("SELECT hash FROM events WHERE seq = ?", (h.seq,)).fetchone()
            actual = found[0] if found else None
        if actual != h.head_hash:
            now = f"{actual[:16]}..." if actual else "no event"
            return _Problem(
                "rewritten",
                matched + 1,
                f"the witness ({where}) holds head {h.head_hash[:16]}... at seq {h.seq} ({h.kind} checkpoint of "
                f"{h.time}) but the log has {now} there: events {matched + 1}..{h.seq} were rewritten",
            )
        matched = max(matched, h.seq)
    foreign = [h for h in heads if kid is not None and h.key_id != kid]
    if foreign:
        first, newest = foreign[0], foreign[-1]
        return _Problem(
            "rewritten",
            max(1, first.seq),
            f"the witness ({where}) holds heads up to seq {newest.seq} signed with key {newest.key_id}, but this "
            f"log is checked with key {kid}: its checkpoints were re-signed with another key",
        )
    return None


# -- diagnosis (slow path, runs once) ------------------------------------------


def _row(con: sqlite3.Connection, seq: int) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = con.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?", (seq,)).fetchone()
    return row


def _hash_as(row: tuple[Any, ...], seq: int) -> str | None:
    """The hash ``row`` would have if it had been written as event ``seq`` (None: unhashable fields)."""
    _, ts_us, etype, agent, actor, action, resource, decision, details, prev, _h = row
    try:
        return record_hash(seq, ts_us, etype, agent, actor, action, resource, decision, details, prev)
    except (TypeError, ValueError, UnicodeError):
        return None


def _python_hash(con: sqlite3.Connection, seq: int) -> str | None:
    row = _row(con, seq)
    return None if row is None else _hash_as(row, seq)


def _original_seq(con: sqlite3.Connection, row: tuple[Any, ...], position: int) -> int | None:
    """The sequence number ``row`` was written with, if its content is intact."""
    candidates = [position - 1, position + 1]
    prev = row[9]
    if prev == GENESIS_HASH:
        candidates.append(1)
    else:
        hit = con.execute("SELECT seq FROM events WHERE hash = ? LIMIT 1", (prev,)).fetchone()
        if hit is not None:  # its predecessor now sits at hit[0]; it was written right after its predecessor
            candidates += [hit[0] + 1, hit[0], hit[0] + 2]
    for j in dict.fromkeys(candidates):
        if j >= 1 and _hash_as(row, j) == row[10]:
            return j
    return None


def _diagnose(con: sqlite3.Connection, k: int, last: str, at_seq: int) -> _Problem:
    """Name the first anomaly: position ``k`` expected, ``last`` is the hash of event ``k - 1``."""
    if at_seq > k:
        span = f"event {k} is" if at_seq == k + 1 else f"events {k}..{at_seq - 1} are"
        return _Problem("deleted", k, f"{span} missing (the sequence jumps from {k - 1} to {at_seq})")
    row = _row(con, at_seq)
    if row is None:
        return _Problem("unreadable", k, f"event {k} could not be read")
    if _hash_as(row, k) == row[10]:  # the row itself is intact, so its link is original
        if k == 1:
            return _Problem("modified", 1, "event 1 does not start from the genesis hash")
        return _Problem(
            "modified",
            k - 1,
            f"event {k - 1} was modified and its hash recomputed: event {k} still links to the original",
        )
    orig = _original_seq(con, row, k)
    nxt = _row(con, k + 1)
    nxt_orig = _original_seq(con, nxt, k + 1) if nxt is not None else None
    if orig == k - 1:
        return _Problem(
            "inserted", k - 1, f"an event was inserted at seq {k - 1}: the event now at {k} was written as {k - 1}"
        )
    if orig == k + 1:
        if nxt_orig == k:
            return _Problem("reordered", k, f"events {k} and {k + 1} were swapped")
        return _Problem("deleted", k, f"event {k} was removed and the later events renumbered")
    if orig is not None:
        return _Problem("reordered", k, f"the event at seq {k} was written as event {orig}")
    if nxt_orig == k:
        return _Problem("inserted", k, f"an event was inserted at seq {k}: the event now at {k + 1} was written as {k}")
    return _Problem("modified", k, f"event {k} was modified: its content no longer matches its hash")
