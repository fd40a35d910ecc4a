"""File helpers of the vault: sweeping the debris of interrupted writes, walking and pruning its tree.

The crash-safe private reads and writes themselves (``write_private``,
``create_exclusive``, ``read_private``, ``private_dir``, ``fsync_dir``) live in
:mod:`engine.atomicfile`, shared with every other writer of key and state files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from engine.atomicfile import TEMP_SUFFIX


def remove_stale_temps(root: Path) -> int:
    """Delete ``.*.tmp`` debris of interrupted atomic writes under ``root``. Returns the count.

    Call only while holding the vault's write lock, so no live writer's temp
    file can be removed.
    """
    removed = 0
    for temp in iter_files(root, hidden=True):
        if temp.name.startswith(".") and temp.name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed += 1
    return removed


def iter_files(root: Path, *, hidden: bool = False) -> Iterator[Path]:
    """Regular files under ``root`` (not following symlinks); dot-directories are skipped."""
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if hidden or not name.startswith("."):
                yield Path(dirpath, name)


def remove_empty_dirs(start: Path, stop: Path) -> None:
    """Remove ``start`` and its parents while empty, stopping at (and keeping) ``stop``."""
    current = start
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent
