"""Resource accounting: grants, refusals that name the numbers, release, reservation, no drift."""

from __future__ import annotations

import os

import psutil
import pytest

from engine.agents.model import ResourceLimits
from engine.agents.resources import ResourceManager, ResourceTotals
from engine.errors import ErrorCode, SymbiError

TOTALS = ResourceTotals(memory_mb=1024, cpu_cores=2.0, disk_io_mbps=200, network_io_mbps=100)


def limits(memory_mb=256, cpu_cores=0.5, disk_io_mbps=10, network_io_mbps=10) -> ResourceLimits:
    return ResourceLimits(
        memory_mb=memory_mb, cpu_cores=cpu_cores, disk_io_mbps=disk_io_mbps, network_io_mbps=network_io_mbps
    )


def test_allocate_grants_the_limits_and_accounts_them():
    rm = ResourceManager(TOTALS)
    a = rm.allocate("agent-1", limits(memory_mb=256, cpu_cores=0.5))
    assert (a.agent_id, a.memory_mb, a.cpu_cores, a.disk_io_mbps, a.network_io_mbps) == ("agent-1", 256, 0.5, 10, 10)
    assert a.at > 0
    assert rm.used() == ResourceTotals(256, 0.5, 10, 10)
    assert rm.free() == ResourceTotals(768, 1.5, 190, 90)
    assert rm.allocation("agent-1") == a
    assert rm.allocations() == {"agent-1": a}
    assert rm.totals == TOTALS


def test_over_allocation_names_the_resource_and_the_numbers():
    rm = ResourceManager(TOTALS)
    rm.allocate("a", limits(memory_mb=768))
    with pytest.raises(SymbiError) as err:
        rm.allocate("b", limits(memory_mb=512))
    e = err.value
    assert e.code is ErrorCode.RESOURCE_001
    assert "insufficient memory: requested 512 MB, free 256 MB of 1024 MB" in e.message
    assert "cpu" not in e.message  # only what is short is named
    assert e.offending == "b"
    assert rm.allocation("b") is None
    assert rm.used().memory_mb == 768  # a refusal takes nothing


def test_every_short_resource_is_named():
    rm = ResourceManager(TOTALS)
    with pytest.raises(SymbiError) as err:
        rm.allocate("greedy", limits(memory_mb=2048, cpu_cores=2.5, disk_io_mbps=10, network_io_mbps=150))
    msg = err.value.message
    assert "insufficient memory: requested 2048 MB, free 1024 MB of 1024 MB" in msg
    assert "insufficient cpu: requested 2.5 cores, free 2 cores of 2 cores" in msg
    assert "insufficient network io: requested 150 MB/s, free 100 MB/s of 100 MB/s" in msg
    assert "disk" not in msg


def test_second_allocation_for_the_same_agent_is_refused():
    rm = ResourceManager(TOTALS)
    rm.allocate("a", limits())
    with pytest.raises(SymbiError) as err:
        rm.allocate("a", limits())
    assert err.value.code is ErrorCode.RESOURCE_003
    assert rm.used().memory_mb == 256


def test_release_frees_and_is_idempotent():
    rm = ResourceManager(TOTALS)
    rm.allocate("a", limits(memory_mb=1024, cpu_cores=2.0))
    assert not rm.can_allocate(limits(memory_mb=1))
    released = rm.release("a")
    assert released is not None and released.memory_mb == 1024
    assert rm.release("a") is None
    assert rm.used() == ResourceTotals(0, 0.0, 0, 0)
    assert rm.can_allocate(limits(memory_mb=1024, cpu_cores=2.0))
    rm.allocate("b", limits(memory_mb=1024, cpu_cores=2.0))


def test_can_allocate_matches_allocate_at_the_edge():
    rm = ResourceManager(TOTALS)
    exact = limits(memory_mb=1024, cpu_cores=2.0, disk_io_mbps=200, network_io_mbps=100)
    assert rm.can_allocate(exact)
    rm.allocate("exact", exact)
    assert rm.free() == ResourceTotals(0, 0.0, 0, 0)
    assert not rm.can_allocate(limits(memory_mb=1, cpu_cores=0.001, disk_io_mbps=1, network_io_mbps=1))


def test_reservation_holds_back_a_fraction():
    rm = ResourceManager(TOTALS, reservation_percentage=0.25)
    assert rm.capacity == ResourceTotals(768, 1.5, 150, 75)
    assert rm.fits_at_all(limits(memory_mb=768, cpu_cores=1.5))
    assert not rm.fits_at_all(limits(memory_mb=1000))
    with pytest.raises(SymbiError) as err:
        rm.allocate("a", limits(memory_mb=1000))
    assert "free 768 MB of 768 MB" in err.value.message
    assert "25%" in (err.value.hint or "")


@pytest.mark.parametrize("bad", [-0.1, 1.0, 5])
def test_bad_reservation_is_refused(bad):
    with pytest.raises(SymbiError) as err:
        ResourceManager(TOTALS, reservation_percentage=bad)
    assert err.value.code is ErrorCode.CONFIG_001


def test_cpu_accounting_does_not_drift():
    rm = ResourceManager(TOTALS)
    tenth = limits(memory_mb=1, cpu_cores=0.1, disk_io_mbps=1, network_io_mbps=1)
    for i in range(10_000):
        rm.allocate(f"a{i}", tenth)
        rm.release(f"a{i}")
    assert rm.used().cpu_cores == 0.0
    # and twenty tenths fill two cores exactly, with nothing left over
    for i in range(20):
        rm.allocate(f"b{i}", tenth)
    assert rm.free().cpu_cores == 0.0
    assert not rm.can_allocate(tenth)


def test_from_machine_reads_the_machine_and_honours_overrides():
    t = ResourceTotals.from_machine()
    assert t.memory_mb == psutil.virtual_memory().total // (1024 * 1024)
    assert t.cpu_cores == float(os.cpu_count())
    assert (t.disk_io_mbps, t.network_io_mbps) == (1000, 1000)
    t2 = ResourceTotals.from_machine(memory_mb=512, cpu_cores=1.5, disk_io_mbps=10, network_io_mbps=20)
    assert t2 == ResourceTotals(512, 1.5, 10, 20)


def test_zero_totals_are_refused():
    with pytest.raises(SymbiError) as err:
        ResourceManager(ResourceTotals(0, 1.0, 1, 1))
    assert err.value.code is ErrorCode.CONFIG_001 and "memory_mb" in err.value.message
