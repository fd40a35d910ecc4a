"""The evaluation index: which policies can possibly match a request.

Policies are bucketed by (resource type, operation). Inside a bucket each
policy is filed under one *discriminator*, something a request must carry
for the policy to match, in this order of preference: an exact
``agent_id``/``agent_name``/``tool_name``; the literal host of its endpoint
patterns; two or more literal leading path segments (``/srv/app/**``); the
literal prefix of an agent or tool name glob (``tool-7.*``, a character
trie); any literal leading path segments (a segment trie). Policies with
none are *unindexed* and always considered. Each list is in evaluation order, so the
first policy (by rank) that matches decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from engine.policy.document import Policy
from engine.policy.globs import literal_prefix
from engine.policy.model import ENDPOINT_TYPES, OPERATIONS
from engine.policy.request import Req

Entry = tuple[int, Policy]


class _Node:
    __slots__ = ("children", "items")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.items: list[Entry] = []


_NAME_ATTR = {"agent_id": "agent_id", "agent_name": "agent_name", "tool_name": "tool"}


def name_prefix(glob: str) -> str:
    """Literal characters before the first wildcard of a name glob (escapes resolved)."""
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "\\" and i + 1 < len(glob):
            out.append(glob[i + 1])
            i += 2
            continue
        if c in "*?[":
            break
        out.append(c)
        i += 1
    return "".join(out)


def _insert(root: _Node, keys: Iterable[str], entry: Entry) -> None:
    node = root
    for key in keys:
        node = node.children.setdefault(key, _Node())
    node.items.append(entry)


def _walk(node: _Node, keys: Iterable[str], lists: list[list[Entry]]) -> None:
    """Collect the items on the path ``keys`` spells from ``node`` (root excluded)."""
    children = node.children
    for key in keys:
        child = children.get(key)
        if child is None:
            return
        if child.items:
            lists.append(child.items)
        children = child.children
        if not children:
            return


class Bucket:
    """Candidates for one (resource type, operation)."""

    __slots__ = ("unindexed", "exact", "prefix", "by_host", "trie", "_simple", "_names")

    def __init__(self) -> None:
        self.unindexed: list[Entry] = []
        self.exact: dict[str, dict[str, list[Entry]]] = {k: {} for k in _NAME_ATTR}
        self.prefix: dict[str, _Node] = {k: _Node() for k in _NAME_ATTR}
        self.by_host: dict[str, list[Entry]] = {}
        self.trie = _Node()  # path segments
        self._simple = True
        self._names: list[tuple[str, dict[str, list[Entry]], _Node | None]] = []

    def finalize(self) -> None:
        """Note which name tables are in use, so lookups skip the empty ones."""
        self._names = [
            (attr, self.exact[kind], self.prefix[kind] if self.prefix[kind].children else None)
            for kind, attr in _NAME_ATTR.items()
            if self.exact[kind] or self.prefix[kind].children
        ]

    def add(self, rank: int, policy: Policy, rtype: str) -> None:
        """File ``policy`` under its most selective discriminator (see the module docstring)."""
        entry = (rank, policy)
        names = [c for c in policy.checks if c.kind in _NAME_ATTR]
        for c in names:
            if c.literals is not None:
                for value in c.literals:
                    self.exact[c.kind].setdefault(value, []).append(entry)
                self._simple = False
                return
        if policy.resources:
            if rtype in ENDPOINT_TYPES:
                hosts = [p.literal_host for p in policy.endpoint_patterns]
                if not hosts:
                    return  # no pattern can match this type: the policy never applies here
                literal_hosts = [h for h in hosts if h is not None]
                if len(literal_hosts) == len(hosts):
                    for host in set(literal_hosts):
                        self.by_host.setdefault(host, []).append(entry)
                    self._simple = False
                    return
            elif not policy.path_patterns:
                return
        prefixes = {c.kind: [name_prefix(g) for g in c.globs] for c in names}
        deep_paths = (
            policy.resources
            and rtype not in ENDPOINT_TYPES
            and all(len(literal_prefix(text, "/")) >= 3 for text, _ in policy.path_patterns)
        )
        if not deep_paths:
            for kind_name, pre in prefixes.items():
                if pre and all(len(p) >= 2 for p in pre):
                    for p in set(pre):
                        _insert(self.prefix[kind_name], p, entry)
                    self._simple = False
                    return
        if policy.resources and rtype not in ENDPOINT_TYPES:
            for prefix in {tuple(literal_prefix(text, "/")) for text, _ in policy.path_patterns}:
                _insert(self.trie, prefix, entry)
            self._simple = False
            return
        self.unindexed.append(entry)

    def candidates(self, r: Req) -> list[Entry]:
        """Entries that may match ``r``, in evaluation order (duplicates possible)."""
        if self._simple:
            return self.unindexed
        lists: list[list[Entry]] = []
        if self.unindexed:
            lists.append(self.unindexed)
        for attr, exact, prefix in self._names:
            value = getattr(r, attr)
            if value is None:
                continue
            hit = exact.get(value)
            if hit:
                lists.append(hit)
            if prefix is not None:
                _walk(prefix, value, lists)
        if r.endpoint is not None:
            if self.by_host:
                hit = self.by_host.get(r.endpoint.host)
                if hit:
                    lists.append(hit)
        else:
            node = self.trie
            if node.items:
                lists.append(node.items)
            if node.children:
                _walk(node, r.path.split("/"), lists)
        if not lists:
            return []
        if len(lists) == 1:
            return lists[0]
        return sorted(chain.from_iterable(lists), key=_rank)


def _rank(entry: Entry) -> int:
    return entry[0]


def build_index(policies: list[Policy]) -> dict[tuple[str, str], Bucket]:
    """Buckets for every (type, operation) some enabled policy can apply to."""
    index: dict[tuple[str, str], Bucket] = {}
    ordered = sorted((p for p in policies if p.enabled), key=lambda p: p.sort_key)
    for rank, policy in enumerate(ordered):
        ops = OPERATIONS if policy.operations is None else tuple(policy.operations)
        for rtype in policy.applies_to:
            for op in ops:
                bucket = index.get((rtype, op))
                if bucket is None:
                    bucket = index[(rtype, op)] = Bucket()
                bucket.add(rank, policy, rtype)
    for bucket in index.values():
        bucket.finalize()
    return index
