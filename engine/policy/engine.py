"""The policy engine: evaluation, decision cache, hot reload.

:class:`PolicyEngine` holds one compiled :class:`PolicyDocument` (the *good*
policy in force), an index over it and an LRU cache of decisions with a TTL.
:meth:`PolicyEngine.evaluate` is thread-safe for readers; reloads swap the
document, index and cache in one assignment, so a decision is never computed
from one policy and cached under another.

Reloads (:meth:`reload`, :meth:`poll`, ``await watch()``) read the file,
hash it, and either put the new policy in force or keep the last good one
and report ``POLICY_003``. Each produces a :class:`ReloadEvent` passed to
``on_reload`` *before* the new policy takes effect: if the callback raises
(say the audit append failed) the reload is abandoned and the exception
propagates, so an unaudited policy is never in force (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from engine.clock import Clock, SystemClock
from engine.errors import ErrorCode, SymbiError
from engine.policy.document import PolicyDocument
from engine.policy.files import file_signature, read_policy_bytes, sha256_hex
from engine.policy.index import Bucket, build_index
from engine.policy.model import EFFECTS, AccessRequest, Decision, ReloadEvent, canonical_effect
from engine.policy.parser import load_document, parse_document
from engine.policy.request import Req, normalize

log = logging.getLogger(__name__)

ReloadCallback = Callable[[ReloadEvent], None]
_EMPTY = PolicyDocument(version="1.0", policies=())


@dataclass(frozen=True, slots=True)
class _State:
    document: PolicyDocument
    index: dict[tuple[str, str], Bucket]
    cache: OrderedDict[Any, tuple[Decision, float]]
    generation: int


def _typed_key(value: Any) -> Any:
    """A hashable, type-exact form of a request (1 and True differ), or raise TypeError.

    Dict order counts: the same request built in another key order is a miss, never a wrong hit.
    """
    t = type(value)
    if t is str or value is None:
        return value
    if t is int or t is float or t is bool:
        return (t, value)
    if t is list or t is tuple:
        return ("[", *map(_typed_key, value))
    if t is dict:
        return ("{", *[(k, _typed_key(v)) for k, v in value.items()])
    raise TypeError(f"uncacheable {t.__name__}")


class PolicyEngine:
    """Decides access requests against one policy file.

    ``default_effect`` applies when no policy matches (Deny unless set).
    ``cache_ttl`` seconds (0 disables caching), ``cache_size`` entries.
    """

    def __init__(
        self,
        document: PolicyDocument | None = None,
        *,
        default_effect: str = "Deny",
        clock: Clock | None = None,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        enable_cache: bool = True,
        path: str | os.PathLike[str] | None = None,
        on_reload: ReloadCallback | None = None,
    ) -> None:
        effect = canonical_effect(default_effect) if isinstance(default_effect, str) else None
        if effect is None:
            raise SymbiError(
                ErrorCode.POLICY_002,
                "invalid default effect",
                offending=default_effect,
                hint=f"use one of {', '.join(EFFECTS)}",
            )
        self.default_effect = effect
        self._clock: Clock = clock or SystemClock()
        self._mono = self._clock.monotonic
        self._cache_size = max(1, int(cache_size))
        self._lru_from = self._cache_size // 2
        self._ttl = float(cache_ttl) if enable_cache else 0.0
        self._caching = self._ttl > 0
        self.path = None if path is None else str(path)
        self.on_reload = on_reload
        self.hits = 0
        self.misses = 0
        self.reloads = 0
        self._signature: tuple[int, int, int] | None = None
        self._seen_sha: str | None = document.sha256 if document else None
        self._missing_reported = False
        doc = document or _EMPTY
        self._state = _State(doc, build_index(list(doc.policies)), OrderedDict(), 0)

    # -- construction --------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str | bytes, *, source: str = "<text>", **kwargs: Any) -> PolicyEngine:
        """An engine over ``text``; POLICY_002 (with line:column) if it is invalid."""
        return cls(load_document(text, source), **kwargs)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        default_effect: str = "Deny",
        clock: Clock | None = None,
        on_reload: ReloadCallback | None = None,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        enable_cache: bool = True,
        missing_ok: bool = False,
    ) -> PolicyEngine:
        """Load ``path``; the initial load is reported through ``on_reload`` (reason ``initial``).

        An invalid file raises POLICY_002 (there is no last good policy to keep);
        a missing one too, unless ``missing_ok`` (then no policies: the default decides,
        and the file is picked up when it appears).
        """
        engine = cls(
            None,
            default_effect=default_effect,
            clock=clock,
            cache_size=cache_size,
            cache_ttl=cache_ttl,
            enable_cache=enable_cache,
            path=path,
            on_reload=on_reload,
        )
        signature = file_signature(path)
        if signature is None and missing_ok and not Path(path).exists():
            engine._missing_reported = True
            engine._emit(ReloadEvent(True, str(path), None, None, 0, 0, "initial-missing", engine._clock.time()))
            return engine
        data = read_policy_bytes(path)
        document = load_document(data, str(path))
        engine._signature = signature
        engine._install(data, document, "initial")
        return engine

    @classmethod
    def from_config(
        cls,
        config: Any,
        data_dir: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        on_reload: ReloadCallback | None = None,
        missing_ok: bool = True,
    ) -> PolicyEngine:
        """From a ``RuntimeConfig`` (its ``policy`` section) and the data dir."""
        section = getattr(config, "policy", config)
        file = Path(str(section.file)).expanduser()
        path = file if file.is_absolute() else Path(data_dir).expanduser() / file
        return cls.from_file(
            path,
            default_effect=section.default_effect,
            clock=clock,
            on_reload=on_reload,
            cache_ttl=section.cache_ttl,
            enable_cache=section.enable_caching,
            cache_size=getattr(section, "cache_size", 10_000),
            missing_ok=missing_ok,
        )

    # -- state ------------------------------------------------------------------------

    @property
    def document(self) -> PolicyDocument:
        """The policy in force (the last good one)."""
        return self._state.document

    @property
    def sha256(self) -> str | None:
        return self._state.document.sha256 or None

    @property
    def generation(self) -> int:
        """Bumped by every successful reload."""
        return self._state.generation

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "policies": len(self._state.document.policies),
            "generation": self._state.generation,
            "sha256": self.sha256,
            "cache_entries": len(self._state.cache),
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cache_hit_rate": (self.hits / total) if total else None,
            "reloads": self.reloads,
        }

    def clear_cache(self) -> None:
        self._state.cache.clear()

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, request: Mapping[str, Any] | AccessRequest, *, at: float | None = None) -> Decision:
        """Decide ``request`` (a flat dict or :class:`AccessRequest`); POLICY_004 if it is malformed.

        ``at`` evaluates time windows at that epoch time instead of now (and
        bypasses the cache); replay uses it.
        """
        st = self._state
        if self._caching and at is None:
            key: Any = None
            entry = None
            if type(request) is dict:
                try:
                    key = tuple(request.items())
                    entry = st.cache.get(key)
                except TypeError:  # an unhashable value (metadata, capabilities): typed key below
                    key = None
                if entry is not None and entry[1] > self._mono():
                    self.hits += 1
                    if len(st.cache) > self._lru_from:  # recency matters only once eviction is near
                        try:
                            st.cache.move_to_end(key)
                        except KeyError:  # evicted by another thread meanwhile: still a valid decision
                            pass
                    return entry[0]
                if key is not None and not _all_str(request):
                    key = None  # 1 == True: only all-string requests may use the plain key
            elif type(request) is AccessRequest:
                request = request.to_dict()
            if key is None:
                key = _safe_typed_key(request)
                entry = st.cache.get(key) if key is not None else None
                if entry is not None and entry[1] > self._mono():
                    self.hits += 1
                    if len(st.cache) > self._lru_from:  # recency matters only once eviction is near
                        try:
                            st.cache.move_to_end(key)
                        except KeyError:  # evicted by another thread meanwhile: still a valid decision
                            pass
                    return entry[0]
            return self._miss(st, request, key)
        r = normalize(request, self._clock)
        r.at = at
        return self._decide(st, r)

    def _miss(self, st: _State, request: Any, key: Any) -> Decision:
        self.misses += 1
        r = normalize(request, self._clock)
        decision = self._decide(st, r)
        if key is not None:
            now = self._mono()
            expires = now + self._ttl
            if r.time_used:  # time windows are minute-grained: expire at the next minute boundary
                expires = min(expires, now + 60.0 - (self._clock.time() % 60.0))
            cache = st.cache
            cache[key] = (decision.as_cached(), expires)
            if len(cache) > self._cache_size:
                try:
                    cache.popitem(last=False)
                except KeyError:  # emptied concurrently
                    pass
        return decision

    def is_allowed(self, request: Mapping[str, Any] | AccessRequest) -> bool:
        return self.evaluate(request).allowed

    def enforce(self, request: Mapping[str, Any] | AccessRequest) -> Decision:
        """The decision if it lets the action go ahead (Allow/Audit); else POLICY_001.

        A RequireApproval raises too (``details["requires_approval"]`` is
        True): callers that route to a human check :meth:`evaluate` instead.
        """
        decision = self.evaluate(request)
        if decision.allowed:
            return decision
        req = request.to_dict() if isinstance(request, AccessRequest) else dict(request)
        raise SymbiError(
            ErrorCode.POLICY_001,
            f"{decision.decision}: {decision.reason}",
            offending=f"{req.get('operation')} {req.get('resource_type')} {req.get('resource_path')}",
            hint="see `symbiont policy eval` for the explanation" if decision.policy else "no policy allows this",
            details={"decision": decision.to_dict(), "requires_approval": decision.needs_approval},
        )

    def _decide(self, st: _State, r: Req) -> Decision:
        bucket = st.index.get((r.rtype, r.op))
        if bucket is not None:
            for _, policy in bucket.candidates(r):
                if policy.matches(r):
                    return Decision(
                        policy.effect,
                        policy.name,
                        policy.decision_reason,
                        None,
                        False,
                        policy.priority,
                        explain=partial(policy.explain, r),
                    )
        return Decision(
            self.default_effect,
            None,
            f"no policy matched {r.op} on {r.rtype} '{r.path}'; default effect {self.default_effect}",
            (),
            False,
            None,
            True,
        )

    def trace(self, request: Mapping[str, Any] | AccessRequest, *, at: float | None = None) -> list[dict[str, Any]]:
        """Every policy in evaluation order and whether it matched, and why not (for the editor)."""
        r = normalize(request, self._clock)
        r.at = at
        out = []
        for policy in self._state.document.ordered:
            why = policy.first_failure(r)
            out.append(
                {
                    "policy": policy.name,
                    "priority": policy.priority,
                    "effect": policy.effect,
                    "line": policy.line,
                    "matched": why is None,
                    "why": list(policy.explain(r)) if why is None else [why],
                }
            )
        return out

    # -- reload ---------------------------------------------------------------------------

    def _emit(self, event: ReloadEvent) -> None:
        if self.on_reload is not None:
            self.on_reload(event)

    def _install(self, data: bytes, document: PolicyDocument, reason: str) -> ReloadEvent:
        old = self._state
        new = _State(document, build_index(list(document.policies)), OrderedDict(), old.generation + 1)
        event = ReloadEvent(
            True,
            self.path or document.source,
            document.sha256 or sha256_hex(data),
            old.document.sha256 or None,
            len(document.policies),
            new.generation,
            reason,
            self._clock.time(),
            None,
            tuple(document.warnings),
        )
        self._emit(event)  # raises -> not installed (fail closed)
        self._state = new
        self._seen_sha = event.sha256
        self._missing_reported = False
        self.reloads += 1
        return event

    def _reject(self, sha: str | None, error: SymbiError, diagnostics: tuple[Any, ...], reason: str) -> ReloadEvent:
        st = self._state
        event = ReloadEvent(
            False,
            self.path or "",
            sha,
            st.document.sha256 or None,
            len(st.document.policies),
            st.generation,
            reason,
            self._clock.time(),
            error,
            diagnostics,
        )
        self._seen_sha = sha
        self._emit(event)
        return event

    def _failed(self, data: bytes, diagnostics: list[Any], reason: str) -> ReloadEvent:
        first = next(d for d in diagnostics if d.is_error)
        kept = self._state.document.sha256[:12] if self._state.document.sha256 else "no policies"
        error = SymbiError(
            ErrorCode.POLICY_003,
            f"policy reload failed at {self.path}:{first.line}:{first.column}: {first.message}; "
            f"keeping the last good policy ({kept})",
            offending=self.path,
            hint=f"run `symbiont policy check {self.path}`",
            details={"line": first.line, "column": first.column, "diagnostics": [d.to_dict() for d in diagnostics]},
        )
        return self._reject(sha256_hex(data), error, tuple(diagnostics), reason)

    def _apply(self, data: bytes, document: PolicyDocument | None, diagnostics: list[Any], reason: str) -> ReloadEvent:
        if document is None:
            return self._failed(data, diagnostics, reason)
        return self._install(data, document, reason)

    def _read_for_reload(self, reason: str) -> bytes | ReloadEvent:
        if self.path is None:
            raise SymbiError(ErrorCode.POLICY_003, "this engine was not loaded from a file; nothing to reload")
        try:
            return read_policy_bytes(self.path)
        except SymbiError as exc:
            missing = "not found" in exc.message
            self._missing_reported = missing
            error = SymbiError(
                ErrorCode.POLICY_003,
                f"policy reload failed: {exc.message}; keeping the last good policy",
                offending=self.path,
                hint=exc.hint,
            )
            return self._reject(None, error, (), "missing" if missing else reason)

    def reload(self, *, reason: str = "explicit") -> ReloadEvent:
        """Re-read the file now; the new policy, or the last good one and a POLICY_003 event."""
        self._signature = file_signature(self.path) if self.path else None
        data = self._read_for_reload(reason)
        if isinstance(data, ReloadEvent):
            return data
        document, diagnostics = parse_document(data, self.path or "<text>", analyze=False)
        return self._apply(data, document, diagnostics, reason)

    def _changed(self) -> bytes | ReloadEvent | None:
        """Bytes to reload if the file changed since last seen; an event if it cannot be read."""
        assert self.path is not None
        signature = file_signature(self.path)
        if signature == self._signature:
            return None
        self._signature = signature
        if signature is None and self._missing_reported:
            return None
        data = self._read_for_reload("changed" if signature is not None else "missing")
        if isinstance(data, ReloadEvent) or sha256_hex(data) != self._seen_sha:
            return data
        return None

    def poll(self) -> ReloadEvent | None:
        """Reload if the file changed (mtime, size, inode, then SHA-256); None if nothing to do."""
        changed = self._changed()
        if changed is None or isinstance(changed, ReloadEvent):
            return changed
        document, diagnostics = parse_document(changed, self.path or "<text>", analyze=False)
        return self._apply(changed, document, diagnostics, "changed")

    async def watch(self, interval: float = 1.0) -> None:
        """Poll every ``interval`` seconds until cancelled; parsing runs off the event loop."""
        if self.path is None:
            raise SymbiError(ErrorCode.POLICY_003, "this engine was not loaded from a file; nothing to watch")
        while True:
            await self._clock.sleep(interval)
            try:
                changed = self._changed()
                if changed is None or isinstance(changed, ReloadEvent):
                    continue
                document, diagnostics = await asyncio.to_thread(parse_document, changed, self.path, analyze=False)
                self._apply(changed, document, diagnostics, "changed")
            except asyncio.CancelledError:
                raise
            except Exception:  # on_reload failed (reload abandoned) or an unexpected error: retry next poll
                self._signature = None
                self._seen_sha = None
                log.exception("policy watch: reload of %s failed", self.path)


def _all_str(request: Mapping[str, Any]) -> bool:
    for v in request.values():
        if v is not None and type(v) is not str:
            return False
    return True


def _safe_typed_key(request: Any) -> Any:
    try:
        return _typed_key(request)
    except (TypeError, RecursionError):
        return None
