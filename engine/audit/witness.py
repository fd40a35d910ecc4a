"""The witness: a second, append-only copy of every signed checkpoint head, outside the data dir.

What transparency logs do: whoever has seen a signed head remembers it. The
chain and its checkpoints live in ``audit.db``; someone who can edit that file
can delete the newest events *and* the checkpoints that vouch for them, mark
the session as crashed, and the log alone can no longer tell. The witness file
keeps every head the engine signed (seq, head hash, time, kind, key
fingerprint and signature; one JSON object per line, fsync'd, mode 0600 in a
0700 directory), so ``symbiont audit verify`` can say "this trail is shorter
than, or differs from, a head that was signed and witnessed".

Where it lives: ``platformdirs.user_state_dir("symbi-console")/witness/
<sha256 of the resolved data dir, 16 hex>.jsonl`` unless ``audit.witness_path``
names a directory (the same per-data-dir file name inside it) or a ``.jsonl``
file. A relative ``audit.witness_path`` is under the data dir (pointless for
protection; allowed, and warned about).

A failed witness append never stops the engine: the checkpoint is already
committed in ``audit.db`` (the primary record) and the witness is a second
copy; failing closed would let anyone who can fill or unmount the witness disk
stop every action. The failure is logged (one line per failed write) and
counted (:attr:`Witness.failures`), and verify warns about a missing witness.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from engine.atomicfile import fsync_dir
from engine.audit.model import iso_time
from engine.audit.store import Checkpoint
from engine.config import APP_NAME, resolve_under

__all__ = [
    "WITNESS_VERSION",
    "Witness",
    "WitnessLog",
    "WitnessedHead",
    "default_witness_dir",
    "read_witness",
    "resolve_witness_path",
    "witness_name",
]

log = logging.getLogger("symbi.audit")

WITNESS_VERSION = "symbi-audit-witness/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAIL_BYTES = 64 * 1024


def witness_name(data_dir: str | os.PathLike[str]) -> str:
    """``<first 16 hex of sha256(resolved data dir)>.jsonl``."""
    resolved = str(Path(data_dir).expanduser().resolve())
    return hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:16] + ".jsonl"


def default_witness_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "witness"


def resolve_witness_path(data_dir: str | os.PathLike[str], configured: str | os.PathLike[str] | None = None) -> Path:
    """The witness file for ``data_dir``: ``configured`` is None/"" (the per-user state dir),
    a directory (the per-data-dir file inside it) or a file ending in ``.jsonl``."""
    if configured is None or not str(configured).strip():
        return default_witness_dir() / witness_name(data_dir)
    path = resolve_under(data_dir, str(configured).strip())
    if path.suffix == ".jsonl" and not path.is_dir():
        return path
    return path / witness_name(data_dir)


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """One line of a witness file: a signed checkpoint head as the engine wrote it."""

    seq: int
    head_hash: str
    count: int
    ts_us: int
    kind: str
    interval: int
    key_id: str
    signature: str
    line: int = 0  # 1-based line number in the file (0: read from a tail chunk)

    @property
    def time(self) -> str:
        return iso_time(self.ts_us)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            self.seq, self.head_hash, self.count, self.ts_us, self.kind, self.interval, self.key_id, self.signature
        )


@dataclass
class WitnessLog:
    """What :func:`read_witness` found."""

    path: Path
    exists: bool
    heads: list[WitnessedHead]
    unreadable: int = 0  # lines that are not a witness record (e.g. torn by a crash mid-write)


def _parse(line: bytes, number: int) -> WitnessedHead | None:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("v") != WITNESS_VERSION:
        return None
    try:
        ints = [obj[k] for k in ("seq", "count", "ts_us", "interval")]
        strs = [obj[k] for k in ("head_hash", "kind", "key_id", "signature")]
    except KeyError:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) for v in ints) or not all(isinstance(v, str) for v in strs):
        return None
    if ints[0] < 0 or not _HEX64.fullmatch(obj["head_hash"]):
        return None
    return WitnessedHead(
        obj["seq"], obj["head_hash"], obj["count"], obj["ts_us"], obj["kind"], obj["interval"], obj["key_id"],
        obj["signature"], number,
    )  # fmt: skip


def read_witness(path: str | os.PathLike[str], *, tail_only: bool = False) -> WitnessLog:
    """Read a witness file (all of it, or with ``tail_only`` its last 64 KiB: the newest heads).

    A missing file is ``exists=False``; a file that cannot be read raises ``OSError``."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            start = 0
            if tail_only:
                size = os.fstat(fh.fileno()).st_size
                start = max(0, size - _TAIL_BYTES)
                fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return WitnessLog(p, False, [])
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # a partial line
    heads: list[WitnessedHead] = []
    bad = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        head = _parse(raw, 0 if start > 0 else number)
        if head is None:
            bad += 1
        else:
            heads.append(head)
    return WitnessLog(p, True, heads, bad)


class Witness:
    """Appends signed checkpoint heads to the witness file. Thread-safe enough for its one
    caller (the audit writer's connection thread); never raises."""

    def __init__(self, path: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.data_dir = str(Path(data_dir).expanduser().resolve())
        self.writes = 0
        self.failures = 0
        self.last_error: str | None = None

    def record_line(self, cp: Checkpoint) -> dict[str, Any]:
        return {
            "v": WITNESS_VERSION,
            "data_dir": self.data_dir,
            "seq": cp.seq,
            "head_hash": cp.head_hash,
            "count": cp.count,
            "ts_us": cp.ts_us,
            "time": iso_time(cp.ts_us),
            "kind": cp.kind,
            "interval": cp.interval,
            "key_id": cp.key_id,
            "signature": cp.signature,
        }

    def record(self, cps: Iterable[Checkpoint]) -> bool:
        """Append ``cps`` (already committed to ``audit.db``) durably; False (logged, counted) on failure."""
        cps = list(cps)
        if not cps:
            return True
        data = b"".join(
            json.dumps(self.record_line(cp), sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"
            for cp in cps
        )
        try:
            self._append(data)
        except Exception as exc:  # noqa: BLE001 - a witness failure must never fail the trail
            self.failures += 1
            self.last_error = str(exc)
            log.error(
                "audit witness: could not record the signed head at seq %d in %s: %s "
                "(the checkpoint stands in audit.db; %d witness write(s) failed so far)",
                cps[-1].seq, self.path, exc, self.failures,
            )  # fmt: skip
            return False
        self.writes += len(cps)
        return True

    def _append(self, data: bytes) -> None:
        parent = self.path.parent
        if not parent.is_dir():
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(parent, 0o700)  # the umask may have narrowed it further; we made it, it is ours
            fsync_dir(parent.parent, required=False)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(f"the witness path is not a regular file: {self.path}")
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(parent, required=False)
