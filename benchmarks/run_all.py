"""`make bench`: every benchmark, one table. Figures are medians on a shared,
noisy machine; compare ratios, not single numbers."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_agents  # noqa: E402
import bench_core  # noqa: E402


def main() -> None:
    rows = bench_agents.run() + bench_core.run()
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores")
    print(f"| {'measure':<50} | {'value':>12} | {'unit':<9} | {'seed claim':<28} |")
    print(f"|{'-' * 52}|{'-' * 14}|{'-' * 11}|{'-' * 30}|")
    for name, value, unit, claim in rows:
        shown = f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
        print(f"| {name:<50} | {shown:>12} | {unit:<9} | {claim:<28} |")


if __name__ == "__main__":
    main()
