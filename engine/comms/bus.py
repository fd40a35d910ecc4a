"""The secure message bus: the public API, its checks and its delivery paths.

Trust model
-----------
The bus *is* the runtime: it is trusted, holds every agent's keys (the
:class:`~engine.comms.keys.KeyStore`), every topic key and the broadcast
key. Agents are not trusted. In-process calls (``send``, ``publish``, ...)
are made by the runtime on an agent's behalf once it knows which agent is
calling (the agent's own protocol channel), so the bus encrypts and signs
with that agent's keys. Envelopes that arrive from outside
(``receive_envelope``: an agent process holding its own identity key
submits a signed envelope) are authenticated by their signature alone,
against the sender's registered public key; holding a pair or topic key is
not enough to speak for someone else. Topic keys are handed only to
subscribers, the broadcast key to registered agents, a pair key only to its
two agents.

Every envelope is verified on delivery (signature via its batch root, then
the GCM tag) before its plaintext is handed over, so a message altered after
signing, in a queue or on the wire, is never delivered.

Paths
-----
``send``/``publish``/``broadcast``/``request``/``respond``: check the input
(size, recipient or topic, TTL), reserve room in every target queue (waiting,
or ``COMM_008`` at once), audit the send, encrypt, and hand the draft to the
sender's outbox (``outbox.py``), which signs it with others as one batch
(``signing.py``) and routes them in order into the reserved slots.
``receive_envelope``: parse, size, freshness, sender, recipient, signature,
replay and tag checks, then reserve, audit and route. ``receive`` and
``request``: expiry, signature and tag checks, then audit and hand over.

Every refusal raises a :class:`~engine.errors.SymbiError` with its
``COMM_00x`` code to whoever caused it (the sender for input and envelope
faults; a receiver never sees a refused message), and writes a dead letter
and an audit record (``ledger.py``). Nothing is dropped silently. Ordering
is FIFO per sender and recipient: messages reach a queue in the order their
``send`` calls returned.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.clock import Clock, SystemClock
from engine.comms.deadletter import DeadLetter
from engine.comms.directory import Directory, Member
from engine.comms.envelope import ADDRESSED, NONCE_SIZE, Envelope, MessageType, encode_header, header_of
from engine.comms.keys import AgentIdentity, KeyStore, PublicIdentity
from engine.comms.ledger import AuditHook, DeadLetterHook, Ledger
from engine.comms.mailbox import Mailbox, MailboxClosed, wait_for_future
from engine.comms.names import new_message_id
from engine.comms.outbox import Outbox
from engine.comms.records import AgentCounters, BusStats, Delivered, Rejected, delivered_record, sent_record
from engine.comms.replay import ReplayGuard
from engine.comms.signing import InvalidTag, Verifier, leaf_of
from engine.comms.wire import parse
from engine.errors import ErrorCode, SymbiError

MiB = 1024 * 1024
E = ErrorCode


@dataclass(eq=False)
class _Waiter:
    """An in-process ``request`` waiting for its Response."""

    requester: str
    responder: str
    future: asyncio.Future[Envelope]


_Target = tuple[str, Mailbox[Envelope]] | _Waiter


class MessageBus:
    """Signed, encrypted, verified messaging between agents. See the module docstring."""

    def __init__(
        self,
        keystore: KeyStore,
        *,
        clock: Clock | None = None,
        max_message_size: int = MiB,
        queue_size: int = 1000,
        default_ttl: float = 60.0,
        max_ttl: float = 3600.0,
        max_clock_skew: float = 30.0,
        request_timeout: float = 30.0,
        batch_signing: bool = True,
        max_batch: int = 256,
        dead_letter_size: int = 1000,
        verify_memo_size: int = 65536,
        audit: AuditHook | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        if not 0 < default_ttl <= max_ttl:
            raise ValueError("need 0 < default_ttl <= max_ttl")
        self.keys = keystore
        self.clock: Clock = clock or SystemClock()
        self.max_message_size = max_message_size
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.max_clock_skew = max_clock_skew
        self.request_timeout = request_timeout
        self.max_wire_size = max_message_size * 4 // 3 + 64 * 1024  # base64, names, times, a proof
        self.audit = audit
        self._dir = Directory(keystore, queue_size, self.clock)
        self._outbox = Outbox(max_batch if batch_signing else 1, self._route_signed)
        self._ledger = Ledger(self.clock, audit, on_dead_letter, dead_letter_size)
        self._replay = ReplayGuard(self.clock)
        self._verifier = Verifier(verify_memo_size)
        self._waiting: dict[str, _Waiter] = {}
        self._closed = False
        self.sent = 0
        self.delivered = 0

    @classmethod
    def from_config(cls, config: Any, keystore: KeyStore, **kwargs: Any) -> MessageBus:
        """Build from a ``[communication]`` section (:class:`engine.config.CommunicationConfig`)."""
        options: dict[str, Any] = {
            "max_message_size": config.max_message_size,
            "queue_size": config.max_queue_size,
            "default_ttl": min(60.0, config.message_ttl),
            "max_ttl": config.message_ttl,
            "request_timeout": config.delivery_timeout,
            "dead_letter_size": config.dead_letter_queue_size,
        }
        options.update(kwargs)
        return cls(keystore, **options)

    # -- membership and keys --------------------------------------------------------

    def register(self, agent_id: str) -> PublicIdentity:
        """Give ``agent_id`` a queue (and an identity key pair, created on first use). Idempotent."""
        self._require_open()
        return self._dir.add(agent_id).identity.public

    async def unregister(self, agent_id: str) -> int:
        """Remove an agent: its subscriptions go, requests waiting on it fail, and what was still
        queued for it is dead-lettered (returned: how many). Its public key stays known, so messages
        it sent before leaving still verify."""
        member = self._dir.remove(agent_id)
        if member is None:
            return 0
        for waiter in list(self._waiting.values()):
            if agent_id in (waiter.requester, waiter.responder) and not waiter.future.done():
                who = "requester" if waiter.requester == agent_id else "responder"
                waiter.future.set_exception(SymbiError(E.COMM_007, f"{who} was unregistered", offending=agent_id))
        left = member.mailbox.close()
        for env in left:
            await self._ledger.reject(
                E.COMM_007,
                "recipient was unregistered with the message undelivered",
                _meta_for(env, agent_id),
                stage="delivery",
            )
        return len(left)

    def is_registered(self, agent_id: str) -> bool:
        return agent_id in self._dir.members

    @property
    def agents(self) -> list[str]:
        return list(self._dir.members)

    def identity(self, agent_id: str) -> AgentIdentity:
        """A registered agent's private identity, for that agent's own process (and nobody else)."""
        return self._dir.get(agent_id).identity

    def public_identity(self, agent_id: str) -> PublicIdentity:
        public = self._dir.publics.get(agent_id)
        if public is None:
            raise SymbiError(E.COMM_007, "unknown agent", offending=agent_id, hint="register the agent first")
        return public

    def subscribe(self, agent_id: str, topic: str) -> bytes:
        """Subscribe ``agent_id`` to ``topic``; returns the topic key (a subscriber needs it to read)."""
        return self._dir.subscribe(agent_id, topic)

    def unsubscribe(self, agent_id: str, topic: str) -> None:
        self._dir.unsubscribe(agent_id, topic)

    def topics(self) -> dict[str, list[str]]:
        """Topics that currently have subscribers, with them."""
        return {name: list(t.subscribers) for name, t in self._dir.topics.items() if t.subscribers}

    def topic_key(self, agent_id: str, topic: str) -> bytes:
        return self._dir.topic_key(agent_id, topic)

    def broadcast_key(self, agent_id: str) -> bytes:
        self._dir.get(agent_id)
        return self._dir.broadcast_key

    def pair_key(self, a: str, b: str) -> bytes:
        """The AES-256-GCM key between two registered agents (for an agent process that seals its own)."""
        self._dir.get(a)
        self._dir.get(b)
        return self.keys.pair_key(a, b)

    # -- sending -----------------------------------------------------------------------

    async def send(
        self,
        sender: str,
        recipient: str,
        payload: bytes,
        *,
        type: MessageType | str = MessageType.DIRECT,
        ttl: float | None = None,
        correlation_id: str | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> str:
        """Send to one agent; returns the message id.

        ``type`` is Direct (default), Request (fire and forget: the Response
        arrives through ``receive``) or Response (needs ``correlation_id``).
        With ``block`` the call waits (up to ``timeout`` s, None: forever) for
        room in the recipient's queue; without, a full queue is ``COMM_008``.
        """
        kind = _addressed_type(type, correlation_id)
        return await self._submit(sender, kind, payload, recipient, None, correlation_id, ttl, block, timeout)

    async def publish(
        self,
        sender: str,
        topic: str,
        payload: bytes,
        *,
        ttl: float | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> str:
        """Send to every subscriber of ``topic`` but the sender (``COMM_007`` if it has none)."""
        return await self._submit(sender, MessageType.PUBLISH, payload, None, topic, None, ttl, block, timeout)

    async def broadcast(
        self, sender: str, payload: bytes, *, ttl: float | None = None, block: bool = True, timeout: float | None = None
    ) -> str:
        """Send to every registered agent but the sender."""
        return await self._submit(sender, MessageType.BROADCAST, payload, None, None, None, ttl, block, timeout)

    async def request(
        self,
        sender: str,
        recipient: str,
        payload: bytes,
        timeout: float | None = None,
        *,
        ttl: float | None = None,
        block: bool = True,
    ) -> bytes:
        """Send a Request and return its Response's payload; ``COMM_009`` after ``timeout`` seconds."""
        timeout = self.request_timeout if timeout is None else timeout
        msg_id = new_message_id()
        waiter = _Waiter(sender, recipient, asyncio.get_running_loop().create_future())
        self._waiting[msg_id] = waiter
        try:
            started = self.clock.monotonic()
            await self._submit(sender, MessageType.REQUEST, payload, recipient, None, None, ttl, block, timeout, msg_id)
            remaining = max(0.0, timeout - (self.clock.monotonic() - started))  # one timeout for the whole call
            if not await wait_for_future(waiter.future, remaining, self.clock):
                meta = _meta(msg_id, MessageType.REQUEST, sender, recipient, None, None, len(payload), None, ttl)
                raise await self._ledger.reject(
                    E.COMM_009,
                    f"no response from {recipient} within {timeout:g} s",
                    meta,
                    stage="request",
                    hint="is the recipient receiving?",
                )
            env = waiter.future.result()
            try:
                delivered = self._open(env, sender)
            except Rejected as exc:
                raise await self._ledger.reject(
                    exc.code, exc.reason, _meta_for(env, sender), stage="delivery"
                ) from None
            await self._ledger.emit(delivered_record(env, sender))
            self.delivered += 1
            if (member := self._dir.members.get(sender)) is not None:
                member.received += 1
            return delivered.payload
        finally:
            self._waiting.pop(msg_id, None)
            if not waiter.future.done():
                waiter.future.cancel()

    async def respond(
        self,
        responder: str,
        request: Delivered | Envelope,
        payload: bytes,
        *,
        ttl: float | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> str:
        """Answer a Request that ``responder`` received."""
        env = request.envelope if isinstance(request, Delivered) else request
        if env.type is not MessageType.REQUEST or env.recipient != responder:
            raise SymbiError(E.COMM_001, "can only respond to a Request addressed to the responder", offending=env.id)
        return await self._submit(
            responder, MessageType.RESPONSE, payload, env.sender, None, env.id, ttl, block, timeout
        )

    async def _submit(
        self,
        sender: str,
        kind: MessageType,
        payload: bytes,
        recipient: str | None,
        topic: str | None,
        correlation_id: str | None,
        ttl: float | None,
        block: bool,
        timeout: float | None,
        msg_id: str | None = None,
    ) -> str:
        self._require_open()
        if type(payload) is not bytes:
            if not isinstance(payload, bytes | bytearray | memoryview):
                raise SymbiError(E.COMM_001, "payload must be bytes", offending=type(payload).__name__)
            payload = bytes(payload)
        ttl = self.default_ttl if ttl is None else self._check_ttl(ttl)
        now = self.clock.time()
        msg_id = msg_id or new_message_id()
        member = self._dir.members.get(sender)
        try:
            if member is None:
                raise Rejected(E.COMM_007, "sender is not a registered agent")
            if len(payload) > self.max_message_size:
                raise Rejected(
                    E.COMM_006, f"payload of {len(payload)} bytes is over max_message_size ({self.max_message_size})"
                )
            targets, aead = self._targets(sender, kind, recipient, topic, correlation_id)
        except Rejected as exc:
            meta = _meta(msg_id, kind, sender, recipient, topic, correlation_id, len(payload), now, ttl)
            self._count_rejection(sender)
            raise await self._ledger.reject(exc.code, exc.reason, meta, stage="send") from None
        # the common case (one recipient with room) without building metadata
        if not (len(targets) == 1 and type(targets[0]) is tuple and targets[0][1].try_reserve()):
            meta = _meta(msg_id, kind, sender, recipient, topic, correlation_id, len(payload), now, ttl)
            await self._reserve(targets, block, timeout, meta, "send")
        if self.audit is not None:
            meta = _meta(msg_id, kind, sender, recipient, topic, correlation_id, len(payload), now, ttl)
            try:
                await self.audit(sent_record(meta, len(targets), "send"))
            except BaseException:
                _release(targets)
                raise
        header = encode_header(kind, msg_id, sender, recipient, topic, correlation_id, now, ttl)
        nonce = os.urandom(NONCE_SIZE)
        ciphertext = aead.encrypt(nonce, payload, header)
        fields = (msg_id, sender, kind, recipient, topic, now, ttl, nonce, ciphertext, correlation_id)
        self._outbox.add(sender, member.identity.signing_key, (fields, leaf_of(header, nonce, ciphertext), targets))
        member.sent += 1
        self.sent += 1
        return msg_id

    def _check_ttl(self, ttl: float) -> float:
        if type(ttl) not in (int, float) or not 0 < ttl <= self.max_ttl:
            raise SymbiError(E.COMM_001, f"ttl must be more than 0 and at most {self.max_ttl:g} s", offending=ttl)
        return float(ttl)

    def _targets(
        self, sender: str, kind: MessageType, recipient: str | None, topic: str | None, correlation_id: str | None
    ) -> tuple[list[_Target], AESGCM]:
        """Where a message goes (queues, or the request waiting for this response) and its key."""
        route, aead = self._dir.route(sender, kind, recipient, topic)
        if kind is MessageType.RESPONSE:
            waiter = self._waiting.get(correlation_id or "")
            if (
                waiter is not None
                and waiter.requester == recipient
                and waiter.responder == sender
                and not waiter.future.done()
            ):
                return [waiter], aead
        return route, aead  # type: ignore[return-value]

    async def _reserve(
        self, targets: list[_Target], block: bool, timeout: float | None, meta: dict[str, Any], stage: str
    ) -> None:
        """Reserve one slot in each target queue: all of them, or none and ``COMM_008``/``COMM_007``."""
        taken: list[_Target] = []
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        for target in targets:
            if isinstance(target, _Waiter):
                taken.append(target)
                continue
            agent_id, mailbox = target
            try:
                if block:
                    remaining = None if deadline is None else max(0.0, deadline - self.clock.monotonic())
                    ok = await mailbox.reserve(remaining)
                else:
                    ok = mailbox.try_reserve()
            except MailboxClosed:
                _release(taken)
                self._count_rejection(meta["sender"])
                raise await self._ledger.reject(
                    E.COMM_007, f"recipient {agent_id!r} was unregistered", meta, stage=stage
                ) from None
            except BaseException:
                _release(taken)
                raise
            if not ok:
                _release(taken)
                waited = f" after waiting {timeout:g} s" if block else ""
                self._count_rejection(meta["sender"])
                raise await self._ledger.reject(
                    E.COMM_008,
                    f"queue of {agent_id!r} is full ({mailbox.capacity} messages){waited}",
                    meta,
                    stage=stage,
                    hint="retry later, or send with block=True",
                )
            taken.append(target)

    def _route_signed(self, env: Envelope, targets: list[_Target]) -> None:
        """Called by the outbox for each signed envelope, in order."""
        self._replay.add(env.id, env.timestamp + env.ttl)
        if len(targets) == 1 and type(targets[0]) is tuple and not targets[0][1].closed:
            targets[0][1].put_reserved(env)  # the common case
        else:
            self._route(env, targets)

    def _route(self, env: Envelope, targets: list[_Target]) -> None:
        for target in targets:
            if isinstance(target, _Waiter):
                if not target.future.done():
                    target.future.set_result(env)
                    continue
                member = self._dir.members.get(target.requester)
                if member is not None and member.mailbox.try_put(env):
                    continue  # the requester stopped waiting: the late response goes to its queue
                self._ledger.reject_soon(
                    E.COMM_008,
                    "late response: requester gone or its queue full",
                    _meta_for(env, target.requester),
                    stage="delivery",
                )
                continue
            agent_id, mailbox = target
            if mailbox.closed:
                self._ledger.reject_soon(
                    E.COMM_007, "recipient was unregistered before delivery", _meta_for(env, agent_id), stage="delivery"
                )
            else:
                mailbox.put_reserved(env)

    def flush(self) -> None:
        """Sign and route what waits in the outboxes now (otherwise done at the end of the loop turn)."""
        self._outbox.flush()

    # -- envelopes from outside ------------------------------------------------------------

    async def receive_envelope(
        self, data: bytes | str | Mapping[str, Any], *, block: bool = False, timeout: float | None = None
    ) -> str:
        """Accept a signed envelope submitted by an agent process (bytes, JSON text or a decoded JSON
        object): verify it, then route it. Returns its id.

        Refusals: ``COMM_001`` malformed, ``COMM_002`` bad signature or unknown
        sender, ``COMM_003`` tag, ``COMM_004`` replay, ``COMM_005`` expired,
        from the future or TTL over the maximum, ``COMM_006`` oversize,
        ``COMM_007`` unknown recipient or topic, ``COMM_008`` queue full.
        """
        self._require_open()
        if isinstance(data, Mapping):  # already-decoded JSON: its ciphertext text is most of it
            size = len(data.get("ciphertext") or "") if isinstance(data.get("ciphertext"), str) else 0
        else:
            size = len(data) if isinstance(data, bytes | bytearray | memoryview | str) else 0
        if size > self.max_wire_size:
            raise await self._ledger.reject(
                E.COMM_006,
                f"envelope of {size} bytes is over the wire limit ({self.max_wire_size})",
                {"size": size},
                stage="ingress",
            )
        try:
            env = parse(data)
        except ValueError as exc:
            raise await self._ledger.reject(E.COMM_001, f"malformed envelope: {exc}", {}, stage="ingress") from None
        meta = env.meta()
        try:
            targets = self._check_incoming(env)
        except Rejected as exc:
            self._count_rejection(env.sender)
            raise await self._ledger.reject(exc.code, exc.reason, meta, stage="ingress") from None
        self._replay.add(env.id, env.timestamp + env.ttl)  # before any await: a concurrent duplicate is a replay
        try:
            await self._reserve(targets, block, timeout, meta, "ingress")
            if self.audit is not None:
                try:
                    await self.audit(sent_record(meta, len(targets), "ingress"))
                except BaseException:
                    _release(targets)
                    raise
        except BaseException:
            self._replay.discard(env.id)  # not accepted, so not a replay if the sender tries again
            raise
        self._route(env, targets)
        self._dir.members[env.sender].sent += 1
        self.sent += 1
        return env.id

    def _check_incoming(self, env: Envelope) -> list[_Target]:
        """Every check on an envelope from outside, cheapest first; raises :class:`Rejected`."""
        if env.size > self.max_message_size:
            raise Rejected(
                E.COMM_006, f"payload of {env.size} bytes is over max_message_size ({self.max_message_size})"
            )
        now = self.clock.time()
        if env.ttl > self.max_ttl:
            raise Rejected(E.COMM_005, f"ttl {env.ttl:g} s is over the bus maximum ({self.max_ttl:g} s)")
        if env.timestamp > now + self.max_clock_skew:
            raise Rejected(E.COMM_005, f"timestamp is {env.timestamp - now:.1f} s in the future")
        if now > env.expires_at:
            raise Rejected(E.COMM_005, f"expired {now - env.expires_at:.1f} s ago (ttl {env.ttl:g} s)")
        member = self._dir.members.get(env.sender)
        if member is None:
            raise Rejected(E.COMM_002, "sender is not a registered agent: no identity to verify against")
        targets, aead = self._targets(env.sender, env.type, env.recipient, env.topic, env.correlation_id)
        header = header_of(env)
        if not self._verifier.verify(env, member.identity.public, header):
            raise Rejected(E.COMM_002, "bad signature: the envelope is not authentically from its sender")
        if self._replay.seen(env.id):
            raise Rejected(E.COMM_004, "replayed message id (already accepted within its TTL)")
        try:
            aead.decrypt(env.nonce, env.ciphertext, header)
        except InvalidTag:
            raise Rejected(E.COMM_003, "payload failed decryption (GCM tag mismatch)") from None
        return targets

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self, agent_id: str, timeout: float | None = None) -> Delivered | None:
        """The next verified message for ``agent_id``, waiting up to ``timeout`` s (None: forever).

        Returns None on timeout. A message that fails verification or expired
        in the queue is dead-lettered and skipped, never delivered.
        """
        member = self._dir.get(agent_id)
        mailbox = member.mailbox
        if self._outbox:
            self._outbox.flush()  # what was sent before this call can be received by it
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        while True:
            env = mailbox.get_nowait()
            if env is None:
                remaining = None if deadline is None else max(0.0, deadline - self.clock.monotonic())
                try:
                    env = await mailbox.get(remaining)
                except MailboxClosed:
                    raise SymbiError(E.COMM_007, "agent was unregistered", offending=agent_id) from None
                if env is None:
                    return None
            try:
                delivered = self._open(env, agent_id)
            except Rejected as exc:
                member.rejected += 1
                await self._ledger.reject(exc.code, exc.reason, _meta_for(env, agent_id), stage="delivery")
                continue
            if self.audit is not None:
                try:
                    await self.audit(delivered_record(env, agent_id))
                except BaseException:
                    mailbox.unget(env)  # fail closed: not delivered, still queued
                    raise
            member.received += 1
            self.delivered += 1
            return delivered

    def _open(self, env: Envelope, agent_id: str) -> Delivered:
        """Expiry, signature and tag checks, then decrypt for ``agent_id``; raises :class:`Rejected`."""
        if self.clock.time() > env.timestamp + env.ttl:
            raise Rejected(E.COMM_005, f"expired before delivery (ttl {env.ttl:g} s)")
        signer = self._dir.publics.get(env.sender)
        header = encode_header(
            env.type, env.id, env.sender, env.recipient, env.topic, env.correlation_id, env.timestamp, env.ttl
        )
        if signer is None or not self._verifier.verify(env, signer, header):
            raise Rejected(E.COMM_002, "bad signature: the envelope is not authentically from its sender")
        try:
            payload = self._dir.aead_for(env, agent_id).decrypt(env.nonce, env.ciphertext, header)
        except InvalidTag:
            raise Rejected(E.COMM_003, "payload failed decryption (GCM tag mismatch)") from None
        return Delivered(env, payload)

    # -- state ---------------------------------------------------------------------------------

    def dead_letters(
        self, agent_id: str | None = None, *, code: str | ErrorCode | None = None, limit: int | None = None
    ) -> list[DeadLetter]:
        """Refused or undeliverable messages, oldest first (metadata and reason only)."""
        code_value = code.value if isinstance(code, ErrorCode) else code
        return self._ledger.dead.query(agent_id=agent_id, code=code_value, limit=limit)

    def pending(self, agent_id: str) -> int:
        """Messages queued for ``agent_id``."""
        member = self._dir.get(agent_id)
        self._outbox.flush()
        return len(member.mailbox)

    def agent_counters(self, agent_id: str) -> AgentCounters:
        m = self._dir.get(agent_id)
        return AgentCounters(m.sent, m.received, m.rejected, len(m.mailbox), tuple(sorted(m.topics)))

    def stats(self) -> BusStats:
        members = self._dir.members.values()
        return BusStats(
            agents=len(members),
            topics=len(self.topics()),
            queued=sum(len(m.mailbox) for m in members),
            sent=self.sent,
            delivered=self.delivered,
            rejected=self._ledger.rejected,
            dead_letters=len(self._ledger.dead),
            dead_letters_evicted=self._ledger.dead.evicted,
            batches_signed=self._outbox.batches_signed,
            messages_signed=self._outbox.messages_signed,
            signature_checks=self._verifier.signature_checks,
            signature_memo_hits=self._verifier.memo_hits,
            replay_ids=len(self._replay),
        )

    async def close(self) -> None:
        """Stop: outboxes are routed, waiting requests fail, and what is still queued is dead-lettered."""
        if self._closed:
            return
        self._outbox.flush()
        self._closed = True
        for waiter in self._waiting.values():
            if not waiter.future.done():
                waiter.future.set_exception(SymbiError(E.RUNTIME_001, "the message bus closed"))
        for agent_id, member in self._dir.members.items():
            for env in member.mailbox.close():
                await self._ledger.reject(
                    E.COMM_001,
                    "the bus closed with the message undelivered",
                    _meta_for(env, agent_id),
                    stage="delivery",
                )
        await self._ledger.drain()

    def _count_rejection(self, sender: str | None) -> None:
        member: Member | None = self._dir.members.get(sender or "")
        if member is not None:
            member.rejected += 1

    def _require_open(self) -> None:
        if self._closed:
            raise SymbiError(E.RUNTIME_001, "the message bus is closed")


def _addressed_type(value: MessageType | str, correlation_id: str | None) -> MessageType:
    try:
        kind = MessageType.parse(value)
    except ValueError:
        raise SymbiError(E.COMM_001, "unknown message type", offending=value) from None
    if kind not in ADDRESSED:
        raise SymbiError(
            E.COMM_001,
            f"send() takes Direct, Request or Response, not {kind.value}",
            offending=value,
            hint="use publish() or broadcast()",
        )
    if (kind is MessageType.RESPONSE) != (correlation_id is not None):
        raise SymbiError(
            E.COMM_001, "a Response (and only a Response) needs a correlation_id", offending=correlation_id
        )
    return kind


def _release(targets: list[_Target]) -> None:
    for target in targets:
        if not isinstance(target, _Waiter):
            target[1].release()


def _meta(
    msg_id: str,
    kind: MessageType,
    sender: str,
    recipient: str | None,
    topic: str | None,
    correlation_id: str | None,
    size: int,
    timestamp: float | None,
    ttl: float | None,
) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": kind._value_,
        "sender": sender,
        "recipient": recipient,
        "topic": topic,
        "correlation_id": correlation_id,
        "size": size,
        "timestamp": timestamp,
        "ttl": ttl,
    }


def _meta_for(env: Envelope, agent_id: str) -> dict[str, Any]:
    meta = env.meta()
    if meta["recipient"] is None:
        meta["recipient"] = agent_id
    return meta
