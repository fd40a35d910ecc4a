"""The local agent image for the Docker and gVisor tiers, built without any registry.

:func:`prepare_image` makes ``symbi-agent:latest`` (``sandbox.docker_image``)
from a Debian root filesystem:

1. reuse the rootfs cached at ``/var/cache/symbi/rootfs`` (or ``--rootfs``),
   else create it with ``debootstrap --variant=minbase
   --include=python3-minimal,libpython3.11-stdlib bookworm``; a cached
   python3-minimal-only rootfs lacks ``json``, ``asyncio`` and friends, so
   the full standard library is added with ``apt-get`` in a chroot;
2. stream it as a tar (without apt lists, caches and docs), adding the agent
   SDK (``sdk/symbi_agent``) under ``/opt/symbi/sdk`` and the ``/work`` and
   ``/run/symbi`` mount points;
3. ``docker import`` it with ``ENV PYTHONPATH=/opt/symbi/sdk``, ``WORKDIR
   /work``, ``USER 65534:65534`` and the label ``symbi.sdk_hash``.

The executors mount the current SDK over ``/opt/symbi/sdk`` anyway, so an
image whose SDK hash differs is only "stale" (a warning in ``doctor``).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError

DEFAULT_ROOTFS = Path("/var/cache/symbi/rootfs")
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3-minimal", "libpython3.11-stdlib")
SDK_LABEL = "symbi.sdk_hash"
IMAGE_LABEL = "symbi.image"
_EXCLUDE = ("var/lib/apt/lists/", "var/cache/apt/", "usr/share/doc/", "usr/share/man/", "usr/share/info/")
CHUNK = 1 << 20

Say = Callable[[str], None]


def default_sdk_dir() -> Path | None:
    """The directory containing the ``symbi_agent`` package (the repo's ``sdk/``), if any."""
    import importlib.util

    spec = importlib.util.find_spec("symbi_agent")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent.parent
    candidate = Path(__file__).resolve().parents[2] / "sdk"
    return candidate if (candidate / "symbi_agent").is_dir() else None


def _sdk_files(sdk_dir: Path) -> list[Path]:
    pkg = sdk_dir / "symbi_agent"
    return sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def sdk_hash(sdk_dir: Path) -> str:
    """SHA-256 over the SDK's file names and contents (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in _sdk_files(sdk_dir):
        digest.update(str(path.relative_to(sdk_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def image_status(client: Any, tag: str, sdk_dir: Path | None) -> tuple[str, str]:
    """("ok" | "stale" | "missing", a sentence) for the image ``tag``."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return "missing", f"image {tag} not found"
    labels = image.labels or {}
    size = f"{image.attrs.get('Size', 0) / 1e6:.0f} MB"
    if labels.get(IMAGE_LABEL) != "agent":
        return "ok", f"image {tag} ({size}; not built by prepare-image)"
    if sdk_dir is not None and labels.get(SDK_LABEL) != sdk_hash(sdk_dir):
        return "stale", f"image {tag} ({size}) carries an older agent SDK (the current one is mounted over it)"
    return "ok", f"image {tag} ({size}, SDK {labels.get(SDK_LABEL)})"


def _has_python(rootfs: Path) -> bool:
    return (rootfs / "usr/bin/python3").exists() or (rootfs / "usr/bin/python3").is_symlink()


def _has_stdlib(rootfs: Path) -> bool:
    return any((p / "json" / "__init__.py").exists() for p in (rootfs / "usr/lib").glob("python3*"))


def _run(cmd: list[str], say: Say, what: str) -> None:
    say(f"$ {' '.join(cmd)}")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise SymbiError(
            ErrorCode.SANDBOX_003,
            f"{what} failed (exit {result.returncode}): {tail}",
            offending=cmd[0],
            hint="run as root with network access to the Debian mirror",
        )


def ensure_rootfs(rootfs: Path, say: Say = print) -> Path:
    """A Debian rootfs with Python and its full standard library at ``rootfs`` (made or completed)."""
    if not _has_python(rootfs):
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise SymbiError(
                ErrorCode.SANDBOX_003,
                f"no root filesystem at {rootfs} and debootstrap is not installed",
                offending=str(rootfs),
                hint="apt-get install debootstrap, or pass --rootfs DIR with a Debian rootfs that has python3",
            )
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        say(f"creating a Debian {DEBIAN_SUITE} rootfs at {rootfs} (about 30 s)")
        cmd = [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", DEBIAN_SUITE, str(rootfs)]
        _run(cmd + [DEBIAN_MIRROR], say, "debootstrap")
    else:
        say(f"reusing the rootfs at {rootfs}")
    if not _has_stdlib(rootfs):
        say("adding the full Python standard library (libpython3.11-stdlib) in a chroot")
        script = "apt-get update -qq && apt-get install -y -qq --no-install-recommends libpython3.11-stdlib"
        script += " && apt-get clean"
        env = ["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive"]
        _run(["chroot", str(rootfs), *env, "sh", "-c", script], say, "apt-get install in the rootfs")
    return rootfs


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _write_tar(out: io.BufferedWriter, rootfs: Path, sdk_dir: Path | None) -> None:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = info.name.removeprefix("./")
        if name.startswith("opt/symbi/sdk/"):  # replaced by the current SDK below
            return None
        return None if any(name.startswith(prefix) and name != prefix.rstrip("/") for prefix in _EXCLUDE) else info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(rootfs), arcname=".", filter=keep)
        # a tar for docker import must not name a path twice: add only what the rootfs lacks
        for name, mode in (("opt", 0o755), ("opt/symbi", 0o755), ("opt/symbi/sdk", 0o755), ("run", 0o755)):
            if not (rootfs / name).exists():
                _add_dir(tar, f"./{name}", mode)
        for name, mode in (("run/symbi", 0o755), ("work", 0o1777)):
            if not (rootfs / name).exists():
                _add_dir(tar, f"./{name}", mode)
        if sdk_dir is not None:
            made: set[Path] = set()
            for path in _sdk_files(sdk_dir):
                rel = path.relative_to(sdk_dir)
                for parent in reversed(rel.parents[:-1]):
                    if parent not in made:
                        made.add(parent)
                        _add_dir(tar, f"./opt/symbi/sdk/{parent}")
                info = tarfile.TarInfo(f"./opt/symbi/sdk/{rel}")
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))


class _TarPipe:
    """A tar made on the fly in a thread; iterating yields it in 1 MiB chunks (a chunked HTTP body)."""

    def __init__(self, rootfs: Path, sdk_dir: Path | None) -> None:
        read_fd, write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb")
        self.error: BaseException | None = None

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb") as out:
                    _write_tar(out, rootfs, sdk_dir)
            except BaseException as exc:  # reported after the upload ends
                self.error = exc

        self._thread = threading.Thread(target=produce, name="symbi-image-tar", daemon=True)
        self._thread.start()

    def read(self, size: int = -1) -> bytes:
        return self._reader.read(size)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._reader.read(CHUNK):
            yield chunk
        self._thread.join()
        self._reader.close()


def prepare_image(
    tag: str,
    *,
    rootfs: Path | None = None,
    rebuild: bool = False,
    sdk_dir: Path | None = None,
    client: Any = None,
    say: Say = print,
) -> str:
    """Build (or confirm) the local agent image; returns its id."""
    from engine.sandbox.docker_tier import docker_client

    client = client or docker_client()
    sdk_dir = sdk_dir if sdk_dir is not None else default_sdk_dir()
    if not rebuild:
        state, detail = image_status(client, tag, sdk_dir)
        if state == "ok":
            say(f"{detail}: up to date")
            current: str = client.images.get(tag).id
            return current
        say(detail)
    root = ensure_rootfs(rootfs or DEFAULT_ROOTFS, say)
    changes = [
        "ENV PYTHONPATH=/opt/symbi/sdk",
        "ENV PYTHONUNBUFFERED=1",
        "ENV LANG=C.UTF-8",
        "WORKDIR /work",
        "USER 65534:65534",
        'CMD ["python3"]',
        f"LABEL {IMAGE_LABEL}=agent",
    ]
    if sdk_dir is not None:
        changes.append(f"LABEL {SDK_LABEL}={sdk_hash(sdk_dir)}")
    repo, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    say(f"importing {root} + SDK {sdk_dir} as {tag}")
    stream = _TarPipe(root, sdk_dir)
    client.api.import_image(src=stream, repository=repo, tag=version, changes=changes, stream_src=True)
    if stream.error is not None:
        raise SymbiError(
            ErrorCode.SANDBOX_003, f"could not read the rootfs: {stream.error}", offending=str(root)
        ) from stream.error
    image = client.images.get(tag)
    say(f"built {tag} ({image.short_id}, {image.attrs.get('Size', 0) / 1e6:.0f} MB)")
    built: str = image.id
    return built
