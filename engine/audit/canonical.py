"""Canonical JSON: the one byte encoding that gets hashed and signed.

Owns :func:`canonical_json` / :func:`canonical_bytes` (sorted keys, no
whitespace, UTF-8, no NaN) for any module that signs or hashes structured data
(audit chain, bus envelopes, policy replay), and the audit record's canonical
form in two equivalent spellings: :func:`record_canonical` (Python) and
:data:`RECORD_CANONICAL_SQL` (an SQLite expression over an ``events`` row, used
by the fast verifier).

The record form is ``canonical_json`` of an object with the keys ``action``,
``actor``, ``agent``, ``decision``, ``details``, ``prev_hash``, ``resource``,
``seq``, ``ts_us``, ``type``. It is built by concatenation so that the stored
``details`` text (already canonical) is embedded verbatim instead of being
parsed and re-encoded; for canonical ``details`` both spellings equal
``canonical_json(record_dict)`` byte for byte (a test checks this).
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring  # the C escaper that json.dumps(ensure_ascii=False) uses
from typing import Any

__all__ = [
    "GENESIS_HASH",
    "RECORD_CANONICAL_SQL",
    "canonical_bytes",
    "canonical_json",
    "record_canonical",
    "record_hash",
    "sha256_hex",
]

GENESIS_HASH = "0" * 64

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def canonical_json(obj: Any) -> str:
    """``obj`` as canonical JSON text: sorted keys, no whitespace, no ASCII escaping, no NaN.

    Raises ``TypeError``/``ValueError`` for values JSON cannot carry.
    """
    return _dumps(obj)


def canonical_bytes(obj: Any) -> bytes:
    """UTF-8 of :func:`canonical_json`; what gets hashed or signed."""
    return _dumps(obj).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_canonical(
    seq: int,
    ts_us: int,
    type_: str,
    agent: str | None,
    actor: str,
    action: str,
    resource: str,
    decision: str,
    details_json: str,
    prev_hash: str,
) -> str:
    """The canonical text of one audit record (``details_json`` must already be canonical)."""
    if seq.__class__ is not int or ts_us.__class__ is not int:  # a bool or float must not pass as an int
        raise TypeError("seq and ts_us must be integers")
    return (
        '{"action":' + encode_basestring(action)
        + ',"actor":' + encode_basestring(actor)
        + ',"agent":' + ("null" if agent is None else encode_basestring(agent))
        + ',"decision":' + encode_basestring(decision)
        + ',"details":' + details_json
        + ',"prev_hash":' + encode_basestring(prev_hash)
        + ',"resource":' + encode_basestring(resource)
        + ',"seq":' + str(seq)
        + ',"ts_us":' + str(ts_us)
        + ',"type":' + encode_basestring(type_)
        + "}"
    )  # fmt: skip


def record_hash(*fields: Any) -> str:
    """SHA-256 hex of :func:`record_canonical` (same positional fields)."""
    return hashlib.sha256(record_canonical(*fields).encode("utf-8")).hexdigest()


# SQLite's json_quote() escapes exactly like json.dumps(ensure_ascii=False):
# \" \\ \b \f \n \r \t, other controls as lowercase \u00XX, everything else raw.
# The verifier still falls back to record_canonical() on any mismatch, so a
# SQLite build that escapes differently is slower, never wrong.
RECORD_CANONICAL_SQL = (
    "CAST('{\"action\":' || json_quote(action) || ',\"actor\":' || json_quote(actor)"
    " || ',\"agent\":' || json_quote(agent) || ',\"decision\":' || json_quote(decision)"
    " || ',\"details\":' || details || ',\"prev_hash\":' || json_quote(prev_hash)"
    " || ',\"resource\":' || json_quote(resource) || ',\"seq\":' || seq"
    " || ',\"ts_us\":' || ts_us || ',\"type\":' || json_quote(type) || '}' AS BLOB)"
)
