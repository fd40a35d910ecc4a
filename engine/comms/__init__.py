"""The secure communication bus: signed, encrypted, verified messages between agents.

Design (for the README)
-----------------------
*Identities.* Every agent has an Ed25519 identity key (signing) and an X25519
key (agreement), created on first use under ``data_dir/keys/agents/<id>/``
(private files 0600, directories 0700) and reused across restarts
(:class:`KeyStore`).

*Trust model.* The bus is the runtime: trusted, it holds every agent's keys,
the topic keys and the broadcast key. Agents are not trusted. The runtime
calls ``send``/``publish``/... on behalf of the agent it has authenticated on
its protocol channel and the bus seals with that agent's keys; an agent
process that holds its own identity key may instead submit envelopes it
sealed and signed itself (``receive_envelope``), which are then trusted
only as far as their signature verifies against the registered public key.
A pair key is known to its two agents, a topic key to subscribers, the
broadcast key to registered agents; none of them lets an agent speak for
another, because only the sender's signature makes a message its.

*Envelope.* id (UUID4), sender, recipient or topic, type (Direct, Publish,
Request, Response, Broadcast), timestamp, TTL, 96-bit random nonce,
AES-256-GCM ciphertext, correlation id (Responses), and the authentication
fields: signature, batch size, batch index, Merkle proof. Keys: per pair
``HKDF-SHA256(X25519(a, B))`` with both ids and public keys in the info
(order-independent); per topic 32 random bytes; one broadcast key. The GCM
associated data is the canonical header (id, sender, recipient/topic, type,
timestamp, TTL, correlation id). The signature covers the canonical
encoding of every other field (``envelope.encode_body``). Wire forms: compact
bytes and JSON with base64 fields (``wire.py``), both strictly parsed.

*Batch signing* (``signing.py``). Signing and verifying every message with
Ed25519 (~36 + ~113 µs) caps a bus near 6,000 msgs/s. A sender's envelopes
are instead collected for at most one event-loop turn (or 256 envelopes) and
signed as one batch: the signature is over ``"SYMBI-BATCH" || size || root``
of a Merkle tree (RFC 6962 shape) whose leaves are the envelopes' canonical
bodies. Each envelope carries the batch signature, its index and its
inclusion proof, so each one is still individually authenticated to its
sender and verifiable alone, in any order, by anyone with the sender's
public key. The verifier memoises the states of successful verifications,
so Ed25519 runs about once per batch and the rest of the batch costs a leaf
hash and about two SHA-256 calls each. A batch of one is the per-message
path (``batch_signing=False``).

*Checks and refusals.* Every delivery verifies signature and GCM tag first.
Refused, with an error to whoever caused it, a dead letter (reason and
metadata, never payload) and an audit record: malformed ``COMM_001``, bad
signature or unknown sender ``COMM_002``, failed tag ``COMM_003``, replayed
id within its TTL ``COMM_004``, expired / from the future / TTL over the
maximum ``COMM_005``, over ``max_message_size`` (before encrypting, and on
receipt) ``COMM_006``, unknown recipient or topic ``COMM_007``, queue full
``COMM_008``; a request without a response in time is ``COMM_009``.

*Queues.* One bounded queue per agent. Senders reserve a slot before
anything is sealed: ``block=True`` waits (optionally with a timeout) and
waiting senders are served first come, first served; ``block=False`` gets
``COMM_008`` at once. Fan-out (publish, broadcast) reserves in every queue
or in none. Nothing is dropped silently: what cannot be delivered (expired,
recipient gone, bus closed) becomes a dead letter. Messages from one sender
reach a queue in the order the sends returned.

*Audit.* The optional async hook gets metadata only (id, type, sender,
recipient/topic, size, decision, verification, stage, code, reason) for
every send, delivery and refusal, before the action takes effect: if it
raises, the send or the delivery does not happen (fail closed).

Public face
-----------
:class:`MessageBus`, :class:`KeyStore` (:class:`AgentIdentity`,
:class:`PublicIdentity`), :class:`Envelope`, :class:`MessageType`,
:class:`Delivered`, :class:`DeadLetter`, :class:`BusStats`,
:class:`AgentCounters`; for agent processes that seal their own envelopes:
:func:`seal`, :func:`sign_batch`, :func:`sign_one`, :func:`open_payload`,
:class:`Verifier` and the wire codecs :func:`to_bytes`/:func:`from_bytes`,
:func:`to_json`/:func:`from_json`, :func:`to_dict`/:func:`from_dict`,
:func:`parse`.
"""

from engine.comms.bus import MessageBus
from engine.comms.deadletter import DeadLetter
from engine.comms.envelope import Envelope, MessageType, encode_body
from engine.comms.keys import AgentIdentity, KeyStore, PublicIdentity, derive_pair_key
from engine.comms.ledger import AuditHook, DeadLetterHook
from engine.comms.records import AgentCounters, BusStats, Delivered
from engine.comms.signing import Verifier, open_payload, seal, sign_batch, sign_one
from engine.comms.wire import from_bytes, from_dict, from_json, parse, to_bytes, to_dict, to_json

__all__ = [
    "AgentCounters",
    "AgentIdentity",
    "AuditHook",
    "BusStats",
    "DeadLetter",
    "DeadLetterHook",
    "Delivered",
    "Envelope",
    "KeyStore",
    "MessageBus",
    "MessageType",
    "PublicIdentity",
    "Verifier",
    "derive_pair_key",
    "encode_body",
    "from_bytes",
    "from_dict",
    "from_json",
    "open_payload",
    "parse",
    "seal",
    "sign_batch",
    "sign_one",
    "to_bytes",
    "to_dict",
    "to_json",
]
