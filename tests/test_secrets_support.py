"""Helpers shared by the secrets tests (``tests/test_secrets_*.py``); no tests live here.

* ``clean_env`` (autouse where imported): no master key, passphrase or editor
  leaks in from the developer's shell.
* ``fast_config``: the vault defaults with a cheap Argon2id, so passphrase
  tests stay fast.
* ``run_cli`` runs ``symbiont`` in-process with the secrets plugin registered;
  ``run_cli_process`` runs it as a real subprocess through a tiny wrapper.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import engine.cli
from engine.secrets import SecretsConfig

ROOT = Path(__file__).resolve().parent.parent
CLI_WRAPPER = (
    "import sys, engine.cli\nengine.cli._PLUGINS = ('engine.secrets.cli',)\nsys.exit(engine.cli.main(sys.argv[1:]))\n"
)
ENV_VARS = (
    "SYMBIONT_MASTER_KEY",
    "SYMBIONT_MASTER_PASSPHRASE",
    "SYMBIONT_NEW_MASTER_PASSPHRASE",
    "SYMBI_DATA_DIR",
    "SYMBI_CONFIG",
    "EDITOR",
    "VISUAL",
)


def fast_config(**fields) -> SecretsConfig:
    base = {"argon2_memory_kib": 1024, "argon2_iterations": 1, "argon2_lanes": 1}
    base.update(fields)
    return SecretsConfig(**base)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class CliResult:
    code: int
    out: bytes
    err: str


def run_cli(monkeypatch: pytest.MonkeyPatch, capfdbinary, args: list[str], stdin: bytes | None = None) -> CliResult:
    """``symbiont ARGS`` in-process; stdin fed from ``stdin`` (a pipe, never a terminal)."""
    monkeypatch.setattr(engine.cli, "_PLUGINS", ("engine.secrets.cli",))
    read_fd, write_fd = os.pipe()
    os.write(write_fd, stdin or b"")
    os.close(write_fd)
    stdin_file = os.fdopen(read_fd, "r", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin_file)
    capfdbinary.readouterr()
    try:
        code = engine.cli.main(args)
    finally:
        stdin_file.close()
    sys.stdout.flush()
    captured = capfdbinary.readouterr()
    return CliResult(code, captured.out, captured.err.decode("utf-8", "replace"))


def run_cli_process(args: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None) -> CliResult:
    """``symbiont ARGS`` as a separate process (the real entry point, via a wrapper)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", CLI_WRAPPER, *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=full_env,
        timeout=60,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))
