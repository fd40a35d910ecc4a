"""Policy evaluation: semantics, every condition kind, globs, endpoints, time windows, the seed's example."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.errors import ErrorCode, SymbiError
from engine.policy import AccessRequest, PolicyEngine, load_document, request_for_agent

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "policies" / "access_policies.yaml"


def engine(text: str, **kw) -> PolicyEngine:
    return PolicyEngine.from_text(text, **kw)


def req(rtype: str = "File", path: str = "/tmp/x", op: str = "Read", **extra) -> dict:
    return {"agent_id": "a1", "resource_type": rtype, "resource_path": path, "operation": op, **extra}


def policies(*blocks: str) -> str:
    return 'version: "1.0"\npolicies:\n' + "".join(blocks)


def pol(name: str, effect: str, priority: int = 0, extra: str = "") -> str:
    return f"  - name: {name}\n    effect: {effect}\n    priority: {priority}\n{extra}"


# --- semantics ------------------------------------------------------------------


def test_higher_priority_decides():
    e = engine(policies(pol("low", "Allow", 1), pol("high", "Deny", 2)))
    d = e.evaluate(req())
    assert (d.decision, d.policy, d.priority) == ("Deny", "high", 2)
    e = engine(policies(pol("low", "Deny", 1), pol("high", "Allow", 2)))
    assert e.evaluate(req()).decision == "Allow"


@pytest.mark.parametrize(
    "effects, winner",
    [
        (("Allow", "Deny"), "Deny"),
        (("Deny", "Allow"), "Deny"),
        (("Allow", "RequireApproval"), "RequireApproval"),
        (("RequireApproval", "Deny"), "Deny"),
        (("Allow", "Audit"), "Audit"),
        (("Audit", "RequireApproval"), "RequireApproval"),
    ],
)
def test_equal_priority_stronger_effect_wins(effects, winner):
    e = engine(policies(*(pol(f"p{i}", eff, 5) for i, eff in enumerate(effects))))
    assert e.evaluate(req()).decision == winner


def test_equal_priority_same_effect_first_in_file_wins():
    e = engine(policies(pol("first", "Allow", 5), pol("second", "Allow", 5)))
    assert e.evaluate(req()).policy == "first"


def test_no_match_uses_default_deny_unless_set():
    text = policies(pol("tools", "Allow", 0, "    conditions: [{resource_type: Tool}]\n"))
    d = engine(text).evaluate(req())
    assert (d.decision, d.policy, d.default) == ("Deny", None, True)
    assert "default effect Deny" in d.reason
    d = engine(text, default_effect="Allow").evaluate(req())
    assert (d.decision, d.default) == ("Allow", True)


def test_audit_is_allowed_and_flagged_require_approval_is_not_allowed():
    audit = engine(policies(pol("a", "Audit"))).evaluate(req())
    assert audit.allowed and audit.flagged and not audit.needs_approval
    approval = engine(policies(pol("r", "RequireApproval"))).evaluate(req())
    assert not approval.allowed and approval.needs_approval


def test_seed_escalate_spelling_means_require_approval():
    assert engine(policies(pol("e", "Escalate"))).evaluate(req()).decision == "RequireApproval"


def test_disabled_policy_never_matches():
    e = engine(policies(pol("off", "Allow", 0, "    enabled: false\n")))
    assert e.evaluate(req()).default


def test_enforce_raises_policy_001_on_deny_and_approval():
    e = engine(policies(pol("deny", "Deny", 1, "    resources: ['/etc/**']\n"), pol("ok", "Allow")))
    assert e.enforce(req(path="/tmp/a")).decision == "Allow"
    with pytest.raises(SymbiError) as err:
        e.enforce(req(path="/etc/passwd"))
    assert err.value.code is ErrorCode.POLICY_001
    assert err.value.details["decision"]["policy"] == "deny"
    with pytest.raises(SymbiError) as err:
        engine(policies(pol("r", "RequireApproval"))).enforce(req())
    assert err.value.details["requires_approval"] is True


def test_decision_explains_what_matched_and_uses_reason_text():
    text = policies(
        pol(
            "files",
            "Allow",
            3,
            "    reason: standard agents may use scratch space\n"
            "    conditions: [{resource_type: File}, {agent_security_level: standard}]\n"
            "    resources: ['/tmp/**']\n    operations: [Read]\n",
        )
    )
    d = engine(text).evaluate(req(agent_security_level="Standard"))
    assert d.reason == "standard agents may use scratch space"
    assert d.matched_conditions == (
        "resource_type is File",
        "operation Read in [Read]",
        "resource_path '/tmp/x' matches '/tmp/**'",
        "agent_security_level 'standard' in [standard]",
    )
    assert d.to_dict()["matched_conditions"][0] == "resource_type is File"


def test_operations_and_types_accept_other_spellings():
    text = policies(pol("p", "Allow", 0, "    conditions: [{resource_type: resource_allocation}]\n"
                                         "    operations: [allocate]\n"))
    e = engine(text)
    assert e.evaluate(req(rtype="ResourceAllocation", path="pool/native", op="Allocate")).decision == "Allow"
    assert e.evaluate(req(rtype="allocation", path="pool/native", op="ALLOCATE")).decision == "Allow"


# --- request validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "request_, field",
    [
        ({"resource_path": "/x", "operation": "Read"}, "resource_type"),
        (req(rtype="Fiel"), "resource_type"),
        (req(op="Fly"), "operation"),
        ({"resource_type": "File", "operation": "Read"}, "resource_path"),
        (req(path=7), "resource_path"),
        (req(capabilities="x") | {"capabilities": [1]}, "capabilities"),
        (req(metadata=[1, 2]), "metadata"),
        (req(tier="Tier9"), "tier"),
        (req(tier=True), "tier"),
        (req(agent_security_level=3), "agent_security_level"),
        (req(rtype="Network", path="host:99999"), "resource_path"),
        (req(rtype="Secret", path="a/../b"), "resource_path"),
        ("not an object", "request"),
    ],
)
def test_bad_requests_are_policy_004_naming_the_field(request_, field):
    e = engine(policies(pol("p", "Allow")))
    with pytest.raises(SymbiError) as err:
        e.evaluate(request_)
    assert err.value.code is ErrorCode.POLICY_004
    assert err.value.details["field"] == field


def test_typo_in_resource_type_gets_a_suggestion():
    with pytest.raises(SymbiError, match="did you mean 'Network'"):
        engine(policies(pol("p", "Allow"))).evaluate(req(rtype="Netwrok"))


# --- conditions -------------------------------------------------------------------------


def test_agent_id_and_name_globs():
    text = policies(
        pol("ids", "Allow", 2, "    conditions: [{agent_id: 'worker-*'}]\n"),
        pol("names", "Audit", 1, "    conditions: [{agent_name: [reporter, 'etl-?']}]\n"),
    )
    e = engine(text)
    assert e.evaluate(req(agent_id="worker-17")).policy == "ids"
    assert e.evaluate(req(agent_id="x", agent_name="etl-3")).policy == "names"
    assert e.evaluate(req(agent_id="x", agent_name="etl-33")).default
    assert e.evaluate(req(agent_id="x")).default  # no name: a name condition cannot hold


def test_capability_tier_and_tool_name():
    text = policies(
        pol(
            "tools",
            "Allow",
            0,
            "    conditions:\n      - resource_type: Tool\n      - tool_name: 'github.*'\n"
            "      - capability: 'tools.*'\n      - tier: '>=Tier2'\n",
        )
    )
    e = engine(text)
    good = req(rtype="Tool", path="github.create_issue", op="Call", tool_name="github.create_issue",
               capabilities=["fs.read", "tools.github"], tier="Tier2")
    d = e.evaluate(good)
    assert d.decision == "Allow"
    assert "capability 'tools.github' matches 'tools.*'" in d.matched_conditions
    assert "tier Tier2 in [Tier2, Tier3]" in d.matched_conditions
    assert e.evaluate(good | {"tier": "Tier1"}).default
    assert e.evaluate(good | {"tier": 3}).decision == "Allow"
    assert e.evaluate(good | {"capabilities": ["fs.read"]}).default
    assert e.evaluate(good | {"tool_name": "gitlab.create_issue"}).default


def test_tier_values_and_native():
    e = engine(policies(pol("sandboxed", "Allow", 0, "    conditions: [{tier: [Tier1, Tier2, Tier3]}]\n")))
    assert e.evaluate(req(tier="Native")).default
    assert e.evaluate(req(tier="tier1")).decision == "Allow"
    assert e.evaluate(req()).default


def test_metadata_globs_numbers_and_comparisons():
    text = policies(
        pol(
            "big",
            "RequireApproval",
            0,
            "    conditions:\n      - resource_type: ResourceAllocation\n"
            "      - metadata: {memory_mb: '>4096', pool: 'gpu-*', owner.team: [ml, research], dry_run: false}\n",
        )
    )
    e = engine(text)
    base = req(rtype="ResourceAllocation", path="pool", op="Allocate")
    meta = {"memory_mb": 8192, "pool": "gpu-a100", "owner": {"team": "ml"}, "dry_run": False}
    assert e.evaluate(base | {"metadata": meta}).decision == "RequireApproval"
    assert e.evaluate(base | {"metadata": meta | {"memory_mb": "8192"}}).decision == "RequireApproval"
    assert e.evaluate(base | {"metadata": meta | {"memory_mb": 1024}}).default
    assert e.evaluate(base | {"metadata": meta | {"pool": "cpu"}}).default
    assert e.evaluate(base | {"metadata": meta | {"owner": {"team": "ops"}}}).default
    assert e.evaluate(base | {"metadata": meta | {"dry_run": 0}}).default  # false is not 0
    assert e.evaluate(base).default


def test_attributes_match_top_level_request_keys():
    e = engine(policies(pol("p", "Deny", 0, "    conditions: [{attributes: {sandbox: docker, retries: null}}]\n")))
    assert e.evaluate(req(sandbox="docker")).policy == "p"
    assert e.evaluate(req(sandbox="docker", retries=2)).default
    assert e.evaluate(req(sandbox="gvisor")).default


def test_conditions_in_separate_entries_must_all_hold():
    text = policies(pol("p", "Allow", 0, "    conditions:\n      - agent_name: a\n      - agent_security_level: high\n"))
    e = engine(text)
    assert e.evaluate(req(agent_name="a", agent_security_level="high")).decision == "Allow"
    assert e.evaluate(req(agent_name="a", agent_security_level="low")).default


# --- globs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, path, hit",
    [
        ("/data/*", "/data/a.txt", True),
        ("/data/*", "/data/sub/a.txt", False),
        ("/data/**", "/data/sub/deep/a.txt", True),
        ("/data/**", "/data", True),
        ("/data/**", "/database", False),
        ("/data/**/*.csv", "/data/x/y/z.csv", True),
        ("/data/**/*.csv", "/data/z.csv", True),
        ("/data/**/*.csv", "/data/z.json", False),
        ("/logs/day-?.log", "/logs/day-1.log", True),
        ("/logs/day-?.log", "/logs/day-10.log", False),
        ("/logs/day-?.log", "/logs/day-/.log", False),
        ("/v[0-9]/*", "/v2/x", True),
        ("/v[!0-9]/*", "/v2/x", False),
        ("**/.env", "/srv/app/.env", True),
        ("/a\\*b", "/a*b", True),
        ("/a\\*b", "/axb", False),
    ],
)
def test_path_globs(pattern, path, hit):
    e = engine(policies(pol("p", "Allow", 0, f"    resources: ['{pattern}']\n")))
    assert (e.evaluate(req(path=path)).decision == "Allow") is hit


def test_file_paths_are_normalised_before_matching():
    e = engine(policies(pol("tmp", "Allow", 0, "    conditions: [{resource_type: File}]\n    resources: ['/tmp/**']\n")))
    assert e.evaluate(req(path="/tmp/../etc/passwd")).default
    assert e.evaluate(req(path="//tmp//x/./y")).decision == "Allow"


# --- network -------------------------------------------------------------------------------------


NET = policies(
    pol("cidr", "Deny", 50, "    conditions: [{resource_type: Network}]\n    resources: ['10.0.0.0/8', '[fd00::/8]']\n"),
    pol("db", "Allow", 40, "    conditions: [{resource_type: Network}]\n    resources: ['db.internal:5432']\n"),
    pol("web", "Allow", 30, "    conditions: [{resource_type: Network}]\n"
                            "    resources: ['https://*.example.com/v1/**', '*.cdn.net:8000-8999']\n"),
    pol("any-sub", "Audit", 20, "    conditions: [{resource_type: [Network, API]}]\n    resources: ['**.corp']\n"),
)


@pytest.mark.parametrize(
    "path, policy",
    [
        ("10.1.2.3:443", "cidr"),
        ("http://10.255.0.1/x", "cidr"),
        ("[fd12::1]:80", "cidr"),
        ("fd12::1", "cidr"),
        ("11.0.0.1:443", None),
        ("db.internal:5432", "db"),
        ("DB.Internal.:5432", "db"),
        ("db.internal:5433", None),
        ("db.internal", None),  # no port given: a port-specific rule cannot match
        ("https://api.example.com/v1/users/7", "web"),
        ("https://api.example.com/v2/users", None),
        ("http://api.example.com/v1/users", None),  # scheme must match
        ("https://a.b.example.com/v1/x", None),  # '*' is one label
        ("img.cdn.net:8443", "web"),
        ("img.cdn.net:9000", None),
        ("git.corp:22", "any-sub"),
        ("a.b.git.corp:22", "any-sub"),
        ("corp", "any-sub"),
    ],
)
def test_endpoint_patterns(path, policy):
    d = engine(NET).evaluate(req(rtype="Network", path=path, op="Connect"))
    assert d.policy == policy


def test_ip_spellings_are_canonical_for_cidrs():
    e = engine(NET)
    for spelling in ("10.0.0.1", "10.1", "0xa.0.0.1", "167772161", "[::ffff:10.0.0.1]:80"):
        assert e.evaluate(req(rtype="Network", path=spelling, op="Connect")).policy == "cidr", spelling


# --- time windows -------------------------------------------------------------------------------


WINDOW = policies(
    pol(
        "office",
        "Allow",
        0,
        "    conditions:\n      - time_window: {days: [Mon..Fri], start: \"09:00\", end: \"17:00\", tz: Europe/Paris}\n",
    ),
    pol("night", "Audit", 0, "    conditions:\n      - time_window: {days: Sat, start: \"22:00\", end: \"02:00\"}\n"),
)


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    "when, policy",
    [
        ("2026-11-27T08:30:00+00:00", "office"),  # Friday 09:30 in Paris (UTC+1)
        ("2026-11-27T07:59:00+00:00", None),  # 08:59 Paris
        ("2026-11-27T16:00:00+00:00", None),  # 17:00 Paris: end is exclusive
        ("2026-11-28T10:00:00+00:00", None),  # Saturday
        ("2026-11-28T23:00:00+00:00", "night"),  # Saturday 23:00 UTC
        ("2026-11-29T01:30:00+00:00", "night"),  # Sunday 01:30 belongs to Saturday's window
        ("2026-11-29T02:00:00+00:00", None),
        ("2026-11-30T01:00:00+00:00", None),  # Monday 01:00: Sunday is not in the window
    ],
)
def test_time_windows_with_a_fake_clock(when, policy):
    e = engine(WINDOW, clock=FakeClock(start=at(when)))
    assert e.evaluate(req()).policy == policy
    assert PolicyEngine.from_text(WINDOW).evaluate(req(), at=at(when)).policy == policy


def test_time_dependent_decision_is_not_cached_past_the_minute():
    clock = FakeClock(start=at("2026-11-27T15:59:30+00:00"))  # 16:59:30 Paris, Friday
    e = engine(WINDOW, clock=clock)
    assert e.evaluate(req()).policy == "office"
    assert e.evaluate(req()).cached
    clock.advance(31)  # 17:00:01 Paris
    d = e.evaluate(req())
    assert d.policy is None and not d.cached


# --- cache -------------------------------------------------------------------------------------


def test_cache_hits_ttl_and_type_exact_keys():
    clock = FakeClock()
    text = policies(pol("t1", "Allow", 0, "    conditions: [{tier: 1}]\n"))
    e = engine(text, clock=clock, cache_ttl=10)
    first = e.evaluate(req(tier=1))
    again = e.evaluate(req(tier=1))
    assert not first.cached and again.cached and again.decision == "Allow"
    with pytest.raises(SymbiError):  # True == 1 in Python, but it is not a tier: no cache hit
        e.evaluate(req(tier=True))
    clock.advance(11)
    assert not e.evaluate(req(tier=1)).cached
    nested = req(metadata={"a": [1, 2]}, capabilities=["x"])
    e.evaluate(nested)
    assert e.evaluate(nested).cached
    assert e.stats()["cache_hits"] == 2


def test_cache_disabled_and_bounded():
    e = engine(policies(pol("p", "Allow")), enable_cache=False)
    e.evaluate(req())
    assert not e.evaluate(req()).cached
    small = engine(policies(pol("p", "Allow")), cache_size=2)
    for i in range(5):
        small.evaluate(req(path=f"/tmp/{i}"))
    assert small.stats()["cache_entries"] == 2


def test_cache_evicts_the_least_recently_used():
    e = engine(policies(pol("p", "Allow")), cache_size=4)
    a, b, c, d, f = (req(path=f"/tmp/{n}") for n in "abcdf")
    for r in (a, b, c):
        e.evaluate(r)
    assert e.evaluate(a).cached  # a is now the most recent
    e.evaluate(d)
    e.evaluate(f)  # over capacity: b, the least recently used, goes
    assert e.evaluate(a).cached and not e.evaluate(b).cached


def test_access_request_and_request_for_agent():
    from engine.agents.model import AgentConfig, SecurityTier

    text = policies(pol("p", "Allow", 0, "    conditions: [{agent_name: bot}, {capability: net}, {tier: Tier1}]\n"))
    e = engine(text)
    ar = AccessRequest("Network", "example.com:443", "Connect", agent_id="id-1", agent_name="bot",
                       capabilities=("net",), tier="Tier1")
    assert e.evaluate(ar).decision == "Allow"
    assert e.evaluate(ar).cached
    cfg = AgentConfig(name="bot", dsl_source="print(1)", security_tier=SecurityTier.TIER1, capabilities=("net",),
                      metadata={"security_level": "standard"})
    flat = request_for_agent(cfg, "Network", "example.com:443", "Connect", agent_id="id-1")
    assert flat["agent_security_level"] == "standard" and flat["tier"] == "Tier1"
    assert e.evaluate(flat).decision == "Allow"


def test_trace_lists_every_policy_and_why():
    text = policies(pol("a", "Deny", 2, "    resources: ['/etc/**']\n"), pol("b", "Allow", 1))
    trace = engine(text).trace(req(path="/tmp/x"))
    assert [t["policy"] for t in trace] == ["a", "b"]
    assert not trace[0]["matched"] and "matches none of [/etc/**]" in trace[0]["why"][0]
    assert trace[1]["matched"]


# --- the seed's own example ------------------------------------------------------------------------


@pytest.fixture
def seed() -> PolicyEngine:
    return PolicyEngine.from_file(SEED)


def test_seed_file_is_the_seed_text_with_attribution():
    text = SEED.read_text()
    assert "ThirdKeyAI/Symbiont" in text and "Apache License" in text
    doc = load_document(text)
    assert [p.name for p in doc.policies] == ["default_file_access", "network_restrictions"]
    assert not doc.diagnostics


@pytest.mark.parametrize("path", ["/tmp/a.txt", "/tmp/deep/er/b.bin", "/workspace/project/main.py", "/workspace"])
@pytest.mark.parametrize("op", ["Read", "Write"])
def test_seed_standard_agents_read_and_write_tmp_and_workspace(seed, path, op):
    d = seed.evaluate(req(path=path, op=op, agent_security_level="standard"))
    assert (d.decision, d.policy) == ("Allow", "default_file_access")


@pytest.mark.parametrize(
    "request_",
    [
        req(path="/tmp/a.txt", op="Delete", agent_security_level="standard"),
        req(path="/tmp/a.txt", op="Execute", agent_security_level="standard"),
        req(path="/home/user/.ssh/id_rsa", agent_security_level="standard"),
        req(path="/tmpfoo/x", agent_security_level="standard"),
        req(path="/workspace/../etc/passwd", agent_security_level="standard"),
        req(path="/tmp/a.txt", agent_security_level="elevated"),
        req(path="/tmp/a.txt"),
        req(rtype="Database", path="tmp/x", agent_security_level="standard"),
    ],
)
def test_seed_everything_else_falls_to_the_default(seed, request_):
    d = seed.evaluate(request_)
    assert d.default and d.decision == "Deny"


@pytest.mark.parametrize(
    "path",
    ["127.0.0.1", "127.0.0.1:8080", "http://127.0.0.1/admin", "localhost", "localhost:5432", "https://localhost/x",
     "LOCALHOST:80", "127.1:22", "[::ffff:127.0.0.1]:80"],
)
@pytest.mark.parametrize("default", ["Deny", "Allow"])
def test_seed_localhost_connections_are_denied_whatever_the_default(path, default):
    e = PolicyEngine.from_file(SEED, default_effect=default)
    d = e.evaluate(req(rtype="Network", path=path, op="Connect"))
    assert (d.decision, d.policy) == ("Deny", "network_restrictions")


def test_seed_other_hosts_follow_the_default(seed):
    assert seed.evaluate(req(rtype="Network", path="api.example.com:443", op="Connect")).default
    allow = PolicyEngine.from_file(SEED, default_effect="Allow")
    assert allow.evaluate(req(rtype="Network", path="api.example.com:443", op="Connect")).decision == "Allow"
    # the network rule is about connecting, not other operations
    assert allow.evaluate(req(rtype="Network", path="localhost:80", op="Read")).decision == "Allow"
