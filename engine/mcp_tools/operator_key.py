"""The operator's own SchemaPin key: it signs every approval the operator makes.

``data_dir/operator_key.pem`` is an unencrypted ECDSA P-256 PKCS#8 key, mode
0600, created atomically on first use (:func:`engine.atomicfile.create_exclusive`:
temp file + fsync + link, so two processes racing to create it end up with the
same single key). A key file
that others can read is refused (``SCHEMA_006`` naming the file): an approval
signature is only worth something if nobody else can make one.

An approval signature is a SchemaPin signature (canonical JSON, SHA-256,
ECDSA P-256, base64 DER) over
:func:`engine.mcp_tools.registry.approval_document` (tool id, scope, the
approved definition), so the reference ``schemapin-verify`` can check it with
the operator's public key. When an engine opens, approvals whose signature
does not verify (edited database, or another operator key) go back to review.
"""

from __future__ import annotations

import stat
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from engine.atomicfile import create_exclusive
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.registry import approval_document
from engine.mcp_tools.schemapin import (
    fingerprint,
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_pem,
    sign_schema,
    verify_signature,
)

FILENAME = "operator_key.pem"


class OperatorKey:
    """Lazy access to the operator signing key at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> OperatorKey:
        return cls(Path(data_dir) / FILENAME)

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # False when another process made one first: then we use theirs
        create_exclusive(self.path, private_key_pem(generate_private_key()).encode())

    def _load(self) -> ec.EllipticCurvePrivateKey:
        with self._lock:
            if self._key is not None:
                return self._key
            if not self.path.exists():
                try:
                    self._create()
                except OSError as exc:
                    raise SymbiError(ErrorCode.SCHEMA_006, f"cannot create the operator key: {exc.strerror or exc}",
                                     offending=str(self.path), hint="check the data dir is writable") from exc
            try:
                st = self.path.stat()
                if stat.S_IMODE(st.st_mode) & 0o077:
                    raise SymbiError(
                        ErrorCode.SCHEMA_006,
                        f"the operator key {self.path} is readable by others (mode {stat.S_IMODE(st.st_mode):o})",
                        offending=str(self.path),
                        hint=f"chmod 600 {self.path} (and replace the key if others may have copied it)",
                    )
                data = self.path.read_bytes()
            except OSError as exc:
                raise SymbiError(ErrorCode.SCHEMA_006, f"cannot read the operator key: {exc.strerror or exc}",
                                 offending=str(self.path), hint="check the file's owner and permissions") from exc
            try:
                self._key = load_private_key(data)
            except SymbiError as exc:
                raise SymbiError(ErrorCode.SCHEMA_006, f"the operator key is unusable: {exc.message}", offending=str(self.path),
                                 hint="move the file away; a new key is created on next use (approvals must be made again)") from exc
            return self._key

    def public_pem(self) -> str:
        return public_key_pem(self._load())

    def fingerprint(self) -> str:
        return fingerprint(self._load().public_key())

    def sign_approval(self, tool_id: str, scope: str, definition: dict[str, Any]) -> str:
        return sign_schema(approval_document(tool_id, scope, definition), self._load())

    def verify_approval(self, tool_id: str, scope: str, definition: dict[str, Any], signature: str | None) -> bool:
        if not signature:
            return False
        return verify_signature(approval_document(tool_id, scope, definition), signature, self._load().public_key())
