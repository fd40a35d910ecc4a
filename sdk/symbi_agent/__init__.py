"""symbi_agent: the SDK an agent program uses to talk to the Symbi runtime.

Standard library only, so it imports inside every sandbox (native,
bubblewrap, Docker, gVisor) on the image's Python 3.11. It speaks JSON-RPC
2.0 over the Unix socket named by ``SYMBI_RPC_SOCKET``, authenticated with
``SYMBI_RPC_TOKEN``; ``print`` output stays the agent's log::

    from symbi_agent import agent

    task = agent.input()                 # what the operator started us with
    agent.log("working on", task)
    agent.remember("seen " + str(task))  # memory.put
    agent.send("other-agent", b"hello")  # bus.send
    key = agent.secret("app/api_key")    # only if policy allows
    agent.result({"ok": True})           # recorded by the runtime
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import threading
from typing import Any

__all__ = ["Agent", "AgentError", "agent", "run"]
__version__ = "1"


class AgentError(Exception):
    """An error from the runtime, with its code (e.g. ``POLICY_001``) and hint."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (hint: {hint})" if hint else ""))
        self.code = code
        self.message = message
        self.hint = hint


class _Channel:
    """One authenticated connection; one request in flight at a time."""

    def __init__(self, path: str, token: str, timeout: float | None) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as exc:
            raise AgentError("PROTO_001", f"cannot reach the runtime at {path}: {exc.strerror or exc}") from None
        self._file = self._sock.makefile("rb")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.call("hello", token=token)

    def call(self, method: str, **params: Any) -> Any:
        with self._lock:
            request_id = next(self._ids)
            msg = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            self._sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
            line = self._file.readline()
        if not line:
            raise AgentError("PROTO_001", "the runtime closed the connection")
        reply = json.loads(line)
        if "error" in reply:
            err = reply["error"]
            data = err.get("data") or {}
            raise AgentError(data.get("code", str(err.get("code"))), data.get("message", err.get("message", "")),
                             data.get("hint"))
        return reply.get("result")

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._sock.close()


class Agent:
    """The running agent's handle on the runtime. Connects on first use."""

    def __init__(self, socket_path: str | None = None, token: str | None = None, timeout: float | None = 60.0) -> None:
        self._path = socket_path or os.environ.get("SYMBI_RPC_SOCKET", "")
        self._token = token or os.environ.get("SYMBI_RPC_TOKEN", "")
        self._timeout = timeout
        self._channel: _Channel | None = None
        self._beat: threading.Thread | None = None
        self._stop_beat = threading.Event()

    @property
    def id(self) -> str:
        return os.environ.get("SYMBI_AGENT_ID", "")

    @property
    def name(self) -> str:
        return os.environ.get("SYMBI_AGENT_NAME", "")

    def _ch(self) -> _Channel:
        if self._channel is None:
            if not self._path:
                raise AgentError("PROTO_001", "SYMBI_RPC_SOCKET is not set: run this program as a Symbi agent")
            self._channel = _Channel(self._path, self._token, self._timeout)
        return self._channel

    def call(self, method: str, **params: Any) -> Any:
        """Any protocol method by name (the helpers below cover the usual ones)."""
        return self._ch().call(method, **params)

    # -- the usual calls ----------------------------------------------------

    def log(self, *parts: Any, level: str = "info") -> None:
        self.call("log", message=" ".join(str(p) for p in parts), level=level)

    def heartbeat(self) -> dict:
        return self.call("heartbeat")

    def status(self) -> dict:
        return self.call("status")

    def input(self) -> Any:
        return self.call("input")

    def result(self, value: Any) -> None:
        self.call("result", value=value)

    def call_tool(self, name: str, arguments: dict | None = None, **kw: Any) -> Any:
        return self.call("tool.call", name=name, arguments=arguments or {}, **kw)

    def send(self, to: str, payload: bytes | str, *, topic: str | None = None, ttl: float | None = None) -> dict:
        data = payload.encode() if isinstance(payload, str) else payload
        params: dict[str, Any] = {"payload_b64": base64.b64encode(data).decode()}
        if topic:
            params["topic"] = topic
        else:
            params["to"] = to
        if ttl is not None:
            params["ttl"] = ttl
        return self.call("bus.send", **params)

    def receive(self, timeout: float | None = None) -> dict | None:
        """The next message for this agent, or None on timeout. ``payload`` is bytes."""
        msg = self.call("bus.receive", timeout=timeout)
        if msg and "payload_b64" in msg:
            msg["payload"] = base64.b64decode(msg.pop("payload_b64"))
        return msg

    def subscribe(self, topic: str) -> dict:
        return self.call("bus.subscribe", topic=topic)

    def remember(self, content: str, *, kind: str = "long_term", metadata: dict | None = None,
                 share_with: list | None = None) -> dict:
        """Store ``content`` in this agent's memory; ``share_with`` lists agent ids (or "*") that may recall it."""
        params: dict = {"content": content, "kind": kind, "metadata": metadata or {}}
        if share_with:
            params["share_with"] = list(share_with)
        return self.call("memory.put", **params)

    def recall(self, query: str, *, limit: int = 5, kinds: list | None = None) -> list:
        """The memory items closest in meaning to ``query`` (own and shared), best first."""
        params: dict = {"query": query, "limit": limit}
        if kinds:
            params["kinds"] = list(kinds)
        return self.call("memory.query", **params)

    def secret(self, name: str) -> str:
        return self.call("secret.get", name=name)["value"]

    # -- liveness -------------------------------------------------------------

    def start_heartbeat(self, interval: float = 5.0) -> None:
        """Heartbeat from a background thread on its own connection (keeps a
        persistent agent from being idled while it blocks elsewhere)."""
        if self._beat is not None:
            return
        channel = _Channel(self._path, self._token, self._timeout)

        def beat() -> None:
            try:
                while not self._stop_beat.wait(interval):
                    channel.call("heartbeat")
            except (OSError, AgentError):
                pass
            finally:
                channel.close()

        self._beat = threading.Thread(target=beat, name="symbi-heartbeat", daemon=True)
        self._beat.start()

    def close(self) -> None:
        self._stop_beat.set()
        if self._channel is not None:
            self._channel.close()
            self._channel = None


agent = Agent()


def run(main: Any) -> None:
    """Run ``main(input)``; record its return value as the result. An
    exception propagates (the process exits non-zero and the agent is Failed)."""
    value = main(agent.input())
    if value is not None:
        agent.result(value)
    agent.close()
