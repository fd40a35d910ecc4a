"""Access policies: the seed's ``access_policies.yaml``, evaluated as its text says.

Every access the runtime mediates (resource allocation, sandbox file and
network grants, bus sends, secret reads, tool calls) is one *request*
decided by one :class:`PolicyEngine`.

Semantics
---------
* **Matching.** A policy matches a request when every entry of its
  ``conditions`` holds (an entry whose value is a list holds if any value
  matches), the request's ``operation`` is in ``operations`` (absent = any)
  and its ``resource_path`` matches one of ``resources`` (absent = any).
  ``resource_type`` conditions select the resource types a policy applies to
  (absent = all types). Disabled policies (``enabled: false``) never match.
* **Order.** Higher ``priority`` first (integers, default 0). At equal
  priority the stronger effect wins: **Deny > RequireApproval > Audit >
  Allow**; remaining ties go to the policy that comes first in the file.
  The first policy in this order that matches decides; nothing else is
  combined with it.
* **Effects.** ``Allow`` lets the action go ahead. ``Deny`` refuses it.
  ``RequireApproval`` (the seed's ``Escalate`` is accepted as a spelling)
  refuses it until a human approves; the caller routes it to the review
  queue. ``Audit`` lets it go ahead *and flags it*: the caller records the
  decision in the audit trail with the flag, for later review.
  ``Decision.allowed`` is True for Allow and Audit.
* **No match.** The configured default effect decides (``policy.default_effect``,
  Deny unless set); the decision says ``default: true`` and ``policy: null``.
* **Globs.** ``*`` one path segment, ``**`` any number of segments
  (``/tmp/**`` matches ``/tmp`` and everything under it), ``?`` one
  character, ``[a-z]`` a class. File paths are normalised before matching
  (``/tmp/../etc/passwd`` is ``/etc/passwd``).
* **Network / API resources** are ``[scheme://]host[:port][/path]`` patterns:
  host globs (``*.example.com``), IPs and CIDRs (``10.0.0.0/8``), ports and
  port ranges; ``127.0.0.1/**`` is any port and path on 127.0.0.1. IPs in
  requests are canonicalised (``127.1`` and ``::ffff:127.0.0.1`` are
  127.0.0.1).
* **Caching.** Decisions are cached (LRU, ``policy.cache_ttl``); a reload
  empties the cache; a decision that depended on a time window expires at
  the next minute boundary at the latest.
* **Reload.** A changed file is re-read and, if valid, replaces the policy in
  force; if invalid, the last good policy stays in force and the failure is
  reported (``POLICY_003`` with file:line:column). Each reload reports the
  file's SHA-256.

Public API
----------
:class:`PolicyEngine` (``evaluate``, ``enforce``, ``trace``, ``reload``,
``poll``, ``watch``), :class:`Decision`, :class:`AccessRequest`,
:func:`request_for_agent`, :class:`ReloadEvent`, :func:`validate` and
:class:`Diagnostic`, :func:`parse_document` / :func:`load_document`,
:func:`diff`, :func:`save_atomic`, :func:`load_cases` / :func:`run_cases`,
:func:`iter_recorded_decisions` / :func:`replay`.

Error codes: ``POLICY_001`` denied (from ``enforce``), ``POLICY_002`` invalid
policy file, ``POLICY_003`` reload failed (last good policy kept),
``POLICY_004`` bad request or test case. Warning codes are listed in
:mod:`engine.policy.report`.
"""

from engine.policy.cases import Case, CaseResult, format_results, load_cases, run_cases
from engine.policy.diff import PolicyDiff, diff
from engine.policy.document import Policy, PolicyDocument
from engine.policy.engine import PolicyEngine
from engine.policy.files import SaveResult, restore_previous, save_atomic
from engine.policy.model import (
    EFFECTS,
    OPERATIONS,
    RESOURCE_TYPES,
    AccessRequest,
    Decision,
    Diagnostic,
    ReloadEvent,
    request_for_agent,
)
from engine.policy.parser import load_document, parse_document, validate
from engine.policy.replay import RecordedDecision, ReplayReport, iter_recorded_decisions, replay

__all__ = [
    "EFFECTS",
    "OPERATIONS",
    "RESOURCE_TYPES",
    "AccessRequest",
    "Case",
    "CaseResult",
    "Decision",
    "Diagnostic",
    "Policy",
    "PolicyDiff",
    "PolicyDocument",
    "PolicyEngine",
    "RecordedDecision",
    "ReloadEvent",
    "ReplayReport",
    "SaveResult",
    "diff",
    "format_results",
    "iter_recorded_decisions",
    "load_cases",
    "load_document",
    "parse_document",
    "replay",
    "request_for_agent",
    "restore_previous",
    "run_cases",
    "save_atomic",
    "validate",
]
