"""Small text formatters shared by the screens: sizes, durations, states."""

from __future__ import annotations

import time
from collections.abc import Mapping

from rich.style import Style
from rich.text import Text
from textual.color import Color

from engine.api import AgentState

MB = 1_048_576

# State -> theme variable used to colour it (resolved by the app's theme).
STATE_COLOURS: dict[AgentState, str] = {
    AgentState.CREATED: "foreground",
    AgentState.INITIALIZING: "secondary",
    AgentState.READY: "secondary",
    AgentState.RUNNING: "success",
    AgentState.SUSPENDED: "warning",
    AgentState.WAITING: "warning",
    AgentState.COMPLETED: "primary",
    AgentState.FAILED: "error",
    AgentState.TERMINATING: "warning",
    AgentState.TERMINATED: "foreground-muted",
}


def theme_colour(variables: Mapping[str, str] | None, name: str) -> Style:
    """A Rich style for the theme variable ``name`` (e.g. ``success``); plain if unknown."""
    value = (variables or {}).get(name)
    if not value:
        return Style()
    try:
        colour = Color.parse(value.split()[0])
    except Exception:  # noqa: BLE001 - a theme may use a value Rich cannot show
        return Style()
    if colour.ansi == -1:  # ansi_default: the terminal's own colour
        return Style()
    return Style(color=colour.rich_color)


def state_text(state: AgentState, variables: Mapping[str, str] | None = None) -> Text:
    """The state's name coloured from the theme ``variables`` (plain when None)."""
    return Text(state.value, style=theme_colour(variables, STATE_COLOURS[state]))


def duration(seconds: float | None) -> str:
    """``75`` -> ``1m15s``; None -> ``-``."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def megabytes(num_bytes: float) -> str:
    return f"{num_bytes / MB:.1f}"


def size(num_bytes: float) -> str:
    """Human size with binary units: ``1536`` -> ``1.5 KiB``."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def size_of(used: float, total: float) -> str:
    """``used / total`` in the total's binary unit: ``0.5 / 23.5 GiB``."""
    unit, factor = "B", 1.0
    for name, scale in (("KiB", 1024.0), ("MiB", 1024.0**2), ("GiB", 1024.0**3), ("TiB", 1024.0**4)):
        if total >= scale:
            unit, factor = name, scale
    if unit == "B":
        return f"{used:.0f} / {total:.0f} B"
    return f"{used / factor:.1f} / {total / factor:.1f} {unit}"


def clock_time(at: float) -> str:
    """Local wall time of day ``HH:MM:SS``."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def timestamp(at: float | None) -> str:
    """Local ``YYYY-MM-DD HH:MM:SS``, or ``-``."""
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def percent(value: float) -> str:
    return f"{value:.1f}"
