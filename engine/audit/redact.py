"""Secret redaction for audit details: nothing secret ever reaches the chain.

Owns :class:`Redactor` (the trail's instance knows the registered secret
values) and the module-level :func:`redact` helper. Redaction also makes the
details JSON-safe: keys become strings, tuples/sets become lists, non-finite
floats and unknown objects become strings, lone surrogates become U+FFFD, and
nesting deeper than :data:`MAX_DEPTH` is cut. What is masked:

* the value of any key that looks secret (``password``, ``secret``, ``token``,
  ``api_key``, ``authorization``, ``private_key``, ``cookie``, ``credential``...),
  whatever its type; token *counts* (``max_tokens``, ``tokens_used``) are not secret;
* every registered secret value, wherever it appears inside a string;
* PEM private-key blocks, ``Bearer``/``Basic`` credentials and ``password=...``
  style query parameters inside strings.

Registered values shorter than :data:`MIN_SECRET_LENGTH` are ignored (masking
``"ab"`` everywhere would destroy the record, not protect it).
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "MAX_DEPTH", "MIN_SECRET_LENGTH", "Redactor", "is_secret_key", "redact"]

log = logging.getLogger("symbi.audit")

MASK = "[REDACTED]"
MAX_DEPTH = 64
MIN_SECRET_LENGTH = 4

_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "signingkey",
    "masterkey",
    "encryptionkey",
    "sessionkey",
    "authorization",
    "credential",
    "cookie",
    "bearer",
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_TOKEN_COUNTER = re.compile(
    r"(max|num|total|prompt|completion|input|output|context|reasoning)?token(s)?"
    r"(used|count|counts|limit|usage|remaining|budget|in|out|persecond)?"
)
_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
# a credential after "Bearer"/"Basic": 8+ token characters including a digit or one of + / = (not a plain word)
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z0-9._~+/=-]*[0-9+/=])[A-Za-z0-9._~+/=-]{8,}")
_QUERY_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|auth)=([^&\s;,'\"]+)"
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Does a details key name a secret? (``api_key``, ``X-Auth-Token``, ``db_password`` ...)"""
    k = _NOT_ALNUM.sub("", key.lower())
    hits = [p for p in _SECRET_PARTS if p in k]
    if not hits:
        return False
    if hits == ["token"]:
        m = _TOKEN_COUNTER.fullmatch(k)
        if m and (m.group(1) or m.group(2) or m.group(3)):
            return False  # LLM token counts and limits: max_tokens, tokens_used, prompt_tokens, tokens
    return True


def _fix_text(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be stored or hashed as UTF-8
        s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # one U+FFFD per lone surrogate
    return s


class Redactor:
    """Masks secret-looking keys and registered secret values; makes details JSON-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in secrets:
            self.register(value)

    def register(self, value: str) -> None:
        """Mask ``value`` wherever it appears in a string from now on."""
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            log.warning("audit: a registered secret shorter than %d characters is not masked", MIN_SECRET_LENGTH)
            return
        if value in self._secrets:
            return
        self._secrets.add(value)
        ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial leftovers
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def secret_count(self) -> int:
        return len(self._secrets)

    def mask_text(self, s: str) -> str:
        """``s`` with registered secrets and recognisable credentials masked."""
        if self._pattern is not None:
            s = self._pattern.sub(MASK, s)
        # cheap substring tests decide whether the slower credential patterns need to run at all
        if "=" in s or "PRIVATE KEY" in s or "bearer" in (low := s.lower()) or "basic" in low:
            if "PRIVATE KEY" in s:
                s = _PEM_PRIVATE.sub(MASK, s)
            s = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", s)
            s = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", s)
        return s

    def text(self, s: str) -> str:
        """A top-level string field: masked and valid UTF-8."""
        return _fix_text(self.mask_text(s))

    def redact(self, value: Any, _depth: int = 0, *, fix: bool = True) -> Any:
        """A JSON-safe copy of ``value`` with every secret masked (``fix``: lone surrogates replaced)."""
        cls = value.__class__
        if cls is str:
            return _fix_text(self.mask_text(value)) if fix else self.mask_text(value)
        if value is None or cls is bool or cls is int:
            return value
        if cls is float:
            return value if math.isfinite(value) else repr(value)
        if _depth >= MAX_DEPTH:
            return "[TRUNCATED: nested too deep]"
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                key = k if k.__class__ is str else str(k.value if isinstance(k, enum.Enum) else k)
                key = self.mask_text(key)
                if fix:
                    key = _fix_text(key)
                if is_secret_key(key):
                    out[key] = MASK
                elif v.__class__ is str and not fix:
                    out[key] = self.mask_text(v)
                elif v is None or v.__class__ is int or v.__class__ is bool:
                    out[key] = v
                else:
                    out[key] = self.redact(v, _depth + 1, fix=fix)
            return out
        if isinstance(value, list | tuple):
            return [self.redact(v, _depth + 1, fix=fix) for v in value]
        if isinstance(value, set | frozenset):
            return [self.redact(v, _depth + 1, fix=fix) for v in sorted(value, key=repr)]
        if isinstance(value, enum.Enum):
            return self.redact(value.value, _depth + 1, fix=fix)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return self.redact(float(value), _depth, fix=fix)
        if isinstance(value, str):
            return self.redact(str(value), _depth, fix=fix)
        if isinstance(value, bytes | bytearray | memoryview):
            return f"<{len(value)} bytes>"  # raw bytes may hold anything; never store them
        return self.redact(str(value), _depth, fix=fix)


def redact(details: Mapping[str, Any] | None, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Module-level helper: a redacted, JSON-safe copy of ``details``."""
    if details is None:
        return {}
    out: dict[str, Any] = Redactor(secrets).redact(details)  # a Mapping always redacts to a dict
    return out
