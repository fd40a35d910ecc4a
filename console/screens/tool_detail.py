"""What the review queue shows about one item: a tool, a pending call or a key change.

Pure rendering (Rich ``Text`` from the engine interface's data: a
:class:`~engine.api.ToolRecord`, a :class:`~engine.api.PendingCallView`, a
:class:`~engine.api.KeyChangeView`; and the theme's variables), so the same
text serves the detail pane, the confirmation dialogs and tests.

The part that matters most is :func:`definition_text`: the tool definition
as pretty JSON with every finding's evidence highlighted *in place*. Each
finding names a ``field`` (``description``, ``inputSchema.properties.cmd``,
``inputSchema.properties.cmd.description`` ...) and a ``span`` (character
offsets into that field's raw text). The JSON is printed here character by
character, so a raw offset maps exactly to what is on screen: quotes and
newlines are escaped as JSON does, and invisible or bidi characters are
drawn as ``<U+200B>`` (a reviewer must see what the model will read). A
finding whose span does not fit its field falls back to finding its
evidence in the text; a finding on an object (a whole property, the whole
schema) marks the object's key. Each highlight ends with the finding's
number, ``‹1›``, which the findings list below repeats.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from rich.style import Style
from rich.text import Text

from console.format import duration, theme_colour, timestamp
from engine.api import SEVERITIES, KeyChangeView, PendingCallView, ToolRecord  # SEVERITIES: lowest first

SEVERITY_COLOURS = {
    "Critical": "error",
    "High": "error",
    "Medium": "warning",
    "Low": "accent",
    "Info": "foreground-muted",
}
STATE_COLOURS = {
    "PendingReview": "warning",
    "UnderReview": "secondary",
    "AwaitingHumanReview": "warning",
    "Expired": "error",
    "Approved": "success",
    "Signed": "success",
    "Rejected": "error",
    "SigningFailed": "error",
}
JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}

Vars = Mapping[str, str] | None


def colour(variables: Vars, name: str) -> Style:
    return theme_colour(variables, name)


def severity_rank(severity: str | None) -> int:
    """0 for Info ... 4 for Critical; -1 for none or an unknown word."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def max_severity(findings: Sequence[Mapping[str, Any]]) -> str | None:
    ranked = [f.get("severity") for f in findings if severity_rank(f.get("severity")) >= 0]
    return max(ranked, key=severity_rank) if ranked else None


def is_invisible(char: str) -> bool:
    """Characters a reader cannot see (format, bidi, control, private use, odd spaces)."""
    if char in " \n\r\t":
        return False
    category = unicodedata.category(char)
    return category in ("Cf", "Cc", "Co", "Cs", "Cn", "Zl", "Zp") or (category == "Zs" and char != " ")


def shown_char(char: str) -> str:
    """How one raw character of a JSON string is drawn: JSON escapes, ``<U+…>`` for the invisible."""
    if char in JSON_ESCAPES:
        return JSON_ESCAPES[char]
    if is_invisible(char):
        return f"<U+{ord(char):04X}>"
    return char


def visible(text: str) -> str:
    """``text`` with invisible characters written as ``<U+…>`` (newlines kept)."""
    return "".join(f"<U+{ord(c):04X}>" if is_invisible(c) else c for c in text)


def severity_style(variables: Vars, severity: str | None) -> Style:
    return colour(variables, SEVERITY_COLOURS.get(severity or "", "foreground-muted"))


def highlight_style(variables: Vars, severity: str | None) -> Style:
    """The style of evidence in place: reversed (a coloured background) from Medium up, underlined below."""
    base = severity_style(variables, severity)
    if severity_rank(severity) >= severity_rank("Medium"):
        return base + Style(reverse=True, bold=True)
    return base + Style(underline=True, bold=True)


def badge(findings: Sequence[Mapping[str, Any]], score: int, variables: Vars) -> Text:
    """``▲ High 72`` coloured by the worst finding; ``✔ clean 0`` without findings."""
    worst = max_severity(findings)
    if worst is None:
        return Text.assemble(
            ("✔ clean", colour(variables, "success")), (f" {score:>3}", colour(variables, "foreground-muted"))
        )
    mark = "■" if worst == "Critical" else "▲" if worst == "High" else "●" if worst == "Medium" else "·"
    style = severity_style(variables, worst)
    return Text.assemble((f"{mark} {worst}", style + Style(bold=severity_rank(worst) >= 3)), (f" {score:>3}", style))


# The lists' short words for the review states (the detail pane shows the full names).
SHORT_STATES = {
    "PendingReview": "pending",
    "UnderReview": "analyzing",
    "AwaitingHumanReview": "awaiting you",
    "Expired": "expired",
    "Approved": "approved",
    "Signed": "signed",
    "Rejected": "rejected",
    "SigningFailed": "sign failed",
}


def state_text(state: str, variables: Vars, deferred: bool = False, *, short: bool = False) -> Text:
    label = SHORT_STATES.get(state, state) if short else state
    if short and deferred:
        return Text("deferred", style=colour(variables, "foreground-muted"))
    out = Text(label, style=colour(variables, STATE_COLOURS.get(state, "foreground")))
    if deferred:
        out.append(" (deferred)", style=colour(variables, "foreground-muted"))
    return out


def short_hash(value: str | None, n: int = 12) -> str:
    return (value[:n] + "…") if value and len(value) > n else (value or "-")


def short_fingerprint(value: str | None, n: int = 16) -> str:
    if not value:
        return "-"
    head, _, tail = value.partition(":")
    return f"{head}:{tail[:n]}…" if tail and len(tail) > n else value


# -- where a finding points --------------------------------------------------------------


def resolve_field(definition: Mapping[str, Any], field: str | None) -> tuple[str, ...] | None:
    """The key path of ``field`` in ``definition`` (``inputSchema.properties.a.b`` may name a
    property called ``a.b``: at each level the longest key that matches wins)."""
    if not field:
        return None
    path: list[str] = []
    node: Any = definition
    rest = field
    while rest:
        if isinstance(node, list):
            head = rest.split(".", 1)[0]
            if not head.isdigit() or int(head) >= len(node):
                return None
            path.append(head)
            node = node[int(head)]
            rest = rest[len(head) + 1 :]
            continue
        if not isinstance(node, Mapping):
            return None
        match = None
        for key in sorted((k for k in node if isinstance(k, str)), key=len, reverse=True):
            if rest == key or rest.startswith(key + "."):
                match = key
                break
        if match is None:
            return None
        path.append(match)
        node = node[match]
        rest = rest[len(match) + 1 :]
    return tuple(path)


def _unvisible(text: str) -> str:
    """Evidence as the analyzer wrote it (``<U+200B>``) back to raw characters, for searching."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("<U+", i):
            end = text.find(">", i)
            if end != -1:
                try:
                    out.append(chr(int(text[i + 3 : end], 16)))
                    i = end + 1
                    continue
                except ValueError:
                    pass
        out.append(text[i])
        i += 1
    return "".join(out)


def _evidence_span(raw: str, finding: Mapping[str, Any]) -> tuple[int, int] | None:
    """Where ``finding`` points in the string ``raw``: its span when it fits, else its evidence found."""
    span = finding.get("span")
    if isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, int) for x in span):
        start, end = span
        if 0 <= start < end <= len(raw):
            return start, end
    evidence = finding.get("evidence")
    if isinstance(evidence, str) and evidence.strip():
        for needle in (_unvisible(evidence), evidence):
            needle = needle.strip().strip("…").strip()
            if needle and needle in raw:
                start = raw.index(needle)
                return start, start + len(needle)
    return None


# -- the definition as highlighted JSON ------------------------------------------------------


class _Marks:
    """Findings placed on the definition: per string path, character ranges; per object path, a key mark."""

    def __init__(self, definition: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> None:
        self.ranges: dict[tuple[str, ...], list[tuple[int, int, int]]] = {}  # path -> (start, end, finding no.)
        self.keys: dict[tuple[str, ...], list[int]] = {}  # object path -> finding numbers
        self.placed: set[int] = set()
        for number, finding in enumerate(findings, 1):
            path = resolve_field(definition, finding.get("field"))
            if path is None:
                continue
            value: Any = definition
            for key in path:
                value = value[int(key)] if isinstance(value, list) else value[key]
            if len(path) >= 2 and path[-2] == "properties" and isinstance(value, Mapping):
                # a parameter: the field's raw text is the parameter's name (its key)
                where = _evidence_span(path[-1], finding) or (0, len(path[-1]))
                self.ranges.setdefault(KEY_MARK + path, []).append((where[0], where[1], number))
                self.placed.add(number)
            elif isinstance(value, str):
                at = _evidence_span(value, finding)
                if at is None and value:
                    at = (0, len(value))
                if at is not None:
                    self.ranges.setdefault(path, []).append((at[0], at[1], number))
                    self.placed.add(number)
            else:
                # an object: its key is marked, and the evidence too if a string below holds it
                self.keys.setdefault(path, []).append(number)
                self.placed.add(number)
                found = _find_below(value, path, finding)
                if found is not None:
                    sub, start, end = found
                    self.ranges.setdefault(sub, []).append((start, end, number))


def _find_below(
    value: Any, path: tuple[str, ...], finding: Mapping[str, Any]
) -> tuple[tuple[str, ...], int, int] | None:
    evidence = finding.get("evidence")
    if not isinstance(evidence, str) or not evidence.strip():
        return None
    stack: list[tuple[tuple[str, ...], Any]] = [(path, value)]
    while stack:
        where, node = stack.pop(0)
        if isinstance(node, str):
            hit = _evidence_span(node, {"evidence": evidence})
            if hit is not None:
                return where, hit[0], hit[1]
        elif isinstance(node, Mapping):
            stack.extend((where + (str(k),), v) for k, v in node.items())
    return None


KEY_MARK = ("\x00key",)  # prefix of the paths whose ranges lie in a key, not a value


def definition_text(
    definition: Mapping[str, Any], findings: Sequence[Mapping[str, Any]], variables: Vars
) -> tuple[Text, set[int]]:
    """Pretty JSON of ``definition`` with the findings' evidence highlighted where it is.

    Returns the text and the numbers (1-based) of the findings placed in it."""
    marks = _Marks(definition, findings)
    severities = {n: f.get("severity") for n, f in enumerate(findings, 1)}
    out = Text(no_wrap=False)
    punct = colour(variables, "foreground-muted")
    key_style = colour(variables, "primary")
    string_style = colour(variables, "success")
    literal_style = colour(variables, "accent")

    def tag(numbers: Sequence[int]) -> None:
        for n in numbers:
            out.append(f"‹{n}›", severity_style(variables, severities[n]) + Style(bold=True))

    def string(raw: str, path: tuple[str, ...], base: Style) -> None:
        ranges = marks.ranges.get(path, [])
        out.append('"', base)
        if not ranges:
            out.append("".join(shown_char(c) for c in raw), base)
            out.append('"', base)
            return
        ends: dict[int, list[int]] = {}
        for _start, end, number in ranges:
            ends.setdefault(end, []).append(number)
        for i, char in enumerate(raw):
            covering = [n for start, end, n in ranges if start <= i < end]
            if covering:
                worst = max((severities[n] for n in covering), key=severity_rank)
                style = highlight_style(variables, worst)
            else:
                style = base
            piece = shown_char(char)
            if piece != char and is_invisible(char):
                style = (
                    style + Style(bold=True, underline=True)
                    if covering
                    else colour(variables, "error") + Style(bold=True)
                )
            out.append(piece, style)
            if i + 1 in ends:
                tag(ends[i + 1])
        out.append('"', base)

    def value(node: Any, path: tuple[str, ...], indent: int) -> None:
        pad = "  " * indent
        if isinstance(node, Mapping):
            if not node:
                out.append("{}", punct)
                return
            out.append("{\n", punct)
            items = list(node.items())
            for index, (key, child) in enumerate(items):
                child_path = path + (str(key),)
                out.append(pad + "  ")
                numbers = marks.keys.get(child_path, [])
                if numbers:
                    worst = max((severities[n] for n in numbers), key=severity_rank)
                    out.append(json.dumps(str(key), ensure_ascii=False), highlight_style(variables, worst))
                    tag(numbers)
                else:
                    string(str(key), KEY_MARK + child_path, key_style)
                out.append(": ", punct)
                value(child, child_path, indent + 1)
                out.append(",\n" if index < len(items) - 1 else "\n", punct)
            out.append(pad + "}", punct)
        elif isinstance(node, list):
            if not node:
                out.append("[]", punct)
                return
            out.append("[\n", punct)
            for index, child in enumerate(node):
                out.append(pad + "  ")
                value(child, path + (str(index),), indent + 1)
                out.append(",\n" if index < len(node) - 1 else "\n", punct)
            out.append(pad + "]", punct)
        elif isinstance(node, str):
            string(node, path, string_style)
        else:
            out.append(json.dumps(node), literal_style)

    value(definition, (), 0)
    return out, marks.placed


def findings_text(findings: Sequence[Mapping[str, Any]], variables: Vars, placed: set[int] | None = None) -> Text:
    """One block per finding: ``‹n› Severity kind  field`` then the reason and the quoted evidence."""
    muted = colour(variables, "foreground-muted")
    out = Text()
    if not findings:
        out.append("no findings", style=colour(variables, "success"))
        return out
    order = sorted(range(len(findings)), key=lambda i: (-severity_rank(findings[i].get("severity")), i))
    for position, i in enumerate(order):
        f = findings[i]
        number = i + 1
        severity = f.get("severity") or "?"
        style = severity_style(variables, severity)
        if position:
            out.append("\n")
        out.append(f"‹{number}› ", style + Style(bold=True))
        out.append(f"{severity:<9}", style + Style(bold=severity_rank(severity) >= 3))
        out.append(str(f.get("kind", "?")), Style(bold=True))
        where = f.get("field")
        if where:
            out.append(f"  {where}", muted)
            span = f.get("span")
            if isinstance(span, (list, tuple)) and len(span) == 2:
                out.append(f" [{span[0]}:{span[1]}]", muted)
        if placed is not None and number not in placed:
            out.append("  (not in the definition)", muted)
        if f.get("other"):
            out.append(f"  other: {f['other']}", muted)
        out.append("\n    " + str(f.get("reason", "")))
        evidence = f.get("evidence")
        if isinstance(evidence, str) and evidence:
            if f.get("kind") == "changed":
                out.append("\n    (the diff against the approved version is below)", muted)
            else:
                quoted = visible(evidence).replace("\n", "⏎ ")
                if len(quoted) > 240:
                    quoted = quoted[:239] + "…"
                out.append("\n    “", muted)
                out.append(quoted, style)
                out.append("”", muted)
    return out


def diff_text(diff: str, variables: Vars) -> Text:
    """A unified diff with ``+`` lines green, ``-`` lines red, hunk headers accented."""
    out = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = colour(variables, "foreground-muted") + Style(bold=True)
        elif line.startswith("+"):
            style = colour(variables, "success")
        elif line.startswith("-"):
            style = colour(variables, "error")
        elif line.startswith("@@"):
            style = colour(variables, "accent")
        else:
            style = Style()
        out.append(visible(line) + "\n", style)
    out.rstrip()
    return out


def _section(out: Text, title: str, variables: Vars) -> None:
    if out.plain:
        out.append("\n\n")
    out.append(f"── {title} ", colour(variables, "primary") + Style(bold=True))
    out.append("─" * max(2, 40 - len(title)) + "\n", colour(variables, "foreground-muted"))


def _line(out: Text, label: str, value: Text | str, variables: Vars) -> None:
    out.append(f"{label:<12}", colour(variables, "foreground-muted"))
    out.append(value if isinstance(value, Text) else Text(value))
    out.append("\n")


def verification_text(
    record: ToolRecord, key_changes: Sequence[KeyChangeView], allow_unsigned: bool, variables: Vars
) -> Text:
    """The SchemaPin verification and the key pin of ``record``'s server, one line each."""
    v: Mapping[str, Any] = record.verification or {}
    out = Text()
    if v.get("valid"):
        _line(out, "signature", Text("✔ valid (SchemaPin)", colour(variables, "success")), variables)
    else:
        why = v.get("error") or "not verified"
        code = f" ({v['error_code']})" if v.get("error_code") else ""
        text = Text(f"✘ {why}{code}", colour(variables, "warning" if allow_unsigned else "error"))
        if allow_unsigned:
            text.append("  · this server is allowed unsigned", colour(variables, "foreground-muted"))
        _line(out, "signature", text, variables)
    domain = v.get("domain")
    _line(out, "domain", domain or "-", variables)
    fp = v.get("fingerprint")
    pin = v.get("pin_status") or v.get("pinned")
    change = next((c for c in key_changes if c.domain == domain), None) if domain else None
    if change is not None:
        key = Text("CHANGED, waiting for a decision", colour(variables, "error") + Style(bold=True))
        key.append(f"\n{'':<12}old {change.old_fingerprint or '-'}", colour(variables, "foreground-muted"))
        key.append(f"\n{'':<12}new {change.new_fingerprint or '-'}", colour(variables, "warning"))
        _line(out, "key", key, variables)
    elif fp:
        status = {"first_use": "pinned on first use", "pinned": "pinned", "changed": "CHANGED"}.get(
            str(pin), str(pin or "not pinned")
        )
        key = Text(fp)
        key.append(f"  {status}", colour(variables, "error" if pin == "changed" else "success" if pin else "warning"))
        _line(out, "key", key, variables)
    else:
        _line(out, "key", Text("-", colour(variables, "foreground-muted")), variables)
    out.rstrip()
    return out


def history_text(history: Sequence[Mapping[str, Any]], variables: Vars, limit: int = 8) -> Text:
    muted = colour(variables, "foreground-muted")
    out = Text()
    if not history:
        out.append("no history yet", muted)
        return out
    shown = list(history)[-limit:]
    if len(history) > limit:
        out.append(f"… {len(history) - limit} earlier\n", muted)
    for i, h in enumerate(shown):
        if i:
            out.append("\n")
        out.append(timestamp(h.get("ts")), muted)
        out.append(f"  {h.get('from_state') or '·'} → ")
        out.append_text(state_text(str(h.get("to_state", "?")), variables))
        out.append(f"  by {h.get('actor', '?')}", muted)
        note = h.get("note")
        if note:
            out.append(f": {visible(str(note))}")
    return out


def tool_text(
    record: ToolRecord,
    *,
    history: Sequence[Mapping[str, Any]] = (),
    key_changes: Sequence[KeyChangeView] = (),
    allow_unsigned: bool = False,
    variables: Vars = None,
) -> Text:
    """The whole detail of a tool: provider, verification, state, findings in place, findings list,
    the diff against the approved version and the history."""
    muted = colour(variables, "foreground-muted")
    findings = list(record.findings or [])
    out = Text()
    out.append(record.id, Style(bold=True))
    out.append("  ")
    out.append_text(badge(findings, int(getattr(record, "score", 0) or 0), variables))
    out.append("\n")
    _line(out, "server", record.server, variables)
    state = state_text(record.state, variables, bool(getattr(record, "deferred", False)))
    if record.reason:
        state.append(f"  ({record.reason})", muted)
    _line(out, "state", state, variables)
    scope = getattr(record, "scope", None)
    if scope:
        _line(out, "scope", scope, variables)
    analyzer = getattr(record, "analyzer", "")
    if analyzer:
        _line(out, "analyzer", analyzer, variables)
    _line(out, "definition", Text(f"sha256 {short_hash(record.def_hash, 24)}", muted), variables)
    if record.note:
        _line(out, "note", visible(record.note), variables)
    out.append_text(verification_text(record, key_changes, allow_unsigned, variables))
    _section(out, "definition (findings highlighted in place)", variables)
    body, placed = definition_text(record.definition, findings, variables)
    out.append_text(body)
    _section(out, f"findings ({len(findings)})", variables)
    out.append_text(findings_text(findings, variables, placed))
    if record.diff:
        _section(out, "changes against the approved version", variables)
        out.append_text(diff_text(record.diff, variables))
    _section(out, "history", variables)
    out.append_text(history_text(history, variables))
    return out


def call_text(call: PendingCallView, *, agent_name: str, now: float, variables: Vars = None) -> Text:
    """A call waiting for approval: who, which tool, the exact arguments, their SHA-256 and the time left."""
    muted = colour(variables, "foreground-muted")
    out = Text()
    out.append(f"call {call.id}", Style(bold=True))
    out.append("\n")
    _line(out, "agent", f"{agent_name} ({call.agent_id})" if agent_name != call.agent_id else agent_name, variables)
    _line(out, "tool", call.tool_id, variables)
    _line(out, "policy", str(call.policy or "-"), variables)
    _line(out, "requested", timestamp(call.created_at), variables)
    _line(out, "expires", expires_text(call, now, variables), variables)
    _line(out, "args sha256", Text(call.arguments_sha256, colour(variables, "accent")), variables)
    _section(out, "arguments (exactly what the tool will receive)", variables)
    body, _ = definition_text(call.arguments or {}, (), variables)
    out.append_text(body)
    out.append("\n\n")
    out.append("Approving passes this sha256: a call whose arguments differ is refused.", muted)
    return out


def expires_text(call: PendingCallView, now: float, variables: Vars) -> Text:
    left = float(call.expires_at or 0) - now
    if left <= 0:
        return Text("expired", colour(variables, "error") + Style(bold=True))
    return Text(f"in {duration(left)}", colour(variables, "warning" if left < 60 else "foreground"))


def key_change_text(change: KeyChangeView, variables: Vars = None) -> Text:
    muted = colour(variables, "foreground-muted")
    out = Text()
    out.append(f"key change for {change.domain}", Style(bold=True))
    out.append("\n")
    _line(out, "old key", Text(change.old_fingerprint or "-", muted), variables)
    _line(
        out,
        "new key",
        Text(change.new_fingerprint or "-", colour(variables, "warning") + Style(bold=True)),
        variables,
    )
    if change.source:
        _line(out, "seen via", change.source, variables)
    if change.seen_at:
        _line(out, "seen", timestamp(change.seen_at), variables)
    out.append(
        "\nThe domain's tools stay blocked until you decide. Accept only if the publisher told you "
        "(out of band) that its signing key changed; refuse keeps the old pin.",
        muted,
    )
    return out


def clock_label(ts: float | None) -> str:
    """``HH:MM`` (local) for the lists (the history in the detail has the dates)."""
    return time.strftime("%H:%M", time.localtime(ts)) if ts else "-"
