"""The agent protocol: the wire format, the server's bad paths, and the SDK
used by real agent processes."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.agents import protocol
from engine.agents.model import AgentState, ExecutionMode, ResourceLimits
from engine.agents.rpc_server import AgentRpcServer
from engine.errors import ErrorCode, SymbiError
from engine.runtime import Runtime
from tests.helpers import agent, fast_config, wait_for_log

S = AgentState


# -- the server on its own ----------------------------------------------------


@pytest.fixture
async def server(tmp_path):
    calls = []

    async def handler(method, params):
        calls.append(method)
        if method == "slow":
            await asyncio.sleep(30)
        if method == "echo":
            return params
        raise SymbiError(ErrorCode.PROTO_003, f"unknown method {method!r}")

    srv = AgentRpcServer(tmp_path / "rpc", "s3cret-token", handler, max_message_bytes=4096)
    await srv.start()
    srv.calls = calls
    yield srv
    await srv.close()


async def connect(srv, token="s3cret-token"):
    reader, writer = await asyncio.open_unix_connection(str(srv.path), limit=1 << 20)
    writer.write(protocol.encode({"jsonrpc": "2.0", "id": 0, "method": "hello", "params": {"token": token}}))
    reply = json.loads(await reader.readline())
    return reader, writer, reply


async def call(reader, writer, raw: bytes):
    writer.write(raw)
    await writer.drain()
    return json.loads(await reader.readline())


async def test_hello_with_the_right_token_then_calls(server):
    reader, writer, reply = await connect(server)
    assert reply["result"]["ok"] is True
    got = await call(reader, writer, b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":1}}\n')
    assert got == {"jsonrpc": "2.0", "id": 1, "result": {"x": 1}}
    writer.close()


async def test_a_wrong_token_is_refused_and_the_connection_closed(server):
    reader, writer, reply = await connect(server, token="guess")
    assert reply["error"]["data"]["code"] == "PROTO_005"
    assert await reader.read() == b""
    assert server.calls == []


@pytest.mark.parametrize(
    "raw,rpc_code,code",
    [
        (b"{not json\n", -32700, "PROTO_001"),
        (b"[1,2]\n", -32600, "PROTO_001"),
        (b'{"id":1,"method":"echo"}\n', -32600, "PROTO_001"),
        (b'{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}\n', -32602, "PROTO_001"),
        (b'{"jsonrpc":"2.0","id":2,"method":"fly"}\n', -32601, "PROTO_003"),
    ],
)
async def test_malformed_requests_get_errors_and_the_connection_survives(server, raw, rpc_code, code):
    reader, writer, _ = await connect(server)
    got = await call(reader, writer, raw)
    assert got["error"]["code"] == rpc_code
    assert got["error"]["data"]["code"] == code
    ok = await call(reader, writer, b'{"jsonrpc":"2.0","id":9,"method":"echo","params":{"still":"here"}}\n')
    assert ok["result"] == {"still": "here"}
    writer.close()


async def test_an_oversized_message_is_refused_and_closes_the_connection(server):
    reader, writer, _ = await connect(server)
    big = b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":"' + b"a" * 10_000 + b'"}}\n'
    got = await call(reader, writer, big)
    assert got["error"]["data"]["code"] == "PROTO_002"
    assert await reader.read() == b""


async def test_a_peer_closing_mid_call_cancels_the_call(server):
    reader, writer, _ = await connect(server)
    writer.write(b'{"jsonrpc":"2.0","id":1,"method":"slow"}\n')
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    await asyncio.sleep(0.1)
    # the server is still healthy for the next connection
    reader, writer, reply = await connect(server)
    assert reply["result"]["ok"]
    writer.close()


# -- real agents through the runtime ------------------------------------------


@pytest.fixture
async def rt(tmp_path):
    async with Runtime.open(fast_config(), tmp_path / "data") as runtime:
        yield runtime


async def test_the_sdk_worker_runs_end_to_end(rt):
    await rt.create_agent(agent("worker", "worker"))
    await rt.start_agent("worker", input={"numbers": [4, 5, 6]})
    info = await rt.wait_for_state("worker", S.COMPLETED, S.FAILED, timeout=30)
    logs = "\n".join(await rt.agent_logs("worker"))
    assert info.state is S.COMPLETED, logs
    assert info.result == {"sum": 15, "count": 3}
    assert "[agent:info] sum of 3 numbers is 15" in logs
    assert "I am worker in tier" in logs
    # what is refused comes back with a code, never a hang
    assert "tool: refused MCP_002" in logs  # no such tool is configured
    assert "remember: ok" in logs and "recall: ok" in logs


async def test_result_and_input_survive_a_restart(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        await rt.create_agent(agent("w", "worker"))
        await rt.start_agent("w", input={"numbers": [1]})
        await rt.wait_for_state("w", S.COMPLETED, timeout=30)
    async with Runtime.open(fast_config(), tmp_path) as rt:
        info = await rt.get_agent("w")
        assert info.result == {"sum": 1, "count": 1}
        assert info.input == {"numbers": [1]}


async def test_input_must_be_json(rt):
    await rt.create_agent(agent("w", "worker"))
    with pytest.raises(SymbiError) as err:
        await rt.start_agent("w", input={"bad": object()})
    assert err.value.code is ErrorCode.AGENT_004


async def test_an_agent_speaking_garbage_gets_errors_not_hangs(rt):
    source = (
        "import os, socket, json\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(os.environ['SYMBI_RPC_SOCKET']); f = s.makefile('rb')\n"
        "def send(raw):\n"
        "    s.sendall(raw); return json.loads(f.readline())\n"
        "print('hello', send(json.dumps({'jsonrpc':'2.0','id':1,'method':'hello',"
        "'params':{'token':os.environ['SYMBI_RPC_TOKEN']}}).encode()+b'\\n')['result']['ok'])\n"
        "print('garbage', send(b'}}}\\n')['error']['data']['code'])\n"
        "print('unknown', send(b'{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"teleport\"}\\n')['error']['data']['code'])\n"
        "print('badparams', send(b'{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"memory.put\"}\\n')['error']['data']['code'])\n"
    )
    await rt.create_agent(agent("raw", source=source))
    await rt.start_agent("raw")
    info = await rt.wait_for_state("raw", S.COMPLETED, S.FAILED, timeout=30)
    logs = "\n".join(await rt.agent_logs("raw"))
    assert info.state is S.COMPLETED, logs
    for expected in ("hello True", "garbage PROTO_001", "unknown PROTO_003", "badparams PROTO_001"):
        assert expected in logs


async def test_a_silent_persistent_agent_is_suspended_after_idle_timeout(rt):
    silent = "import time\ntime.sleep(60)\n"
    await rt.create_agent(
        agent("quiet", source=silent, execution_mode=ExecutionMode.PERSISTENT,
              limits=ResourceLimits(idle_timeout=0.5))
    )
    await rt.start_agent("quiet")
    await rt.wait_for_state("quiet", S.SUSPENDED, timeout=20)
    history = await rt.agent_history("quiet")
    assert "idle_timeout of 0.5s" in history[-1].reason
    await rt.terminate_agent("quiet")


async def test_heartbeats_keep_a_persistent_agent_alive(rt):
    await rt.create_agent(
        agent("hb", "heartbeat", execution_mode=ExecutionMode.PERSISTENT, limits=ResourceLimits(idle_timeout=1.5))
    )
    await rt.start_agent("hb")
    await wait_for_log(rt, "hb", "heartbeat 3", timeout=20)
    assert (await rt.get_agent("hb")).state is S.RUNNING
    await rt.stop_agent("hb")


async def test_agent_memory_through_the_protocol(rt):
    source = (
        "from symbi_agent import agent\n"
        "agent.remember('The deploy key rotates every Tuesday at noon.')\n"
        "agent.remember('Lunch is served in the east wing cafeteria.')\n"
        "hits = agent.recall('when does the key get rotated?', limit=1)\n"
        "print('best', hits[0]['content'], round(hits[0]['score'], 2) > 0.3, flush=True)\n"
    )
    await rt.create_agent(agent("rememberer", source=source))
    await rt.start_agent("rememberer")
    info = await rt.wait_for_state("rememberer", S.COMPLETED, S.FAILED, timeout=60)
    logs = "\n".join(await rt.agent_logs("rememberer"))
    assert info.state is S.COMPLETED, logs
    assert "best The deploy key rotates every Tuesday at noon. True" in logs
