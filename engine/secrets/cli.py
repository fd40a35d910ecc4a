"""``symbiont secrets ...``: the vault from the command line (spelled as the seed spells it).

::

    symbiont secrets set NAME [--value-file F | --value V] [--description D] [--tag T ...]
    symbiont secrets get NAME [--version N]          # the value, to stdout only
    symbiont secrets list [PREFIX] [--json]          # names and metadata, never values
    symbiont secrets rm NAME
    symbiont secrets rotate-key [--new-key-env VAR | --new-passphrase | --to-key-file] [--purge-old]
    symbiont secrets encrypt --in F --out F.enc [--force]
    symbiont secrets decrypt --in F.enc [--out F] [--force]
    symbiont secrets edit --file F.enc

Every subcommand also takes ``--passphrase`` (unlock with a passphrase:
``SYMBIONT_MASTER_PASSPHRASE`` or a prompt) and ``--config FILE``; the data dir
is the global ``symbiont --data-dir``. ``set`` reads the value from stdin by
default (a no-echo prompt on a terminal; piped input loses one trailing
newline unless ``--keep-newline``), or exactly from ``--value-file``;
``--value`` works but warns, since it lands in shell history and the process
list. Values go to stdout only, and only from ``get`` and ``decrypt`` without
``--out``. Errors are ``symbiont: SEC_00x: ...`` (exit 2) and never contain a
value; an editor that fails leaves the file as it was (exit 1).

Registered by ``engine.cli`` through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.config import find_config_file, load_config, resolve_data_dir
from engine.datadir import check_data_dir, ensure_data_dir
from engine.errors import ErrorCode, SymbiError
from engine.safeparse import load_toml
from engine.secrets.config import SecretsConfig
from engine.secrets.filecrypt import EditOutcome, decrypt_bytes_of, decrypt_file, edit_file, encrypt_file
from engine.secrets.keys import ENV_VAR, PASSPHRASE_ENV_VAR, KeySource
from engine.secrets.values import SecretValue
from engine.secrets.vault import Vault

NEW_PASSPHRASE_ENV_VAR = "SYMBIONT_NEW_MASTER_PASSPHRASE"

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    """Add ``secrets`` and its subcommands to the ``symbiont`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--passphrase",
        action="store_true",
        help=f"unlock with a passphrase (Argon2id); read from {PASSPHRASE_ENV_VAR} or prompted",
    )
    common.add_argument("--config", help="runtime_config.toml to read [secrets] from")

    top = subparsers.add_parser(
        "secrets",
        help="manage the encrypted secrets vault",
        description="Store, read, edit and rotate encrypted secrets (AES-256-GCM, one file per secret).",
    )
    sub = top.add_subparsers(dest="secrets_command", required=True)

    p = sub.add_parser("set", parents=[common], help="store a secret (value from stdin by default)")
    p.add_argument("name", help="secret name, e.g. app/api_key")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--value-file", help="read the value, byte for byte, from this file")
    source.add_argument("--value", help="the value itself (discouraged: shell history, process list)")
    p.add_argument("--description", help="a description shown in listings")
    p.add_argument("--tag", action="append", dest="tags", help="a tag (repeatable)")
    p.add_argument("--keep-newline", action="store_true", help="keep the trailing newline of piped input")
    p.set_defaults(func=_wrap(cmd_set))

    p = sub.add_parser("get", parents=[common], help="print a secret's value to stdout")
    p.add_argument("name")
    p.add_argument("--version", type=int, help="a kept previous version")
    p.set_defaults(func=_wrap(cmd_get))

    p = sub.add_parser("list", parents=[common], help="list secrets with metadata (never values)")
    p.add_argument("prefix", nargs="?", default="", help="only names starting with this")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_wrap(cmd_list))

    p = sub.add_parser("rm", parents=[common], help="delete a secret and its previous versions")
    p.add_argument("name")
    p.set_defaults(func=_wrap(cmd_rm))

    p = sub.add_parser("rotate-key", parents=[common], help="re-encrypt everything under a new master key")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--new-key-env", metavar="VAR", help="take the new key (base64, 32 bytes) from this variable")
    target.add_argument("--new-passphrase", action="store_true", help=f"a new passphrase ({NEW_PASSPHRASE_ENV_VAR})")
    target.add_argument("--to-key-file", action="store_true", help="generate the new key into the key file")
    p.add_argument("--purge-old", action="store_true", help="destroy retired keys (do this after a compromise)")
    p.set_defaults(func=_wrap(cmd_rotate_key))

    p = sub.add_parser("encrypt", parents=[common], help="encrypt a file with the vault's master key")
    p.add_argument("--in", dest="input", required=True, metavar="FILE")
    p.add_argument("--out", dest="output", required=True, metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_wrap(cmd_encrypt))

    p = sub.add_parser("decrypt", parents=[common], help="decrypt a file (to stdout unless --out)")
    p.add_argument("--in", dest="input", required=True, metavar="FILE")
    p.add_argument("--out", dest="output", metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_wrap(cmd_decrypt))

    p = sub.add_parser("edit", parents=[common], help="edit an encrypted file in $EDITOR")
    p.add_argument("--file", required=True, metavar="FILE")
    p.set_defaults(func=_wrap(cmd_edit))


def _wrap(handler: Handler) -> Handler:
    """Turn stray OS errors into a SymbiError, so the user never sees a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise SymbiError(
                ErrorCode.STORE_001,
                f"{exc.strerror or type(exc).__name__}{where}",
                offending=exc.filename,
                hint="check the path and its permissions",
            ) from None

    return run


# ---------------------------------------------------------------------- #
# Opening the vault
# ---------------------------------------------------------------------- #


def secrets_config(args: argparse.Namespace, data_dir: Path) -> SecretsConfig:
    """``[secrets]`` from the runtime config (read raw until RuntimeConfig has the section)."""
    path = find_config_file(getattr(args, "config", None), data_dir)
    loaded = load_config(path)
    if getattr(loaded.config, "secrets", None) is not None or path is None:
        return SecretsConfig.from_runtime(loaded.config)
    with open(path, "rb") as fh:
        raw = load_toml(fh).get("secrets", {})
    return SecretsConfig.from_mapping(raw) if isinstance(raw, dict) else SecretsConfig()


def _prompt(label: str) -> str:
    if not sys.stdin.isatty():
        raise SymbiError(
            ErrorCode.SEC_006,
            f"a {label} is needed but there is no terminal to ask on",
            offending=label,
            hint=f"set {PASSPHRASE_ENV_VAR} (or {NEW_PASSPHRASE_ENV_VAR} for a new one)",
        )
    return getpass.getpass(f"{label[0].upper()}{label[1:]}: ")


def _passphrase_source(args: argparse.Namespace) -> KeySource | None:
    if not args.passphrase:
        return None
    text = os.environ.get(PASSPHRASE_ENV_VAR) or _prompt("passphrase")
    return KeySource.passphrase(text)


def open_vault(args: argparse.Namespace) -> Vault:
    data_dir = ensure_data_dir(resolve_data_dir(args.data_dir))  # 0700 when new
    check_data_dir(data_dir)  # RUNTIME_003 when loose, as at engine start
    return Vault.open(data_dir, secrets_config(args, data_dir), key_source=_passphrase_source(args))


# ---------------------------------------------------------------------- #
# Commands
# ---------------------------------------------------------------------- #


def _read_value(args: argparse.Namespace) -> SecretValue:
    if args.value is not None:
        print(
            "warning: --value leaves the secret in your shell history and the process list; "
            "prefer stdin or --value-file",
            file=sys.stderr,
        )
        raw = args.value.encode("utf-8")
    elif args.value_file is not None:
        try:
            raw = Path(args.value_file).read_bytes()
        except FileNotFoundError:
            raise SymbiError(
                ErrorCode.SEC_004, f"value file {args.value_file} not found", offending=args.value_file
            ) from None
    elif sys.stdin.isatty():
        raw = getpass.getpass(f"Value for {args.name} (not echoed): ").encode("utf-8")
    else:
        raw = sys.stdin.buffer.read()
        if not args.keep_newline:
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not raw:
        raise SymbiError(
            ErrorCode.SEC_005,
            f"no value given for {args.name}",
            offending=args.name,
            hint="pipe the value on stdin, or use --value-file",
        )
    return SecretValue(raw)


def cmd_set(args: argparse.Namespace) -> int:
    vault = open_vault(args)
    value = _read_value(args)
    metadata: dict[str, Any] | None = None
    if args.description is not None or args.tags:
        previous = vault.info(args.name) if vault.exists(args.name) else None
        metadata = dict(previous.metadata) if previous else {}
        metadata["description"] = args.description if args.description is not None else _or(previous, "description")
        metadata["tags"] = args.tags if args.tags else list(_or(previous, "tags", ()))
    info = vault.set(args.name, value, metadata)
    print(f"stored {info.path} (version {info.version}, key {info.key_id})", file=sys.stderr)
    return 0


def _or(info: Any, attr: str, default: Any = "") -> Any:
    return getattr(info, attr) if info is not None else default


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:  # a text-only stream (some test harnesses)
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()


def cmd_get(args: argparse.Namespace) -> int:
    value = open_vault(args).get(args.name, version=args.version)
    data = value.reveal_bytes()
    _write_stdout(data + b"\n" if sys.stdout.isatty() and not data.endswith(b"\n") else data)
    return 0


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def cmd_list(args: argparse.Namespace) -> int:
    rows = open_vault(args).list_secrets(args.prefix)
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return 0
    if not rows:
        print("no secrets" + (f" under {args.prefix!r}" if args.prefix else ""))
        return 0
    width = max(24, *(len(row.path) for row in rows))
    print(f"{'NAME':<{width}} {'VER':>4}  {'UPDATED':<19}  {'KEY':<16}  DESCRIPTION")
    for row in rows:
        if row.error:
            print(f"{row.path:<{width}} {'!':>4}  {'-':<19}  {row.key_id or '-':<16}  unreadable: {row.error}")
            continue
        tags = f" [{', '.join(row.tags)}]" if row.tags else ""
        print(
            f"{row.path:<{width}} {row.version:>4}  {_stamp(row.updated):<19}  {row.key_id:<16}  {row.description}{tags}"
        )
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    open_vault(args).delete(args.name)
    print(f"deleted {args.name}", file=sys.stderr)
    return 0


def _new_passphrase() -> str:
    text = os.environ.get(NEW_PASSPHRASE_ENV_VAR)
    if text:
        return text
    first = _prompt("new passphrase")
    if first != _prompt("new passphrase again"):
        raise SymbiError(ErrorCode.SEC_006, "the two new passphrases differ", offending="passphrase")
    return first


def cmd_rotate_key(args: argparse.Namespace) -> int:
    vault = open_vault(args)
    target: KeySource | None = None
    if args.new_key_env:
        target = KeySource.env(args.new_key_env)
    elif args.new_passphrase:
        target = KeySource.passphrase(_new_passphrase())
    elif args.to_key_file:
        target = KeySource.key_file()
    report = vault.rotate_key(target, keep_old=not args.purge_old)
    if args.purge_old:
        vault.purge_retired_keys()
    print(f"rotated the master key {report.old_key_id} -> {report.new_key_id}: {report.reencrypted} files re-encrypted")
    for path in report.skipped:
        print(f"warning: could not re-encrypt {path} (unreadable; left as it was)", file=sys.stderr)
    if report.retired_kept:
        print(f"the old key is kept in {vault.keystore.retired_dir} for older `secrets encrypt` files")
    else:
        print("retired keys destroyed")
    if args.new_key_env:
        print(f"now set {ENV_VAR} to the value of {args.new_key_env} everywhere this vault is opened")
    return 0


def cmd_encrypt(args: argparse.Namespace) -> int:
    vault = open_vault(args)
    encrypt_file(vault, Path(args.input), Path(args.output), force=args.force)
    print(f"encrypted {args.input} -> {args.output} (key {vault.key_id})", file=sys.stderr)
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    vault = open_vault(args)
    if args.output:
        decrypt_file(vault, Path(args.input), Path(args.output), force=args.force)
        print(f"decrypted {args.input} -> {args.output}", file=sys.stderr)
    else:
        _write_stdout(decrypt_bytes_of(vault, Path(args.input)))
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    outcome, status = edit_file(open_vault(args), Path(args.file))
    if outcome is EditOutcome.EDITOR_FAILED:
        print(f"symbiont: the editor exited with status {status}; {args.file} left unchanged", file=sys.stderr)
        return 1
    print(f"{args.file}: {'saved' if outcome is EditOutcome.SAVED else 'no changes, nothing written'}", file=sys.stderr)
    return 0
