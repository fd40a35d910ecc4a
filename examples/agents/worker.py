"""An agent that uses the SDK end to end: reads its input, logs through the
runtime, checks its status, remembers and recalls, sends a message, reads a
secret, and records a result. Capabilities the runtime refuses (by policy or
because they are not configured) are reported, not fatal."""
from symbi_agent import AgentError, agent

task = agent.input() or {"numbers": [1, 2, 3]}
agent.log("worker starting on", task)
status = agent.status()
print(f"I am {status['name']} in tier {status['tier']} with {status['limits']['memory_mb']} MB", flush=True)

numbers = task.get("numbers", [])
total = sum(numbers)
agent.log(f"sum of {len(numbers)} numbers is {total}")

for label, call in [
    ("remember", lambda: agent.remember(f"sum was {total}")),
    ("recall", lambda: agent.recall("sum")),
    ("send", lambda: agent.send(task.get("peer", "nobody"), f"sum={total}")),
    ("secret", lambda: agent.secret(task.get("secret", "app/api_key")) and "<a value>"),
    ("tool", lambda: agent.call_tool("echo", {"text": "hi"})),
]:
    try:
        print(f"{label}: ok {call()!r}", flush=True)
    except AgentError as exc:
        print(f"{label}: refused {exc.code}", flush=True)

agent.result({"sum": total, "count": len(numbers)})
print("worker done", flush=True)
