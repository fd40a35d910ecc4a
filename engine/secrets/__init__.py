"""Encrypted secrets vault: one file format for the library, the CLI, the console and agents.

Public face:

* :class:`Vault` (``Vault.open(data_dir, config, key_source=...)``): ``set``,
  ``get`` (a masked :class:`SecretValue`), ``list`` (:class:`SecretInfo` rows,
  never values), ``names``, ``info``, ``history``, ``exists``, ``delete``,
  ``rotate_key``; :class:`AsyncVault` for asyncio callers.
* :class:`KeySource`: where the master key comes from (``SYMBIONT_MASTER_KEY``,
  the key file, an Argon2id passphrase, raw bytes) or goes to on rotation.
* :class:`SecretsConfig`: the ``[secrets]`` settings.
* :func:`validate_secret_path`; the file format lives in
  :mod:`engine.secrets.fileformat` (documented byte by byte there).

Errors are :class:`engine.errors.SymbiError` with ``SEC_001``..``SEC_006``;
none ever carries a secret value.
"""

from __future__ import annotations

from engine.secrets.aio import AsyncVault
from engine.secrets.config import SecretsConfig
from engine.secrets.keys import ENV_VAR, PASSPHRASE_ENV_VAR, KeySource
from engine.secrets.names import validate_secret_path
from engine.secrets.values import RotationReport, SecretInfo, SecretValue
from engine.secrets.vault import Vault

__all__ = [
    "ENV_VAR",
    "PASSPHRASE_ENV_VAR",
    "AsyncVault",
    "KeySource",
    "RotationReport",
    "SecretInfo",
    "SecretValue",
    "SecretsConfig",
    "Vault",
    "validate_secret_path",
]
