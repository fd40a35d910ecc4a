"""A benign MCP file server confined to one directory (stdio, MCP SDK 2.x).

Tools: ``list_files(path=".")``, ``read_file(path)``, ``write_file(path, content)``,
``file_info(path)``. Every path is relative to the served root. It is resolved
(symlinks followed) and refused with a clear ``ToolError`` when it is absolute,
contains ``..`` that leaves the root, or reaches outside through a symlink.
After opening, the opened file's real path is checked again (``/proc/self/fd``)
so a symlink swapped in between the check and the open is refused too. Reads
and writes are limited in size; writes go to a temporary file then
``os.replace`` (no half-written files).

Options (command line or environment):
  --root DIR / FILES_ROOT           the directory served (required; must exist)
  --max-bytes N / FILES_MAX_BYTES   largest file read or written (default 1 MiB)
  --sign KEY.pem / FILES_SIGN_KEY   sign every tool definition in its ``_meta`` (SchemaPin)
  --domain DOMAIN / FILES_DOMAIN    the SchemaPin domain named in ``_meta`` (default files.local)
  --http PORT                       serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio

Run: ``python examples/mcp_servers/files_server.py --root ./work``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_ENTRIES = 1000

DESCRIPTIONS = {
    "list_files": "List the entries of a directory inside the served root directory (name, type, size). "
                  "Paths are relative to the root.",
    "read_file": "Read a UTF-8 text file inside the served root directory. Paths are relative to the root; "
                 "files over the size limit are refused.",
    "write_file": "Write UTF-8 text to a file inside the served root directory, replacing it whole. "
                  "Paths are relative to the root; the parent directory must exist.",
    "file_info": "Type, size and modification time of a file or directory inside the served root directory. "
                 "Paths are relative to the root.",
}


class Root:
    """The served directory and the one rule every tool applies: stay inside it."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ValueError(f"root directory {str(path)!r} does not exist or is not a directory")
        self.path = path.resolve(strict=True)
        self.max_bytes = max_bytes

    def _inside(self, candidate: Path) -> bool:
        return candidate == self.path or self.path in candidate.parents

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` under the root, or a ToolError saying why it is refused."""
        if not isinstance(path, str) or "\x00" in path:
            raise ToolError("path must be text without NUL characters")
        given = path.strip() or "."
        if os.path.isabs(given) or given.startswith("~"):
            raise ToolError(f"absolute paths are refused: {path!r}; give a path relative to the served root")
        candidate = (self.path / given).resolve(strict=False)
        if not self._inside(candidate):
            raise ToolError(f"path {path!r} is outside the served root; give a path relative to the root without leaving it")
        return candidate

    def relative(self, real: Path) -> str:
        rel = real.relative_to(self.path).as_posix()
        return rel or "."

    def check_opened(self, fd: int, path: str) -> None:
        """The opened file must still be inside the root (a symlink may have been swapped in since resolve)."""
        proc = f"/proc/self/fd/{fd}"
        if os.path.exists(proc) and not self._inside(Path(os.readlink(proc))):
            raise ToolError(f"path {path!r} is outside the served root")


def build_server(root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, sign_key: bytes | None = None,
                 domain: str = "files.local") -> MCPServer:
    """The file tools over ``root``. ``sign_key`` (PEM) signs each definition in ``_meta`` for ``domain``."""
    r = Root(root, max_bytes)
    server = MCPServer("symbi-files")

    def list_files(path: str = ".") -> dict[str, Any]:
        real = r.resolve(path)
        if not real.is_dir():
            raise ToolError(f"{path!r} is not a directory")
        entries: list[dict[str, Any]] = []
        names = sorted(os.listdir(real))
        for name in names[:MAX_ENTRIES]:
            try:
                st = os.lstat(real / name)
            except OSError:
                continue
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
            entries.append({"name": name, "type": kind, "size": st.st_size if kind == "file" else None})
        return {"path": r.relative(real), "entries": entries, "truncated": len(names) > MAX_ENTRIES}

    def read_file(path: str) -> str:
        real = r.resolve(path)
        if real.is_dir():
            raise ToolError(f"{path!r} is a directory; use list_files")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise ToolError(f"no such file: {path!r}") from None
        except OSError as exc:
            raise ToolError(f"cannot read {path!r}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            r.check_opened(fh.fileno(), path)
            size = os.fstat(fh.fileno()).st_size
            if size > r.max_bytes:
                raise ToolError(f"{path!r} is {size} bytes; the read limit is {r.max_bytes} bytes")
            data = fh.read(r.max_bytes + 1)
        if len(data) > r.max_bytes:
            raise ToolError(f"{path!r} is larger than the read limit of {r.max_bytes} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path!r} is not UTF-8 text") from None

    def write_file(path: str, content: str) -> str:
        real = r.resolve(path)
        data = content.encode("utf-8")
        if len(data) > r.max_bytes:
            raise ToolError(f"content is {len(data)} bytes; the write limit is {r.max_bytes} bytes")
        if real == r.path or real.is_dir():
            raise ToolError(f"{path!r} is a directory")
        if not real.parent.is_dir():
            raise ToolError(f"the parent directory of {path!r} does not exist")
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=".files-", suffix=".tmp")
        try:
            r.check_opened(fd, path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return f"wrote {len(data)} bytes to {r.relative(real)}"

    def file_info(path: str) -> dict[str, Any]:
        real = r.resolve(path)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise ToolError(f"no such file or directory: {path!r}") from None
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        return {"path": r.relative(real), "type": kind, "size": st.st_size,
                "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))}

    for fn in (list_files, read_file, write_file, file_info):
        server.add_tool(fn, name=fn.__name__, description=DESCRIPTIONS[fn.__name__])
    if sign_key is not None:
        sign_tools(server, sign_key, domain)
    return server


def sign_tools(server: MCPServer, key_pem: bytes, domain: str) -> None:
    """Put a SchemaPin signature of each tool definition in its ``_meta`` (as demo_server does)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from demo_server import _sign_all

    _sign_all(server, key_pem, domain)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.environ.get("FILES_ROOT"), help="the directory to serve (required)")
    p.add_argument("--max-bytes", type=int, default=int(os.environ.get("FILES_MAX_BYTES", DEFAULT_MAX_BYTES)))
    p.add_argument("--sign", default=os.environ.get("FILES_SIGN_KEY"), help="PEM private key to sign tools with")
    p.add_argument("--domain", default=os.environ.get("FILES_DOMAIN", "files.local"))
    p.add_argument("--http", type=int, metavar="PORT", default=None,
                   help="serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio")
    args = p.parse_args()
    if not args.root:
        p.error("give the directory to serve with --root DIR or FILES_ROOT")
    try:
        key = Path(args.sign).read_bytes() if args.sign else None
        server = build_server(args.root, max_bytes=args.max_bytes, sign_key=key, domain=args.domain)
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    if args.http is not None:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
