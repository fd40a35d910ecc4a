"""Tamper-evident audit trail: every state-changing action of the engine, hash-chained and signed.

Public face:

* :class:`AuditTrail` — the writer (one per data dir): ``open``/``close``,
  ``append`` (durable on return; ``AUDIT_001`` = the action must not happen),
  ``append_nowait``, ``flush``, ``checkpoint``, ``register_secret``, and the
  read methods below over its own read-only connection.
* :class:`AuditEvent` / :class:`AuditRecord` — what is submitted / what is stored.
* :class:`AuditReader` and :class:`AuditFilter` — query, count, tail, follow,
  export JSONL (read-only; safe while an engine writes).
* :func:`verify` → :class:`VerifyReport` — recompute the chain and check the
  Ed25519-signed checkpoints; names the first bad seq and what is wrong.
* :func:`redact`, :func:`canonical_json` — helpers other modules reuse.

File layout: ``data_dir/audit.db`` (SQLite, WAL), ``data_dir/audit.lock``,
``data_dir/keys/runtime_ed25519.pem`` (0600) and ``runtime_ed25519.pub.pem``;
outside the data dir the witness of every signed head (:mod:`engine.audit.witness`,
``audit.witness_path``; default under the per-user state dir).
"""

from engine.audit.canonical import GENESIS_HASH, canonical_bytes, canonical_json
from engine.audit.keys import load_public_key
from engine.audit.model import DECISIONS, EVENT_TYPES, AuditEvent, AuditRecord
from engine.audit.query import AuditFilter, AuditReader, parse_time
from engine.audit.redact import MASK, Redactor, redact
from engine.audit.store import Checkpoint
from engine.audit.trail import AuditTrail
from engine.audit.verify import PROBLEM_KINDS, VerifyReport, verify

__all__ = [
    "DECISIONS",
    "EVENT_TYPES",
    "GENESIS_HASH",
    "MASK",
    "PROBLEM_KINDS",
    "AuditEvent",
    "AuditFilter",
    "AuditReader",
    "AuditRecord",
    "AuditTrail",
    "Checkpoint",
    "Redactor",
    "VerifyReport",
    "canonical_bytes",
    "canonical_json",
    "load_public_key",
    "parse_time",
    "redact",
    "verify",
]
