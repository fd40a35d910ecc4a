"""A persistent agent: prints a heartbeat every second until stopped.

It exits cleanly on SIGTERM, which is what a graceful stop sends."""
import signal
import sys
import time

running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
beat = 0
while running:
    beat += 1
    print(f"heartbeat {beat}", flush=True)
    time.sleep(1.0)
print("heartbeat agent stopping on SIGTERM", flush=True)
sys.exit(0)
