"""Real SIGKILLs of a writer and of a key rotation; afterwards every secret still reads.

A child process loops writes (or rotations) on a vault filled beforehand. It is
killed with ``SIGKILL`` either by this test at a random moment, or by itself at
a precise point (just before or after the N-th ``rename``/``link``, or at a
rotation phase), which is still a real kill -9 with no cleanup. Then the vault
must open, finish or discard what was interrupted, and read every secret,
previous versions included, with a value that was actually written.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.secrets import SecretsConfig, Vault
from engine.secrets.fileformat import parse_header
from tests.test_secrets_support import ROOT, clean_env  # noqa: F401  (autouse fixture)

CONFIG = SecretsConfig(keep_versions=2)
WRITE_SECRETS = 30
ROTATE_SECRETS = 40

CHILD = r"""
import os, signal, sys
from engine.secrets import SecretsConfig, Vault

mode, data, n, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
vault = Vault.open(data, SecretsConfig(keep_versions=2))


def die():
    os.kill(os.getpid(), signal.SIGKILL)


progress = None
if kill_at.startswith(("replace:", "replaced:", "link:")):
    kind, nth = kill_at.split(":")
    nth, count = int(nth), [0]
    real = getattr(os, "link" if kind == "link" else "replace")

    def hooked(*args, **kwargs):
        count[0] += 1
        if kind != "replaced" and count[0] == nth:
            die()
        real(*args, **kwargs)
        if kind == "replaced" and count[0] == nth:
            die()

    setattr(os, "link" if kind == "link" else "replace", hooked)
elif kill_at.startswith("phase:"):
    _, phase, at = kill_at.split(":")

    def progress(name, done, total):
        if name == phase and done == int(at):
            die()

print("ready", flush=True)
i = 0
while True:
    i += 1
    if mode == "write":
        for j in range(n):
            vault.set(f"w/s{j:03d}", f"value-{j:03d}-{i}")
    else:
        vault.rotate_key(progress=progress)
"""


def run_child(data: Path, mode: str, n: int, kill_at: str = "none", delay: float | None = None) -> int:
    """Start the looping child; kill it after ``delay`` seconds (or let it kill itself). Returns its status."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(data), str(n), kill_at],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        assert line == b"ready\n", proc.stderr.read().decode()
        if delay is not None:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        status = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert status == -signal.SIGKILL, proc.stderr
    return status


def debris(data: Path) -> list[str]:
    return sorted(str(p) for p in data.rglob("*.tmp"))


def fill(data: Path, n: int, versions: int) -> dict[str, list[str]]:
    vault = Vault.open(data, CONFIG)
    written: dict[str, list[str]] = {}
    for k in range(n):
        for i in range(versions):
            value = f"value-{k:03d}-{i}"
            vault.set(f"w/s{k:03d}", value)
            written.setdefault(f"w/s{k:03d}", []).append(value)
    return written


def check_writes(data: Path, why: str) -> Vault:
    vault = Vault.open(data, CONFIG)  # must open: recovery happens here
    assert debris(data) == [], why
    for k in range(WRITE_SECRETS):
        name = f"w/s{k:03d}"
        value = vault.get(name).reveal()
        assert re.fullmatch(rf"value-{k:03d}-\d+", value), (why, name, value)
        versions = [info.version for info in vault.history(name)]  # every kept version decrypts
        assert versions == sorted(versions, reverse=True), (why, name, versions)
    vault.set("after/crash", "ok")
    assert vault.get("after/crash").reveal() == "ok"
    return vault


def check_rotation(data: Path, written: dict[str, list[str]], why: str) -> Vault:
    vault = Vault.open(data, CONFIG)
    assert debris(data) == [], why
    assert not (data / "keys" / "rotation").exists(), why
    for name, values in written.items():
        assert vault.get(name).reveal() == values[-1], (why, name)
        assert [vault.get(name, version=v).reveal() for v in range(1, len(values) + 1)] == values, (why, name)
    files = [p for p in vault.base.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert {parse_header(p.read_bytes(), str(p)).key_id for p in files} == {vault.key_id}, why
    return vault


def test_sigkill_of_a_writer_at_random_moments(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    data = tmp_path / "data"
    fill(data, WRITE_SECRETS, 1)
    for round_ in range(3):
        delay = rng.uniform(0.0, 0.2)
        run_child(data, "write", WRITE_SECRETS, delay=delay)
        check_writes(data, f"seed={seed} round={round_} delay={delay:.3f}")


@pytest.mark.parametrize("kill_at", ["replace:4", "replaced:6", "link:3", "replace:11"])
def test_sigkill_of_a_writer_at_each_step_of_a_write(tmp_path, kill_at):
    data = tmp_path / "data"
    fill(data, WRITE_SECRETS, 2)
    run_child(data, "write", WRITE_SECRETS, kill_at)
    check_writes(data, kill_at)


def test_sigkill_of_a_rotation_at_random_moments(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    data = tmp_path / "data"
    written = fill(data, ROTATE_SECRETS, 3)
    for round_ in range(3):
        delay = rng.uniform(0.0, 0.3)
        run_child(data, "rotate", 0, delay=delay)
        check_rotation(data, written, f"seed={seed} round={round_} delay={delay:.3f}")


@pytest.mark.parametrize(
    "kill_at, journal_left",
    [
        ("replace:2", False),  # staging: old key written, new key not yet
        ("replace:3", False),  # staging: journal written to its temp file, not yet committed
        ("replaced:3", True),  # journal committed, nothing re-encrypted
        ("phase:reencrypt:50", True),  # half the files under each key
        ("phase:installed:120", True),  # new key installed, journal not yet removed
    ],
)
def test_sigkill_of_a_rotation_at_each_step(tmp_path, kill_at, journal_left):
    data = tmp_path / "data"
    written = fill(data, ROTATE_SECRETS, 3)
    before = Vault.open(data, CONFIG)
    old_key = before.key_id
    run_child(data, "rotate", 0, kill_at)
    assert (data / "keys" / "rotation" / "journal.json").exists() == journal_left
    if journal_left:
        # A vault opened before the crash finishes the rotation on its next write.
        before.set("after/crash", "ok")
        assert before.key_id != old_key
    vault = check_rotation(data, {**written, **({"after/crash": ["ok"]} if journal_left else {})}, kill_at)
    assert (vault.key_id != old_key) == journal_left
