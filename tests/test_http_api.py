"""The HTTP API (engine.api.http) and the remote client (engine.api.remote), on a real engine.

The engine runs in this process; its API is served on loopback TCP and on the
data dir's Unix socket by real uvicorn servers, and reached with real httpx
clients. The contract checks of ``tests/test_fake_engine.py`` run again here
through :class:`RemoteEngine` over both transports, so the remote engine
answers like the local one, codes included.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from engine.api import AgentConfig, AgentState, AuditFilter
from engine.api.http import guard
from engine.api.http.server import SOCKET_NAME, TOKEN_FILE, HttpSettings, open_listeners
from engine.api.local import LocalEngine
from engine.api.remote import RemoteEngine
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentCreated
from engine.runtime import Runtime
from tests.helpers import fast_config
from tests.test_fake_engine import (  # noqa: F401 (collected here: the contract, over HTTP)
    test_a_stream_position_from_the_future_is_api_002,
    test_agents_are_created_listed_found_and_deleted_with_their_events,
    test_knowledge_is_added_listed_searched_and_deleted,
    test_policy_drafts_are_checked_and_a_broken_one_is_not_saved,
    test_secrets_show_names_until_revealed_and_missing_ones_are_sec_004,
    test_the_review_queue_starts_empty_and_unknown_tools_are_mcp_002,
)

TOKEN = "test-token-0123456789abcdef"
ENV = {"SYMBI_API_TOKEN": TOKEN}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEED_ROUTES = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/agents"),
    ("POST", "/api/v1/agents"),
    ("GET", "/api/v1/agents/{agent_id}/status"),
    ("PUT", "/api/v1/agents/{agent_id}"),
    ("DELETE", "/api/v1/agents/{agent_id}"),
    ("POST", "/api/v1/agents/{agent_id}/execute"),
    ("GET", "/api/v1/agents/{agent_id}/history"),
    ("POST", "/api/v1/workflows/execute"),
    ("GET", "/api/v1/metrics"),
}


@pytest.fixture
async def served(tmp_path):
    data = tmp_path / "d"
    local = LocalEngine(Runtime(fast_config(), data), mode="headless")
    await local.open()
    listeners = await open_listeners(local, data, HttpSettings(enabled=True, port=0), env=ENV)
    try:
        yield local, listeners
    finally:
        await listeners.close()
        await local.close("test over")


@pytest.fixture(params=["tcp", "socket"])
async def engine(request, served):
    _local, listeners = served
    if request.param == "tcp":
        remote = RemoteEngine(listeners.url, token=TOKEN)
    else:
        remote = RemoteEngine(socket_path=listeners.socket_path)
    await remote.open()
    try:
        yield remote
    finally:
        await remote.close()


@pytest.fixture
async def http(served):
    _local, listeners = served
    async with httpx.AsyncClient(base_url=listeners.url) as client:
        yield client


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "hint", "offending"} <= set(body["error"])
    return body["error"]


# -- security ------------------------------------------------------------------------------


async def test_health_is_the_only_route_without_a_token(http):
    assert (await http.get("/api/v1/health")).json()["status"] == "healthy"
    openapi = (await http.get("/openapi.json", headers=AUTH)).json()
    for path, operations in openapi["paths"].items():
        for method in operations:
            if (method.upper(), path) == ("GET", "/api/v1/health"):
                continue
            concrete = path.replace("{agent_id}", "x")
            response = await http.request(method.upper(), concrete)
            assert response.status_code == 401, (method, path)
            assert _error(response)["code"] == "API_003"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer  x y", "Basic dXNlcjpwYXNz", f"bearer {TOKEN}x", f"Token {TOKEN}", "Bearer wrong"],
)
async def test_missing_malformed_and_wrong_tokens_are_refused(http, header):
    headers = {} if header is None else {"Authorization": header}
    response = await http.get("/api/v1/agents", headers=headers)
    assert response.status_code == 401 and _error(response)["code"] == "API_003"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


async def test_the_token_is_compared_in_constant_time(http, monkeypatch):
    seen = []
    real = guard.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(guard.hmac, "compare_digest", spy)
    assert (await http.get("/api/v1/agents", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await http.get("/api/v1/agents", headers=AUTH)).status_code == 200
    assert seen == [(b"nope", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


async def test_a_non_loopback_bind_without_a_token_is_refused_at_start(tmp_path):
    local = LocalEngine(Runtime(fast_config(), tmp_path / "d"))
    await local.open()
    try:
        with pytest.raises(SymbiError) as err:
            await open_listeners(local, tmp_path / "d", HttpSettings(enabled=True, host="0.0.0.0", port=0), env={})
        assert err.value.code is ErrorCode.API_006 and err.value.offending == "0.0.0.0"
        assert "SYMBI_API_TOKEN" in (err.value.hint or "")
        assert not (tmp_path / "d" / SOCKET_NAME).exists()  # nothing half-started
    finally:
        await local.close()


async def test_loopback_without_a_token_gets_a_private_token_file(tmp_path):
    data = tmp_path / "d"
    local = LocalEngine(Runtime(fast_config(), data))
    await local.open()
    listeners = await open_listeners(local, data, HttpSettings(enabled=True, port=0), env={})
    try:
        token_file = data / TOKEN_FILE
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32 and listeners.token == token
        async with httpx.AsyncClient(base_url=listeners.url) as http:
            assert (await http.get("/api/v1/agents")).status_code == 401
            assert (await http.get("/api/v1/agents", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        assert (data / SOCKET_NAME).stat().st_mode & 0o777 == 0o600
    finally:
        await listeners.close()
        await local.close()
    assert not (data / SOCKET_NAME).exists()


async def test_size_and_rate_limits_answer_413_and_429(tmp_path):
    data = tmp_path / "d"
    local = LocalEngine(Runtime(fast_config(), data))
    await local.open()
    settings = HttpSettings(enabled=True, port=0, max_body=2048, rate_limit=1.0, rate_burst=3)
    listeners = await open_listeners(local, data, settings, env=ENV, unix_socket=False)
    try:
        async with httpx.AsyncClient(base_url=listeners.url, headers=AUTH) as http:
            big = {"name": "big", "dsl": "x" * 4096}
            response = await http.post("/api/v1/agents", json=big)
            assert response.status_code == 413 and _error(response)["code"] == "API_005"
            codes = [(await http.get("/api/v1/agents")).status_code for _ in range(6)]
            assert codes[:2] == [200, 200] and 429 in codes  # burst spent (the 413 took one token)
            limited = await http.get("/api/v1/agents")
            assert limited.status_code == 429 and _error(limited)["code"] == "API_004"
            assert int(limited.headers["retry-after"]) >= 1
        assert [a.name for a in await local.agents.list_all()] == []  # the big one was never created
    finally:
        await listeners.close()
        await local.close()


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/v1/agents/nobody/status", None, 404, "AGENT_001"),
        ("POST", "/api/v1/agents", {"name": "x"}, 422, "API_001"),
        ("POST", "/api/v1/agents", {"name": "bad name!", "dsl": "print(1)"}, 422, "AGENT_004"),
        ("POST", "/api/v1/agents", {"name": "ok", "dsl": "print(1)", "surprise": 1}, 422, "API_001"),
        ("POST", "/api/v1/engine/agents/get", {"ref": 5}, 422, "API_001"),
        ("POST", "/api/v1/engine/agents/get", {"nope": "x"}, 422, "API_001"),
        ("POST", "/api/v1/engine/agents/create", {"config": {"name": "n"}}, 422, "API_001"),
        ("POST", "/api/v1/engine/secrets/reveal", {"path": "shared/none"}, 404, "SEC_004"),
        ("POST", "/api/v1/engine/secrets/set", {"path": "../etc", "value": "v"}, 422, "SEC_005"),
        ("POST", "/api/v1/engine/audit/query", {"flt": {"types": ["bad type!"]}}, 422, "AUDIT_003"),
        ("POST", "/api/v1/workflows/execute", {"workflow_id": "nightly"}, 404, "WORKFLOW_001"),
        ("GET", "/api/v1/no/such/route", None, 404, "API_001"),
        ("DELETE", "/api/v1/health", None, 405, "API_001"),
    ],
)
async def test_bad_input_gets_the_engines_code_and_the_right_status_never_500(http, method, path, body, status, code):
    response = await http.request(method, path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert _error(response)["code"] == code


async def test_a_body_that_is_not_json_is_422(http):
    response = await http.post(
        "/api/v1/engine/agents/get", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422 and _error(response)["message"] == "the request body is not valid JSON"


# -- the seed's endpoints --------------------------------------------------------------------


async def test_the_seeds_endpoints_exist_with_their_paths(http):
    openapi = (await http.get("/openapi.json", headers=AUTH)).json()
    routes = {(m.upper(), p) for p, ops in openapi["paths"].items() for m in ops}
    assert routes >= SEED_ROUTES
    assert any(p.startswith("/api/v1/engine/tools/") for _m, p in routes)


async def test_an_agent_through_the_seeds_endpoints(served, http):
    local, _ = served
    created = (
        await http.post("/api/v1/agents", json={"name": "seed-hello", "dsl": "print('hello')\n"}, headers=AUTH)
    ).json()
    assert created["status"] == "created"
    agent_id = created["id"]
    assert (await http.get("/api/v1/agents", headers=AUTH)).json() == [agent_id]
    status = (await http.get(f"/api/v1/agents/{agent_id}/status", headers=AUTH)).json()
    assert status["state"] == "created" and status["execution_context"]["execution_mode"] == "ephemeral"
    started = (await http.post(f"/api/v1/agents/{agent_id}/execute", json={}, headers=AUTH)).json()
    assert started == {"execution_id": f"{agent_id}:1", "status": "execution_started"}
    async with asyncio.timeout(30):
        while (await local.agents.get(agent_id)).state is not AgentState.COMPLETED:
            await asyncio.sleep(0.05)
    history = (await http.get(f"/api/v1/agents/{agent_id}/history", headers=AUTH)).json()["history"]
    assert [(h["execution_id"], h["status"]) for h in history] == [(f"{agent_id}:1", "completed")]
    metrics = (await http.get("/api/v1/metrics", headers=AUTH)).json()
    assert metrics["scheduler"]["total_jobs"] == 1 and metrics["system"]["memory_total_bytes"] > 0
    deleted = (await http.delete(f"/api/v1/agents/{agent_id}", headers=AUTH)).json()
    assert deleted == {"id": agent_id, "status": "deleted"}
    assert (await http.get("/api/v1/agents", headers=AUTH)).json() == []


async def test_mutating_calls_are_audited_with_the_callers_token_id_never_the_token(served, http):
    local, _ = served
    await http.post("/api/v1/engine/secrets/set", json={"path": "shared/k", "value": "v4lue"}, headers=AUTH)
    await http.post(
        "/api/v1/engine/knowledge/add",
        json={"owner": "operator", "content": "the api wrote this", "kind": "knowledge"},
        headers=AUTH,
    )
    records = await local.audit.query()
    mine = [r for r in records if r.type in ("secret.write", "memory.put")]
    assert mine and all(r.actor == guard.token_id(TOKEN) for r in mine), [(r.type, r.actor) for r in mine]
    assert TOKEN not in json.dumps([r.to_dict() for r in records])


async def test_prometheus_text_has_the_engines_figures(served, http):
    local, _ = served
    await local.agents.create(AgentConfig(name="prom", dsl_source="print(1)\n"))
    await local.agents.create(AgentConfig(name="idle", dsl_source="print(1)\n"))
    await local.agents.start("prom")
    async with asyncio.timeout(30):
        while (await local.agents.get("prom")).state is not AgentState.COMPLETED:
            await asyncio.sleep(0.05)
    text = (await http.get("/metrics", headers=AUTH)).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert "# TYPE symbi_agents gauge" in text
    assert samples['symbi_agents{state="Created"}'] == "1" and samples['symbi_agents{state="Completed"}'] == "1"
    assert float(samples["symbi_machine_memory_total_bytes"]) > 0 and samples["symbi_scheduler_queued"] == "0"
    assert int(samples["symbi_audit_events"]) >= 4  # engine start, two creates, the run
    assert float(samples['symbi_policy_decisions_total{effect="Allow"}']) >= 1  # the run's launch checks
    assert samples['symbi_tool_calls_total{outcome="ok"}'] == "0"
    assert samples['symbi_bus_messages_total{stage="sent"}'] == "0"


# -- the event stream over HTTP ---------------------------------------------------------------


async def test_the_event_stream_resumes_after_a_reconnect_without_a_gap(served, engine):
    local, _ = served
    position = await engine.events.position()
    stream = engine.events.stream(after=position)
    await local.agents.create(AgentConfig(name="one", dsl_source="print(1)\n"))
    first = await asyncio.wait_for(anext(stream), 10)
    assert [e.name for e in first.events if isinstance(e, AgentCreated)] == ["one"]
    await stream.aclose()  # the client goes away ...
    await local.agents.create(AgentConfig(name="two", dsl_source="print(1)\n"))  # ... this happens meanwhile
    await local.agents.create(AgentConfig(name="three", dsl_source="print(1)\n"))
    again = engine.events.stream(after=first.position)
    names: list[str] = []
    async with asyncio.timeout(10):
        while len(names) < 2:
            names += [e.name for e in (await anext(again)).events if isinstance(e, AgentCreated)]
    assert names == ["two", "three"]
    await again.aclose()


def test_the_seeds_bind_address_and_the_limits_are_read_from_the_config(tmp_path):
    from engine.api.http.server import settings_from_config
    from engine.config import load_config

    path = tmp_path / "runtime_config.toml"
    path.write_text('[http_api]\nenabled = true\nbind_address = "127.0.0.1:9123"\nrate_limit = 5\nrate_burst = 7\n')
    settings = settings_from_config(load_config(path).config)
    assert (settings.host, settings.port, settings.rate_limit, settings.rate_burst) == ("127.0.0.1", 9123, 5.0, 7)
    path.write_text('[http_api]\nbind_address = "127.0.0.1:9123"\nport = 80\n')
    with pytest.raises(SymbiError) as err:
        load_config(path)
    assert err.value.code is ErrorCode.CONFIG_001 and "disagree" in err.value.message
    path.write_text('[http_api]\nbind_address = "nowhere"\n')
    with pytest.raises(SymbiError) as err:
        load_config(path)
    assert err.value.code is ErrorCode.CONFIG_001 and err.value.offending == "nowhere"


async def test_the_socket_asks_for_the_data_dirs_token_so_the_engines_own_agents_cannot_use_it(served):
    """An agent of an engine that is not root runs with the engine's uid and could connect to the
    socket; it cannot read the data dir's token file (its confinement hides the data dir)."""
    local, listeners = served
    transport = httpx.AsyncHTTPTransport(uds=str(listeners.socket_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as sock:
        refused = await sock.post("/api/v1/engine/agents/list_all")
        assert refused.status_code == 401 and _error(refused)["code"] == "API_003"
        token = (listeners.socket_path.parent / TOKEN_FILE).read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        assert (await sock.post("/api/v1/engine/agents/list_all", headers=headers)).status_code == 200
        await sock.post("/api/v1/engine/secrets/set", json={"path": "shared/s", "value": "v4lue"}, headers=headers)
    record = (await local.audit.query(AuditFilter(types=("secret.write",))))[-1]
    assert record.actor == "operator"  # the machine's operator, as in the embedded console
