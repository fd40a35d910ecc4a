"""Hypothesis throws arbitrary JSON at every route of the HTTP API: never a 500, always the error shape.

The app is built over a real local engine and called in process (httpx's ASGI transport), so
thousands of requests stay cheap. Every answer must be a success or ``{"error": {"code", ...}}``
with a 4xx status; a 500 would be a bug of ours, whatever the input.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.http.app import ServerSettings, build_app
from engine.api.http.calls import calls
from engine.api.local import LocalEngine
from engine.runtime import Runtime
from tests.helpers import fast_config

TOKEN = "fuzz-token-0123456789"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# every interface route, the mutating ones included (on a throwaway engine)
ROUTES = sorted(c.path for c in calls().values() if not c.streaming)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    loop = asyncio.new_event_loop()
    data = tmp_path_factory.mktemp("fuzz") / "d"
    engine = LocalEngine(Runtime(fast_config(), data))
    loop.run_until_complete(engine.open())
    app = build_app(engine, ServerSettings(token=TOKEN, rate_limit=0.0))
    yield loop, app
    loop.run_until_complete(engine.close())
    loop.close()


def _call(loop, app, method: str, path: str, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.request(
                method,
                path,
                content=body,
                headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
            )

    return loop.run_until_complete(go())


def _check(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"] is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=JSON)
def test_any_json_to_any_engine_route_is_answered_without_a_500(served, route, body):
    loop, app = served
    _check(_call(loop, app, "POST", route, json.dumps(body).encode()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(
        [
            ("POST", "/api/v1/agents"),
            ("PUT", "/api/v1/agents/{id}"),
            ("POST", "/api/v1/agents/{id}/execute"),
            ("GET", "/api/v1/agents/{id}/status"),
            ("DELETE", "/api/v1/agents/{id}"),
            ("POST", "/api/v1/workflows/execute"),
        ]
    ),
    agent=st.text(min_size=1, max_size=30),
    body=JSON | st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)
def test_any_input_to_the_seeds_routes_is_answered_without_a_500(served, route, agent, body):
    loop, app = served
    method, path = route
    payload = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else json.dumps(body).encode()
    _check(_call(loop, app, method, path.replace("{id}", quote(agent, safe="")), payload))


def _named_arguments(call):
    values = JSON | st.text(max_size=30)
    return st.tuples(st.just(call.path), st.fixed_dictionaries({p.name: values for p in call.params}))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=st.sampled_from([c for c in calls().values() if not c.streaming]).flatmap(_named_arguments))
def test_the_right_argument_names_with_any_values_are_answered_without_a_500(served, request):
    """The arguments each method names, with arbitrary values: the decoding and the engine's own
    checks are reached (a string ref really is looked up, a string path really is validated)."""
    loop, app = served
    path, body = request
    _check(_call(loop, app, "POST", path, json.dumps(body).encode()))
