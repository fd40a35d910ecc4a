"""Secret names (the seed calls them paths): validation and mapping to files.

A secret name is one or more ``/``-separated segments, e.g. ``app/api_key``.
Each segment starts with a letter, digit or ``_`` and continues with letters,
digits and ``_ . - @ + =`` (at most 128 characters); at most 16 segments and
512 characters in all. So a name can never be absolute, contain ``..`` or
``.``, a backslash, a NUL or a control character, or name a hidden file (the
vault keeps its own bookkeeping in dot-files). Anything else is ``SEC_005``.

``app/api_key`` lives at ``<base_path>/app/api_key.<ext>``; its previous
versions at ``...api_key.<ext>.1`` (newest) to ``.<ext>.N``.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import ErrorCode, SymbiError

MAX_SEGMENTS = 16
MAX_LENGTH = 512
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=-]{0,127}")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")

NAME_HINT = (
    "use segments of letters, digits and _ . - @ + = separated by '/', not starting with '.' or '/', e.g. app/api_key"
)


def _shown(name: object) -> str:
    text = str(name)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_secret_path(name: object) -> str:
    """Return ``name`` if it is a valid secret name, else raise ``SEC_005``."""
    if not isinstance(name, str):
        raise SymbiError(ErrorCode.SEC_005, "a secret name must be text", offending=type(name).__name__, hint=NAME_HINT)
    problem = None
    if not name:
        problem = "the secret name is empty"
    elif len(name) > MAX_LENGTH:
        problem = f"the secret name is longer than {MAX_LENGTH} characters"
    elif name.startswith("/"):
        problem = "the secret name is absolute"
    else:
        segments = name.split("/")
        if len(segments) > MAX_SEGMENTS:
            problem = f"the secret name has more than {MAX_SEGMENTS} segments"
        for segment in segments:
            if problem:
                break
            if segment in ("", ".", ".."):
                problem = f"the secret name has an empty, '.' or '..' segment ({segment!r})"
            elif not _SEGMENT.fullmatch(segment):
                problem = f"invalid segment {_shown(segment)!r}"
    if problem:
        raise SymbiError(ErrorCode.SEC_005, problem, offending=_shown(name), hint=NAME_HINT)
    return name


def validate_extension(ext: str) -> str:
    """The file extension for secret files: 1-16 letters/digits, without a dot."""
    if not isinstance(ext, str) or not _EXTENSION.fullmatch(ext):
        raise SymbiError(
            ErrorCode.CONFIG_001,
            "invalid value for 'secrets.file_extension'",
            offending=ext,
            hint="use 1-16 letters or digits without a dot, e.g. enc",
        )
    return ext


def secret_file(base: Path, name: str, ext: str) -> Path:
    """The file holding the current version of ``name``."""
    *folders, leaf = validate_secret_path(name).split("/")
    return base.joinpath(*folders, f"{leaf}.{ext}")


def history_file(current: Path, n: int) -> Path:
    """The ``n``-th previous version (1 = newest) of the secret stored at ``current``."""
    return current.with_name(f"{current.name}.{n}")


def name_for_file(base: Path, file: Path, ext: str) -> str | None:
    """The secret name stored at ``file`` (a current-version file under ``base``), or None."""
    try:
        rel = file.relative_to(base)
    except ValueError:
        return None
    suffix = "." + ext
    if not rel.name.endswith(suffix):
        return None
    parts = [*rel.parts[:-1], rel.name[: -len(suffix)]]
    name = "/".join(parts)
    try:
        return validate_secret_path(name)
    except SymbiError:
        return None
