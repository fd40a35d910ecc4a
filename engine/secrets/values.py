"""Value types handed out by the vault: a masked secret, listing rows, rotation reports.

:class:`SecretValue` is the only object that ever holds a decrypted value
outside the vault's own stack frames. Its ``repr``/``str``/``format`` are
masked, it refuses to be pickled, and equality is constant-time, so a value
cannot slip into a log line, an exception message, a snapshot or an audit
detail by accident: getting at it takes an explicit :meth:`SecretValue.reveal`.

:class:`SecretInfo` is the reveal-free listing row (name and metadata, never
the value) that the console's vault screen and ``symbiont secrets list`` show.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

MASK = "******"


class SecretValue:
    """A decrypted secret. Masked everywhere except :meth:`reveal` / :meth:`reveal_bytes`."""

    __slots__ = ("__value",)

    def __init__(self, value: str | bytes | SecretValue) -> None:
        if isinstance(value, SecretValue):
            raw = value.reveal_bytes()
        elif isinstance(value, str):
            raw = value.encode("utf-8")
        elif isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
        else:
            raise TypeError(f"a secret value must be str or bytes, not {type(value).__name__}")
        self.__value = raw

    def reveal(self) -> str:
        """The value as text. Call this only at the point of use (stdout, a socket, an agent)."""
        try:
            return self.__value.decode("utf-8")
        except UnicodeDecodeError:
            # The codec's message quotes the offending byte: never chain it.
            raise ValueError("the secret value is not UTF-8 text; use reveal_bytes()") from None

    def reveal_bytes(self) -> bytes:
        """The value as raw bytes."""
        return self.__value

    def __repr__(self) -> str:
        return f"SecretValue({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretValue):
            return hmac.compare_digest(self.__value, other.reveal_bytes())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SecretValue cannot be pickled or copied out of the process")

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretValue:
        return self


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """One secret as listed: name and metadata, never the value.

    ``created``/``updated`` are Unix times (float seconds). ``version`` counts
    writes of this name, starting at 1. ``key_id`` names the master key the
    file is encrypted under (16 hex digits). ``error`` is set (to a
    ``"SEC_00x: ..."`` text) when the file could not be read; the metadata
    fields are then empty.
    """

    path: str
    created: float = 0.0
    updated: float = 0.0
    version: int = 0
    key_id: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "created": self.created,
            "updated": self.updated,
            "version": self.version,
            "key_id": self.key_id,
            "description": self.description,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What :meth:`Vault.rotate_key` did."""

    old_key_id: str
    new_key_id: str
    reencrypted: int
    skipped: tuple[str, ...] = ()  # files that could not be read (named, never their content)
    resumed: bool = False  # True when this finished a rotation an earlier process started
    retired_kept: bool = True
