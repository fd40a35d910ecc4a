"""Glob patterns compiled to regular expressions, and glob-covers-glob tests.

Syntax (for paths the separator is ``/``, for host names ``.``, for names
such as agent or tool names there is none):

* ``*``  any run of characters within one segment (possibly empty);
* ``**`` a whole segment: zero or more segments (``/tmp/**`` matches
  ``/tmp`` and everything below it);
* ``?``  one character, not the separator;
* ``[abc]``, ``[a-z]``, ``[!abc]`` one character of (not of) a class;
* ``\\x`` the character ``x`` literally.

Bad globs raise :class:`GlobError` with the offset of the problem:
``**`` mixed with other characters in a segment, an unclosed ``[``, an
empty class, a separator inside a class, a trailing backslash, NUL.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache


class GlobError(ValueError):
    """A malformed glob; ``offset`` is the 0-based index of the problem."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


_WILD = set("*?[\\")


def _segment_regex(seg: str, sep: str | None, base: int) -> str:
    """One segment's regex. Runs of text between ``*`` are matched at their
    earliest position inside atomic groups, which is exact for globs and keeps
    matching linear: ``*a*a*b`` against a long run of ``a`` cannot backtrack
    exponentially."""
    any_char = "." if sep is None else f"[^{re.escape(sep)}]"
    chunks: list[list[str]] = [[]]
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            j = i
            while j < n and seg[j] == "*":
                j += 1
            if j - i > 2:
                raise GlobError("'***' is not a glob; use '*' or '**'", base + i)
            if j - i > 1 and sep is not None:
                raise GlobError("'**' must be a whole segment (like 'a/**/b'), not part of one", base + i)
            chunks.append([])
            i = j
        elif c == "?":
            chunks[-1].append(any_char)
            i += 1
        elif c == "[":
            j = i + 1
            negate = j < n and seg[j] in "!^"
            if negate:
                j += 1
            start = j
            if j < n and seg[j] == "]":
                j += 1  # a leading ']' is literal
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:
                raise GlobError("unclosed '[' in glob", base + i)
            body = seg[start:j]
            if sep is not None and sep in body:
                raise GlobError(f"a character class cannot contain the separator '{sep}'", base + i)
            body = "".join("\\" + ch if ch in "\\[]^&~|" else ch for ch in body)  # literal inside the class
            if negate and sep is not None:
                body += re.escape(sep)  # a negated class never matches the separator either
            chunks[-1].append("[" + ("^" if negate else "") + body + "]")
            i = j + 1
        elif c == "\\":
            if i + 1 >= n:
                raise GlobError("trailing backslash in glob", base + i)
            chunks[-1].append(re.escape(seg[i + 1]))
            i += 2
        else:
            chunks[-1].append(re.escape(c))
            i += 1
    parts = ["".join(chunk) for chunk in chunks]
    if len(parts) == 1:
        return parts[0]
    middle = "".join(f"(?>{any_char}*?{p})" for p in parts[1:-1] if p)
    return f"{parts[0]}{middle}{any_char}*{parts[-1]}"


def split(pattern: str, sep: str | None) -> list[str]:
    return [pattern] if sep is None else pattern.split(sep)


def glob_to_regex(pattern: str, sep: str | None) -> str:
    """The regex source (for ``fullmatch``) of ``pattern``; raises GlobError.

    Segments between ``**`` are placed at their earliest position in atomic
    groups too (followed by a segment boundary), so several ``**`` cost
    linear, not polynomial, time in the number of path segments.
    """
    if "\x00" in pattern:
        raise GlobError("NUL character in glob", pattern.index("\x00"))
    if sep is None:
        return _segment_regex(pattern.replace("**", "*") if "***" not in pattern else pattern, None, 0)
    esep = re.escape(sep)
    seg_any = f"[^{esep}]*"
    # chunks of segment regexes between '**' (consecutive '**' are one)
    chunks: list[list[str]] = [[]]
    offset = 0
    previous_globstar = False
    for seg in pattern.split(sep):
        if seg == "**":
            if not previous_globstar:
                chunks.append([])
            previous_globstar = True
        else:
            chunks[-1].append(_segment_regex(seg, sep, offset))
            previous_globstar = False
        offset += len(seg) + 1
    if len(chunks) == 1:
        return esep.join(chunks[0])
    out = []
    started = bool(chunks[0])
    if started:
        out.append(esep.join(chunks[0]))
    last = len(chunks) - 1
    for index in range(1, len(chunks)):
        body = esep.join(chunks[index])
        if not chunks[index]:  # the pattern ends with '**'
            out.append(f"(?:{esep}.*)?" if started else ".*")
            continue
        if started:
            skip, lead = f"(?:{esep}{seg_any})*", esep
        else:
            skip, lead = f"(?:{seg_any}{esep})*", ""
        if index == last:
            out.append(f"{skip}{lead}{body}")
        else:
            out.append(f"(?>{skip}?{lead}{body}(?={esep}|\\Z))")
        started = True
    return "".join(out)


@lru_cache(maxsize=8192)
def compile_glob(pattern: str, sep: str | None = "/", ignore_case: bool = False) -> re.Pattern[str]:
    """Compile once (cached); raises GlobError."""
    return re.compile(glob_to_regex(pattern, sep), re.IGNORECASE if ignore_case else 0)


def is_literal(seg: str) -> bool:
    return not (_WILD & set(seg))


def unescape(seg: str) -> str:
    return re.sub(r"\\(.)", r"\1", seg)


def literal_prefix(pattern: str, sep: str) -> list[str]:
    """Leading segments that hold no wildcard (unescaped), e.g. ``/a/b*/c`` -> ``['', 'a']``.

    The last segment counts only when the whole pattern is literal.
    """
    out: list[str] = []
    for seg in pattern.split(sep):
        if seg == "**" or not _literal_after_escapes(seg):
            break
        out.append(unescape(seg))
    return out


def _literal_after_escapes(seg: str) -> bool:
    i = 0
    while i < len(seg):
        if seg[i] == "\\":
            i += 2
            continue
        if seg[i] in "*?[":
            return False
        i += 1
    return True


def _seg_covers(a: str, b: str, sep: str | None) -> bool:
    if a == b or a == "*":
        return True
    if _literal_after_escapes(b):
        return compile_glob(a, sep).fullmatch(unescape(b)) is not None
    return False


def glob_covers(a: str, b: str, sep: str | None = "/") -> bool:
    """True if every string matching glob ``b`` also matches glob ``a``.

    Sound but not complete: a False may be a cover we cannot prove. Used for
    shadowing warnings, so it errs on the side of not warning.
    """
    if a == b:
        return True
    if sep is None:
        return a in ("*", "**") or _seg_covers(a, b, None)
    sa, sb = a.split(sep), b.split(sep)

    @cache
    def cover(i: int, j: int) -> bool:
        if i == len(sa):
            return j == len(sb)
        if sa[i] == "**":
            return any(cover(i + 1, k) for k in range(j, len(sb) + 1))
        if j == len(sb) or sb[j] == "**":
            return False
        return _seg_covers(sa[i], sb[j], sep) and cover(i + 1, j + 1)

    return cover(0, 0)
