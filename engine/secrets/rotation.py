"""The key-rotation journal: what makes ``rotate-key`` survive being killed at any point.

A rotation runs under the vault's write lock in four steps:

1. **Stage.** Write ``<keys_dir>/rotation/old.key`` and ``new.key`` (0600,
   fsync), then ``journal.json`` (atomic). Writing the journal is the commit
   point: without it the staged keys are debris and are deleted on the next
   open, since no file can have been re-encrypted yet.
2. **Re-encrypt.** Every vault file (current versions and history) still
   under a key other than the new one is decrypted and atomically rewritten
   under the new key, same name, same record. Each rewrite is atomic, so a
   kill leaves every file wholly under the old or wholly under the new key,
   and both keys are staged on disk.
3. **Install.** The new key goes where the next open will find it (key file,
   passphrase parameters, or nowhere for ``SYMBIONT_MASTER_KEY``); the old key
   is kept in ``retired/`` unless purged; the vault marker records the new
   key id. Every step is idempotent.
4. **Finish.** Remove ``journal.json`` (the second commit point), then the
   staged keys.

On every open and before every write, a journal found on disk means a
rotation was interrupted: it is *rolled forward* with the staged keys
(repeating steps 2-4), so the vault never stays half-rotated and no key is
lost. Rolling back is never needed because both keys stay on disk until the
journal is gone.

Note: while a rotation is in progress both keys are on disk (0600), even when
the old or new key normally lives only in ``SYMBIONT_MASTER_KEY``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from engine.atomicfile import fsync_dir, private_dir, write_private
from engine.errors import ErrorCode, SymbiError
from engine.secrets.fileformat import key_id
from engine.secrets.keys import KeyStore, encode_key

ROTATION_DIR = "rotation"
JOURNAL_FILE = "journal.json"
OLD_KEY_FILE = "old.key"
NEW_KEY_FILE = "new.key"


@dataclass(frozen=True)
class Journal:
    old_key_id: str
    new_key_id: str
    install: str  # file | passphrase | external
    keep_old: bool
    passphrase_params: dict[str, Any] | None
    started: float


@dataclass(frozen=True)
class StagedRotation:
    journal: Journal
    old_key: bytes
    new_key: bytes


class RotationJournal:
    """Staging area for one rotation at a time, in ``<keys_dir>/rotation/``."""

    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore
        self.dir = keystore.dir / ROTATION_DIR
        self.journal_path = self.dir / JOURNAL_FILE

    def pending(self) -> bool:
        return self.journal_path.exists()

    def stage(
        self, old_key: bytes, new_key: bytes, *, install: str, keep_old: bool, passphrase_params: dict[str, Any] | None
    ) -> StagedRotation:
        private_dir(self.dir)
        write_private(self.dir / OLD_KEY_FILE, (encode_key(old_key) + "\n").encode("ascii"))
        write_private(self.dir / NEW_KEY_FILE, (encode_key(new_key) + "\n").encode("ascii"))
        journal = Journal(key_id(old_key), key_id(new_key), install, keep_old, passphrase_params, time.time())
        write_private(self.journal_path, (json.dumps(asdict(journal), sort_keys=True, indent=1) + "\n").encode())
        return StagedRotation(journal, old_key, new_key)

    def load(self) -> StagedRotation | None:
        """The interrupted rotation, if any. Staged keys without a journal are deleted.

        Call only under the vault's write lock (it may delete debris).
        """
        if not self.journal_path.exists():
            self.discard_debris()
            return None
        return self._read()

    def peek(self) -> StagedRotation | None:
        """The rotation in progress (maybe in another process), without touching anything."""
        try:
            return self._read()
        except (FileNotFoundError, SymbiError):
            return None

    def _read(self) -> StagedRotation:
        try:
            raw = json.loads(self.journal_path.read_bytes())
            journal = Journal(**raw)
        except (ValueError, TypeError):
            raise SymbiError(
                ErrorCode.SEC_006,
                f"the rotation journal {self.journal_path} is unreadable; the rotation cannot be finished",
                offending=str(self.journal_path),
                hint="restore the keys directory from a backup",
            ) from None
        old_key = self.keystore.read_key_file(self.dir / OLD_KEY_FILE)
        new_key = self.keystore.read_key_file(self.dir / NEW_KEY_FILE)
        if key_id(old_key) != journal.old_key_id or key_id(new_key) != journal.new_key_id:
            raise SymbiError(
                ErrorCode.SEC_006,
                f"the staged rotation keys in {self.dir} do not match the journal",
                offending=str(self.dir),
                hint="restore the keys directory from a backup",
            )
        return StagedRotation(journal, old_key, new_key)

    def finish(self) -> None:
        """Commit the end of the rotation: journal first, then the staged keys."""
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()
            fsync_dir(self.dir)
        self.discard_debris()

    def discard_debris(self) -> None:
        if not self.dir.is_dir():
            return
        for path in self.dir.iterdir():
            if path.name != JOURNAL_FILE:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()
        with contextlib.suppress(OSError):
            fsync_dir(self.dir.parent)
