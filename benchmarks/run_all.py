"""`make bench`: every benchmark, one table (a few minutes on 2 cores).

Figures are medians on a shared, noisy machine; compare ratios, not single
numbers. ``--only NAME[,NAME]`` runs some of them (agents, core, tiers,
audit, comms, policy, sandbox, secrets, mcp, knowledge, http)."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ORDER = ["agents", "core", "tiers", "audit", "comms", "policy", "sandbox", "secrets", "mcp", "knowledge", "http"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(ORDER))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else ORDER
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"| {'group':<8} | {'measure':<58} | {'value':>12} | {'unit':<9} | {'seed / reference':<30} |")
    print(f"|{'-' * 10}|{'-' * 60}|{'-' * 14}|{'-' * 11}|{'-' * 32}|")
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        t0 = time.time()
        rows = module.run()
        for measure, value, unit, claim in rows:
            if isinstance(value, float) and math.isnan(value):
                shown = "n/a"
            elif unit == "ratio":  # recall: two places would hide 0.93 vs 0.98
                shown = f"{value:.3f}"
            else:
                shown = f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
            print(f"| {name:<8} | {measure:<58} | {shown:>12} | {unit:<9} | {claim:<30} |", flush=True)
        print(f"# {name}: {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
