"""Where things live: the data dir, the config file, paths configured relative to the data dir."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import platformdirs

APP_NAME = "symbi-console"
CONFIG_FILENAME = "runtime_config.toml"


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    return Path(raw.strip()).expanduser()


def resolve_data_dir(cli_value: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """``--data-dir`` beats ``SYMBI_DATA_DIR`` beats ``platformdirs.user_data_dir("symbi-console")``.

    The directory is not created here.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if cli_value is not None and str(cli_value).strip():
        return Path(cli_value).expanduser()
    from_env = _env_path(environ, "SYMBI_DATA_DIR")
    if from_env is not None:
        return from_env
    return Path(platformdirs.user_data_dir(APP_NAME))


def find_config_file(
    cli_value: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path | None:
    """Pick the config file to load.

    ``--config`` beats ``SYMBI_CONFIG`` (both returned even when absent, so
    loading reports the missing file) beats ``<data_dir>/runtime_config.toml``
    if it exists beats ``<user_config_dir>/runtime_config.toml`` if it exists;
    otherwise None (defaults).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if cli_value is not None and str(cli_value).strip():
        return Path(cli_value).expanduser()
    from_env = _env_path(environ, "SYMBI_CONFIG")
    if from_env is not None:
        return from_env
    if data_dir is not None:
        candidate = Path(data_dir).expanduser() / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    candidate = Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILENAME
    if candidate.is_file():
        return candidate
    return None


def resolve_under(base: str | os.PathLike[str], value: str | os.PathLike[str]) -> Path:
    """A configured path: ``~`` expanded, absolute kept, relative taken under ``base`` (the data dir)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base).expanduser() / path
