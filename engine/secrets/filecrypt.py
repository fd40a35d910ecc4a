"""Standalone encrypted files: ``symbiont secrets encrypt / decrypt / edit``.

They use the vault's master key and the one file format
(:mod:`engine.secrets.fileformat`, kind "standalone file"). ``decrypt`` and
``edit`` also accept a vault secret's own file (``<base>/app/api_key.enc``):
the secret's name is taken from where the file sits in the vault.

``edit`` decrypts into a private temporary directory (0700, the copy 0600; on
``/dev/shm`` when available, so the plaintext need not touch a disk), runs
``$EDITOR`` (then ``$VISUAL``, then ``vi``) on the copy, and re-encrypts only
when the editor exits 0 *and* the content changed. The temporary copy is
overwritten and removed in every case.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.atomicfile import write_private
from engine.errors import ErrorCode, SymbiError
from engine.secrets.fileformat import KIND_SECRET, parse_header
from engine.secrets.vault import Vault


class EditOutcome(enum.Enum):
    SAVED = "saved"
    UNCHANGED = "unchanged"
    EDITOR_FAILED = "editor_failed"


def _read_input(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SymbiError(ErrorCode.SEC_004, f"{what} {path} not found", offending=str(path)) from None
    except IsADirectoryError:
        raise SymbiError(ErrorCode.SEC_005, f"{what} {path} is a directory", offending=str(path)) from None
    except PermissionError:
        raise SymbiError(ErrorCode.SEC_001, f"permission denied reading {what} {path}", offending=str(path)) from None


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise SymbiError(
            ErrorCode.SEC_005, f"{path} already exists", offending=str(path), hint="pass --force to replace it"
        )


def encrypt_file(vault: Vault, src: Path, dst: Path, *, force: bool = False) -> None:
    """Encrypt ``src`` into ``dst`` (0600, written atomically)."""
    data = _read_input(src, "input file")
    _refuse_overwrite(dst, force)
    write_private(dst, vault.encrypt_bytes(data))


def decrypt_bytes_of(vault: Vault, src: Path) -> bytes:
    """The plaintext of ``src``: a standalone file, or a vault secret file (its value)."""
    blob = _read_input(src, "encrypted file")
    name = _vault_secret_name(vault, src, blob)
    if name is not None:
        return vault.get(name).reveal_bytes()
    return vault.decrypt_bytes(blob, str(src))


def decrypt_file(vault: Vault, src: Path, dst: Path, *, force: bool = False) -> None:
    """Decrypt ``src`` into ``dst`` (0600, atomically). Nothing is written when decryption fails."""
    plain = decrypt_bytes_of(vault, src)
    _refuse_overwrite(dst, force)
    write_private(dst, plain)


def _vault_secret_name(vault: Vault, src: Path, blob: bytes) -> str | None:
    if parse_header(blob, str(src)).kind != KIND_SECRET:
        return None
    name = vault.secret_name_for_file(src)
    if name is None:
        raise SymbiError(
            ErrorCode.SEC_002,
            f"{src} is a vault secret file outside its vault (or renamed); its name is part of its encryption",
            offending=str(src),
            hint="read it with `symbiont secrets get NAME` from the vault it belongs to",
        )
    return name


def editor_command() -> list[str]:
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    return shlex.split(editor)


def _private_tempdir() -> Path:
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    return Path(tempfile.mkdtemp(prefix="symbiont-edit-", dir=base))


def _shred(directory: Path) -> None:
    for path in directory.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                size = path.stat().st_size
                with open(path, "r+b") as fh:
                    fh.write(b"\0" * size)
                    fh.flush()
    shutil.rmtree(directory, ignore_errors=True)


def edit_file(vault: Vault, target: Path, *, editor: list[str] | None = None) -> tuple[EditOutcome, int]:
    """Edit an encrypted file in ``$EDITOR``: (outcome, editor exit status).

    The original stays untouched unless the editor exits 0 with changed
    content; then it is re-encrypted (fresh nonce, current key) atomically.
    A vault secret file is saved as a new version of its secret.
    """
    blob = _read_input(target, "encrypted file")
    name = _vault_secret_name(vault, target, blob)
    plain = vault.get(name).reveal_bytes() if name is not None else vault.decrypt_bytes(blob, str(target))
    command = editor if editor is not None else editor_command()
    tmpdir = _private_tempdir()
    try:
        os.chmod(tmpdir, 0o700)
        stem = target.name[: -len(".enc")] if target.name.endswith(".enc") else target.name
        copy = tmpdir / (Path(stem).name or "secret")
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(plain)
        try:
            status = subprocess.run([*command, str(copy)], check=False).returncode
        except FileNotFoundError:
            raise SymbiError(
                ErrorCode.SEC_001,
                f"cannot run the editor {command[0] if command else '(empty)'}",
                offending=" ".join(command),
                hint="set $EDITOR to an installed editor",
            ) from None
        if status != 0:
            return EditOutcome.EDITOR_FAILED, status
        if not copy.exists():  # the editor removed the copy: treat as "no change", never as "empty"
            return EditOutcome.UNCHANGED, 0
        edited = copy.read_bytes()
        if edited == plain:
            return EditOutcome.UNCHANGED, 0
        if name is not None:
            vault.set(name, edited)
        else:
            write_private(target, vault.encrypt_bytes(edited))
        return EditOutcome.SAVED, 0
    finally:
        _shred(tmpdir)
