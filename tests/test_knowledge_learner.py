"""The learner example agent: what it learns on one run it recalls on a later
one, across an engine restart and across a SIGKILL of the engine. Real
runtime, real agent processes, real MiniLM, LanceDB and the encrypted store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.agents.model import AgentState
from engine.runtime import Runtime
from tests.helpers import agent, fast_config

S = AgentState
ROOT = Path(__file__).resolve().parents[1]

FACTS = [
    "The staging database is backed up every night at 03:15.",
    "Quokka is the codename of the new billing service.",
    "The office wifi password rotates on the first Monday of each month.",
]
QUESTIONS = {
    "When does the staging database get backed up?": FACTS[0],
    "What is the billing service called internally?": FACTS[1],
    "How often does the wifi password change?": FACTS[2],
}


async def _run(rt: Runtime, input: dict) -> dict:
    await rt.start_agent("learner", input=input)
    info = await rt.wait_for_state("learner", S.COMPLETED, S.FAILED, timeout=60)
    logs = "\n".join(await rt.agent_logs("learner"))
    assert info.state is S.COMPLETED, logs
    return info.result


def _grep(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


async def test_learner_recalls_after_an_engine_restart(tmp_path):
    data = tmp_path / "data"
    async with Runtime.open(fast_config(), data) as rt:
        await rt.create_agent(agent("learner", "learner"))
        first = await _run(rt, {"learn": FACTS, "ask": ["Who won the 1966 football world cup?"]})
        assert first["stored"] == 3
        assert first["answers"][0]["answer"] is None  # nothing it learned answers that
    async with Runtime.open(fast_config(), data) as rt:  # a new engine on the same data dir
        second = await _run(rt, {"ask": list(QUESTIONS)})
    assert second["stored"] == 0
    assert [a["answer"] for a in second["answers"]] == list(QUESTIONS.values())
    # what it learned is sealed at rest: not in the context store nor the vector store
    for fact in FACTS:
        assert _grep(data / "contexts", fact) == [] and _grep(data / "vector_db", fact) == []


ENGINE = r"""
import asyncio, sys
sys.path.insert(0, {root!r})
from engine.runtime import Runtime
from tests.helpers import agent, fast_config
async def main():
    rt = await Runtime.open(fast_config(), {data!r}).__aenter__()
    await rt.create_agent(agent("learner", "learner"))
    await rt.start_agent("learner", input={{"learn": {facts!r}}})
    from engine.agents.model import AgentState as S
    info = await rt.wait_for_state("learner", S.COMPLETED, S.FAILED, timeout=60)
    print(info.state.value, flush=True)
    await asyncio.sleep(3600)  # killed here, never closed
asyncio.run(main())
"""


async def test_learner_recalls_after_the_engine_is_killed(tmp_path):
    data = tmp_path / "data"
    code = ENGINE.format(root=str(ROOT), data=str(data), facts=FACTS)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 90
        line = ""
        while time.monotonic() < deadline and not line:
            line = proc.stdout.readline().strip()
            if proc.poll() is not None:
                break
        assert line == "Completed", proc.stderr.read()[-3000:] if proc.poll() is not None else line
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    async with Runtime.open(fast_config(), data) as rt:
        result = await _run(rt, {"ask": list(QUESTIONS)})
    assert [a["answer"] for a in result["answers"]] == list(QUESTIONS.values())
    json.dumps(result)
