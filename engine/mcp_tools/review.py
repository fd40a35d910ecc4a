"""Pure review helpers: definition hashes, diffs, and shadowing detection.

* :func:`definition_hash` — SHA-256 of the canonical (name, description,
  inputSchema) of a tool: what discovery pins and approval is bound to.
* :func:`definition_diff` — a unified diff of two definitions (pretty JSON),
  shown to the operator when a tool changed after approval (rug pull).
* :func:`shadowing_findings` — does a new tool imitate another server's tool?
  Same name, same normalised name, a name within a small edit distance, or a
  description that names another server's tool and steers away from it
  ("use this instead of ...").
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from engine.mcp_tools.schemapin import canonicalize

# the registry's review states (engine.mcp_tools.registry.STATES), for modules that only need the names
REVIEW_STATES = ("PendingReview", "UnderReview", "AwaitingHumanReview", "Approved", "Rejected", "Signed", "SigningFailed", "Expired")


def definition_hash(definition: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize(definition).encode("utf-8")).hexdigest()


def definition_diff(old: dict[str, Any] | None, new: dict[str, Any], *, old_label: str = "approved", new_label: str = "served") -> str:
    def lines(d: dict[str, Any] | None) -> list[str]:
        if d is None:
            return []
        return json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), fromfile=old_label, tofile=new_label))


_SPLIT = re.compile(r"[^a-z0-9]+")


def normalise_name(name: str) -> str:
    """Lowercase, separators dropped: ``Read-File``, ``read_file`` and ``readFile`` are one name."""
    return _SPLIT.sub("", name.lower())


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance, stopping early above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


_STEER = re.compile(r"\b(instead|rather than|in place of|do not use|don't use|never use|replaces?|deprecated)\b", re.I)


def shadowing_findings(
    server: str, name: str, description: str, others: Iterable[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """Findings for a tool of ``server`` against ``others`` = (server, name, description) of other servers."""
    findings: list[dict[str, Any]] = []
    norm = normalise_name(name)
    for o_server, o_name, _o_desc in others:
        if o_server == server:
            continue
        other_id = f"{o_server}/{o_name}"
        o_norm = normalise_name(o_name)
        if name == o_name:
            findings.append({"kind": "shadowing", "severity": "High", "reason": "same name as another server's tool", "other": other_id})
        elif norm == o_norm:
            findings.append({"kind": "shadowing", "severity": "High", "reason": "same normalised name as another server's tool", "other": other_id, "evidence": f"{name} ~ {o_name}"})
        elif len(norm) >= 4 and edit_distance(norm, o_norm, 2) <= (1 if len(norm) < 8 else 2):
            findings.append({"kind": "shadowing", "severity": "Medium", "reason": "name is a near-copy of another server's tool", "other": other_id, "evidence": f"{name} ~ {o_name}"})
        if len(o_name) >= 3 and re.search(rf"(?<![A-Za-z0-9_]){re.escape(o_name)}(?![A-Za-z0-9_])", description):
            m = _STEER.search(description)
            if m:
                start = max(0, min(description.find(o_name), m.start()) - 40)
                findings.append(
                    {
                        "kind": "shadowing",
                        "severity": "High",
                        "reason": "description names another server's tool and steers away from it",
                        "other": other_id,
                        "evidence": description[start : start + 200],
                    }
                )
    return findings
