"""Resource accounting: what the machine offers and what each agent holds.

The :class:`ResourceManager` is a ledger, not a monitor: it grants an agent
its declared limits (memory, CPU cores, disk and network bandwidth) out of a
fixed budget and refuses with ``RESOURCE_001`` when a request does not fit,
naming each resource that is short. Measuring what agents actually use is
:mod:`engine.agents.sampler`'s job.

CPU is kept in integer milli-cores so that many allocate/release cycles of
fractional cores never drift. ``allocate`` is on the scheduler's admission
path: plain arithmetic, no logging. It is meant for one event loop (no locks).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

from engine.agents.model import AgentId, ResourceLimits
from engine.errors import ErrorCode, SymbiError

MILLI = 1000


@dataclass(frozen=True, slots=True)
class ResourceTotals:
    memory_mb: int
    cpu_cores: float
    disk_io_mbps: int
    network_io_mbps: int

    @classmethod
    def from_machine(
        cls,
        memory_mb: int | None = None,
        cpu_cores: float | None = None,
        disk_io_mbps: int = 1000,
        network_io_mbps: int = 1000,
    ) -> ResourceTotals:
        """The machine's totals; None means "ask the machine"."""
        if memory_mb is None:
            memory_mb = psutil.virtual_memory().total // (1024 * 1024)
        if cpu_cores is None:
            cpu_cores = float(os.cpu_count() or 1)
        return cls(int(memory_mb), float(cpu_cores), int(disk_io_mbps), int(network_io_mbps))


@dataclass(frozen=True, slots=True)
class Allocation:
    agent_id: AgentId
    memory_mb: int
    cpu_cores: float
    disk_io_mbps: int
    network_io_mbps: int
    at: float


class ResourceManager:
    """Grants agents their declared limits out of the machine's budget.

    ``reservation_percentage`` is the fraction (0.1 = 10 %, the seed's
    convention) of every total held back for the host and never granted.
    """

    def __init__(self, totals: ResourceTotals, reservation_percentage: float = 0.0) -> None:
        if not 0.0 <= reservation_percentage < 1.0:
            raise SymbiError(
                ErrorCode.CONFIG_001,
                "invalid resource reservation",
                offending=reservation_percentage,
                hint="a fraction from 0 up to (not including) 1, e.g. 0.1 for 10%",
            )
        for name in ("memory_mb", "cpu_cores", "disk_io_mbps", "network_io_mbps"):
            if not getattr(totals, name) > 0:
                raise SymbiError(
                    ErrorCode.CONFIG_001,
                    f"invalid resource total {name}",
                    offending=getattr(totals, name),
                    hint="totals must be greater than 0",
                )
        self._totals = totals
        self._reservation = reservation_percentage
        keep = 1.0 - reservation_percentage
        # Grantable capacity: memory, milli-cores, disk, network.
        self._cap = (
            int(totals.memory_mb * keep),
            int(round(totals.cpu_cores * MILLI) * keep),
            int(totals.disk_io_mbps * keep),
            int(totals.network_io_mbps * keep),
        )
        self._mem = self._cpu = self._disk = self._net = 0
        self._held: dict[AgentId, tuple[Allocation, int]] = {}  # allocation, its milli-cores

    @property
    def totals(self) -> ResourceTotals:
        return self._totals

    @property
    def capacity(self) -> ResourceTotals:
        """What can be granted: the totals minus the reservation."""
        mem, cpu, disk, net = self._cap
        return ResourceTotals(mem, cpu / MILLI, disk, net)

    def can_allocate(self, limits: ResourceLimits) -> bool:
        mem, cpu, disk, net = self._cap
        return (
            self._mem + limits.memory_mb <= mem
            and self._cpu + round(limits.cpu_cores * MILLI) <= cpu
            and self._disk + limits.disk_io_mbps <= disk
            and self._net + limits.network_io_mbps <= net
        )

    def fits_at_all(self, limits: ResourceLimits) -> bool:
        """Whether the request could ever be granted, even on an idle machine."""
        mem, cpu, disk, net = self._cap
        return (
            limits.memory_mb <= mem
            and round(limits.cpu_cores * MILLI) <= cpu
            and limits.disk_io_mbps <= disk
            and limits.network_io_mbps <= net
        )

    def allocate(self, agent_id: AgentId, limits: ResourceLimits) -> Allocation:
        if agent_id in self._held:
            raise SymbiError(
                ErrorCode.RESOURCE_003,
                "agent already holds a resource allocation",
                offending=agent_id,
                hint="release it before allocating again",
            )
        mem, disk, net = limits.memory_mb, limits.disk_io_mbps, limits.network_io_mbps
        cpu = round(limits.cpu_cores * MILLI)
        cap_mem, cap_cpu, cap_disk, cap_net = self._cap
        if (
            self._mem + mem > cap_mem
            or self._cpu + cpu > cap_cpu
            or self._disk + disk > cap_disk
            or self._net + net > cap_net
            or min(mem, cpu, disk, net) < 0
        ):
            raise self._shortage(agent_id, mem, cpu, disk, net)
        self._mem += mem
        self._cpu += cpu
        self._disk += disk
        self._net += net
        allocation = Allocation(agent_id, mem, cpu / MILLI, disk, net, time.time())
        self._held[agent_id] = (allocation, cpu)
        return allocation

    def release(self, agent_id: AgentId) -> Allocation | None:
        """Give an agent's allocation back; None if it held none."""
        held = self._held.pop(agent_id, None)
        if held is None:
            return None
        allocation, cpu = held
        self._mem -= allocation.memory_mb
        self._cpu -= cpu
        self._disk -= allocation.disk_io_mbps
        self._net -= allocation.network_io_mbps
        return allocation

    def allocation(self, agent_id: AgentId) -> Allocation | None:
        held = self._held.get(agent_id)
        return None if held is None else held[0]

    def allocations(self) -> dict[AgentId, Allocation]:
        return {agent_id: held[0] for agent_id, held in self._held.items()}

    def used(self) -> ResourceTotals:
        return ResourceTotals(self._mem, self._cpu / MILLI, self._disk, self._net)

    def free(self) -> ResourceTotals:
        mem, cpu, disk, net = self._cap
        return ResourceTotals(mem - self._mem, (cpu - self._cpu) / MILLI, disk - self._disk, net - self._net)

    def snapshot(self) -> dict[str, Any]:
        """Totals, capacity, used and free as plain numbers, for views and the API."""
        return {
            "totals": self._totals,
            "capacity": self.capacity,
            "used": self.used(),
            "free": self.free(),
            "reservation": self._reservation,
            "allocations": len(self._held),
        }

    def _shortage(self, agent_id: AgentId, mem: int, cpu: int, disk: int, net: int) -> SymbiError:
        cap_mem, cap_cpu, cap_disk, cap_net = self._cap
        rows = (
            ("memory", mem, cap_mem - self._mem, cap_mem, _fmt_int, "MB"),
            ("cpu", cpu, cap_cpu - self._cpu, cap_cpu, _fmt_milli, "cores"),
            ("disk io", disk, cap_disk - self._disk, cap_disk, _fmt_int, "MB/s"),
            ("network io", net, cap_net - self._net, cap_net, _fmt_int, "MB/s"),
        )
        parts = []
        for name, want, free, cap, fmt, unit in rows:
            if want < 0:
                parts.append(f"invalid {name} request: {fmt(want)} {unit}")
            elif want > free:
                parts.append(
                    f"insufficient {name}: requested {fmt(want)} {unit}, free {fmt(free)} {unit} of {fmt(cap)} {unit}"
                )
        hint = "wait for running agents to finish, or lower the agent's resource_limits"
        if self._reservation:
            hint += f" ({self._reservation:.0%} of the machine is reserved for the host)"
        return SymbiError(
            ErrorCode.RESOURCE_001,
            "; ".join(parts),
            offending=agent_id,
            hint=hint,
            details={
                "requested": {"memory_mb": mem, "cpu_cores": cpu / MILLI, "disk_io_mbps": disk, "network_io_mbps": net}
            },
        )


def _fmt_int(value: int) -> str:
    return str(value)


def _fmt_milli(value: int) -> str:
    return f"{value / MILLI:g}"
