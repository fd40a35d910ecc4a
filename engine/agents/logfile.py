"""A bounded per-agent log: a file capped in size with one rotation, and
an in-memory tail for the console."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import TextIO

MAX_LINE_CHARS = 8192


class AgentLogFile:
    """Appends lines to ``agent.log``; past ``max_bytes`` it becomes
    ``agent.log.1`` (replacing the previous one) and a new file starts."""

    def __init__(
        self, path: Path | str, max_bytes: int = 1_048_576, tail_lines: int = 500, *, existing: bool = True
    ) -> None:
        self._path = path  # kept as given; made a Path only when the file is first used
        self.max_bytes = max(4096, max_bytes)
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.rotations = 0
        self._fh: TextIO | None = None
        self._size = 0
        if existing and os.path.exists(path):
            self._load_tail()

    @property
    def path(self) -> Path:
        if not isinstance(self._path, Path):
            self._path = Path(self._path)
        return self._path

    def _load_tail(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 256 * 1024))
                data = fh.read()
        except OSError:
            return
        for line in data.decode("utf-8", "replace").splitlines()[-(self.tail.maxlen or 500) :]:
            self.tail.append(line)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8", errors="replace", buffering=1)
        self._size = self._fh.tell()

    def write(self, line: str) -> str:
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f"... [{len(line) - MAX_LINE_CHARS} chars cut]"
        self.tail.append(line)
        if self._fh is None:
            self._open()
        assert self._fh is not None
        self._fh.write(line + "\n")
        self._size += len(line.encode("utf-8", "replace")) + 1
        if self._size >= self.max_bytes:
            self._rotate()
        return line

    def _rotate(self) -> None:
        assert self._fh is not None
        self._fh.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self.rotations += 1
        self._open()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
