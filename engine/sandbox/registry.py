"""Which security tiers work on this machine, and the executor for each.

:class:`SandboxRegistry` is the runtime's one door to the tiers:

* :meth:`~SandboxRegistry.doctor` probes them once (bwrap by running it,
  cgroups by creating our parent group, Docker by ``ping`` + ``info`` + the
  image's labels, Firecracker by looking for its pieces) and caches the
  answer; :meth:`~SandboxRegistry.refresh` probes again. The probes block
  (a few ms; up to the Docker timeout with a dead ``DOCKER_HOST``): call
  :meth:`~SandboxRegistry.adoctor` from async code.
* :meth:`~SandboxRegistry.executor_for` gives the executor for a
  :class:`SecurityTier`. A tier that does not work here is ``SANDBOX_001``
  naming what is missing and how to fix it (``SANDBOX_002`` for a missing
  image) -- never a silent downgrade. Only with ``sandbox.allow_fallback``
  does it return the native executor instead, with a note for the agent's
  log, and a ``tier`` label that says so ("native+bwrap (fallback from
  Tier1)").
* :meth:`~SandboxRegistry.reap` / :meth:`~SandboxRegistry.reap_all_labelled`
  clean up after an engine that died (see :mod:`engine.sandbox.reaper`).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.agents.executor import Executor
from engine.agents.model import SecurityTier
from engine.config import SandboxConfig
from engine.errors import ErrorCode, SymbiError
from engine.sandbox import bwrap as bwrap_mod
from engine.sandbox import confinement, firecracker
from engine.sandbox.cgroups import CgroupManager
from engine.sandbox.docker_tier import DAEMON_FIX, DockerExecutor, DockerState, docker_client, probe_docker
from engine.sandbox.image import default_sdk_dir, image_status
from engine.sandbox.native import NativeSandboxExecutor
from engine.sandbox.reaper import reap_labelled, reap_ref

NATIVE, LANDLOCK, BWRAP = "native", "native+landlock", "native+bwrap"
DOCKER, GVISOR, FIRECRACKER = "docker", "gvisor", "firecracker"
UNCONFINED_FIX = (
    "install bubblewrap (apt-get install bubblewrap) or use a kernel with Landlock (5.13+); "
    'sandbox.native_isolation = "none" runs agents unconfined, as the engine\'s user (not recommended)'
)
GOFER_UDS_FLAG = "--fsgofer-host-uds"
REPROBE_AFTER_S = 10.0  # an unavailable tier is probed again on request at most this often


def engine_label(data_dir: Path) -> str:
    """The label value that marks an engine's containers and cgroups (unique per data dir)."""
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TierStatus:
    """One row of ``symbiont sandbox doctor``."""

    tier: SecurityTier
    name: str
    available: bool
    detail: str
    fix: str | None = None


def _gvisor_config_fix(runtime: str) -> str:
    return (
        f"register gVisor with dockerd: put "
        f'{{"runtimes": {{"{runtime}": {{"path": "/usr/bin/runsc", '
        f'"runtimeArgs": ["--network=none", "{GOFER_UDS_FLAG}"]}}}}}} '
        "in /etc/docker/daemon.json (or the file given to dockerd --config-file) and restart dockerd "
        "(apt-get install runsc first if /usr/bin/runsc is missing)"
    )


class SandboxRegistry:
    """The tiers of one engine (one data dir)."""

    def __init__(
        self,
        config: SandboxConfig,
        data_dir: Path,
        *,
        sdk_dir: Path | None = None,
        python: str | None = None,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.engine_label = engine_label(self.data_dir)
        self.sdk_dir = sdk_dir if sdk_dir is not None else default_sdk_dir()
        self.python = python
        self.cgroups = CgroupManager(config.cgroup_root)
        self._lock = threading.RLock()
        self._status: dict[str, TierStatus] | None = None
        self._probed_at = 0.0
        self._image_missing: set[str] = set()
        self._docker: DockerState | None = None
        self._confinement: confinement.ConfinementStatus | None = None
        self._client: Any = None
        self._executors: dict[str, Executor] = {}

    @property
    def labels(self) -> dict[str, str]:
        """Labels for :attr:`LaunchSpec.labels`, so leftovers can be found by :meth:`reap_all_labelled`."""
        return {"symbi.engine": self.engine_label}

    # -- probing ------------------------------------------------------------------

    def doctor(self) -> list[TierStatus]:
        with self._lock:
            if self._status is None:
                self._image_missing = set()
                self._status = self._probe_all()
                self._probed_at = time.monotonic()
            return list(self._status.values())

    async def adoctor(self) -> list[TierStatus]:
        return await asyncio.to_thread(self.doctor)

    def refresh(self) -> list[TierStatus]:
        with self._lock:
            self._status = None
            self._executors.clear()
            self.cgroups.detect(refresh=True)
            return self.doctor()

    def status(self, name: str) -> TierStatus:
        return {s.name: s for s in self.doctor()}[name]

    def available_tiers(self) -> list[SecurityTier]:
        """The tiers an agent can be created with here (for the console's create form). Native counts only
        when a native agent would really start (confined, or unconfined because the operator wrote none)."""
        tiers: set[SecurityTier] = {s.tier for s in self.doctor() if s.available and s.tier is not SecurityTier.NATIVE}
        if self.native_summary()[0] is not None:
            tiers.add(SecurityTier.NATIVE)
        return sorted(tiers, key=list(SecurityTier).index)

    def _probe_all(self) -> dict[str, TierStatus]:
        rows = [
            self._probe_native(),
            self._probe_landlock(),
            self._probe_bwrap(),
            *self._probe_docker(),
            self._probe_firecracker(),
        ]
        return {row.name: row for row in rows}

    def _probe_native(self) -> TierStatus:
        """The unconfined native tier: used only with native_isolation = none (the limits every native tier has)."""
        support = self.cgroups.detect()
        base = "unconfined, only with native_isolation = none: own session and process group, cleared environment, "
        base += "rlimits (address space, CPU time, open files)"
        if support.usable:
            return TierStatus(SecurityTier.NATIVE, NATIVE, True, f"{base}; {support.detail} limits per agent")
        return TierStatus(
            SecurityTier.NATIVE,
            NATIVE,
            True,
            f"{base}; no cgroup limits ({support.detail}): memory is bounded by RLIMIT_AS and sampling only",
            f"mount the memory, pids and cpu cgroup controllers writable under {self.config.cgroup_root}",
        )

    def _probe_landlock(self) -> TierStatus:
        status = confinement.probe(self.python or bwrap_mod.base_python(), self.config)
        self._confinement = status
        detail = status.detail
        if self.config.native_isolation in ("none", "bwrap"):
            detail = f"not used: sandbox.native_isolation = {self.config.native_isolation}; {detail}"
        return TierStatus(SecurityTier.NATIVE, LANDLOCK, status.available, detail, status.fix)

    def confinement_status(self) -> confinement.ConfinementStatus:
        """The built-in confinement's probe (runs the doctor if it has not run)."""
        self.doctor()
        assert self._confinement is not None
        return self._confinement

    def _probe_bwrap(self) -> TierStatus:
        probe = bwrap_mod.probe()
        detail = probe.detail
        if self.config.native_isolation == "none":
            detail = f"not used: sandbox.native_isolation = none; {detail}"
        return TierStatus(SecurityTier.NATIVE, BWRAP, probe.available, detail, probe.fix)

    def _probe_docker(self) -> list[TierStatus]:
        state, client = probe_docker()  # a client with a short timeout: for probing only
        self._docker = state
        runtime = self.config.gvisor_runtime
        if not state.reachable:
            why = f"Docker unavailable: {state.error}"
            return [
                TierStatus(SecurityTier.TIER1, DOCKER, False, why, DAEMON_FIX),
                TierStatus(SecurityTier.TIER2, GVISOR, False, why, DAEMON_FIX),
            ]
        image, image_detail = image_status(client, self.config.docker_image, self.sdk_dir)
        image_fix = "run `symbiont sandbox prepare-image`" if image == "missing" else None
        if image == "missing":
            self._image_missing.add(DOCKER)
        usable = image != "missing"
        docker_row = TierStatus(
            SecurityTier.TIER1,
            DOCKER,
            usable,
            f"Docker {state.version}; {image_detail}"
            + ("; run prepare-image to refresh it" if image == "stale" else ""),
            image_fix,
        )
        spec = state.runtimes.get(runtime)
        if spec is None:
            gvisor = TierStatus(
                SecurityTier.TIER2,
                GVISOR,
                False,
                f"runtime {runtime!r} is not registered with dockerd (has: {', '.join(sorted(state.runtimes))})",
                _gvisor_config_fix(runtime),
            )
        elif GOFER_UDS_FLAG not in (spec.get("runtimeArgs") or []):
            gvisor = TierStatus(
                SecurityTier.TIER2,
                GVISOR,
                False,
                f"runtime {runtime!r} is registered without {GOFER_UDS_FLAG}: agents could not reach the RPC socket",
                _gvisor_config_fix(runtime),
            )
        else:
            if image == "missing":
                self._image_missing.add(GVISOR)
            args = " ".join(spec.get("runtimeArgs") or [])
            gvisor = TierStatus(
                SecurityTier.TIER2,
                GVISOR,
                usable,
                f"runtime {runtime} ({spec.get('path', '?')} {args}); {image_detail}",
                image_fix,
            )
        return [docker_row, gvisor]

    def _probe_firecracker(self) -> TierStatus:
        fc = firecracker.detect(self.config.firecracker_binary, self.config.firecracker_kernel)
        return TierStatus(SecurityTier.TIER3, FIRECRACKER, fc.available, fc.detail, fc.fix)

    def layers(self) -> list[tuple[str, bool, str]]:
        """Each confinement layer of this machine: (layer, in force here, what it does or why not)."""
        self.doctor()
        conf = self.confinement_status()
        cg = self.cgroups.detect()
        bw = self.status(BWRAP)
        docker, gvisor = self.status(DOCKER), self.status(GVISOR)
        return [
            *conf.layers(),
            ("cgroups", cg.usable, cg.detail),
            ("bubblewrap", bw.available, bw.detail),
            ("Docker", docker.available, docker.detail),
            ("gVisor", gvisor.available, gvisor.detail),
        ]

    def native_summary(self) -> tuple[str | None, str]:
        """(the executor a native agent gets here or None if refused, what it enforces or why it is refused)."""
        try:
            executor, note = self._native()
        except SymbiError as exc:
            return None, f"{exc.code.value}: {exc.message}"
        name = getattr(executor, "name", "native")
        row = self.status({NATIVE: NATIVE, LANDLOCK: LANDLOCK, BWRAP: BWRAP}[name.split(" ")[0]])
        if name.startswith(NATIVE + " "):
            return name, "agents run UNCONFINED as the engine's user (sandbox.native_isolation = none): " + row.detail
        return name, row.detail + (f" ({note})" if note else "")

    # -- executors ----------------------------------------------------------------

    def _make_native(self, kind: str, fallback_from: str | None) -> NativeSandboxExecutor:
        mount_view = kind == LANDLOCK and self._confinement is not None and self._confinement.mount_view
        return NativeSandboxExecutor(
            self.config,
            use_bwrap=kind == BWRAP,
            confine=kind == LANDLOCK,
            mount_view=mount_view,
            cgroups=self.cgroups if self.cgroups.detect().usable else None,
            python=self.python,
            fallback_from=fallback_from,
        )

    def _native(self, fallback_from: str | None = None) -> tuple[Executor, str | None]:
        """The native executor ``native_isolation`` asks for: (executor, a note when it is not the one asked).

        auto: bubblewrap, else the built-in confinement, else SANDBOX_001; bwrap: only bubblewrap (with
        allow_fallback, the built-in confinement); landlock: only the built-in one; none: unconfined.
        Never unconfined unless the operator wrote ``none``.
        """
        iso = self.config.native_isolation
        if iso == "none":
            kind = NATIVE
        elif iso in ("auto", "bwrap") and self.status(BWRAP).available:
            kind = BWRAP
        elif iso == "bwrap" and not self.config.allow_fallback:
            row = self.status(BWRAP)
            raise SymbiError(
                ErrorCode.SANDBOX_001,
                f"sandbox.native_isolation = bwrap, but bubblewrap cannot be used: {row.detail}",
                offending="native+bwrap",
                hint=row.fix or "set sandbox.native_isolation = auto",
            )
        elif self.status(LANDLOCK).available:
            kind = LANDLOCK
        else:
            bw, ll = self.status(BWRAP), self.status(LANDLOCK)
            raise SymbiError(
                ErrorCode.SANDBOX_001,
                f"native agents cannot be confined on this machine: bubblewrap: {bw.detail}; built-in: {ll.detail}",
                offending=f"native_isolation = {iso}",
                hint=UNCONFINED_FIX,
            )
        note = None
        if iso == "bwrap" and kind == LANDLOCK:
            note = (
                f"bubblewrap unavailable ({self.status(BWRAP).detail}); running with the built-in confinement "
                "(sandbox.allow_fallback)"
            )
        key = f"{kind}-{fallback_from}" if fallback_from else kind
        return self._cached(key, lambda: self._make_native(kind, fallback_from)), note

    def _tier_row(self, tier: SecurityTier) -> TierStatus:
        name = {SecurityTier.TIER1: DOCKER, SecurityTier.TIER2: GVISOR, SecurityTier.TIER3: FIRECRACKER}[tier]
        row = self.status(name)
        if not row.available and time.monotonic() - self._probed_at > REPROBE_AFTER_S:
            self.refresh()  # the machine may have changed since the last probe: look once more
            row = self.status(name)
        return row

    def executor_for(self, tier: SecurityTier | str) -> tuple[Executor, str | None]:
        """(executor, fallback note or None); SANDBOX_001/002 when the tier is unavailable and no fallback."""
        tier = SecurityTier(tier) if not isinstance(tier, SecurityTier) else tier
        with self._lock:
            if tier is SecurityTier.NATIVE:
                return self._native_for_config()
            row = self._tier_row(tier)
            if row.available:
                return self._container_executor(tier), None
            return self._unavailable(tier, row)

    def _native_for_config(self) -> tuple[Executor, str | None]:
        return self._native()

    def _cached(self, key: str, make: Any) -> Executor:
        executor = self._executors.get(key)
        if executor is None:
            executor = self._executors[key] = make()
        return executor

    def _container_executor(self, tier: SecurityTier) -> Executor:
        gvisor = tier is SecurityTier.TIER2
        runtime = self.config.gvisor_runtime if gvisor else None
        state = self._docker
        spec = (state.runtimes.get(runtime) if state and runtime else None) or {}
        allow_network = bool(state and state.has_bridge) and "--network=none" not in (spec.get("runtimeArgs") or [])
        return self._cached(
            tier.value,
            lambda: DockerExecutor(
                self.config,
                runtime=runtime,
                name=GVISOR if gvisor else DOCKER,
                allow_network=allow_network,
            ),
        )

    def _unavailable(self, tier: SecurityTier, row: TierStatus) -> tuple[Executor, str | None]:
        image_missing = row.name in self._image_missing
        if self.config.allow_fallback:
            executor, _ = self._native(fallback_from=tier.value)
            note = (
                f"security tier {tier.value} ({row.name}) is unavailable: {row.detail}; "
                f"running as {executor.name} because sandbox.allow_fallback = true"
            )
            return executor, note
        raise SymbiError(
            ErrorCode.SANDBOX_002 if image_missing else ErrorCode.SANDBOX_001,
            f"security tier {tier.value} ({row.name}) is unavailable on this machine: {row.detail}",
            offending=tier.value,
            hint=row.fix or "see `symbiont sandbox doctor`",
        )

    # -- recovery -----------------------------------------------------------------

    def _client_factory(self) -> Any:
        if self._client is None:
            self._client = docker_client(timeout=30.0)
        return self._client

    async def reap(self, ref: str) -> str | None:
        """Kill/remove what a previous engine's handle ``ref`` left; a description, or None if nothing was left."""
        return await asyncio.to_thread(reap_ref, ref, self._client_factory)

    async def reap_all_labelled(self, engine_label: str | None = None, keep_refs: Iterable[str] = ()) -> list[str]:
        """Remove containers and cgroups labelled for this engine that no ref in ``keep_refs`` names."""
        label = engine_label or self.engine_label
        docker_ok = self._docker is None or self._docker.reachable
        return await asyncio.to_thread(
            reap_labelled,
            label,
            list(keep_refs),
            self.cgroups if self.cgroups.detect().usable else None,
            self._client_factory if docker_ok else None,
        )
