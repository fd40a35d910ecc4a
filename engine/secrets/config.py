"""``[secrets]`` configuration: where the vault lives and how its master key is found.

The field names follow the seed's file backend (``base_path``,
``file_extension``, ``permissions``); the rest are ours. Until
``engine.config.RuntimeConfig`` grows a ``secrets`` section,
:meth:`SecretsConfig.from_runtime` falls back to the defaults, and
:meth:`SecretsConfig.from_mapping` validates a raw ``[secrets]`` table.

==================  =================  ==============================================
key                 default            meaning
==================  =================  ==============================================
backend             ``"file"``         only ``file`` is implemented
base_path           ``"secrets"``      vault directory; relative = under the data dir
file_extension      ``"enc"``          ``app/api_key`` -> ``app/api_key.enc``
permissions         ``0o600``          mode of secret files (TOML: 384 or ``"0600"``);
                                       no bits for "other" allowed
keep_versions       ``3``              previous versions kept (``.enc.1`` ...), 0-100
key_source          ``"auto"``         ``auto`` (env, then key file), ``env``, ``file``,
                                       ``passphrase``
keys_dir            ``"keys"``         master key file, salt, retired keys, rotation
                                       journal; relative = under the data dir
argon2_memory_kib   ``65536``          Argon2id memory (KiB) for new passphrases
argon2_iterations   ``3``              Argon2id passes for new passphrases
argon2_lanes        ``4``              Argon2id parallelism for new passphrases
==================  =================  ==============================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.secrets.names import validate_extension

KEY_SOURCES = ("auto", "env", "file", "passphrase")


@dataclass(frozen=True)
class SecretsConfig:
    """Settings of the file vault (see the module docstring for each field)."""

    backend: str = "file"
    base_path: str = "secrets"
    file_extension: str = "enc"
    permissions: int = 0o600
    keep_versions: int = 3
    key_source: str = "auto"
    keys_dir: str = "keys"
    argon2_memory_kib: int = 65536
    argon2_iterations: int = 3
    argon2_lanes: int = 4

    def __post_init__(self) -> None:
        _check(self.backend == "file", "backend", self.backend, 'only "file" is supported')
        validate_extension(self.file_extension)
        perms = self.permissions
        _check(
            isinstance(perms, int) and not isinstance(perms, bool) and 0 <= perms <= 0o777,
            "permissions",
            perms,
            'use an octal mode such as 0o600 (TOML: 384 or "0600")',
        )
        _check(perms & 0o600 == 0o600, "permissions", oct(perms), "the owner needs read and write (0o600)")
        _check(perms & 0o007 == 0, "permissions", oct(perms), "secret files must not be readable by other users")
        _check(perms & 0o111 == 0, "permissions", oct(perms), "secret files must not be executable")
        _int_in(self.keep_versions, "keep_versions", 0, 100)
        _check(self.key_source in KEY_SOURCES, "key_source", self.key_source, f"use one of {', '.join(KEY_SOURCES)}")
        _int_in(self.argon2_memory_kib, "argon2_memory_kib", 8 * self.argon2_lanes, 4 * 1024 * 1024)
        _int_in(self.argon2_iterations, "argon2_iterations", 1, 64)
        _int_in(self.argon2_lanes, "argon2_lanes", 1, 64)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], warnings: list[str] | None = None) -> SecretsConfig:
        """Build from a raw ``[secrets]`` table; unknown keys become warnings."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                if warnings is not None:
                    warnings.append(f"unknown key 'secrets.{key}' ignored")
                continue
            if key == "permissions" and isinstance(value, str):
                value = _parse_mode(value)
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_runtime(cls, runtime_config: Any) -> SecretsConfig:
        """The ``secrets`` section of a ``RuntimeConfig`` if it has one, else the defaults."""
        section = getattr(runtime_config, "secrets", None)
        if section is None:
            return cls()
        if isinstance(section, SecretsConfig):
            return section
        if isinstance(section, Mapping):
            return cls.from_mapping(section)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dataclasses.asdict(section).items() if k in known})

    def resolve_base(self, data_dir: Path) -> Path:
        return _under(data_dir, self.base_path)

    def resolve_keys_dir(self, data_dir: Path) -> Path:
        return _under(data_dir, self.keys_dir)


def _under(data_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(data_dir).expanduser() / path


def _parse_mode(text: str) -> int:
    digits = text.strip().lower().removeprefix("0o")
    try:
        return int(digits, 8)
    except ValueError:
        raise SymbiError(
            ErrorCode.CONFIG_001,
            "invalid value for 'secrets.permissions': not an octal mode",
            offending=text,
            hint='use an octal mode such as "0600"',
        ) from None


def _check(ok: bool, key: str, value: Any, hint: str) -> None:
    if not ok:
        raise SymbiError(ErrorCode.CONFIG_001, f"invalid value for 'secrets.{key}'", offending=value, hint=hint)


def _int_in(value: Any, key: str, low: int, high: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    _check(ok, key, value, f"use a whole number from {low} to {high}")
