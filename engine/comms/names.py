"""Names the bus accepts: agent ids, topic names and message ids.

They end up in file paths (the key store), in signed bytes and in audit
records, so they are checked once, strictly, at every entry point.
"""

from __future__ import annotations

import os
import re
from typing import TypeGuard

from engine.errors import ErrorCode, SymbiError

AGENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
TOPIC_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,254}")
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


def is_agent_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and AGENT_ID_RE.fullmatch(value) is not None and ".." not in value


def is_topic(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and TOPIC_RE.fullmatch(value) is not None


def is_message_id(value: object) -> bool:
    return isinstance(value, str) and MESSAGE_ID_RE.fullmatch(value) is not None


def check_agent_id(value: object) -> str:
    """Return ``value`` if it is a valid agent id, else raise ``COMM_001``."""
    if not is_agent_id(value):
        raise SymbiError(
            ErrorCode.COMM_001,
            "invalid agent id",
            offending=value,
            hint="agent ids are 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit",
        )
    return value


def check_topic(value: object) -> str:
    """Return ``value`` if it is a valid topic name, else raise ``COMM_001``."""
    if not is_topic(value):
        raise SymbiError(
            ErrorCode.COMM_001,
            "invalid topic name",
            offending=value,
            hint="topics are 1-255 characters of letters, digits and . _ : / @ -, starting with a letter or digit",
        )
    return value


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_message_id() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` gives, at half the cost."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
