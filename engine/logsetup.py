"""Logging set-up shared by the headless engine, the CLI and the console.

The engine logs to ``<data dir>/engine.log`` (rotated) and, when headless, to
stderr too. Agent output goes to per-agent logs, not here.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def setup_logging(level: str, data_dir: Path | None, *, to_stderr: bool) -> None:
    root = logging.getLogger("symbi")
    root.setLevel(LEVELS.get(level.lower(), logging.INFO))
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if data_dir is not None:
        from engine.datadir import ensure_data_dir

        ensure_data_dir(data_dir)  # 0700 when new: Runtime.start refuses a looser one (RUNTIME_003)
        fh = logging.handlers.RotatingFileHandler(data_dir / "engine.log", maxBytes=5_000_000, backupCount=2)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    if to_stderr:
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        root.addHandler(sh)
