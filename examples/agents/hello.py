"""An ephemeral agent: greets, does a little work, and completes (exit 0)."""
import os
import time

name = os.environ.get("SYMBI_AGENT_NAME", "agent")
print(f"hello from {name}", flush=True)
total = 0
for step in range(1, 4):
    total += step * step
    print(f"step {step}: running total {total}", flush=True)
    time.sleep(0.3)
print(f"done: result {total}", flush=True)
