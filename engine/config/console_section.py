"""``[console]``: the Textual console's look and key bindings.

It lives in the engine, not in ``console/``: ``symbiont config check`` and
``config show`` (engine/cli.py, which never imports the console) validate and
print ``[console]`` like every other section, and :class:`RuntimeConfig`
carries it as ``.console``. The console only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.config.schema import _bad, _fld, _key_label, _Section, _type_name


@dataclass
class ConsoleContext(_Section):
    """One engine the console can switch to with ``:ctx NAME`` (as k9s's contexts)."""

    SECTION: ClassVar[str] = "console.contexts"

    name: str = _fld("", "str", nonempty=True, pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
    url: str = _fld("", "str", nonempty=True, pattern=r"https?://\S+")
    # name of the environment variable holding that engine's bearer token (never the token)
    token_env: str = _fld("SYMBI_API_TOKEN", "str", pattern=r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class ConsoleConfig(_Section):
    """Our own section: the Textual console's look and key bindings."""

    SECTION: ClassVar[str] = "console"

    theme: str = _fld("symbi-dark", "str", nonempty=True)
    # binding id -> comma-separated keys, e.g. {"quit" = "ctrl+q,q"}.
    keymap: dict[str, str] = _fld({}, "strmap", nonempty=True)
    refresh_interval: float = _fld(1.0, "duration", min=0.05)
    contexts: list[ConsoleContext] = field(default_factory=list)

    SPECIAL_FIELDS: ClassVar[tuple[str, ...]] = ("contexts",)

    @classmethod
    def _read_special(cls, key: str, value: Any, dotted: str, warnings: list[str]) -> Any:
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise _bad(
                _key_label(dotted),
                value,
                f"expected an array of tables, got {_type_name(value)}",
                'write each as [[console.contexts]] with name = "..." and url = "https://..."',
            )
        out: list[ConsoleContext] = []
        for i, item in enumerate(value):
            for required in ("name", "url"):
                if required not in item:
                    raise _bad(
                        _key_label(f"{dotted}[{i}].{required}"), None, "is missing", f"give each context a {required}"
                    )
            context = ConsoleContext._from_raw(item, f"{dotted}[{i}]", warnings)
            if any(c.name == context.name for c in out):
                raise _bad(
                    _key_label(f"{dotted}[{i}].name"), context.name, "is used twice", "give each context its own name"
                )
            out.append(context)
        return out

    def context(self, name: str) -> ConsoleContext | None:
        return next((c for c in self.contexts if c.name == name), None)

    def keys_for(self, binding_id: str) -> list[str] | None:
        """The override keys for ``binding_id`` as a list, or None when not overridden."""
        raw = self.keymap.get(binding_id)
        if raw is None:
            return None
        return [key.strip() for key in raw.split(",") if key.strip()]
