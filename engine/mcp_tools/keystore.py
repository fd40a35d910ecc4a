"""The SchemaPin key store: trust-on-first-use pins per domain, in one JSON file.

The file is 0600 and rewritten atomically (:func:`engine.atomicfile.write_private`). A key
is pinned only by :class:`~engine.mcp_tools.schemapin.SchemaVerifier` after a
valid signature. A different key for a pinned domain is never adopted
silently: it is recorded as a pending key change carrying both fingerprints,
and the domain stays blocked until the operator accepts (or rejects) it.
The file is re-read when another process (the CLI) has replaced it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from engine.atomicfile import write_private
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.schemapin import fingerprint

FORMAT_VERSION = 1


class KeyStore:
    def __init__(self, path: str | Path, *, clock: Any | None = None) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {"version": FORMAT_VERSION, "domains": {}, "key_changes": {}}
        self._seen: tuple[int, int] | None = None  # (inode, mtime_ns) of the file as last read or written
        self._refresh()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def _refresh(self) -> None:
        """Re-read the file if another process (``symbiont tools accept-key``) replaced it."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SymbiError(ErrorCode.SCHEMA_001, f"key store unreadable: {exc}", offending=str(self.path)) from exc
        if not isinstance(data, dict) or not isinstance(data.get("domains"), dict):
            raise SymbiError(ErrorCode.SCHEMA_001, "key store has no 'domains' table", offending=str(self.path))
        data.setdefault("key_changes", {})
        self._data = data
        self._seen = stamp

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps(self._data, indent=2, sort_keys=True).encode("utf-8"))
        self._seen = self._stamp()

    def get(self, domain: str) -> dict[str, Any] | None:
        self._refresh()
        entry = self._data["domains"].get(domain)
        return dict(entry) if entry else None

    def domains(self) -> dict[str, dict[str, Any]]:
        self._refresh()
        return {d: dict(e) for d, e in self._data["domains"].items()}

    def pin(self, domain: str, public_pem: str, *, source: str = "", developer_name: str | None = None) -> dict[str, Any]:
        """Pin ``public_pem`` for ``domain``. Refuses to overwrite a different pinned key."""
        fp = fingerprint(public_pem)
        with self._lock:
            self._refresh()
            old = self._data["domains"].get(domain)
            if old and old["fingerprint"] != fp:
                raise SymbiError(
                    ErrorCode.SCHEMA_004,
                    f"a different key is pinned for {domain}",
                    offending=domain,
                    hint="accept the key change explicitly (accept_key_change)",
                )
            entry = {
                "fingerprint": fp,
                "public_key_pem": public_pem,
                "pinned_at": self._now(),
                "source": source,
                "developer_name": developer_name,
            }
            self._data["domains"][domain] = entry
            self._save()
        return dict(entry)

    def record_key_change(self, domain: str, new_pem: str, *, source: str = "") -> dict[str, Any]:
        with self._lock:
            self._refresh()
            old = self._data["domains"].get(domain) or {}
            new_fp = fingerprint(new_pem)
            existing = self._data["key_changes"].get(domain)
            if existing and existing["new_fingerprint"] == new_fp:
                return dict(existing)
            change = {
                "domain": domain,
                "old_fingerprint": old.get("fingerprint"),
                "new_fingerprint": new_fp,
                "new_public_key_pem": new_pem,
                "source": source,
                "seen_at": self._now(),
            }
            self._data["key_changes"][domain] = change
            self._save()
        return dict(change)

    def key_changes(self) -> list[dict[str, Any]]:
        self._refresh()
        return [dict(c) for c in self._data["key_changes"].values()]

    def accept_key_change(self, domain: str) -> dict[str, Any]:
        """Replace the pinned key by the pending new one (an operator decision)."""
        with self._lock:
            self._refresh()
            change = self._data["key_changes"].get(domain)
            if change is None:
                raise SymbiError(ErrorCode.SCHEMA_004, f"no pending key change for {domain}", offending=domain)
            self._data["domains"][domain] = {
                "fingerprint": change["new_fingerprint"],
                "public_key_pem": change["new_public_key_pem"],
                "pinned_at": self._now(),
                "source": change.get("source", ""),
                "developer_name": None,
                "replaced": change.get("old_fingerprint"),
            }
            del self._data["key_changes"][domain]
            self._save()
        return dict(change)

    def reject_key_change(self, domain: str) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            change = self._data["key_changes"].pop(domain, None)
            if change is None:
                raise SymbiError(ErrorCode.SCHEMA_004, f"no pending key change for {domain}", offending=domain)
            self._save()
        return dict(change)

    def unpin(self, domain: str) -> None:
        with self._lock:
            self._refresh()
            self._data["domains"].pop(domain, None)
            self._data["key_changes"].pop(domain, None)
            self._save()
