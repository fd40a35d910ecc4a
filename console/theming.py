"""Console themes: TOML files in ``themes/`` turned into Textual themes.

Each ``themes/*.toml`` holds the fields of :class:`textual.theme.Theme`
(``name``, ``primary``, ``background``, ``dark``, ``ansi`` ...) plus an
optional ``[variables]`` table of CSS variable overrides. The app registers
every file found and cycles through them with ctrl+t.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

from textual.theme import Theme

from engine.errors import ErrorCode, SymbiError

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
CSS_PATH = THEMES_DIR / "console.tcss"
DEFAULT_THEME = "symbi-dark"
# The order ctrl+t cycles through; themes from other files follow, by name.
PREFERRED_ORDER = ("symbi-dark", "symbi-light", "symbi-ansi")

_THEME_FIELDS = {f.name for f in fields(Theme)}


def theme_from_file(path: Path) -> Theme:
    """Read one theme file; ``CONFIG_002`` if it is unreadable or malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SymbiError(
            ErrorCode.CONFIG_002, f"cannot read theme file: {exc}", offending=str(path), hint="fix or remove the file"
        ) from exc
    unknown = sorted(set(data) - _THEME_FIELDS)
    if unknown or "name" not in data or "primary" not in data:
        raise SymbiError(
            ErrorCode.CONFIG_002,
            "invalid theme file: " + (f"unknown field {unknown[0]!r}" if unknown else "name and primary are required"),
            offending=str(path),
            hint=f"known fields: {', '.join(sorted(_THEME_FIELDS))}",
        )
    data["variables"] = {str(k): str(v) for k, v in dict(data.get("variables", {})).items()}
    return Theme(**data)


def load_themes(directory: Path = THEMES_DIR) -> list[Theme]:
    """Every theme in ``directory``, in cycling order."""
    themes = [theme_from_file(p) for p in sorted(directory.glob("*.toml"))]

    def order(theme: Theme) -> tuple[int, str]:
        try:
            return PREFERRED_ORDER.index(theme.name), theme.name
        except ValueError:
            return len(PREFERRED_ORDER), theme.name

    return sorted(themes, key=order)
