"""An agent that grows its memory by 16 MB every half second, to show
memory-limit enforcement: it is killed when it passes its limit."""
import time

blocks = []
while True:
    blocks.append(bytearray(16 * 1024 * 1024))
    print(f"holding {len(blocks) * 16} MB", flush=True)
    time.sleep(0.5)
