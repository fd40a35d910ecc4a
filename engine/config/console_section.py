"""``[console]``: the Textual console's look and key bindings.

It lives in the engine, not in ``console/``: ``symbiont config check`` and
``config show`` (engine/cli.py, which never imports the console) validate and
print ``[console]`` like every other section, and :class:`RuntimeConfig`
carries it as ``.console``. The console only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.config.schema import _fld, _Section


@dataclass
class ConsoleConfig(_Section):
    """Our own section: the Textual console's look and key bindings."""

    SECTION: ClassVar[str] = "console"

    theme: str = _fld("symbi-dark", "str", nonempty=True)
    # binding id -> comma-separated keys, e.g. {"quit" = "ctrl+q,q"}.
    keymap: dict[str, str] = _fld({}, "strmap", nonempty=True)
    refresh_interval: float = _fld(1.0, "duration", min=0.05)

    def keys_for(self, binding_id: str) -> list[str] | None:
        """The override keys for ``binding_id`` as a list, or None when not overridden."""
        raw = self.keymap.get(binding_id)
        if raw is None:
            return None
        return [key.strip() for key in raw.split(",") if key.strip()]
