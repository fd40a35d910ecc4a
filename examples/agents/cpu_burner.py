"""An agent that keeps one core busy, to show CPU gauges and CPU-limit
enforcement."""
import time

start = time.time()
count = 0
while True:
    count += 1
    if count % 5_000_000 == 0:
        print(f"burned {time.time() - start:.0f}s of cpu", flush=True)
