"""Differences between two versions of a policy file (the editor's "diff against the policy in force").

:func:`diff` compares policies by name (added, removed, and for changed
ones which fields changed) and also gives a unified text diff. It works on
text that does not parse too: then only the text diff is available.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from engine.policy.document import PolicyDocument
from engine.policy.parser import parse_document


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[tuple[str, tuple[str, ...]], ...]  # (policy name, fields that differ)
    unified: str
    semantic: bool  # False when one side does not parse (only ``unified`` is meaningful)

    @property
    def empty(self) -> bool:
        return not self.unified

    def summary(self) -> list[str]:
        """One line per change, e.g. ``~ network_restrictions: priority, resources``."""
        if not self.semantic:
            return ["(one version does not parse; showing the text diff only)"] if self.unified else []
        lines = [f"+ {name}" for name in self.added]
        lines += [f"- {name}" for name in self.removed]
        lines += [f"~ {name}: {', '.join(fields)}" for name, fields in self.changed]
        return lines


def _document(source: str | PolicyDocument | None) -> tuple[str, PolicyDocument | None]:
    if source is None:
        return "", None
    if isinstance(source, PolicyDocument):
        return source.text, source
    return source, parse_document(source, analyze=False)[0]


def diff(
    old: str | PolicyDocument | None,
    new: str | PolicyDocument,
    *,
    old_label: str = "in force",
    new_label: str = "edited",
) -> PolicyDiff:
    """What changes going from ``old`` to ``new`` (text or parsed documents)."""
    old_text, old_doc = _document(old)
    new_text, new_doc = _document(new)
    unified = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=old_label,
            tofile=new_label,
        )
    )
    if unified and not unified.endswith("\n"):
        unified += "\n"
    if (old is not None and old_doc is None) or new_doc is None:
        return PolicyDiff((), (), (), unified, False)
    before = {p.name: p.summary() for p in old_doc.policies} if old_doc else {}
    after = {p.name: p.summary() for p in new_doc.policies}
    added = tuple(n for n in after if n not in before)
    removed = tuple(n for n in before if n not in after)
    changed = []
    for name, fields in after.items():
        if name in before and fields != before[name]:
            changed.append((name, tuple(k for k in fields if fields[k] != before[name].get(k))))
    return PolicyDiff(added, removed, tuple(changed), unified, True)
