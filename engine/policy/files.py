"""The policy file on disk: reading it, hashing it, saving it atomically.

:func:`save_atomic` is what the policy editor calls: it validates first
(nothing invalid is ever written), writes a temporary file in the same
directory, fsyncs it, keeps the current file as ``<file>.prev``, renames the
new one into place and fsyncs the directory. A crash leaves either the old
or the new file, never half of one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from engine.atomicfile import write_private
from engine.errors import ErrorCode, SymbiError
from engine.policy.model import Diagnostic
from engine.policy.parser import parse_document

MAX_POLICY_BYTES = 16 * 1024 * 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_policy_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes; POLICY_002 with a clear message if it is missing, a directory, unreadable or huge."""
    p = Path(path)
    try:
        if p.is_dir():
            raise SymbiError(ErrorCode.POLICY_002, "policy file is a directory", offending=str(p),
                             hint="point at the access_policies.yaml file itself")
        size = p.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise SymbiError(ErrorCode.POLICY_002, f"policy file is too large ({size} bytes)", offending=str(p),
                             hint=f"policy files are limited to {MAX_POLICY_BYTES // (1024 * 1024)} MiB")
        return p.read_bytes()
    except FileNotFoundError:
        raise SymbiError(ErrorCode.POLICY_002, "policy file not found", offending=str(p),
                         hint="check the path, or create it (see examples/policies/access_policies.yaml)") from None
    except PermissionError:
        raise SymbiError(ErrorCode.POLICY_002, "policy file is not readable (permission denied)", offending=str(p),
                         hint="check the file's permissions") from None
    except OSError as exc:
        raise SymbiError(ErrorCode.POLICY_002, f"cannot read the policy file: {exc.strerror or exc}",
                         offending=str(p)) from None


def file_signature(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode), or None if the file is missing: cheap change detection."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True, slots=True)
class SaveResult:
    path: str
    sha256: str
    previous: str | None  # where the previous version was kept, if there was one
    previous_sha256: str | None
    warnings: tuple[Diagnostic, ...]


def save_atomic(path: str | os.PathLike[str], text: str, *, keep_previous: bool = True) -> SaveResult:
    """Validate ``text`` and write it to ``path`` atomically, keeping ``<path>.prev``.

    Raises POLICY_002 (with all diagnostics in ``details``) if ``text`` is
    invalid, and nothing is written. The new file keeps the old one's mode
    (0644 for a new file).
    """
    target = Path(path)
    document, diagnostics = parse_document(text, str(target), analyze=True)
    if document is None:
        first = next(d for d in diagnostics if d.is_error)
        raise SymbiError(
            ErrorCode.POLICY_002,
            f"not saved: {target}:{first.line}:{first.column}: {first.message}",
            offending=str(target),
            hint="fix the errors first; the file on disk is unchanged",
            details={"line": first.line, "column": first.column, "diagnostics": [d.to_dict() for d in diagnostics]},
        )
    data = text.encode("utf-8")
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    mode = 0o644
    previous: str | None = None
    previous_sha: str | None = None
    if target.exists():
        mode = target.stat().st_mode & 0o777
        if keep_previous:
            old = target.read_bytes()
            previous_sha = sha256_hex(old)
            prev_path = target.with_name(target.name + ".prev")
            write_private(prev_path, old, mode=mode, dir_sync_required=False)
            previous = str(prev_path)
    write_private(target, data, mode=mode, dir_sync_required=False)
    return SaveResult(str(target), sha256_hex(data), previous, previous_sha, tuple(document.warnings))


def restore_previous(path: str | os.PathLike[str]) -> SaveResult:
    """Put ``<path>.prev`` back in place (atomically); the current file becomes the new ``.prev``."""
    target = Path(path)
    prev = target.with_name(target.name + ".prev")
    if not prev.exists():
        raise SymbiError(ErrorCode.POLICY_002, "no previous version to restore", offending=str(prev))
    text = prev.read_bytes().decode("utf-8", "replace")
    return save_atomic(target, text)


__all__ = ["SaveResult", "file_signature", "read_policy_bytes", "restore_previous", "save_atomic", "sha256_hex"]
