"""An agent that fails: it works briefly, then raises. Shows Failed, the exit
status in the agent's detail, and auto-recovery restarts up to the budget."""
import time

print("crasher: starting work", flush=True)
time.sleep(0.5)
raise RuntimeError("crasher: simulated failure")
