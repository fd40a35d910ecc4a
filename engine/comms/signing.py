"""Sealing (encrypt + sign) and verifying envelopes, one at a time or in batches.

Batch signing
-------------
Ed25519 costs ~36 µs to sign and ~113 µs to verify, which caps a bus that
signs and verifies every message on its own near 6,000 messages/s. So a
sender signs a *batch*: the envelopes' canonical bodies become the leaves of
a Merkle tree (``merkle.py``), and the sender signs once::

    signature = Ed25519(sender, "SYMBI-BATCH\\x01" || u32 batch_size || root)

Every envelope of the batch carries that signature, its ``batch_index``,
the ``batch_size`` and its inclusion proof (the sibling hashes on its path,
8 for a batch of 256). To verify one envelope, the receiver hashes its body,
climbs the proof to a root (RFC 9162's algorithm, which pins the index; the
size is in the signed message), and checks the signature over that root with
the sender's public key. So every envelope is still individually authenticated to its
sender and can be verified alone, in any order, by anyone holding the
sender's public key; a bit changed anywhere in it, or in its proof, yields a
different root, for which no signature exists.

The :class:`Verifier` memoises successful verifications: after each step up
the tree the state of the computation is (signer key, signature, batch size,
position, current hash, remaining proof); every state of a successful
verification is remembered, and a later verification that reaches a
remembered state stops there. The check is a pure function of those inputs,
so the memo is exactly as strong as recomputing (only successes are kept).
In effect Ed25519 runs once per batch, and the other envelopes of a batch
cost their leaf hash plus about two SHA-256 calls, instead of 8 (envelopes
fanned out to several subscribers, or checked at ingress and again at
delivery, cost only the leaf hash the second time).

A batch of one is the per-message path: the proof is empty and the root is
the envelope's own leaf hash. The same code verifies both.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.comms.envelope import Envelope, MessageType, encode_header, header_of
from engine.comms.keys import PublicIdentity
from engine.comms.merkle import LEAF_PREFIX, build, climb
from engine.comms.names import new_message_id

BATCH_DOMAIN = b"SYMBI-BATCH\x01"


def batch_message(size: int, root: bytes) -> bytes:
    """The exact bytes a sender signs for a batch."""
    return BATCH_DOMAIN + size.to_bytes(4, "big") + root


def seal(
    aead: AESGCM,
    nonce: bytes,
    *,
    sender: str,
    type: MessageType,
    payload: bytes,
    timestamp: float,
    ttl: float,
    recipient: str | None = None,
    topic: str | None = None,
    correlation_id: str | None = None,
    id: str | None = None,
) -> Envelope:
    """Encrypt ``payload`` into an unsigned envelope (sign it with :func:`sign_batch`)."""
    msg_id = id or new_message_id()
    header = encode_header(type, msg_id, sender, recipient, topic, correlation_id, timestamp, ttl)
    ciphertext = aead.encrypt(nonce, payload, header)
    return Envelope(msg_id, sender, type, recipient, topic, timestamp, ttl, nonce, ciphertext, correlation_id)


def leaf_of(header: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """The Merkle leaf of an envelope, ``SHA-256(0x00 || body)``, hashed without building the body."""
    h = sha256(b"".join((LEAF_PREFIX, header, len(nonce).to_bytes(1, "big"), nonce, len(ciphertext).to_bytes(4, "big"))))
    h.update(ciphertext)
    return h.digest()


def envelope_leaf(env: Envelope) -> bytes:
    return leaf_of(header_of(env), env.nonce, env.ciphertext)


def sign_leaves(key: Ed25519PrivateKey, leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """Sign a batch given its envelopes' leaf hashes: the signature and each envelope's proof."""
    n = len(leaves)
    if n == 1:
        return key.sign(batch_message(1, leaves[0])), [()]
    root, proofs = build(leaves)
    return key.sign(batch_message(n, root)), proofs


def sign_batch(key: Ed25519PrivateKey, drafts: Sequence[Envelope]) -> list[Envelope]:
    """Sign ``drafts`` (all from the same sender) with one Ed25519 signature; see the module docstring."""
    signature, proofs = sign_leaves(key, [envelope_leaf(d) for d in drafts])
    n = len(drafts)
    return [d.signed(signature, n, i, proofs[i]) for i, d in enumerate(drafts)]


def sign_one(key: Ed25519PrivateKey, draft: Envelope) -> Envelope:
    """Per-message signing: a batch of one."""
    return sign_batch(key, [draft])[0]


def open_payload(env: Envelope, aead: AESGCM, header: bytes | None = None) -> bytes:
    """Decrypt and check the GCM tag; raises :class:`cryptography.exceptions.InvalidTag` on failure."""
    return aead.decrypt(env.nonce, env.ciphertext, header if header is not None else header_of(env))


class Verifier:
    """Checks envelope signatures, running Ed25519 about once per batch (see the module docstring).

    The memo is grouped per batch, ``(signer key, signature, size)``, and maps
    a state ``(index, last index, hash)`` to the remaining proof that was
    verified from it. It holds at most ``memo_size`` states; the oldest
    batches go first.
    """

    def __init__(self, memo_size: int = 65536) -> None:
        self.memo_size = memo_size
        self._batches: dict[tuple[bytes, bytes, int], dict[tuple[int, int, bytes], tuple[bytes, ...]]] = {}
        self._states = 0
        self.signature_checks = 0
        self.memo_hits = 0

    def verify(self, env: Envelope, signer: PublicIdentity, header: bytes | None = None) -> bool:
        """True if ``env`` is authentically from ``signer`` and unchanged.

        ``header`` may pass :func:`encode_header` of ``env`` when the caller already has it.
        """
        size, proof = env.batch_size, env.proof
        index = env.batch_index
        if not 0 <= index < size:
            return False
        if header is None:
            header = header_of(env)
        leaf = leaf_of(header, env.nonce, env.ciphertext)
        batch = (signer.signing_raw, env.signature, size)
        known = self._batches.get(batch)
        learned: list[tuple[int, int, bytes, int]] = []
        # RFC 9162 section 2.1.3.2 (merkle.climb), stopping early at a state already verified
        for fn, sn, r, k in climb(leaf, index, size, proof):
            if known is not None:
                suffix = known.get((fn, sn, r))
                if suffix is not None and suffix == proof[k:]:
                    self.memo_hits += 1
                    self._remember(batch, known, learned, proof)
                    return True
            learned.append((fn, sn, r, k))
        if k != len(proof) or sn != 0:
            return False
        self.signature_checks += 1
        try:
            signer.signing_key.verify(env.signature, batch_message(size, r))
        except InvalidSignature:
            return False
        self._remember(batch, known, learned, proof)
        return True

    def _remember(
        self,
        batch: tuple[bytes, bytes, int],
        known: dict[tuple[int, int, bytes], tuple[bytes, ...]] | None,
        learned: list[tuple[int, int, bytes, int]],
        proof: tuple[bytes, ...],
    ) -> None:
        if known is None:
            while self._batches and self._states + len(learned) > self.memo_size:
                self._states -= len(self._batches.pop(next(iter(self._batches))))
            known = self._batches[batch] = {}
        for fn, sn, r, k in learned:
            known[(fn, sn, r)] = proof[k:]
        self._states += len(learned)


__all__ = [
    "BATCH_DOMAIN",
    "InvalidTag",
    "Verifier",
    "batch_message",
    "open_payload",
    "seal",
    "envelope_leaf",
    "leaf_of",
    "sign_batch",
    "sign_leaves",
    "sign_one",
]
