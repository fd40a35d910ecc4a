"""Collecting positioned findings while a document is read.

Warning codes (errors are always ``POLICY_002``):

* ``POLICY_W001`` a policy is shadowed: a policy that wins before it matches
  every request it matches, with a different effect, so it never applies;
* ``POLICY_W002`` a policy can never match (contradictory conditions, or no
  pattern that can match its resource types);
* ``POLICY_W003`` an unknown document ``version``;
* ``POLICY_W004`` a relative File pattern (requests carry absolute paths);
* ``POLICY_W005`` a policy is disabled (``enabled: false``).
"""

from __future__ import annotations

from yaml.nodes import Node

from engine.policy.model import Diagnostic
from engine.policy.yamlpos import end_position, position

ERROR = "POLICY_002"
W_SHADOWED = "POLICY_W001"
W_NEVER = "POLICY_W002"
W_VERSION = "POLICY_W003"
W_RELATIVE = "POLICY_W004"
W_DISABLED = "POLICY_W005"


class Report:
    """Diagnostics in the order found; errors and warnings together."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, node: Node | tuple[int, int], message: str, offset: int = 0) -> None:
        self._add(node, "error", ERROR, message, offset)

    def warn(self, node: Node | tuple[int, int], code: str, message: str) -> None:
        self._add(node, "warning", code, message, 0)

    def _add(self, node: Node | tuple[int, int], severity: str, code: str, message: str, offset: int) -> None:
        if isinstance(node, tuple):
            line, col = node
            end: tuple[int | None, int | None] = (None, None)
        else:
            line, col = position(node)
            end = end_position(node)
            if offset:
                # point inside a one-line scalar (a glob), past an opening quote if any
                style = getattr(node, "style", None)
                col += offset + (1 if style in ("'", '"') else 0)
        self.diagnostics.append(Diagnostic(line, col, severity, code, message, end[0], end[1]))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)
