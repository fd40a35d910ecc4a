"""Vault costs on a temporary data dir: durable set, get, list, rotation, Argon2id unlock.

Prints a table; ``run()`` returns its rows (for ``run_all.py``). Every write is
two fsyncs (file and directory) plus the history hard link.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.secrets import KeySource, SecretsConfig, Vault  # noqa: E402

Row = tuple[str, float, str, str]


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def run(n: int = 300, rounds: int = 3) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        vault = Vault.open(Path(tmp) / "data", SecretsConfig())
        per_set, per_get, per_list, per_rot = [], [], [], []
        for r in range(rounds):
            t0 = time.perf_counter()
            for i in range(n):
                vault.set(f"bench/s{i:04d}", f"value-{r}-{i}")
            per_set.append((time.perf_counter() - t0) / n)
            t0 = time.perf_counter()
            for i in range(n):
                vault.get(f"bench/s{i:04d}")
            per_get.append((time.perf_counter() - t0) / n)
            t0 = time.perf_counter()
            vault.list_secrets()
            per_list.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = vault.rotate_key()
            per_rot.append((time.perf_counter() - t0) / max(report.reencrypted, 1))
        rows.append(("secrets: set (durable, with history)", _median_us(per_set), "µs/secret", "-"))
        rows.append(("secrets: get", _median_us(per_get), "µs/secret", "-"))
        rows.append((f"secrets: list {n} with metadata", _median_us(per_list) / 1000, "ms", "-"))
        rows.append(("secrets: rotate-key", _median_us(per_rot), "µs/file", "-"))
        t0 = time.perf_counter()
        Vault.open(Path(tmp) / "pass", SecretsConfig(), key_source=KeySource.passphrase("bench passphrase"))
        rows.append(("secrets: Argon2id unlock (64 MiB, t=3, p=4)", (time.perf_counter() - t0) * 1000, "ms", "-"))
    return rows


def main() -> None:
    print(f"| {'measure':<50} | {'value':>12} | {'unit':<9} |")
    print(f"|{'-' * 52}|{'-' * 14}|{'-' * 11}|")
    for name, value, unit, _ in run():
        print(f"| {name:<50} | {value:>12,.1f} | {unit:<9} |")


if __name__ == "__main__":
    main()
