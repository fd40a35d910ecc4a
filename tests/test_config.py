"""runtime_config.toml loading, validation, env overrides, data dirs and round trips.

Every test writes a real file under ``tmp_path`` and loads it the way the CLI
does; environments are passed explicitly so the machine's own variables never
leak in.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from engine import config as config_mod
from engine.config import (
    CONFIG_FILENAME,
    ENV_OVERRIDES,
    LoadedConfig,
    PoolConfig,
    RuntimeConfig,
    dump_toml,
    find_config_file,
    format_duration,
    load_config,
    parse_duration,
    parse_size,
    resolve_data_dir,
    resolve_under,
)
from engine.errors import ErrorCode, SymbiError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "runtime_config.toml"


def write(tmp_path: Path, text: str, name: str = "runtime_config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> LoadedConfig:
    return load_config(write(tmp_path, text), env={} if env is None else env)


def bad_value(tmp_path: Path, text: str) -> SymbiError:
    with pytest.raises(SymbiError) as info:
        load_text(tmp_path, text)
    assert info.value.code is ErrorCode.CONFIG_001
    return info.value


# --------------------------------------------------------------------------- #
# Defaults
# --------------------------------------------------------------------------- #


def test_no_file_gives_the_documented_defaults() -> None:
    loaded = load_config(None, env={})
    cfg = loaded.config
    assert loaded.source is None
    assert loaded.warnings == []
    assert cfg == RuntimeConfig.default()
    assert cfg.log_level == "info"

    life = cfg.lifecycle
    assert (life.max_agents, life.initialization_timeout, life.termination_timeout) == (1000, 30.0, 10.0)
    assert (life.state_check_interval, life.enable_auto_recovery, life.max_restart_attempts) == (10.0, True, 3)
    assert (life.restart_backoff_base, life.restart_backoff_max) == (1.0, 60.0)

    res = cfg.resource
    assert res.total_memory_mb is None and res.total_cpu_cores is None
    assert (res.total_disk_io_mbps, res.total_network_io_mbps) == (1000, 1000)
    assert res.enforcement_enabled is True and res.monitoring_interval == 1.0
    assert res.violation_action == "terminate" and res.cpu_violation_samples == 5
    assert res.reservation_percentage == 0.0 and res.log_max_bytes == 1_048_576

    sch = cfg.scheduler
    assert sch.max_concurrent_tasks == 32 and sch.load_balancing_strategy == "RoundRobin"
    assert sch.aging_interval == 30.0 and sch.max_queue_size == 10_000
    assert sch.pools == [PoolConfig(name="native", capacity=32, weight=1)]

    assert (cfg.http_api.enabled, cfg.http_api.host, cfg.http_api.port) == (False, "127.0.0.1", 8080)
    assert (cfg.vector_db.backend, cfg.vector_db.data_path, cfg.vector_db.dimension) == ("lancedb", "vector_db", 384)
    assert (cfg.policy.file, cfg.policy.default_effect) == ("access_policies.yaml", "Deny")
    assert cfg.mcp.max_concurrent_connections >= 1 and cfg.mcp.connection_timeout > 0
    assert cfg.schemapin.binary_path is None
    assert (cfg.console.theme, cfg.console.keymap, cfg.console.refresh_interval) == ("symbi-dark", {}, 1.0)


def test_default_objects_do_not_share_mutable_state() -> None:
    a, b = RuntimeConfig.default(), RuntimeConfig.default()
    a.scheduler.pools.append(PoolConfig(name="docker", capacity=4))
    a.console.keymap["quit"] = "q"
    assert b.scheduler.pools == [PoolConfig(name="native", capacity=32, weight=1)]
    assert b.console.keymap == {}


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, "")
    assert loaded.config == RuntimeConfig.default()
    assert loaded.source == tmp_path / "runtime_config.toml"


# --------------------------------------------------------------------------- #
# The shipped example
# --------------------------------------------------------------------------- #


def test_example_file_loads_without_warnings_and_equals_defaults() -> None:
    loaded = load_config(EXAMPLE, env={})
    assert loaded.warnings == []
    assert loaded.config == RuntimeConfig.default()


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = []
    for section, table in RuntimeConfig.default().to_dict().items():
        if not isinstance(table, dict):
            continue
        for key in table:
            if not re.search(rf"^#?\s*{re.escape(key)}\s*=", text, re.MULTILINE) and f"[{section}.{key}]" not in text:
                missing.append(f"{section}.{key}")
    assert missing == []


def test_full_custom_file_parses(tmp_path: Path) -> None:
    loaded = load_text(
        tmp_path,
        """
log_level = "debug"

[lifecycle]
max_agents = 50
termination_timeout = "2500ms"
restart_backoff_base = 0.5
restart_backoff_max = "2m"

[resource]
total_memory_mb = 2048
total_cpu_cores = 1.5
violation_action = "suspend"
reservation_percentage = 10
log_max_bytes = "256KiB"

[vector_db]
backend = "qdrant"
url = "http://qdrant.local:6333"

[policy]
default_effect = "allow"

[scheduler]
load_balancing_strategy = "least_connections"

[[scheduler.pools]]
name = "native"
capacity = 4

[[scheduler.pools]]
name = "docker"
capacity = 2
weight = 3

[http_api]
enabled = true
port = 0

[console]
theme = "symbi-light"
refresh_interval = "250ms"

[console.keymap]
quit = "ctrl+q,q"
"agents.stop" = "x"
""",
    )
    cfg = loaded.config
    assert loaded.warnings == []
    assert cfg.log_level == "debug"
    assert cfg.lifecycle.max_agents == 50
    assert cfg.lifecycle.termination_timeout == 2.5
    assert cfg.lifecycle.restart_backoff_max == 120.0
    assert cfg.resource.total_memory_mb == 2048 and cfg.resource.total_cpu_cores == 1.5
    assert cfg.resource.violation_action == "suspend"
    assert cfg.resource.reservation_percentage == 10.0
    assert cfg.resource.log_max_bytes == 256 * 1024
    assert cfg.vector_db.qdrant_url == "http://qdrant.local:6333"
    assert cfg.policy.default_effect == "Allow"
    assert cfg.scheduler.load_balancing_strategy == "LeastConnections"
    assert cfg.scheduler.pools == [PoolConfig("native", 4, 1), PoolConfig("docker", 2, 3)]
    assert (cfg.http_api.enabled, cfg.http_api.port) == (True, 0)
    assert cfg.console.refresh_interval == 0.25
    assert cfg.console.keys_for("quit") == ["ctrl+q", "q"]
    assert cfg.console.keys_for("agents.stop") == ["x"]
    assert cfg.console.keys_for("help") is None


# --------------------------------------------------------------------------- #
# Durations and sizes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ('"60s"', 60.0),
        ('"500ms"', 0.5),
        ('"1h30m"', 5400.0),
        ('"5m"', 300.0),
        ('"1h"', 3600.0),
        ('"2d"', 172_800.0),
        ('"1m 30s"', 90.0),
        ('"1.5s"', 1.5),
        ('"90 seconds"', 90.0),
        ('"45"', 45.0),
        ("45", 45.0),
        ("0.25", 0.25),
    ],
)
def test_duration_forms(tmp_path: Path, written: str, seconds: float) -> None:
    cfg = load_text(tmp_path, f"[scheduler]\naging_interval = {written}\n").config
    assert cfg.scheduler.aging_interval == seconds


@pytest.mark.parametrize("written", ['"ten seconds"', '"10 parsecs"', '"5m3"', '""', '"-5s"', "-3", "true", "[1]"])
def test_bad_duration_names_key_and_value(tmp_path: Path, written: str) -> None:
    err = bad_value(tmp_path, f"[lifecycle]\ninitialization_timeout = {written}\n")
    assert "lifecycle.initialization_timeout" in err.message
    assert "500ms" in (err.hint or "")
    assert err.offending is not None
    assert "lifecycle.initialization_timeout" in str(err)


def test_bad_duration_reports_the_offending_text(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[lifecycle]\ninitialization_timeout = "ten seconds"\n')
    assert err.offending == "ten seconds"
    assert "'ten seconds'" in err.render()


def test_zero_duration_where_positive_is_required(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[resource]\nmonitoring_interval = "0s"\n')
    assert "resource.monitoring_interval" in err.message


@pytest.mark.parametrize(
    "seconds", [0.0, 0.001, 0.5, 1.0, 1.1, 59.999, 60.0, 90.0, 120.0, 5400.0, 86_400.0, 90_061.25, 1e-7, 123456.789]
)
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_format_duration_reads_naturally() -> None:
    assert format_duration(60.0) == "60s"
    assert format_duration(0.5) == "500ms"
    assert format_duration(5400.0) == "1h30m"
    assert format_duration(300.0) == "5m"


@pytest.mark.parametrize(
    ("text", "size"),
    [("512KB", 512_000), ("64MiB", 64 * 1024**2), ("1GiB", 1024**3), ("4096", 4096), ("1.5KiB", 1536), (2048, 2048)],
)
def test_size_forms(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_bad_size_is_config_001(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[resource]\nlog_max_bytes = "lots"\n')
    assert "resource.log_max_bytes" in err.message
    assert "MiB" in (err.hint or "")


# --------------------------------------------------------------------------- #
# Environment overrides
# --------------------------------------------------------------------------- #


def test_env_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[lifecycle]\nmax_agents = 50\n[scheduler]\nmax_concurrent_tasks = 8\n")
    from_file = load_config(path, env={}).config
    assert from_file.lifecycle.max_agents == 50

    loaded = load_config(path, env={"SYMBI_MAX_AGENTS": "7"})
    assert loaded.config.lifecycle.max_agents == 7
    assert loaded.config.scheduler.max_concurrent_tasks == 8  # file value kept where env is silent
    assert loaded.env_overrides == {"lifecycle.max_agents": "SYMBI_MAX_AGENTS"}


def test_env_applies_without_a_file() -> None:
    loaded = load_config(None, env={"SYMBI_LOG_LEVEL": "DEBUG", "SYMBI_RESOURCE_ENFORCEMENT": "no"})
    assert loaded.config.log_level == "debug"
    assert loaded.config.resource.enforcement_enabled is False


def test_empty_env_values_are_ignored() -> None:
    loaded = load_config(None, env={"SYMBI_MAX_AGENTS": "", "SYMBI_HTTP_HOST": "  "})
    assert loaded.config == RuntimeConfig.default()
    assert loaded.env_overrides == {}


def test_env_none_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, _ in ENV_OVERRIDES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SYMBI_MAX_CONCURRENT_TASKS", "3")
    assert load_config(None).config.scheduler.max_concurrent_tasks == 3


@pytest.mark.parametrize(
    ("var", "raw", "attr", "expected"),
    [
        ("SYMBI_LOG_LEVEL", "warn", ("log_level",), "warn"),
        ("SYMBI_MAX_AGENTS", "12", ("lifecycle", "max_agents"), 12),
        ("SYMBI_RESOURCE_ENFORCEMENT", "false", ("resource", "enforcement_enabled"), False),
        ("SYMBI_RESOURCE_ENFORCEMENT", "1", ("resource", "enforcement_enabled"), True),
        ("SYMBI_RESOURCE_ENFORCEMENT", "YES", ("resource", "enforcement_enabled"), True),
        ("SYMBI_MAX_CONCURRENT_TASKS", "4", ("scheduler", "max_concurrent_tasks"), 4),
        ("SYMBIONT_VECTOR_BACKEND", "Qdrant", ("vector_db", "backend"), "qdrant"),
        ("SYMBIONT_VECTOR_DATA_PATH", "/srv/vectors", ("vector_db", "data_path"), "/srv/vectors"),
        ("SYMBIONT_VECTOR_HOST", "qdrant", ("vector_db", "host"), "qdrant"),
        ("SYMBIONT_VECTOR_PORT", "6334", ("vector_db", "port"), 6334),
        ("SYMBIONT_VECTOR_URL", "http://q:1", ("vector_db", "url"), "http://q:1"),
        ("SYMBIONT_VECTOR_DIMENSION", "768", ("vector_db", "dimension"), 768),
        ("SYMBI_HTTP_ENABLED", "on", ("http_api", "enabled"), True),
        ("SYMBI_HTTP_HOST", "0.0.0.0", ("http_api", "host"), "0.0.0.0"),
        ("SYMBI_HTTP_PORT", "9090", ("http_api", "port"), 9090),
        ("SYMBI_AUDIT_WITNESS", "/mnt/other/witness.jsonl", ("audit", "witness_path"), "/mnt/other/witness.jsonl"),
        ("SYMBI_NATIVE_ISOLATION", "landlock", ("sandbox", "native_isolation"), "landlock"),
    ],
)
def test_each_env_override(var: str, raw: str, attr: tuple[str, ...], expected: object) -> None:
    target: object = load_config(None, env={var: raw}).config
    for name in attr:
        target = getattr(target, name)
    assert target == expected


def test_qdrant_host_and_port_build_the_url() -> None:
    cfg = load_config(None, env={"SYMBIONT_VECTOR_HOST": "vec", "SYMBIONT_VECTOR_PORT": "7000"}).config
    assert cfg.vector_db.qdrant_url == "http://vec:7000"


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("SYMBI_MAX_AGENTS", "many"),
        ("SYMBI_MAX_AGENTS", "0"),
        ("SYMBI_RESOURCE_ENFORCEMENT", "maybe"),
        ("SYMBIONT_VECTOR_BACKEND", "pinecone"),
        ("SYMBI_HTTP_PORT", "70000"),
        ("SYMBI_LOG_LEVEL", "loud"),
    ],
)
def test_bad_env_value_names_the_variable(tmp_path: Path, var: str, raw: str) -> None:
    path = write(tmp_path, "")
    with pytest.raises(SymbiError) as info:
        load_config(path, env={var: raw})
    err = info.value
    assert err.code is ErrorCode.CONFIG_001
    assert var in err.message
    assert err.offending in (raw, int(raw) if raw.isdigit() else raw)
    assert err.hint


# --------------------------------------------------------------------------- #
# Unknown keys, wrong types, out-of-range values
# --------------------------------------------------------------------------- #


def test_unknown_keys_and_sections_are_warnings(tmp_path: Path) -> None:
    loaded = load_text(
        tmp_path,
        """
colour = "blue"

[scheduler]
max_tasks = 5

[[scheduler.pools]]
name = "native"
capacity = 2
speed = "fast"

[telemetry]
enabled = true
""",
    )
    assert "unknown key 'scheduler.max_tasks' ignored" in loaded.warnings
    assert "unknown key 'scheduler.pools[0].speed' ignored" in loaded.warnings
    assert "unknown section 'telemetry' ignored" in loaded.warnings
    assert "unknown key 'colour' ignored" in loaded.warnings
    assert loaded.config.scheduler.max_concurrent_tasks == 32


def test_string_for_int_is_a_type_error(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[lifecycle]\nmax_agents = "10"\n')
    assert "lifecycle.max_agents" in err.message
    assert "string" in err.message
    assert err.offending == "10"
    assert "whole number" in (err.hint or "")


def test_quoted_boolean_is_a_type_error(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[http_api]\nenabled = "yes"\n')
    assert "http_api.enabled" in err.message
    assert "true or false" in (err.hint or "")


def test_float_for_int_is_a_type_error(tmp_path: Path) -> None:
    err = bad_value(tmp_path, "[scheduler]\nmax_queue_size = 10.5\n")
    assert "scheduler.max_queue_size" in err.message


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    err = bad_value(tmp_path, "lifecycle = 3\n")
    assert "'lifecycle'" in err.message


def test_max_agents_zero_is_out_of_range(tmp_path: Path) -> None:
    err = bad_value(tmp_path, "[lifecycle]\nmax_agents = 0\n")
    assert "lifecycle.max_agents" in err.message
    assert err.offending == 0
    assert ">= 1" in (err.hint or "")


def test_unknown_violation_action(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[resource]\nviolation_action = "explode"\n')
    assert "resource.violation_action" in err.message
    assert err.offending == "explode"
    assert "warn, suspend, terminate" in (err.hint or "")


def test_unknown_load_balancing_strategy(tmp_path: Path) -> None:
    err = bad_value(tmp_path, '[scheduler]\nload_balancing_strategy = "Random"\n')
    assert "scheduler.load_balancing_strategy" in err.message
    for choice in ("RoundRobin", "LeastConnections", "ResourceBased", "WeightedRoundRobin"):
        assert choice in (err.hint or "")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[resource]\nreservation_percentage = 75\n", "resource.reservation_percentage"),
        ("[resource]\ncpu_violation_samples = 0\n", "resource.cpu_violation_samples"),
        ("[http_api]\nport = 70000\n", "http_api.port"),
        ('log_level = "loud"\n', "log_level"),
        ('[vector_db]\nbackend = "pinecone"\n', "vector_db.backend"),
        ('[policy]\ndefault_effect = "Maybe"\n', "policy.default_effect"),
        ('[console]\ntheme = ""\n', "console.theme"),
        ("[console.keymap]\nquit = 5\n", "console.keymap"),
        ("[scheduler]\npools = []\n", "scheduler.pools"),
        ('[[scheduler.pools]]\nname = "native"\ncapacity = 0\n', "scheduler.pools[0].capacity"),
        ('[[scheduler.pools]]\nname = "native"\n', "scheduler.pools[0].capacity"),
        (
            '[[scheduler.pools]]\nname = "a"\ncapacity = 1\n[[scheduler.pools]]\nname = "a"\ncapacity = 2\n',
            "scheduler.pools[1].name",
        ),
        ('[lifecycle]\nrestart_backoff_base = "10s"\nrestart_backoff_max = "5s"\n', "lifecycle.restart_backoff_max"),
    ],
)
def test_out_of_range_values(tmp_path: Path, text: str, key: str) -> None:
    err = bad_value(tmp_path, text)
    assert key in err.message
    assert err.hint


def test_auto_unsets_optional_totals(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, '[resource]\ntotal_memory_mb = "auto"\ntotal_cpu_cores = "auto"\n').config
    assert cfg.resource.total_memory_mb is None and cfg.resource.total_cpu_cores is None


def test_errors_render_without_traceback_text(tmp_path: Path) -> None:
    err = bad_value(tmp_path, "[lifecycle]\nmax_agents = 0\n")
    text = err.render()
    assert text.startswith("CONFIG_001: ")
    assert "Traceback" not in text
    assert err.to_dict()["code"] == "CONFIG_001"


# --------------------------------------------------------------------------- #
# Unreadable files
# --------------------------------------------------------------------------- #


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[lifecycle]\nmax_agents = 10\ninitialization_timeout = 30s\n")
    with pytest.raises(SymbiError) as info:
        load_config(path, env={})
    err = info.value
    assert err.code is ErrorCode.CONFIG_002
    assert str(path) in err.message
    assert "line 3" in err.message
    assert err.details["line"] == 3
    assert err.details["column"] >= 1


def test_missing_file_is_config_002_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "runtime_config.toml"
    with pytest.raises(SymbiError) as info:
        load_config(missing, env={})
    assert info.value.code is ErrorCode.CONFIG_002
    assert str(missing) in info.value.message
    assert info.value.offending == str(missing)


def test_directory_instead_of_file_is_config_002(tmp_path: Path) -> None:
    with pytest.raises(SymbiError) as info:
        load_config(tmp_path, env={})
    assert info.value.code is ErrorCode.CONFIG_002


def test_non_utf8_file_is_config_002(tmp_path: Path) -> None:
    path = tmp_path / "runtime_config.toml"
    path.write_bytes(b'log_level = "\xff"\n')
    with pytest.raises(SymbiError) as info:
        load_config(path, env={})
    assert info.value.code is ErrorCode.CONFIG_002


# --------------------------------------------------------------------------- #
# Data dir and config file resolution
# --------------------------------------------------------------------------- #


@pytest.fixture
def fake_platform_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    data = tmp_path / "xdg-data" / "symbi-console"
    conf = tmp_path / "xdg-config" / "symbi-console"
    monkeypatch.setattr(config_mod.platformdirs, "user_data_dir", lambda appname=None, *a, **k: str(data))
    monkeypatch.setattr(config_mod.platformdirs, "user_config_dir", lambda appname=None, *a, **k: str(conf))
    return data, conf


def test_data_dir_order(tmp_path: Path, fake_platform_dirs: tuple[Path, Path]) -> None:
    platform_data, _ = fake_platform_dirs
    env = {"SYMBI_DATA_DIR": str(tmp_path / "from-env")}
    assert resolve_data_dir(str(tmp_path / "from-cli"), env) == tmp_path / "from-cli"
    assert resolve_data_dir(None, env) == tmp_path / "from-env"
    assert resolve_data_dir(None, {}) == platform_data
    assert resolve_data_dir(None, {"SYMBI_DATA_DIR": ""}) == platform_data


def test_data_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("~/symbi", {}) == tmp_path / "symbi"


def test_real_platformdirs_default_mentions_the_app() -> None:
    assert "symbi-console" in str(resolve_data_dir(None, {}))


def test_config_file_order(tmp_path: Path, fake_platform_dirs: tuple[Path, Path]) -> None:
    _, platform_conf = fake_platform_dirs
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    assert find_config_file(None, data_dir, {}) is None

    platform_conf.mkdir(parents=True)
    (platform_conf / CONFIG_FILENAME).write_text("")
    assert find_config_file(None, data_dir, {}) == platform_conf / CONFIG_FILENAME

    (data_dir / CONFIG_FILENAME).write_text("")
    assert find_config_file(None, data_dir, {}) == data_dir / CONFIG_FILENAME

    env = {"SYMBI_CONFIG": str(tmp_path / "env.toml")}
    assert find_config_file(None, data_dir, env) == tmp_path / "env.toml"  # returned even though absent

    assert find_config_file(str(tmp_path / "cli.toml"), data_dir, env) == tmp_path / "cli.toml"


def test_explicit_config_path_that_is_missing_fails_on_load(
    tmp_path: Path, fake_platform_dirs: tuple[Path, Path]
) -> None:
    chosen = find_config_file(str(tmp_path / "typo.toml"), tmp_path, {})
    with pytest.raises(SymbiError) as info:
        load_config(chosen, env={})
    assert info.value.code is ErrorCode.CONFIG_002


def test_resolve_under(tmp_path: Path) -> None:
    assert resolve_under(tmp_path, "vector_db") == tmp_path / "vector_db"
    assert resolve_under(tmp_path, "/abs/policies.yaml") == Path("/abs/policies.yaml")


# --------------------------------------------------------------------------- #
# Rendering back
# --------------------------------------------------------------------------- #


def test_to_dict_renders_durations_and_sizes() -> None:
    data = RuntimeConfig.default().to_dict()
    assert data["lifecycle"]["restart_backoff_max"] == "60s"
    assert data["lifecycle"]["initialization_timeout"] == "30s"
    assert data["resource"]["log_max_bytes"] == "1MiB"
    assert data["resource"]["total_memory_mb"] is None
    assert data["scheduler"]["pools"] == [{"name": "native", "capacity": 32, "weight": 1}]
    assert data["log_level"] == "info"


def _round_trip(tmp_path: Path, cfg: RuntimeConfig) -> RuntimeConfig:
    loaded = load_config(write(tmp_path, dump_toml(cfg), "dumped.toml"), env={})
    assert loaded.warnings == []
    return loaded.config


def test_dump_toml_round_trips_defaults(tmp_path: Path) -> None:
    cfg = RuntimeConfig.default()
    assert _round_trip(tmp_path, cfg) == cfg


def test_dump_toml_round_trips_a_custom_config(tmp_path: Path) -> None:
    cfg = RuntimeConfig.default()
    cfg.log_level = "trace"
    cfg.lifecycle = dataclasses.replace(
        cfg.lifecycle, max_agents=3, termination_timeout=0.25, restart_backoff_max=5400.5
    )
    cfg.resource = dataclasses.replace(cfg.resource, total_memory_mb=512, total_cpu_cores=0.5, log_max_bytes=123_457)
    cfg.scheduler.pools = [PoolConfig("native", 2), PoolConfig("gvisor", 1, 5)]
    cfg.scheduler.load_balancing_strategy = "WeightedRoundRobin"
    cfg.vector_db.url = "http://localhost:6333"
    cfg.schemapin.binary_path = "/opt/schemapin/bin/verify"
    cfg.schemapin.environment = {"A_VAR": 'quote " and \\ backslash', "unicode": "héllo"}
    cfg.console.keymap = {"quit": "ctrl+q,q", "agents.stop": "x", "with space": "f2"}
    cfg.console.refresh_interval = 0.1
    cfg.http_api.port = 0
    assert _round_trip(tmp_path, cfg) == cfg


def test_dump_of_loaded_example_round_trips(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE, env={}).config
    assert _round_trip(tmp_path, cfg) == cfg


def test_from_dict_of_to_dict_is_identity() -> None:
    cfg = RuntimeConfig.default()
    cfg.console.keymap = {"quit": "q"}
    assert RuntimeConfig.from_dict(cfg.to_dict()) == cfg


def test_python_log_level() -> None:
    import logging

    cfg = load_config(None, env={"SYMBI_LOG_LEVEL": "warning"}).config
    assert cfg.python_log_level == logging.WARNING
