"""Fixtures shared by the sandbox test modules: the listeners an agent under test talks to."""

from __future__ import annotations

import pytest
from test_sandbox_support import RpcListener, TcpListener


@pytest.fixture
async def rpc():
    """A per-test agent-protocol socket that records what it received."""
    listener = await RpcListener().start()
    yield listener
    await listener.close()


@pytest.fixture
async def tcp():
    """A TCP listener on 127.0.0.1 that counts the connections it accepted."""
    listener = await TcpListener().start()
    yield listener
    await listener.close()


@pytest.fixture(scope="session", autouse=True)
def _state_dir_in_tmp(tmp_path_factory):
    """The audit witness goes to platformdirs' user_state_dir: never the real home during tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
        yield
