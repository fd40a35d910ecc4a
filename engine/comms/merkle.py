"""Merkle trees over envelope bodies (RFC 6962 / RFC 9162 shape).

Leaves are ``SHA-256(0x00 || body)`` and interior nodes
``SHA-256(0x01 || left || right)``; the prefixes keep a leaf from ever being
taken for an interior node (second-preimage attacks). Trees are built level
by level and a lone last node is promoted unchanged, which gives exactly the
RFC 6962 Merkle Tree Hash for any size (no duplicated leaves, so no
CVE-2012-2459-style ambiguity). Inclusion proofs are verified with the
RFC 9162 section 2.1.3.2 algorithm, which also pins the leaf index and the
tree size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from hashlib import sha256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(body: bytes) -> bytes:
    return sha256(LEAF_PREFIX + body).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(NODE_PREFIX + left + right).digest()


def build(leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """Root and every leaf's inclusion proof (bottom-up sibling hashes)."""
    n = len(leaves)
    if n == 0:
        raise ValueError("a Merkle tree needs at least one leaf")
    levels: list[list[bytes]] = [list(leaves)]
    level = levels[0]
    while len(level) > 1:
        nxt = [sha256(NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    inner = levels[:-1]
    if n & (n - 1) == 0:  # a full tree: every node below the root has a sibling
        proofs = [tuple([lvl[(i >> d) ^ 1] for d, lvl in enumerate(inner)]) for i in range(n)]
    else:
        proofs = [
            tuple([lvl[(i >> d) ^ 1] for d, lvl in enumerate(inner) if (i >> d) ^ 1 < len(lvl)]) for i in range(n)
        ]
    return level[0], proofs


def climb(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> Iterator[tuple[int, int, bytes, int]]:
    """The states of RFC 9162 section 2.1.3.2's inclusion-proof check, one before each step.

    Yields ``(fn, sn, r, k)``: the position and last position at the current
    level, the hash reached and how many proof hashes were consumed. The
    proof is well formed and pins ``index`` and ``size`` exactly when the last
    state has ``k == len(proof)`` and ``sn == 0``; then ``r`` is the root. A
    proof too long for the tree stops early (with ``k < len(proof)``). This is
    the only copy of the check: :func:`root_from_proof` and
    :class:`engine.comms.signing.Verifier` (which may stop at a state it has
    already verified) both walk it. The caller checks ``0 <= index < size``.
    """
    fn, sn, r, k, steps = index, size - 1, leaf, 0, len(proof)
    while True:
        yield fn, sn, r, k
        if k == steps or sn == 0:
            return
        p = proof[k]
        k += 1
        if fn & 1 or fn == sn:
            r = sha256(NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1


def root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``; None if malformed."""
    if not 0 <= index < size:
        return None
    *_, (_fn, sn, r, k) = climb(leaf, index, size, proof)
    return r if k == len(proof) and sn == 0 else None


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's recursive definition (split at the largest power of two below n); for tests."""
    n = len(leaves)
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))
