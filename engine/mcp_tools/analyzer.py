"""The offline tool analyzer: what a tool definition could do to an agent, found without network or model.

An MCP tool's description and input schema are read by the model as text, so a
server can hide instructions in them ("tool poisoning"), steer the model to
another server's tool, or ask for far more reach than its purpose needs.
:class:`OfflineAnalyzer` reads a definition ``{"name", "description",
"inputSchema"}`` and returns an :class:`Analysis`: a list of findings and a
0..100 risk score. It runs in tens of microseconds (see
``benchmarks/bench_mcp.py``), so it can run on every discovery and every change.

Findings (dicts, the shape the registry stores and the console shows)::

    {"kind", "severity", "reason", "evidence", "field", "span"}

* ``field`` names where the evidence is: ``"name"``, ``"description"``,
  ``"inputSchema"`` (the schema as a whole: ``span`` is None),
  ``"inputSchema.properties.<p>"`` (the raw text of this field is the
  *parameter name* ``<p>``), ``"inputSchema.properties.<p>.description"``
  (and ``.title``/``.default``; nested properties, ``items``, ``anyOf.<i>``,
  ``$defs.<k>`` extend the path the same way).
* ``span`` is ``[start, end]``, character offsets into that field's raw text,
  or None. For every finding with a span,
  ``visible(raw_text[start:end]) == evidence``: the evidence is exactly the
  raw slice, with invisible and bidirectional characters rendered visibly as
  ``<U+200B>`` so an operator sees what a UI would hide.
* Kinds: ``hidden-instructions``, ``prompt-injection``, ``invisible-unicode``,
  ``bidi-unicode``, ``credential-reference``, ``tool-reference``,
  ``shell-parameter``, ``file-reach``, ``network-reach``, ``broad-schema``,
  ``homoglyph`` (Latin words with Cyrillic/Greek look-alike letters, full-width
  text), and ``shadowing`` (from :func:`engine.mcp_tools.review.shadowing_findings`).

Text patterns are matched on the text with invisible characters removed and
look-alike letters folded to ASCII, so ``ig<U+200B>nore previous instructions``
and ``Ignоre previous instructions`` (a Cyrillic ``о``) are still caught; spans are mapped
back to the raw text. An instruction-like finding (hidden instructions or
prompt injection) in a field that also names secrets is raised to Critical:
that pairing is the shape of a credential-stealing tool.

Score (:func:`score_findings`), documented because operators set thresholds on it::

    weight = {Info: 0, Low: 0.05, Medium: 0.15, High: 0.50, Critical: 0.80}
    per kind, findings sorted by weight, the i-th (0-based) counts w * 0.5**i
    score = round(100 * (1 - prod(1 - counted weight)))

So one Critical alone is 80, one High 50, one Medium 15, a High and a Critical
90; repeats of one kind add less and less (ten zero-width runs are not ten
findings' worth). The score never decreases when a finding is added or its
severity raised (the sorted, discounted weights dominate element-wise), and
it stays within 0..100. Unknown severities weigh as Low.

False positives are kept down on purpose: a confined ``read_file(path)``
tool is ``file-reach`` Low/Medium, never High; a documentation ``https://``
link is Low; "password" in a login tool's parameter is Medium.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from engine.mcp_tools.review import shadowing_findings

SEVERITIES = ("Info", "Low", "Medium", "High", "Critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
WEIGHTS = {"Info": 0.0, "Low": 0.05, "Medium": 0.15, "High": 0.50, "Critical": 0.80}
ANALYZER_NAME = "offline/1"

MAX_FINDINGS = 200  # per definition; the highest severities are kept
MAX_PER_FIELD_PATTERN = 5  # findings of one pattern in one field
MAX_SPAN = 1000  # evidence longer than this is cut (the span is cut with it)
MAX_SCAN = 200_000  # characters of one field that are pattern-scanned
MAX_SCHEMA_NODES = 2000
MAX_SCHEMA_DEPTH = 16


# -- data ----------------------------------------------------------------------------


@dataclass
class AnalysisContext:
    """What the analyzer knows besides the definition: its server, and OTHER servers' tools."""

    server: str = ""
    other_tools: list[tuple[str, str, str]] = field(default_factory=list)  # (server, name, description)


@dataclass
class Analysis:
    findings: list[dict[str, Any]]
    score: int
    analyzer: str = ANALYZER_NAME

    @property
    def max_severity(self) -> str | None:
        """The worst severity among the findings, or None when there are none."""
        if not self.findings:
            return None
        severities: list[str] = [f.get("severity", "Low") for f in self.findings]
        return max(severities, key=lambda s: SEVERITY_RANK.get(s, 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": self.findings,
            "score": self.score,
            "analyzer": self.analyzer,
            "max_severity": self.max_severity,
        }


class Analyzer(Protocol):
    """Anything that reviews a tool definition (an LLM reviewer can implement this later)."""

    name: str

    async def analyze(self, definition: dict[str, Any], context: AnalysisContext) -> Analysis: ...


def score_findings(findings: Iterable[dict[str, Any]]) -> int:
    """0..100 risk from findings (formula in the module docstring)."""
    by_kind: dict[str, list[float]] = {}
    for f in findings:
        sev = f.get("severity") if isinstance(f, dict) else None
        w = WEIGHTS.get(sev, WEIGHTS["Low"]) if isinstance(sev, str) else WEIGHTS["Low"]
        kind = f.get("kind") if isinstance(f, dict) else None
        by_kind.setdefault(str(kind), []).append(w)
    keep = 1.0
    for ws in by_kind.values():
        ws.sort(reverse=True)
        for i, w in enumerate(ws):
            if w <= 0:
                break
            keep *= 1.0 - w * (0.5**i)
    return max(0, min(100, int(math.floor(100.0 * (1.0 - keep) + 0.5))))


# -- invisible and bidirectional characters --------------------------------------------

_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI_MARKS = "\u200e\u200f\u061c"
_INVISIBLE_CLASS = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 (not tab/newline/CR), DEL, C1: terminal escapes
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f"
    "\u3164\uffa0\ufe00-\ufe0f\ufeff\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef"
)
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE_CLASS}]")
_INVISIBLE_RUN_RE = re.compile(f"[{_INVISIBLE_CLASS}]+")


def _render(m: re.Match[str]) -> str:
    return f"<U+{ord(m.group()):04X}>"


def visible(text: str) -> str:
    """``text`` with every invisible, control (except tab/newline/CR) and bidi character written as ``<U+XXXX>``."""
    return _INVISIBLE_RE.sub(_render, text)


def _is_tag(c: str) -> bool:
    return 0xE0000 <= ord(c) <= 0xE007F


def _is_emoji_like(c: str) -> bool:
    cp = ord(c)
    return (
        cp >= 0x1F000
        or 0x2600 <= cp <= 0x27BF
        or 0x2190 <= cp <= 0x21FF
        or 0x2B00 <= cp <= 0x2BFF
        or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122)
    )


# Look-alikes folded to ASCII before the patterns run (one character for one, so spans hold):
# full-width ASCII, and the Cyrillic and Greek letters that render like Latin ones.
_LOOKALIKES = dict(zip("асеіјорѕхуԁӏһԛԝАВЕКМНОРСТХІЅЈ", "aceijopsxydlhqwABEKMHOPCTXISJ", strict=True))
_LOOKALIKES.update(zip("οαντρικχυΟΑΒΕΗΙΚΜΝΡΤΧΥΖ", "oavtpikxyOABEHIKMNPTXYZ", strict=True))
_FULLWIDTH = {chr(0xFF01 + i): chr(0x21 + i) for i in range(94)}
_FOLD_TABLE = str.maketrans({**_LOOKALIKES, **_FULLWIDTH})
_FOLD_RE = re.compile("[" + re.escape("".join(_LOOKALIKES)) + "\uff01-\uff5e]")
_MIXED_WORD_RE = re.compile(r"[^\W\d_]+")
# Styled letters beyond the table (mathematical bold/italic 𝐢𝐠𝐧𝐨𝐫𝐞, circled Ⓘ, letterlike ℯ, ...):
# their compatibility form (NFKC) is one ASCII letter or digit.
_STYLED_FROM = 0x2000


@lru_cache(maxsize=4096)
def _ascii_twin(c: str) -> str | None:
    """The ASCII letter or digit a styled character stands for, or None."""
    n = unicodedata.normalize("NFKC", c)
    return n if len(n) == 1 and n.isascii() and n.isalnum() else None


def _fold(text: str) -> str:
    """``text`` with look-alikes and styled letters replaced by ASCII, one character for one."""
    if _FOLD_RE.search(text):
        text = text.translate(_FOLD_TABLE)
    if any(ord(c) >= _STYLED_FROM for c in text):
        text = "".join((_ascii_twin(c) or c) if ord(c) >= _STYLED_FROM else c for c in text)
    return text


def _styled_runs(text: str) -> Iterable[tuple[int, int]]:
    """Spans of 3+ consecutive styled or full-width characters that read as ASCII."""
    start = None
    for i, c in enumerate([*text, "\0"]):
        if ord(c) >= _STYLED_FROM and _ascii_twin(c) is not None:
            start = i if start is None else start
            continue
        if start is not None and i - start >= 3:
            yield start, i
        start = None


class _Clean:
    """A field's text with invisible characters removed and look-alike letters folded to ASCII,
    and the map back to raw offsets."""

    __slots__ = ("raw", "text", "index")
    raw: str
    text: str
    index: list[int] | None  # raw offset of each kept character; None when nothing was dropped

    def __init__(self, raw: str) -> None:
        self.raw = raw
        scan = raw[:MAX_SCAN]
        if _INVISIBLE_RE.search(scan) is None:
            self.text, self.index = scan, None
        else:
            # invisible characters are dropped, except tag characters: they are read as the ASCII they encode
            keep: list[int] = []
            chars: list[str] = []
            for i, c in enumerate(scan):
                if _INVISIBLE_RE.match(c) is None:
                    keep.append(i)
                    chars.append(c)
                elif 0xE0020 <= ord(c) <= 0xE007E:
                    keep.append(i)
                    chars.append(chr(ord(c) - 0xE0000))
            self.text = "".join(chars)
            self.index = keep
        self.text = _fold(self.text)  # one for one: offsets are unchanged

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.index is None:
            return start, end
        if end <= start:
            s = self.index[start] if start < len(self.index) else len(self.raw)
            return s, s
        return self.index[start], self.index[end - 1] + 1


# -- patterns -------------------------------------------------------------------------

_I = re.I
_S = re.I | re.S

_OBJ = r"(?:it|its\s+contents?|the\s+contents?(?:\s+of\s+\S+)?|them|this|that|the\s+(?:key|secret|token|credentials?|password|data|output|result|conversation|history|messages?|file))"

_BLOCK_REASON = "an instruction block addressed to the model"
_TAG_REASON = "an instruction tag addressed to the model"

# (kind, severity, reason, compiled pattern)
_TEXT_PATTERNS: list[tuple[str, str, str, re.Pattern[str]]] = [
    # prompt injection: overriding the model's instructions
    (
        "prompt-injection",
        "Critical",
        "tells the model to ignore its instructions",
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding|other|system|original|safety)\s+(?:instructions?|prompts?|rules|directions|guidelines|messages|context|constraints)",
            _I,
        ),
    ),
    (
        "prompt-injection",
        "High",
        "announces new instructions or a new role for the model",
        re.compile(
            r"\bnew\s+(?:system\s+)?instructions?\s*:|\byou\s+are\s+now\s+(?:a|an|in|the)\b|\bfrom\s+now\s+on,?\s+you\b|\bact\s+as\s+(?:a|an|the)\s+\w+\s+(?:without|with\s+no)\b",
            _I,
        ),
    ),
    (
        "prompt-injection",
        "Medium",
        "talks about the model's prompt or safety mode",
        re.compile(r"\b(?:system\s+prompt|developer\s+mode|jailbreak|DAN\s+mode)\b", _I),
    ),
    (
        "prompt-injection",
        "High",
        "instructs the model to send data somewhere",
        re.compile(
            r"\b(?:send|forward|upload|post|transmit|leak|e-?mail|copy)\s+"
            + _OBJ
            + r"?[^.\n]{0,80}?\bto\s+(?:https?://|the\s+(?:following\s+)?(?:url|endpoint|address|server|webhook|email)|[\w.+-]+@[\w-]+\.[\w.]+)",
            _I,
        ),
    ),
    ("prompt-injection", "High", "mentions exfiltration", re.compile(r"\bexfiltrat\w*", _I)),
    (
        "prompt-injection",
        "Medium",
        "tells the model to put data into a tool argument",
        re.compile(
            r"\b(?:include|put|pass|embed|insert|append|add|provide|send|paste)\s+"
            + _OBJ
            + r"[^.\n]{0,80}?\b(?:in|into|as|inside|via|through)\s+(?:the\s+|a\s+)?[`'\"]?[\w-]+[`'\"]?\s+(?:argument|parameter|param|field|input)\b",
            _I,
        ),
    ),
    # hidden instructions: markers, concealment, pre-steps
    (
        "hidden-instructions",
        "High",
        _BLOCK_REASON,
        re.compile(
            r"<\s*(important|system|instructions?|secret|hidden|admin|override|critical|note_to_(?:ai|model|assistant)|assistant|prompt|sys)\b[^>]{0,200}>.{0,4000}?<\s*/\s*\1\s*>",
            _S,
        ),
    ),
    (
        "hidden-instructions",
        "High",
        _TAG_REASON,
        re.compile(
            r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|override|critical|note_to_(?:ai|model|assistant)|assistant|prompt|sys)\b[^>]{0,200}>|\[/?INST\]|<<\s*/?SYS\s*>>|<\|im_(?:start|end)\|>|<\|(?:system|user|assistant)\|>",
            _I,
        ),
    ),
    (
        "hidden-instructions",
        "High",
        "tells the model to keep something from the user",
        re.compile(
            r"\b(?:do\s+not|don'?t|never|without)\s+(?:ever\s+)?(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|show(?:ing)?|notify(?:ing)?|alert(?:ing)?|warn(?:ing)?|let(?:ting)?|disclos(?:e|ing)|report(?:ing)?|explain(?:ing)?)\b[^.\n]{0,40}?\b(?:user|human|operator|anyone|them)\b"
            r"|\b(?:the\s+)?user\s+(?:must|should|shall)\s+(?:not|never)\s+(?:know|see|be\s+told|notice|find\s+out)\b"
            r"|\bbehind\s+the\s+user'?s\s+back\b|\bkeep\s+(?:this|it)\s+(?:secret|hidden|confidential)\b",
            _I,
        ),
    ),
    (
        "hidden-instructions",
        "High",
        "an instruction to run before using the tool",
        re.compile(
            r"\b(?:before|prior\s+to)\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+(?:tool|function)\b(?:[^.\n]|\.(?=\S)){0,200}",
            _I,
        ),
    ),
    (
        "hidden-instructions",
        "Medium",
        "tells the model to read a file or path",
        re.compile(
            r"\b(?:read|cat|open|load|fetch|get)\s+(?:the\s+)?(?:contents?\s+of\s+)?(?:the\s+file\s+)?[`'\"]?(?:~|/|\.[\w-]|[A-Za-z]:\\)[^\s`'\"]*",
            _I,
        ),
    ),
    (
        "hidden-instructions",
        "Medium",
        "an HTML comment: hidden when the description is rendered",
        re.compile(r"<!--.{0,4000}?(?:-->|\Z)", _S),
    ),
    (
        "hidden-instructions",
        "Medium",
        "markup that hides text when rendered",
        re.compile(
            r"^\s*\[[^\]\n]{0,40}\]:\s*#\s*[(\"'].{0,500}|<details\b[^>]{0,200}>|<[a-z]+[^>]{0,200}\b(?:hidden|display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0)[^>]{0,200}>",
            _I | re.M,
        ),
    ),
    (
        "hidden-instructions",
        "Medium",
        "text pushed far out of view by padding",
        re.compile(r"(?:[ \t]*\n){8,}[ \t]*\S[^\n]{0,120}|[ \t]{80,}\S[^\n]{0,120}"),
    ),
    (
        "hidden-instructions",
        "Low",
        "asks the model to act covertly",
        re.compile(r"\b(?:secretly|covertly|quietly|silently|surreptitiously|stealthily)\b", _I),
    ),
    # secrets
    (
        "credential-reference",
        "High",
        "names a secret file or credential store",
        re.compile(
            r"~/\.ssh\b[^\s`'\"]*|\.ssh/[^\s`'\"]*|\bid_(?:rsa|dsa|ecdsa|ed25519)\b(?:\.pub)?|/etc/(?:passwd|shadow|sudoers|gshadow)\b|\.aws/(?:credentials|config)\b|\baws_(?:secret_access_key|access_key_id|session_token)\b"
            r"|(?<![\w/])\.(?:netrc|git-credentials|npmrc|pypirc|pgpass)\b|\.docker/config\.json|\.kube/config\b|\bkubeconfig\b|\bprivate[\s_-]?keys?\b|\bseed\s+phrase\b|\bmnemonic\s+(?:phrase|words)\b|\bwallet\.dat\b|\.gnupg\b|/proc/self/environ\b|\bkeychain\b|\bcookies\.sqlite\b|\bLogin\s+Data\b|\bmcp\.json\b|claude_desktop_config\.json",
            _I,
        ),
    ),
    (
        "credential-reference",
        "Medium",
        "mentions secrets (keys, tokens, passwords)",
        re.compile(
            r"(?<![\w.])\.env\b(?:\.[\w-]+)?|\b(?:api[\s_-]?keys?|secret[\s_-]?keys?|access[\s_-]?keys?|(?:access|auth|bearer|refresh|api|session|github|gitlab|slack|oauth|openai|anthropic)[\s_-]?tokens?|passwords?|passwd|passphrases?|credentials?|client[\s_-]?secrets?|env(?:ironment)?\s+variables?)\b",
            _I,
        ),
    ),
    # other tools
    (
        "tool-reference",
        "Medium",
        "tells the model to call another tool",
        re.compile(
            r"\b(?:call|use|invoke|run|execute|trigger)\s+(?:the\s+)?[`'\"]?[A-Za-z_][\w./-]{2,}[`'\"]?\s+tool\b|\btools?\s+(?:named|called)\s+[`'\"]?[\w./-]+",
            _I,
        ),
    ),
    # shell
    (
        "shell-parameter",
        "High",
        "describes running shell commands or code",
        re.compile(
            r"\b(?:shell|bash|zsh|terminal|powershell|cmd\.exe|command[\s-]?line|system|os)\s+commands?\b|\bexecutes?\s+(?:arbitrary\s+|any\s+)?(?:shell\s+)?(?:commands?|code|programs?|scripts?)\b"
            r"|\bruns?\s+(?:arbitrary\s+|any\s+)(?:commands?|code|programs?|scripts?)\b|\bsubprocess\b|\bos\.system\b|\b(?:eval|exec)\s*\(|\barbitrary\s+code\b|\brm\s+-rf\b|\b(?:curl|wget)\s+[^\s'\"`]+|\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|\bsudo\s+\w",
            _I,
        ),
    ),
    # reach
    (
        "file-reach",
        "High",
        "claims reach over any file",
        re.compile(
            r"\b(?:any|arbitrary|all)\s+(?:files?|paths?|director(?:y|ies)|folders?)\b[^.\n]{0,80}|\b(?:anywhere|everywhere)\s+on\s+(?:the\s+)?(?:disk|system|file\s*system|machine|host|computer)\b|\b(?:entire|whole|full)\s+(?:file\s*system|disk|home\s+directory|hard\s+drive)\b",
            _I,
        ),
    ),
    (
        "file-reach",
        "Medium",
        "names an absolute or home path",
        re.compile(
            r"(?<![\w.~/])/(?:etc|root|home|usr|var|bin|sbin|proc|sys|dev|tmp|opt|Users|Library|private|mnt|srv)(?:/[^\s'\"`)<>,;]*)?|(?<![\w/])~/[^\s'\"`)<>,;]*|\b[A-Za-z]:\\[^\s'\"`<>]*"
        ),
    ),
    (
        "network-reach",
        "Medium",
        "a plain-HTTP or IP-address URL",
        re.compile(r"\bhttp://[^\s'\"`<>)]+|\bhttps?://\d{1,3}(?:\.\d{1,3}){3}[^\s'\"`<>)]*", _I),
    ),
    ("network-reach", "Low", "a URL", re.compile(r"\bhttps://(?!\d{1,3}(?:\.\d{1,3}){3})[^\s'\"`<>)]+", _I)),
    (
        "network-reach",
        "Medium",
        "claims reach over any URL or host",
        re.compile(
            r"\b(?:any|arbitrary)\s+(?:urls?|uris?|websites?|hosts?|endpoints?|domains?|servers?|ip\s+address(?:es)?)\b|\bwebhooks?\b",
            _I,
        ),
    ),
]

# Cheap substring checks on the lowercased text: a pattern runs only when one of its keys is present
# (Python's re does not prefilter alternations; this keeps a clean description in the tens of microseconds).
_PREFILTER: dict[str, Any] = {
    "tells the model to ignore its instructions": ("ignore", "disregard", "forget", "override", "bypass"),
    "announces new instructions or a new role for the model": ("instruction", "you are now", "from now on", "act as"),
    "talks about the model's prompt or safety mode": ("system prompt", "developer mode", "jailbreak", "dan mode"),
    "instructs the model to send data somewhere": (
        "send",
        "forward",
        "upload",
        "post",
        "transmit",
        "leak",
        "mail",
        "copy",
    ),
    "mentions exfiltration": ("exfiltrat",),
    "tells the model to put data into a tool argument": ("argument", "parameter", "param", "field", "input"),
    _BLOCK_REASON: ("<",),
    _TAG_REASON: ("<", "[inst", "[/inst"),
    "tells the model to keep something from the user": (
        "user",
        "human",
        "operator",
        "anyone",
        "them",
        "back",
        "secret",
        "hidden",
        "confidential",
    ),
    "an instruction to run before using the tool": ("before", "prior"),
    "tells the model to read a file or path": ("read", "cat", "open", "load", "fetch", "get"),
    "an HTML comment: hidden when the description is rendered": ("<!--",),
    "markup that hides text when rendered": ("]:", "<"),
    "text pushed far out of view by padding": lambda low: low.count("\n") >= 8 or " " * 80 in low or "\t" * 80 in low,
    "asks the model to act covertly": ("secretly", "covertly", "quietly", "silently", "surreptitiously", "stealthily"),
    "names a secret file or credential store": (
        "ssh",
        "id_",
        "/etc/",
        "aws",
        "netrc",
        "credentials",
        "npmrc",
        "pypirc",
        "pgpass",
        "docker",
        "kube",
        "private",
        "seed",
        "mnemonic",
        "wallet",
        "gnupg",
        "environ",
        "keychain",
        "cookies",
        "login data",
        "mcp.json",
        "claude_desktop",
    ),
    "mentions secrets (keys, tokens, passwords)": (
        ".env",
        "key",
        "token",
        "passw",
        "passphrase",
        "credential",
        "secret",
        "variable",
    ),
    "tells the model to call another tool": ("tool",),
    "describes running shell commands or code": (
        "command",
        "execut",
        "run",
        "subprocess",
        "system",
        "eval",
        "exec",
        "arbitrary",
        "rm ",
        "curl",
        "wget",
        "sh",
        "sudo",
    ),
    "claims reach over any file": ("any", "arbitrary", "all", "anywhere", "everywhere", "entire", "whole", "full"),
    "names an absolute or home path": ("/", "~", ":\\"),
    "a plain-HTTP or IP-address URL": ("http",),
    "a URL": ("https://",),
    "claims reach over any URL or host": ("any", "arbitrary", "webhook"),
}

_TRIGGERS: dict[str, Any] = {
    reason: keys if callable(keys) else re.compile("|".join(re.escape(k) for k in keys))
    for reason, keys in _PREFILTER.items()
}

_CONFINED = re.compile(
    r"\b(?:within|inside|under|relative\s+to|confined|restricted|limited|sandbox(?:ed)?|jail(?:ed)?|chroot)\b"
    r"|\b(?:allowed|served|configured|working|project|workspace)\s+(?:root|directory|folder|dir)\b|\broot\s+directory\b",
    _I,
)
_INSTRUCTION_KINDS = ("hidden-instructions", "prompt-injection")
_HIDING_REASONS = (
    "an HTML comment: hidden when the description is rendered",
    "markup that hides text when rendered",
    "text pushed far out of view by padding",
)
_INSTRUCTION_WORDS = re.compile(
    r"\b(?:assistant|model|ai|llm|agent|you|call|invoke|run|read|send|must|always|never|ignore|instead|important)\b", _I
)

# parameter-name tokens
_SHELL_NAMES = {
    "cmd",
    "command",
    "commands",
    "shell",
    "script",
    "scripts",
    "exec",
    "execute",
    "bash",
    "sh",
    "zsh",
    "powershell",
    "pwsh",
    "cmdline",
    "commandline",
    "argv",
}
_FILE_NAMES = {
    "path",
    "paths",
    "file",
    "files",
    "filename",
    "filenames",
    "filepath",
    "pathname",
    "dir",
    "directory",
    "dirname",
    "folder",
    "dest",
    "destination",
    "src",
}
_NET_NAMES = {
    "url",
    "urls",
    "uri",
    "uris",
    "host",
    "hostname",
    "endpoint",
    "webhook",
    "callback",
    "domain",
    "ip",
    "server",
    "port",
    "proxy",
    "href",
    "link",
}
_SECRET_NAMES = {
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secrets",
    "credential",
    "credentials",
    "token",
    "apikey",
    "privatekey",
    "sshkey",
    "accesskey",
    "secretkey",
    "cookie",
    "bearer",
}
_SECRET_PAIRS = {
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("ssh", "key"),
    ("auth", "token"),
    ("access", "token"),
    ("client", "secret"),
}
_CODE_NAMES_MEDIUM = {
    "code",
    "sql",
    "program",
    "snippet",
    "payload",
    "statement",
    "source",
    "eval",
    "javascript",
    "python",
    "js",
}
_CODE_NAMES_LOW = {"query", "expression", "expr", "template", "formula", "filter", "regex", "prompt"}
_TYPED_KEYS = ("type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "not")
_BOUNDED_STRING_KEYS = ("maxLength", "enum", "const", "pattern", "format")

_TOKEN_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _tokens(name: str) -> list[str]:
    return [t.lower() for t in _TOKEN_RE.findall(name)]


# -- the analyzer ----------------------------------------------------------------------


class OfflineAnalyzer:
    """Pattern and schema analysis of one tool definition; no network, no model, no state."""

    name = ANALYZER_NAME

    async def analyze(self, definition: dict[str, Any], context: AnalysisContext | None = None) -> Analysis:
        return self.analyze_sync(definition, context)

    def analyze_sync(self, definition: Any, context: AnalysisContext | None = None) -> Analysis:
        """The same as :meth:`analyze`, callable from synchronous code (benchmarks, CLIs)."""
        findings = _Collector()
        ctx = context if isinstance(context, AnalysisContext) else AnalysisContext()
        d = definition if isinstance(definition, dict) else {}
        name = d.get("name")
        name = name if isinstance(name, str) else ("" if name is None else str(name))
        desc = d.get("description")
        desc = desc if isinstance(desc, str) else ("" if desc is None else str(desc))
        schema = d.get("inputSchema")
        others = [
            t
            for t in (ctx.other_tools or [])
            if isinstance(t, (tuple, list))
            and len(t) == 3
            and all(isinstance(x, str) for x in t)
            and t[0] != ctx.server
        ]

        _scan_text(findings, "name", name, others, patterns=False)
        _scan_text(findings, "description", desc, others)
        confined = bool(_CONFINED.search(desc[:MAX_SCAN]))
        _scan_schema(findings, schema, others, confined)
        if len(desc) > 2000:
            findings.add(
                "hidden-instructions",
                "Low",
                f"unusually long description ({len(desc)} characters): text past what a UI shows can hide instructions",
                "description",
                None,
                None,
            )
        for f in _shadowing(ctx.server, name, desc, others):
            findings.items.append(f)
        out = findings.result()
        return Analysis(findings=out, score=score_findings(out), analyzer=self.name)


def analyze_definition(definition: dict[str, Any], context: AnalysisContext | None = None) -> Analysis:
    """Synchronous one-shot analysis with the :class:`OfflineAnalyzer`."""
    return OfflineAnalyzer().analyze_sync(definition, context)


class _Collector:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._seen: set[tuple[Any, ...]] = set()

    def add(
        self,
        kind: str,
        severity: str,
        reason: str,
        field_name: str,
        raw: str | None,
        span: tuple[int, int] | None,
        **extra: Any,
    ) -> None:
        if span is not None and raw is not None:
            s, e = span
            e = min(e, s + MAX_SPAN)
            evidence = visible(raw[s:e])
            span_out: list[int] | None = [s, e]
        else:
            evidence, span_out = extra.pop("evidence", ""), None
        key = (kind, field_name, tuple(span_out) if span_out else evidence, reason)
        if key in self._seen:
            return
        self._seen.add(key)
        f = {
            "kind": kind,
            "severity": severity,
            "reason": reason,
            "evidence": evidence,
            "field": field_name,
            "span": span_out,
        }
        f.update(extra)
        self.items.append(f)

    def result(self) -> list[dict[str, Any]]:
        # an instruction next to a secret in one field is how credential theft reads
        secret_fields = {
            f["field"]
            for f in self.items
            if f["kind"] == "credential-reference" and SEVERITY_RANK.get(f["severity"], 1) >= 2
        }
        for f in self.items:
            if (
                f["kind"] in _INSTRUCTION_KINDS
                and f["field"] in secret_fields
                and f["severity"] != "Critical"
                and SEVERITY_RANK.get(f["severity"], 1) >= 2
            ):
                f["severity"] = "Critical"
                f["reason"] += " (in the same text as a reference to secrets)"
        items = sorted(
            self.items, key=lambda f: (-SEVERITY_RANK.get(f["severity"], 1), f["field"], (f["span"] or [0])[0])
        )
        return items[:MAX_FINDINGS]


def _scan_text(
    out: _Collector, field_name: str, raw: str, others: list[tuple[str, str, str]], *, patterns: bool = True
) -> None:
    if not raw:
        return
    _scan_invisible(out, field_name, raw)
    _scan_lookalikes(out, field_name, raw)
    if not patterns:
        return
    clean = _Clean(raw)
    text = clean.text
    credential_spans: list[tuple[int, int]] = []
    block_spans: list[tuple[int, int]] = []
    low = text.lower()
    for kind, severity, reason, pattern in _TEXT_PATTERNS:
        trigger = _TRIGGERS.get(reason)
        if trigger is not None and not (trigger(low) if callable(trigger) else trigger.search(low)):
            continue
        n = 0
        for m in pattern.finditer(text):
            mend = m.end()
            if kind in ("file-reach", "network-reach", "credential-reference"):
                while mend > m.start() + 1 and text[mend - 1] in ".,:;!?":
                    mend -= 1  # sentence punctuation is not part of a path or URL
            if mend == m.start():
                continue
            s, e = clean.span(m.start(), mend)
            sev, reason_out = severity, None
            if kind == "credential-reference":
                credential_spans.append((s, e))
            elif reason == _BLOCK_REASON:
                block_spans.append((s, e))
            elif (
                kind == "file-reach" and severity == "Medium" and any(cs < e and s < ce for cs, ce in credential_spans)
            ):
                continue  # the secret finding already covers this path
            elif reason == _TAG_REASON and any(bs <= s and e <= be for bs, be in block_spans):
                continue  # the tag is part of a block already reported whole
            elif reason in _HIDING_REASONS and _INSTRUCTION_WORDS.search(m.group()):
                sev = "High"
                reason_out = reason + ", with instructions inside"
            elif kind == "file-reach" and severity == "High":
                sentence = text[max(0, m.start() - 200) : m.end() + 200]
                if _CONFINED.search(sentence):
                    sev = "Medium"
            out.add(kind, sev, reason_out or reason, field_name, raw, (s, e))
            n += 1
            if n >= MAX_PER_FIELD_PATTERN:
                break
    if others:
        names_re = _names_pattern(tuple(sorted({(s, n) for s, n, _ in others if len(n) >= 3})))
        if names_re is not None:
            n = 0
            for m in names_re.finditer(text):
                s, e = clean.span(m.start(), m.end())
                out.add(
                    "tool-reference",
                    "Medium",
                    "names another server's tool",
                    field_name,
                    raw,
                    (s, e),
                    other=_other_id(m.group(), others),
                )
                n += 1
                if n >= MAX_PER_FIELD_PATTERN:
                    break


@lru_cache(maxsize=64)
def _names_pattern(pairs: tuple[tuple[str, str], ...]) -> re.Pattern[str] | None:
    alts = sorted({re.escape(f"{s}/{n}") for s, n in pairs} | {re.escape(n) for _, n in pairs}, key=len, reverse=True)
    if not alts:
        return None
    return re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(alts) + r")(?![A-Za-z0-9_])")


def _other_id(found: str, others: list[tuple[str, str, str]]) -> str:
    for s, n, _ in others:
        if found in (n, f"{s}/{n}"):
            return f"{s}/{n}"
    return found


def _scan_lookalikes(out: _Collector, field_name: str, raw: str) -> None:
    """Words that mix Latin letters with Cyrillic/Greek look-alikes (``Ignоre`` with a Cyrillic
    ``о``), and runs of full-width or styled letters (mathematical bold, circled, ...): text that
    reads as one thing and matches as another.
    Text wholly in Cyrillic or Greek is not flagged."""
    scan = raw[:MAX_SCAN]
    if _FOLD_RE.search(scan) is None and all(ord(c) < _STYLED_FROM for c in scan):
        return
    n = 0
    for m in _MIXED_WORD_RE.finditer(scan):
        word = m.group()
        if any(c in _LOOKALIKES for c in word) and any("a" <= c.lower() <= "z" for c in word):
            out.add(
                "homoglyph",
                "Medium",
                "a word mixes Latin letters with Cyrillic/Greek look-alikes "
                f"(reads as {word.translate(_FOLD_TABLE)!r})",
                field_name,
                raw,
                m.span(),
            )
            n += 1
            if n >= MAX_PER_FIELD_PATTERN:
                break
    for start, end in _styled_runs(scan):
        out.add(
            "homoglyph",
            "Low",
            f"styled or full-width characters (read as {_fold(scan[start:end])!r})",
            field_name,
            raw,
            (start, end),
        )
        break


def _scan_invisible(out: _Collector, field_name: str, raw: str) -> None:
    scan = raw[:MAX_SCAN]
    if _INVISIBLE_RE.search(scan) is None:
        return
    count = 0
    for m in _INVISIBLE_RUN_RE.finditer(scan):
        s, e = m.span()
        run = m.group()
        before = scan[s - 1] if s > 0 else ""
        after = scan[e] if e < len(scan) else ""
        context = visible(scan[max(0, s - 20) : min(len(scan), e + 20)])
        bidi = [c for c in run if c in _BIDI_CONTROLS]
        if bidi:
            out.add(
                "bidi-unicode",
                "High",
                "bidirectional override/isolate characters: the text shown is not the text the model reads",
                field_name,
                raw,
                (s, e),
                context=context,
            )
        rest = "".join(c for c in run if c not in _BIDI_CONTROLS)
        if not rest:
            pass
        elif all(c in _BIDI_MARKS for c in rest):
            out.add("bidi-unicode", "Low", "directional marks", field_name, raw, (s, e), context=context)
        elif any(_is_tag(c) for c in rest):
            if before == "\U0001f3f4" and run.endswith("\U000e007f") and all(_is_tag(c) for c in run):
                continue  # a subdivision flag emoji (e.g. England), the one legitimate use of tag characters
            hidden = "".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E)
            out.add(
                "invisible-unicode",
                "Critical",
                f"Unicode tag characters carry invisible text: {hidden[:200]!r}",
                field_name,
                raw,
                (s, e),
                context=context,
                hidden_text=hidden[:2000],
            )
        elif any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in rest):
            out.add(
                "invisible-unicode",
                "High",
                "control characters (e.g. terminal escape sequences) in the text",
                field_name,
                raw,
                (s, e),
                context=context,
            )
        elif len(run) == 1 and run in "\u200d\ufe0f\ufe0e" and (_is_emoji_like(before) or _is_emoji_like(after)):
            continue  # emoji sequences
        elif (
            len(run) == 1
            and run in "\u200c\u200d"
            and before
            and after
            and not before.isascii()
            and not after.isascii()
            and before.isalpha()
            and after.isalpha()
        ):
            continue  # joiners inside Arabic/Indic words
        elif run == "\u00ad":
            out.add("invisible-unicode", "Low", "soft hyphen (invisible)", field_name, raw, (s, e), context=context)
        elif len(rest) >= 2 or (before.isascii() and before.isalnum() and after.isascii() and after.isalnum()):
            out.add(
                "invisible-unicode",
                "High",
                "invisible characters that can hide or split words the model reads",
                field_name,
                raw,
                (s, e),
                context=context,
            )
        else:
            out.add("invisible-unicode", "Medium", "an invisible character", field_name, raw, (s, e), context=context)
        count += 1
        if count >= 20:
            rest_runs = sum(1 for _ in _INVISIBLE_RUN_RE.finditer(scan, e))
            if rest_runs:
                out.add(
                    "invisible-unicode",
                    "Medium",
                    f"{rest_runs} more runs of invisible characters",
                    field_name,
                    None,
                    None,
                    evidence=f"{rest_runs} more",
                )
            break


# -- the schema ------------------------------------------------------------------------


def _scan_schema(out: _Collector, schema: Any, others: list[tuple[str, str, str]], confined: bool) -> None:
    if schema is None:
        out.add(
            "broad-schema",
            "Medium",
            "no input schema: the tool accepts anything",
            "inputSchema",
            None,
            None,
            evidence="(none)",
        )
        return
    if not isinstance(schema, dict):
        out.add(
            "broad-schema",
            "Medium",
            "the input schema is not a JSON object",
            "inputSchema",
            None,
            None,
            evidence=_excerpt(schema),
        )
        return
    if schema.get("type") not in ("object", None) and not isinstance(schema.get("type"), list):
        out.add(
            "broad-schema",
            "Medium",
            "the input schema is not of type object",
            "inputSchema",
            None,
            None,
            evidence=_excerpt(schema.get("type")),
        )
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if extra is True or extra == {}:
        out.add(
            "broad-schema",
            "Medium",
            "additionalProperties allows arguments the schema does not describe",
            "inputSchema",
            None,
            None,
            evidence=f"additionalProperties: {json.dumps(extra)}",
        )
    elif not props and extra is None and not any(k in schema for k in ("anyOf", "oneOf", "allOf", "$ref")):
        out.add(
            "broad-schema",
            "Low",
            "no declared parameters and additionalProperties not false: any arguments are accepted",
            "inputSchema",
            None,
            None,
            evidence=_excerpt(schema),
        )
    budget = [MAX_SCHEMA_NODES]
    _walk(out, schema, "inputSchema", 0, budget, others, confined, top=True)


def _excerpt(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return visible(text[:200])


def _walk(
    out: _Collector,
    node: Any,
    path: str,
    depth: int,
    budget: list[int],
    others: list[tuple[str, str, str]],
    confined: bool,
    *,
    top: bool = False,
) -> None:
    if not isinstance(node, dict) or depth > MAX_SCHEMA_DEPTH or budget[0] <= 0:
        return
    budget[0] -= 1
    for key in ("description", "title", "default"):
        v = node.get(key)
        if isinstance(v, str) and v:
            _scan_text(out, f"{path}.{key}", v, others)
    props = node.get("properties")
    if isinstance(props, dict):
        for pname, pschema in list(props.items())[:500]:
            if not isinstance(pname, str):
                continue
            ppath = f"{path}.properties.{pname}"
            desc = pschema.get("description") if isinstance(pschema, dict) else None
            pdesc = desc if isinstance(desc, str) else ""
            _check_param(out, pname, pschema, ppath, others, confined or bool(_CONFINED.search(pdesc[:MAX_SCAN])))
            _walk(out, pschema, ppath, depth + 1, budget, others, confined)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            _walk(out, node[key], f"{path}.{key}", depth + 1, budget, others, confined)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key][:100]):
                _walk(out, sub, f"{path}.{key}.{i}", depth + 1, budget, others, confined)
    for key in ("$defs", "definitions", "patternProperties"):
        if isinstance(node.get(key), dict):
            for k, sub in list(node[key].items())[:500]:
                _walk(out, sub, f"{path}.{key}.{k}", depth + 1, budget, others, confined)


def _check_param(
    out: _Collector, pname: str, pschema: Any, ppath: str, others: list[tuple[str, str, str]], confined: bool
) -> None:
    _scan_text(out, ppath, pname, others, patterns=False)  # invisible characters in a parameter name
    toks = _tokens(pname)
    tokset = set(toks)
    span = (0, len(pname))
    if tokset & _SHELL_NAMES:
        out.add("shell-parameter", "High", "a parameter that looks like a shell command or script", ppath, pname, span)
    pairs = set(zip(toks, toks[1:], strict=False))
    if tokset & _SECRET_NAMES or pairs & _SECRET_PAIRS or "".join(toks) in _SECRET_NAMES:
        out.add("credential-reference", "Medium", "a parameter that asks for a secret", ppath, pname, span)
    if tokset & _FILE_NAMES:
        if confined:
            out.add(
                "file-reach", "Low", "a file path parameter (the description says it is confined)", ppath, pname, span
            )
        else:
            out.add("file-reach", "Medium", "a file path parameter with no stated confinement", ppath, pname, span)
    if tokset & _NET_NAMES:
        out.add(
            "network-reach",
            "Medium",
            "a URL/host parameter: the tool reaches the network where it is told",
            ppath,
            pname,
            span,
        )
    if not isinstance(pschema, dict):
        if pschema is True or pschema is None:
            out.add("broad-schema", "Medium", "a parameter of any type", ppath, pname, span)
        return
    ptype = pschema.get("type")
    if ptype == "any" or not any(k in pschema for k in _TYPED_KEYS):
        out.add("broad-schema", "Medium", "a parameter of any type", ppath, pname, span)
    elif (
        ptype == "object" and not pschema.get("properties") and pschema.get("additionalProperties") in (None, True, {})
    ):
        out.add("broad-schema", "Medium", "a free-form object parameter", ppath, pname, span)
    elif ptype == "string" and not any(k in pschema for k in _BOUNDED_STRING_KEYS):
        if tokset & _CODE_NAMES_MEDIUM:
            out.add("broad-schema", "Medium", "an unbounded string parameter named like code", ppath, pname, span)
        elif tokset & _CODE_NAMES_LOW:
            out.add(
                "broad-schema",
                "Low",
                "an unbounded string parameter named like a query or expression",
                ppath,
                pname,
                span,
            )


def _shadowing(server: str, name: str, description: str, others: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """review.shadowing_findings, with the field and span every finding carries."""
    if not others:
        return []
    try:
        found = shadowing_findings(server, name, description, others)
    except Exception:  # noqa: BLE001 - odd names must not stop the review; the rest of the analysis stands
        return []
    out: list[dict[str, Any]] = []
    for f in found:
        f = dict(f)
        evidence = f.get("evidence")
        if f.get("reason", "").startswith("description") and isinstance(evidence, str):
            start = description.find(evidence)
            f["field"] = "description"
            f["span"] = [start, start + len(evidence)] if start >= 0 else None
            f["evidence"] = visible(evidence)
        else:
            f["field"] = "name"
            f["span"] = [0, len(name)]
            f["evidence"] = visible(name)
            if f.get("other"):
                f["reason"] = f"{f['reason']} ({f['other']})"
        out.append(f)
    return out
