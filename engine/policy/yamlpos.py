"""YAML with positions: compose a node tree and read typed scalars from it.

We never let PyYAML construct Python objects for the whole document: we
compose nodes (each with a ``start_mark``) and read scalars one at a time,
so every error can name its line and column, ``"09:00"``-style values keep
their text, and alias bombs cannot expand. Any failure of the YAML layer
(syntax, bad characters, binary content, nesting deeper than
:data:`engine.safeparse.MAX_DEPTH` levels, measured on the event stream
before the recursive composer runs) comes back as a :class:`YamlFailure`
with a 1-based position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.safeparse import MAX_DEPTH, NestingTooDeep, check_yaml_depth

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# libyaml's parser is ~10x faster and keeps the same marks; fall back to pure Python without it.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"


@dataclass(frozen=True, slots=True)
class YamlFailure(Exception):
    line: int
    column: int
    message: str


def position(node: Node) -> tuple[int, int]:
    """1-based (line, column) where ``node`` starts."""
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def end_position(node: Node) -> tuple[int, int]:
    mark = node.end_mark
    return mark.line + 1, mark.column + 1


def _line_col(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped); YamlFailure at the first byte that is not text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise YamlFailure(line, col, f"not a text file: byte 0x{data[exc.start]:02x} is not UTF-8") from None
    return text


def compose(text: str) -> Node | None:
    """The document's root node, or None for an empty document."""
    nul = text.find("\x00")
    if nul >= 0:
        line, col = _line_col(text, nul)
        raise YamlFailure(line, col, "binary content (NUL byte); a policy file is YAML text")
    try:
        check_yaml_depth(text, max_depth=MAX_DEPTH, what="the YAML", loader=_LOADER)
    except NestingTooDeep as exc:
        raise YamlFailure(exc.line, exc.column, exc.message) from None
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if not exc.context:
            what = problem
        elif exc.context.startswith("while"):
            what = f"{problem} {exc.context}"
        else:
            what = f"{exc.context}, {problem}"
        if mark is None:
            raise YamlFailure(1, 1, f"YAML syntax error: {what}") from None
        raise YamlFailure(mark.line + 1, mark.column + 1, f"YAML syntax error: {what}") from None
    except UnicodeEncodeError as exc:  # a lone surrogate in a str that did not come from bytes
        line, col = _line_col(text, exc.start)
        raise YamlFailure(line, col, "invalid character (unpaired surrogate) in the text") from None
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        raise YamlFailure(line, col, f"character {exc.character!r} is not allowed in YAML text") from None
    except RecursionError:
        raise YamlFailure(1, 1, "YAML nesting is too deep") from None
    except yaml.YAMLError as exc:  # any other YAML failure, without a mark
        raise YamlFailure(1, 1, f"YAML error: {exc}") from None


def kind(node: Node) -> str:
    """How to name a node's type in a message: 'a mapping', 'a list', 'a string', ..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag
    if tag == _STR:
        return "a string"
    if tag in (_INT, _FLOAT):
        return "a number"
    if tag == _BOOL:
        return "true/false"
    if tag == _NULL:
        return "null"
    return f"a {tag.rsplit(':', 1)[-1]} value"


def scalar(node: ScalarNode) -> Any:
    """The typed value of a scalar node (timestamps and odd tags stay text)."""
    tag = node.tag
    if tag == _STR:
        return node.value
    try:
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            return _CONSTRUCTOR.construct_yaml_float(node)
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _NULL:
            return None
    except (ValueError, yaml.YAMLError):
        return node.value
    return node.value


def is_str(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _STR


def plain(node: Node, budget: list[int] | None = None, depth: int = 0) -> Any:
    """A small node (e.g. a request in a test case) as plain Python data.

    Bounded: at most 50 levels and 100,000 nodes, so aliases cannot explode.
    """
    if budget is None:
        budget = [100_000]
    budget[0] -= 1
    if depth > 50 or budget[0] < 0:
        line, col = position(node)
        raise YamlFailure(line, col, "value too deeply nested or too large")
    if isinstance(node, ScalarNode):
        return scalar(node)
    if isinstance(node, SequenceNode):
        return [plain(item, budget, depth + 1) for item in node.value]
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        for key, value in node.value:
            k = plain(key, budget, depth + 1)
            v = plain(value, budget, depth + 1)
            try:
                out[k] = v
            except TypeError:
                line, col = position(key)
                raise YamlFailure(line, col, "a mapping key must be a string") from None
        return out
    return None
