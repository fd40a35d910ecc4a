"""A persistent agent: sends a protocol heartbeat and prints a line every
second until stopped. It exits cleanly on SIGTERM (what a graceful stop
sends)."""
import signal
import sys
import time

from symbi_agent import AgentError, agent

running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
beat = 0
while running:
    beat += 1
    try:
        agent.heartbeat()
    except (AgentError, OSError) as exc:  # still useful as a plain process
        print(f"heartbeat {beat} (runtime unreachable: {exc})", flush=True)
    else:
        print(f"heartbeat {beat}", flush=True)
    time.sleep(1.0)
print("heartbeat agent stopping on SIGTERM", flush=True)
sys.exit(0)
