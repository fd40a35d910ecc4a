"""``[[notify]]`` webhooks, against a receiver this test runs on loopback (a real HTTP server)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.config import load_config
from engine.errors import ErrorCode, SymbiError
from engine.events import KeyChangePending, ToolCallPending, ToolReviewChanged
from engine.runtime import Runtime
from tests.helpers import agent, fast_config


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps what it is posted (and can answer 500 first)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                data = self.rfile.read(int(self.headers.get("content-length", 0)))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(data))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def _config(tmp_path, body: str):
    path = tmp_path / "runtime_config.toml"
    path.write_text(body)
    loaded = load_config(path).config
    return fast_config().__class__(**{**fast_config().__dict__, "notify": loaded.notify})


async def _until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_what_waits_is_posted_with_how_to_decide_and_only_the_kinds_asked_for(tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "hook-secret")
    cfg = _config(
        tmp_path,
        f'[[notify]]\nurl = "{receiver.url}"\nevents = "call,key"\ntoken_env = "HOOK_TOKEN"\n',
    )
    async with Runtime.open(cfg, tmp_path / "data") as rt:
        info = await rt.create_agent(agent("caller"))
        rt.bus.publish(ToolReviewChanged(tool_id="files/read", state="AwaitingHumanReview", event="discovered"))
        rt.bus.publish(ToolCallPending(call_id="call-1", tool_id="files/read", agent_id=info.id))
        rt.bus.publish(KeyChangePending(domain="files.local", old_fingerprint="aa", new_fingerprint="bb"))
        await _until(lambda: len(receiver.bodies) >= 2)
        await asyncio.sleep(0.2)
    kinds = [b["kind"] for b in receiver.bodies]
    assert kinds == ["call", "key"]  # no "tool": not asked for
    call = receiver.bodies[0]
    assert call["summary"] == "caller asks to call files/read" and call["call_id"] == "call-1"
    assert "symbiont tools allow-call call-1" in call["decide"]["cli"]
    assert any("/api/v1/engine/tools/approve_call" in route for route in call["decide"]["api"])
    assert receiver.headers[0]["authorization"] == "Bearer hook-secret"
    assert receiver.bodies[1]["new_fingerprint"] == "bb"


async def test_a_failing_receiver_is_retried_once_and_never_stops_the_engine(tmp_path):
    flaky = Receiver(fail_first=1)
    dead = f"http://127.0.0.1:{_free_port()}/nobody"
    try:
        cfg = _config(tmp_path, f'[[notify]]\nurl = "{dead}"\n\n[[notify]]\nurl = "{flaky.url}"\n')
        async with Runtime.open(cfg, tmp_path / "data") as rt:
            rt.bus.publish(ToolReviewChanged(tool_id="t/x", state="AwaitingHumanReview", event="discovered"))
            rt.bus.publish(ToolReviewChanged(tool_id="t/x", state="Signed", event="approved"))  # not waiting: no post
            await _until(lambda: rt.notifier.sent == 1 and rt.notifier.failed == 1, timeout=20)
            assert (await rt.create_agent(agent("still-works"))).name == "still-works"
        assert [b["tool_id"] for b in flaky.bodies] == ["t/x"]
    finally:
        flaky.close()


def test_bad_notify_config_is_refused_with_the_key(tmp_path):
    path = tmp_path / "runtime_config.toml"
    for body, needle in (
        ('[[notify]]\nurl = "ftp://x"\n', "notify[0].url"),
        ('[[notify]]\nurl = "http://x"\nevents = "tool,mail"\n', "notify.events"),
        ('[[notify]]\nevents = "tool"\n', "notify[0].url"),
        ('notify = "http://x"\n', "notify"),
    ):
        path.write_text(body)
        with pytest.raises(SymbiError) as err:
            load_config(path)
        assert err.value.code is ErrorCode.CONFIG_001 and needle in err.value.message, err.value.message


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
