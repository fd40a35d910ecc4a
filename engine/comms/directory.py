"""Who is on the bus, what they subscribe to, and which key protects which traffic.

* Direct, Request and Response messages are sealed under the pair key of
  sender and recipient (X25519 + HKDF, ``keys.py``).
* Publish messages under the topic's key: 32 random bytes made when the
  topic gets its first subscriber, held here and handed to subscribers.
* Broadcast messages under the bus's broadcast key, handed to registered agents.

Topic and broadcast keys live only in memory: agents get them again from a
restarted runtime. An agent's public identity stays known after it leaves, so
messages it sent before leaving can still be verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.clock import Clock
from engine.comms.envelope import ADDRESSED, Envelope, MessageType
from engine.comms.keys import AgentIdentity, KeyStore, PublicIdentity
from engine.comms.mailbox import Mailbox
from engine.comms.names import check_agent_id, check_topic
from engine.comms.records import Rejected
from engine.errors import ErrorCode, SymbiError

Route = list[tuple[str, Mailbox[Envelope]]]


@dataclass(eq=False)
class Member:
    identity: AgentIdentity
    mailbox: Mailbox[Envelope]
    topics: set[str] = field(default_factory=set)
    sent: int = 0
    received: int = 0
    rejected: int = 0


@dataclass(eq=False)
class Topic:
    aead: AESGCM
    key: bytes
    subscribers: dict[str, None] = field(default_factory=dict)  # insertion-ordered set


class Directory:
    def __init__(self, keystore: KeyStore, queue_size: int, clock: Clock) -> None:
        self.keys = keystore
        self.queue_size = queue_size
        self.clock = clock
        self.members: dict[str, Member] = {}
        self.publics: dict[str, PublicIdentity] = {}
        self.topics: dict[str, Topic] = {}
        self.broadcast_key = AESGCM.generate_key(256)
        self.broadcast_aead = AESGCM(self.broadcast_key)
        self._pairs: dict[tuple[str, str], AESGCM] = {}

    # -- members -------------------------------------------------------------

    def add(self, agent_id: str) -> Member:
        member = self.members.get(agent_id)
        if member is None:
            identity = self.keys.identity(check_agent_id(agent_id))
            member = self.members[agent_id] = Member(identity, Mailbox(self.queue_size, self.clock))
            self.publics[agent_id] = identity.public
        return member

    def remove(self, agent_id: str) -> Member | None:
        member = self.members.pop(agent_id, None)
        if member is not None:
            for topic in list(member.topics):
                self.unsubscribe(agent_id, topic)
        return member

    def get(self, agent_id: str) -> Member:
        member = self.members.get(agent_id)
        if member is None:
            raise SymbiError(
                ErrorCode.COMM_007,
                "unknown agent (not registered on the bus)",
                offending=agent_id,
                hint="register the agent first",
            )
        return member

    # -- topics ----------------------------------------------------------------

    def subscribe(self, agent_id: str, topic: str) -> bytes:
        member = self.get(agent_id)
        entry = self.topics.get(check_topic(topic))
        if entry is None:
            key = AESGCM.generate_key(256)
            entry = self.topics[topic] = Topic(AESGCM(key), key)
        entry.subscribers[agent_id] = None
        member.topics.add(topic)
        return entry.key

    def unsubscribe(self, agent_id: str, topic: str) -> None:
        entry = self.topics.get(topic)
        if entry is not None:
            entry.subscribers.pop(agent_id, None)
        member = self.members.get(agent_id)
        if member is not None:
            member.topics.discard(topic)

    def topic_key(self, agent_id: str, topic: str) -> bytes:
        entry = self.topics.get(topic)
        if entry is None or agent_id not in entry.subscribers:
            raise SymbiError(ErrorCode.COMM_007, "not subscribed to this topic", offending=topic)
        return entry.key

    # -- keys and routes ---------------------------------------------------------

    def pair_aead(self, a: str, b: str) -> AESGCM:
        pair = (a, b) if a <= b else (b, a)
        aead = self._pairs.get(pair)
        if aead is None:
            aead = self._pairs[pair] = AESGCM(self.keys.pair_key(a, b))
        return aead

    def route(self, sender: str, kind: MessageType, recipient: str | None, topic: str | None) -> tuple[Route, AESGCM]:
        """The queues a message goes to and the key it is sealed under; :class:`Rejected` ``COMM_007`` if none."""
        if kind in ADDRESSED:
            target = self.members.get(recipient or "")
            if target is None:
                raise Rejected(ErrorCode.COMM_007, f"unknown recipient {recipient!r}")
            return [(recipient, target.mailbox)], self.pair_aead(sender, recipient)  # type: ignore[list-item,arg-type]
        if kind is MessageType.PUBLISH:
            entry = self.topics.get(topic or "")
            if entry is None or not entry.subscribers:
                raise Rejected(ErrorCode.COMM_007, f"unknown topic {topic!r} (no subscribers)")
            return [(a, self.members[a].mailbox) for a in entry.subscribers if a != sender], entry.aead
        return [(a, m.mailbox) for a, m in self.members.items() if a != sender], self.broadcast_aead

    def aead_for(self, env: Envelope, agent_id: str) -> AESGCM:
        """The key ``agent_id`` opens ``env`` with; :class:`Rejected` ``COMM_007`` for a topic that is gone."""
        if env.type in ADDRESSED:
            return self.pair_aead(env.sender, agent_id)
        if env.type is MessageType.PUBLISH:
            entry = self.topics.get(env.topic or "")
            if entry is None:
                raise Rejected(ErrorCode.COMM_007, f"unknown topic {env.topic!r}")
            return entry.aead
        return self.broadcast_aead
