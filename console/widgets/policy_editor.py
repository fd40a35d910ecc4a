"""The policy file's editor: a code ``TextArea`` whose gutter marks the lines with problems.

``set_marks(diagnostics)`` takes the engine's validation results
(``engine.policy.Diagnostic``, 1-based lines); each marked line gets its
number and a ``●`` in the error (or warning) colour and a tinted
background, so problems are visible where they are, not only in a list.
Marking happens on the rendered line (after TextArea's own line cache), so
it never goes stale when the marks change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Offset
from textual.strip import Strip
from textual.widgets import TextArea

SEVERITY_ORDER = {"error": 0, "warning": 1}


class PolicyEditor(TextArea):
    """A ``TextArea`` (use :meth:`TextArea.code_editor`) with diagnostics marked per line."""

    COMPONENT_CLASSES: ClassVar[set[str]] = TextArea.COMPONENT_CLASSES | {
        "policy-editor--error",
        "policy-editor--warning",
        "policy-editor--error-line",
        "policy-editor--warning-line",
    }

    DEFAULT_CSS = """
    PolicyEditor > .policy-editor--error { color: $text-error; text-style: bold; }
    PolicyEditor > .policy-editor--warning { color: $text-warning; text-style: bold; }
    PolicyEditor > .policy-editor--error-line { background: $error 20%; }
    PolicyEditor > .policy-editor--warning-line { background: $warning 15%; }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marks: dict[int, str] = {}  # 0-based row -> "error" | "warning"

    def set_marks(self, diagnostics: Iterable[Any]) -> None:
        """Mark the lines of ``diagnostics`` (objects with ``line`` and ``severity``)."""
        marks: dict[int, str] = {}
        for diagnostic in diagnostics:
            row = max(0, int(diagnostic.line) - 1)
            severity = "error" if diagnostic.severity == "error" else "warning"
            if row not in marks or SEVERITY_ORDER[severity] < SEVERITY_ORDER[marks[row]]:
                marks[row] = severity
        if marks != self.marks:
            self.marks = marks
            self.refresh()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if not self.marks or not self.show_line_numbers:
            return strip
        offset_y = y + round(self.scroll_y)
        document = self.wrapped_document
        if offset_y >= document.height:
            return strip
        row, _ = document.offset_to_location(Offset(0, offset_y))
        severity = self.marks.get(row)
        if severity is None:
            return strip
        first = document.location_to_offset((row, 0)).y == offset_y
        width = self.gutter_width
        gutter_segments = list(strip.crop(0, width))
        gutter_style = (gutter_segments[0].style if gutter_segments else None) or Style()
        # full (not partial) component styles: their colours come blended over the background
        colour = self.get_component_rich_style(f"policy-editor--{severity}").color
        mark = Style(color=colour, bold=True)
        number = str(row + self.line_number_start) if first else ""
        gutter = Strip([Segment(f"{number:>{width - 2}}{'●' if first else ' '} ", gutter_style + mark)], width)
        tint = Style(bgcolor=self.get_component_rich_style(f"policy-editor--{severity}-line").bgcolor)
        text = Strip([seg._replace(style=(seg.style or Style()) + tint) for seg in strip.crop(width)])
        return Strip.join([gutter, text])
