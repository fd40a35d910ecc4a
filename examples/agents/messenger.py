"""A chatty agent: sends a numbered message to its peer (input "peer") every
half second and prints what it receives, until stopped."""
import time

from symbi_agent import AgentError, agent

settings = agent.input() or {}
peer = settings.get("peer", "")
count = int(settings.get("count", 20))
for n in range(1, count + 1):
    if peer:
        try:
            agent.send(peer, f"message {n} from {agent.name}")
        except AgentError as exc:
            print(f"send {n} refused: {exc.code}: {exc.message}", flush=True)
    try:
        msg = agent.receive(timeout=0.5)
    except AgentError as exc:
        print(f"receive refused: {exc.code}", flush=True)
        time.sleep(0.5)
        continue
    if msg:
        print(f"received from {msg.get('sender')}: {msg['payload'].decode(errors='replace')}", flush=True)
print("messenger done", flush=True)
