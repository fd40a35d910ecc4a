"""The audit trail: the engine's one append path into the tamper-evident chain.

Owns :class:`AuditTrail`. Appends from any number of tasks go to one writer
task that commits everything pending in one transaction (group commit) in
the database connection's thread; ``append`` returns when its event is on
disk. ``append_nowait`` queues an observation in the same order and chain
without waiting. If a write fails, the trail *fails closed*: the waiting
appends and every later one raise ``AUDIT_001`` naming the file until the
trail is reopened, so the engine refuses actions it cannot record.

A session: ``open()`` checks the tail of the chain since the last signed
checkpoint (``AUDIT_002`` if it is damaged: we do not extend a broken chain),
records ``engine.recovered`` if the previous writer did not close cleanly,
then signs an ``open`` checkpoint; ``close()`` signs a ``close`` checkpoint
at the head. One writer per data dir (``audit.lock``).

Besides every ``checkpoint_every`` events, a checkpoint is signed
``checkpoint_interval`` seconds (on the trail's clock) after the first event
that no checkpoint covers yet, so the unsigned tail a crash leaves is small;
an idle trail sets no timer. Every committed checkpoint head is also appended
to the *witness* file outside the data dir (:mod:`engine.audit.witness`). At
open the trail compares itself with the newest witnessed heads: a trail
shorter than, or different from, what was witnessed is logged as a warning and
recorded as an ``audit.witness_mismatch`` event (the engine still starts;
``symbiont audit verify`` then fails until the witness file is moved aside).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import aiosqlite
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.audit.keys import key_id, load_or_create_signing_key, public_pem
from engine.audit.model import AuditEvent, AuditRecord, Prepared, prepare, prepare_fields
from engine.audit.query import AuditFilter, AuditReader, Notifier
from engine.audit.redact import Redactor
from engine.audit.store import DB_NAME, Checkpoint
from engine.audit.verify import VerifyReport, check_witness, verify, verify_connection
from engine.audit.witness import Witness, read_witness, resolve_witness_path
from engine.audit.writer import (
    CHECKPOINT,
    CLOSE,
    DURABILITY_MODES,
    EVENT,
    FLUSH,
    OPEN,
    BatchWriter,
    FormatError,
    init_database,
)
from engine.clock import Clock, SystemClock
from engine.dbthread import in_connection_thread
from engine.errors import ErrorCode, SymbiError
from engine.lockfile import FileLock

__all__ = ["AuditTrail"]

log = logging.getLogger("symbi.audit")

_FAIL_HINT = "check free disk space and the permissions of the data dir, then restart the engine (reopen the trail)"


class AuditTrail:
    """The append-only, hash-chained, signed audit log in ``data_dir/audit.db``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        durability: str = "batch",
        checkpoint_every: int = 1000,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        max_batch: int = 4096,
        checkpoint_interval: float = 30.0,
        witness_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise SymbiError(
                ErrorCode.AUDIT_003,
                "unknown audit durability mode",
                offending=durability,
                hint="use 'batch' or 'event'",
            )
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise SymbiError(
                ErrorCode.AUDIT_003, "checkpoint_every must be a whole number >= 1", offending=checkpoint_every
            )
        if (
            isinstance(checkpoint_interval, bool)
            or not isinstance(checkpoint_interval, int | float)
            or not checkpoint_interval >= 0
            or checkpoint_interval == float("inf")
        ):
            raise SymbiError(
                ErrorCode.AUDIT_003,
                "checkpoint_interval must be a number of seconds >= 0 (0 disables it)",
                offending=checkpoint_interval,
            )
        self.data_dir = Path(data_dir).expanduser()
        self.path = self.data_dir / DB_NAME
        self.durability = durability
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = float(checkpoint_interval)
        self._witness_setting = witness_path
        self.witness_path: Path | None = None  # resolved at open
        self._witness: Witness | None = None
        self.witness_finding: dict[str, Any] | None = None  # what the open-time witness check found
        self._interval_task: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()  # set by appends; the interval timer waits on it
        self.interval_checkpoints = 0
        self.clock: Clock = clock or SystemClock()
        self._busy_timeout = busy_timeout
        self._max_batch = max(1, max_batch)
        self._redactor = Redactor()
        self._db: aiosqlite.Connection | None = None
        self._writer: BatchWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._queue: list[tuple[str, Any, asyncio.Future[Any] | None]] = []
        self._wake = asyncio.Event()
        self._notifier = Notifier()
        self._reader: AuditReader | None = None
        self._lock: Any = None
        self._signer: Ed25519PrivateKey | None = None
        self._open = False
        self._closing = False
        self._stopping = False
        self._failed: SymbiError | None = None
        self.recovered = False  # the previous writer did not close cleanly
        self._recovered_info = (0, 0)  # (head seq, last checkpoint seq) found at open
        self.appended = 0
        self.batches = 0
        self.largest_batch = 0

    # -- opening and closing ---------------------------------------------------

    async def open(self) -> AuditTrail:
        if self._open:
            return self
        self._failed = None
        self._closing = self._stopping = False
        self._wake = asyncio.Event()  # loop-bound primitives belong to the loop that opens the trail
        self._dirty = asyncio.Event()
        self._notifier = Notifier()
        self.witness_finding = None
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(f"cannot create the data dir: {exc.strerror or exc}", str(self.data_dir)) from exc
        self._setup_witness()
        self._acquire_lock()
        try:
            await self._open_db()
        except BaseException:
            await self._teardown()
            raise
        self._open = True
        self._task = asyncio.create_task(self._write_loop(), name="audit-writer")
        try:
            if self.recovered:
                await self.append(
                    AuditEvent(
                        type="engine.recovered",
                        action="recover",
                        resource=str(self.path),
                        details={
                            "reason": "the previous engine session did not close the audit trail cleanly",
                            "last_seq": self._recovered_info[0],
                            "last_checkpoint_seq": self._recovered_info[1],
                            "unsigned_events": self._recovered_info[0] - self._recovered_info[1],
                        },
                    )
                )
            if self.witness_finding is not None:
                await self._record_witness_finding(self.witness_finding)
            await self._submit(OPEN, None, internal=True)
        except BaseException:
            await self._shutdown_writer()
            await self._teardown()
            self._open = False
            raise
        if self.checkpoint_interval > 0:
            self._interval_task = asyncio.create_task(self._interval_loop(), name="audit-checkpoint-timer")
        log.info("audit trail open: %s (head seq %d, durability %s)", self.path, self.head_seq, self.durability)
        return self

    def _setup_witness(self) -> None:
        self.witness_path = resolve_witness_path(self.data_dir, self._witness_setting)
        self._witness = Witness(self.witness_path, self.data_dir)
        with contextlib.suppress(OSError, ValueError):
            if self.witness_path.resolve().is_relative_to(self.data_dir.resolve()):
                log.warning(
                    "audit witness %s is inside the data dir: whoever can edit the trail can edit it too; "
                    "point audit.witness_path at another place",
                    self.witness_path,
                )

    async def _record_witness_finding(self, finding: dict[str, Any]) -> None:
        log.warning(
            "AUDIT TRAIL DOES NOT MATCH ITS WITNESS: %s at seq %s: %s (recorded as audit.witness_mismatch; "
            "`symbiont audit verify` reports it until the witness file is moved aside)",
            finding["problem"], finding["first_bad_seq"], finding["message"],
        )  # fmt: skip
        await self.append(
            AuditEvent(
                type="audit.witness_mismatch",
                action="verify",
                resource=str(self.path),
                decision="error",
                details=finding,
            )
        )

    async def _open_db(self) -> None:
        self._signer = load_or_create_signing_key(self.data_dir)
        public = self._signer.public_key()
        if self.path.exists() and not self.path.is_file():
            raise self._error("the audit database path is not a file")
        try:
            db = self._db = await aiosqlite.connect(self.path, isolation_level=None)
            head_seq, head_hash, state = await in_connection_thread(db, self._init, db, public)
        except FormatError as exc:
            raise SymbiError(
                ErrorCode.AUDIT_001,
                f"the audit log has format version {exc.args[0]}; this engine writes version 1",
                offending=str(self.path),
                hint="use a matching symbi-console version, or move audit.db aside to start a new chain",
            ) from exc
        except (sqlite3.Error, OSError) as exc:
            raise self._error(f"cannot open the audit log: {exc}") from exc
        self.recovered = state == "open"
        self._writer = BatchWriter(
            self._db._conn,  # noqa: SLF001 - used only inside the connection's own thread
            self.path,
            head_seq=head_seq,
            head_hash=head_hash,
            signer=self._signer,
            key_id=key_id(public),
            interval=self.checkpoint_every,
            durability=self.durability,
            now=self.clock.time,
            checkpoint_seq=self._recovered_info[1],
            on_commit=self._witness.record if self._witness is not None else None,
        )

    def _init(self, db: aiosqlite.Connection, public: Ed25519PublicKey) -> tuple[int, str, str | None]:
        """In the connection thread: schema, head, and a check of the chain's unsigned tail."""
        conn = db._conn  # noqa: SLF001
        head_seq, head_hash, state = init_database(conn, self._busy_timeout)
        report = verify_connection(conn, public, str(self.path), tail_only=True)
        if not report.ok:
            raise SymbiError(
                ErrorCode.AUDIT_002,
                f"the audit chain is damaged ({report.problem} at seq {report.first_bad_seq}: {report.message}); "
                "refusing to extend it",
                offending=str(self.path),
                hint="run `symbiont audit verify`; keep the file as evidence and move it aside to start a new chain",
            )
        cps = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM checkpoints").fetchone()
        self._recovered_info = (head_seq, int(cps[0]))
        self._check_witness(conn, public, head_seq, has_checkpoints=report.checkpoints_checked > 0)
        return head_seq, head_hash, state

    def _check_witness(
        self, conn: sqlite3.Connection, public: Ed25519PublicKey, head_seq: int, *, has_checkpoints: bool
    ) -> None:
        """In the connection thread: the trail against the newest witnessed heads (never refuses to open)."""
        if self.witness_path is None:
            return
        try:
            wlog = read_witness(self.witness_path, tail_only=True)
        except OSError as exc:
            log.warning(
                "audit witness %s cannot be read (%s): the trail is not checked against it", self.witness_path, exc
            )
            return
        notes: list[str] = []
        try:
            conn.execute("BEGIN")
            try:
                found = check_witness(conn, wlog, public, notes, has_checkpoints=has_checkpoints)
            finally:
                conn.rollback()
        except sqlite3.Error as exc:
            log.warning("audit witness: the trail could not be checked against %s: %s", self.witness_path, exc)
            return
        for note in notes:
            log.warning("audit witness: %s", note)
        if found is not None:
            witnessed = max(h.seq for h in wlog.heads)
            self.witness_finding = {
                "problem": found.kind,
                "first_bad_seq": found.seq,
                "message": found.message,
                "witness": str(self.witness_path),
                "witnessed_seq": witnessed,
                "head_seq": head_seq,
            }

    async def close(self) -> None:
        """Sign a ``close`` checkpoint at the head and release the file. Never raises for a failed trail."""
        if not self._open or self._closing:
            return
        self._closing = True
        await self._stop_interval()
        if self._failed is None:
            try:
                await self._submit(CLOSE, None, internal=True)
            except SymbiError as exc:
                log.error("audit trail: the close checkpoint could not be written: %s", exc.render())
        await self._shutdown_writer()
        await self._teardown()
        self._open = False
        log.info("audit trail closed: %s (head seq %d)", self.path, self.head_seq)

    async def _stop_interval(self) -> None:
        task, self._interval_task = self._interval_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _interval_loop(self) -> None:
        """Sign a checkpoint ``checkpoint_interval`` after the first event no checkpoint covers yet.

        Waits on an event set by appends, so an idle trail has no timer at all."""
        while True:
            await self._dirty.wait()
            await self.clock.sleep(self.checkpoint_interval)
            self._dirty.clear()
            writer = self._writer
            if not self.is_open or self._failed is not None or writer is None:
                return
            if writer.seq <= writer.checkpoint_seq and not self._queue:
                continue  # a periodic checkpoint already covers everything
            try:
                cp = await self._submit(CHECKPOINT, "interval", internal=True)
            except SymbiError:
                return  # the trail failed; the writer has logged it
            if isinstance(cp, Checkpoint):
                self.interval_checkpoints += 1

    async def _shutdown_writer(self) -> None:
        await self._stop_interval()
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await self._task
            self._task = None

    async def _teardown(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
            self._db = None
        self._release_lock()

    async def __aenter__(self) -> AuditTrail:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _acquire_lock(self) -> None:
        lock = FileLock(self.data_dir / "audit.lock")
        try:
            holder = lock.acquire()
        except OSError as exc:
            raise self._error(f"cannot create the audit lock file: {exc.strerror or exc}", str(lock.path)) from exc
        if holder is not None:
            raise SymbiError(
                ErrorCode.AUDIT_001,
                f"the audit trail is already open for writing by another engine (pid {holder})",
                offending=str(self.path),
                hint="one engine per data dir; readers (symbiont audit ...) need no lock",
            )
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _error(self, message: str, offending: str | None = None) -> SymbiError:
        return SymbiError(ErrorCode.AUDIT_001, message, offending=offending or str(self.path), hint=_FAIL_HINT)

    # -- appending ---------------------------------------------------------------

    def register_secret(self, value: str) -> None:
        """Mask ``value`` wherever it would appear in a later event (values under 4 characters are ignored)."""
        self._redactor.register(value)

    def ensure_writable(self) -> None:
        """Raise ``AUDIT_001`` now if an append could not succeed (for synchronous fail-closed checks)."""
        if self._failed is not None:
            raise self._failed
        if not self._open or self._closing:
            raise SymbiError(
                ErrorCode.AUDIT_001,
                "the audit trail is not open, so the action cannot be recorded",
                offending=str(self.path),
                hint="open the runtime (and its audit trail) first",
            )

    def _prepare(self, event: AuditEvent | None, fields: dict[str, Any]) -> Prepared:
        if event is None:
            try:
                return prepare_fields(self._redactor, self.clock.time(), **fields)
            except TypeError as exc:
                raise SymbiError(ErrorCode.AUDIT_003, f"invalid audit event: {exc}", offending=sorted(fields)) from exc
        if fields:
            raise SymbiError(ErrorCode.AUDIT_003, "pass an AuditEvent or fields, not both", offending=sorted(fields))
        if not isinstance(event, AuditEvent):
            raise SymbiError(ErrorCode.AUDIT_003, "not an AuditEvent", offending=type(event).__name__)
        return prepare(event, self._redactor, self.clock.time())

    async def append(self, event: AuditEvent | None = None, /, **fields: Any) -> AuditRecord:
        """Record an event; returns once it is durable. ``AUDIT_001`` if it could not be written
        (the caller must then not perform the action), ``AUDIT_003`` for an invalid event.

        Cancelling the wait does not withdraw the event."""
        self.ensure_writable()
        prepared = self._prepare(event, fields)
        record: AuditRecord = await self._submit(EVENT, prepared)
        return record

    def append_nowait(self, event: AuditEvent | None = None, /, **fields: Any) -> None:
        """Queue an observation (same order, same chain) without waiting for the disk.

        Raises ``AUDIT_001`` at once if the trail has failed or is closed."""
        self.ensure_writable()
        prepared = self._prepare(event, fields)
        self._submit_nowait(EVENT, prepared)

    async def flush(self) -> None:
        """Wait until everything queued so far is durable."""
        await self._submit(FLUSH, None, internal=self._closing)

    async def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint at the current head now."""
        checkpoint: Checkpoint = await self._submit(CHECKPOINT, "manual")
        return checkpoint

    def _submit_nowait(self, op: str, arg: Any) -> None:
        self._queue.append((op, arg, None))
        self._wake.set()
        if op == EVENT:
            self._dirty.set()

    async def _submit(self, op: str, arg: Any, *, internal: bool = False) -> Any:
        if not internal:
            self.ensure_writable()
        elif self._failed is not None:
            raise self._failed
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((op, arg, fut))
        self._wake.set()
        if op == EVENT:
            self._dirty.set()
        return await fut

    async def _write_loop(self) -> None:
        assert self._db is not None and self._writer is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                ops = [(op, arg) for op, arg, _ in batch]
                try:
                    results, error = await in_connection_thread(self._db, self._writer.run, ops)
                except BaseException as exc:  # noqa: BLE001 - the connection thread itself died
                    results, error = [], exc
                self.batches += 1
                self.largest_batch = max(self.largest_batch, len(batch))
                for (op, _, fut), result in zip(batch, results, strict=False):
                    if op == EVENT:
                        self.appended += 1
                    if fut is not None and not fut.done():
                        fut.set_result(result)
                if results:
                    self._notifier.notify()
                if error is not None:
                    self._fail(error, batch[len(results) :])
                    return
            if self._stopping and not self._queue:
                return

    def _fail(self, error: BaseException, unwritten: list[tuple[str, Any, asyncio.Future[Any] | None]]) -> None:
        err = SymbiError(
            ErrorCode.AUDIT_001,
            f"audit append failed ({error}); the action is refused, and so is every later append until the trail "
            "is reopened",
            offending=str(self.path),
            hint=_FAIL_HINT,
        )
        self._failed = err
        lost = sum(1 for op, _, fut in unwritten + self._queue if op == EVENT and fut is None)
        log.error("audit trail failed: %s (%d queued observations not recorded)", error, lost)
        for _, _, fut in unwritten + self._queue:
            if fut is not None and not fut.done():
                fut.set_exception(err)
        self._queue.clear()

    # -- state -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._open and not self._closing

    @property
    def failed(self) -> SymbiError | None:
        """The ``AUDIT_001`` error that stopped the trail, or None."""
        return self._failed

    @property
    def head_seq(self) -> int:
        return self._writer.seq if self._writer is not None else 0

    @property
    def witness_writes(self) -> int:
        """Signed heads appended to the witness file so far."""
        return self._witness.writes if self._witness is not None else 0

    @property
    def witness_failures(self) -> int:
        """Witness appends that failed (each logged; the checkpoints themselves stand)."""
        return self._witness.failures if self._witness is not None else 0

    @property
    def head_hash(self) -> str | None:
        return self._writer.hash if self._writer is not None else None

    @property
    def public_key(self) -> Ed25519PublicKey:
        if self._signer is None:
            raise SymbiError(ErrorCode.RUNTIME_001, "the audit trail is not open")
        return self._signer.public_key()

    @property
    def public_key_pem(self) -> bytes:
        return public_pem(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    # -- reading (a separate read-only connection; never blocks the writer) ------

    @property
    def reader(self) -> AuditReader:
        if self._reader is None:
            self._reader = AuditReader(self.path, notifier=self._notifier)
        return self._reader

    async def query(self, flt: AuditFilter | None = None, **kwargs: Any) -> list[AuditRecord]:
        return await self.reader.query(flt, **kwargs)

    async def count(self, flt: AuditFilter | None = None, **fields: Any) -> int:
        return await self.reader.count(flt, **fields)

    async def tail(self, n: int = 20, flt: AuditFilter | None = None, **fields: Any) -> list[AuditRecord]:
        return await self.reader.tail(n, flt, **fields)

    def follow(self, flt: AuditFilter | None = None, **kwargs: Any) -> AsyncIterator[AuditRecord]:
        return self.reader.follow(flt, **kwargs)

    async def export_jsonl(self, dest: str | Path | IO[str], flt: AuditFilter | None = None, **fields: Any) -> int:
        return await self.reader.export_jsonl(dest, flt, **fields)

    async def verify(self) -> VerifyReport:
        """Verify the whole chain (in a thread) against this runtime's public key and its witness."""
        key = self.public_key
        return await asyncio.to_thread(verify, self.path, key, witness=self.witness_path)
