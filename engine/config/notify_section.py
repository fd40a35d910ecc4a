"""``[[notify]]``: webhooks told when something waits for the operator (a tool, a call, a key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.config.schema import _bad, _fld, _key_label, _Section, _type_name

KINDS = ("tool", "call", "key")


@dataclass
class NotifyConfig(_Section):
    """One webhook: ``url`` gets a JSON POST for each waiting item of the ``events`` kinds."""

    SECTION: ClassVar[str] = "notify"

    url: str = _fld("", "str", nonempty=True, pattern=r"https?://\S+")
    # comma-separated: tool (a tool waits for review), call (an agent's call waits), key (a key changed)
    events: str = _fld("tool,call,key", "str", nonempty=True)
    timeout: float = _fld(5.0, "duration", min=0, min_exclusive=True)
    # name of an environment variable holding a bearer token for the receiver (never the token)
    token_env: str = _fld("", "str", pattern=r"|[A-Za-z_][A-Za-z0-9_]*")

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise _bad(_key_label("notify.events"), self.events, f"{unknown[0]!r} is not a kind", "use tool, call, key")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.events.split(",") if k.strip())


def read_notify(value: Any, warnings: list[str]) -> list[NotifyConfig]:
    """The ``[[notify]]`` array of tables."""
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise _bad(
            _key_label("notify"),
            value,
            f"expected an array of tables, got {_type_name(value)}",
            'write each webhook as [[notify]] with url = "https://..."',
        )
    targets = []
    for i, item in enumerate(value):
        if "url" not in item:
            raise _bad(_key_label(f"notify[{i}].url"), None, "is missing", 'give each [[notify]] a url = "https://..."')
        targets.append(NotifyConfig._from_raw(item, f"notify[{i}]", warnings))
    return targets
