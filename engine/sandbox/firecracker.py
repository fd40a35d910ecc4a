"""Tier3 (Firecracker microVMs): detection only.

Running an agent in a microVM needs three things on the host: the
``firecracker`` binary (on PATH or ``sandbox.firecracker_binary``), a guest
kernel image (``sandbox.firecracker_kernel``) and a usable ``/dev/kvm``.
:func:`detect` names each one that is missing. Launching microVMs is not
implemented yet, so even with all three present the tier reports itself
unavailable, saying so.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

KVM = Path("/dev/kvm")


@dataclass(frozen=True)
class FirecrackerStatus:
    available: bool
    missing: tuple[str, ...]
    detail: str
    fix: str | None


def _kvm_usable(kvm: Path) -> str | None:
    """None when /dev/kvm can be opened read-write, else why not."""
    if not kvm.exists():
        return f"{kvm} does not exist (no hardware virtualisation exposed to this machine)"
    try:
        fd = os.open(kvm, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"{kvm} cannot be opened: {exc.strerror}"
    os.close(fd)
    return None


def detect(binary: str = "firecracker", kernel: str | None = None, kvm: Path = KVM) -> FirecrackerStatus:
    missing: list[str] = []
    fixes: list[str] = []
    found = shutil.which(binary)
    if found is None:
        missing.append(f"firecracker binary {binary!r} not found")
        fixes.append("install a firecracker release binary and set sandbox.firecracker_binary")
    if not kernel:
        missing.append("no guest kernel configured (sandbox.firecracker_kernel)")
        fixes.append("set sandbox.firecracker_kernel to a vmlinux built for Firecracker")
    elif not Path(kernel).is_file():
        missing.append(f"guest kernel {kernel} does not exist")
        fixes.append("point sandbox.firecracker_kernel at an existing vmlinux")
    kvm_problem = _kvm_usable(kvm)
    if kvm_problem:
        missing.append(kvm_problem)
        fixes.append("run on a host (or nested-virtualisation VM) that exposes /dev/kvm")
    if missing:
        return FirecrackerStatus(False, tuple(missing), "; ".join(missing), "; ".join(fixes))
    return FirecrackerStatus(
        False,
        (),
        f"{found}, kernel {kernel} and {kvm} are present, but launching agents in microVMs is not implemented yet",
        "use Tier2 (gVisor) for the strongest isolation available in this version",
    )
