"""Forks without bound, to show the pids limit holding (only run it in a sandbox tier)."""
import os
import time

children = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
    except OSError as exc:
        print(f"fork refused after {children} children: {exc}", flush=True)
        time.sleep(1)
