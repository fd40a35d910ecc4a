"""Screenshots of the audit, policy and vault screens at 80x24 and 120x40.

Fixed data on a real runtime: audit events written before the runtime opens
the data dir (so their hashes do not depend on the engine's pid), the tests'
own policy file, and secrets under a fixed master key with frozen
created/updated stamps. The runtime runs on a FakeClock, timestamps are UTC,
and the data dir shows as ``~/symbi-data``.

* audit: every event, the cursor on the newest seeded one, its JSON below;
* policy: line 7 broken (``effect: Allowed``): the line is marked and the
  problem listed;
* vault: the tree with ``app/api_key`` selected, its value masked.

Regenerate after an intended change with
``TEXTUAL_ANIMATIONS=none pytest tests/test_console_snapshots_ops.py --snapshot-update``.
"""

from __future__ import annotations

import time

import pytest
from console_fixtures import (
    FIXED_MASTER_KEY,
    FIXED_POLICY,
    SEEDED_EVENTS,
    FixedSampler,
    app_over,
    console_config,
    fake_clock,
    freeze_vault_time,
    seed_audit,
    seed_vault,
    until,
)

from console.app import SymbiConsole
from console.widgets import AuditList, PolicyEditor
from engine.runtime import Runtime

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.fixture
def fixed(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", FIXED_MASTER_KEY)
    freeze_vault_time(monkeypatch)
    yield
    monkeypatch.undo()
    time.tzset()


def seeded_app(tmp_path) -> SymbiConsole:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # the engine refuses a looser data dir
    seed_audit(data)
    (data / "access_policies.yaml").write_text(FIXED_POLICY)
    seed_vault(data)
    config = console_config(resource={"monitoring_interval": 3600.0}, console={"refresh_interval": 3600.0})
    runtime = Runtime(config, data, clock=fake_clock(), sampler=FixedSampler())
    return app_over(runtime)


async def audit_scenario(pilot) -> None:
    app = pilot.app
    await app.engine_ready.wait()
    await pilot.press("4")
    audit_list = app.screen.query_one(AuditList)
    await until(pilot, lambda: audit_list.window.total > len(SEEDED_EVENTS), what="the audit view")
    # the newest events are the engine's own (start, policy load): go up to the newest seeded one
    for _ in range(audit_list.window.total - len(SEEDED_EVENTS)):
        await pilot.press("up")
    await until(
        pilot,
        lambda: audit_list.record is not None and audit_list.record.seq == len(SEEDED_EVENTS),
        what="the newest seeded event",
    )
    detail = app.screen.query_one("#audit-detail")
    await until(pilot, lambda: f'"seq": {len(SEEDED_EVENTS)}' in detail.text, what="its JSON")


async def policy_scenario(pilot) -> None:
    app = pilot.app
    await app.engine_ready.wait()
    await pilot.press("5")
    screen = app.screen
    editor = screen.query_one(PolicyEditor)
    await until(pilot, lambda: screen.loaded and editor.text == FIXED_POLICY, what="the policy file")
    end = len("    effect: Allow")
    editor.insert("e", (6, end))  # line 7: effect: Allowed (one character at a time: a longer
    editor.insert("d", (6, end + 1))  # insert restarts TextArea's cursor blink, even unfocused)
    await until(pilot, lambda: bool(screen.errors) and editor.marks.get(6) == "error", what="the marked error")


async def vault_scenario(pilot) -> None:
    app = pilot.app
    await app.engine_ready.wait()
    await pilot.press("6")
    screen = app.screen
    await until(pilot, lambda: screen.selected_path() == "app/api_key", what="the first secret")
    await until(pilot, lambda: "key id" in str(screen.query_one("#vault-meta").render()), what="its metadata")


SCENARIOS = {"audit": audit_scenario, "policy": policy_scenario, "vault": vault_scenario}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCENARIOS)
def test_ops_screen_snapshot(snap_compare, tmp_path, fixed, screen, size):
    app = seeded_app(tmp_path)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=SCENARIOS[screen])
