"""``symbiont sandbox ...``: which tiers work here, and the local agent image.

::

    symbiont sandbox doctor [--json] [--config FILE]
    symbiont sandbox prepare-image [--tag TAG] [--rootfs DIR] [--rebuild] [--config FILE]

``doctor`` prints one row per tier (status, what it enforces or why it does
not work, and the fix) and exits 0 whatever it finds. ``prepare-image``
builds ``sandbox.docker_image`` (or ``--tag``) without any registry (see
:mod:`engine.sandbox.image`). Registered by ``engine.cli`` through
``register(subparsers)``; ``python -m engine.sandbox.cli doctor|prepare-image``
runs the same commands without the plugin registration (``.ci/setup-sandboxes.sh``
uses that).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from engine.config import SandboxConfig, find_config_file, load_config, resolve_data_dir
from engine.errors import SymbiError


def _config(args: argparse.Namespace) -> tuple[SandboxConfig, Path]:
    data_dir = resolve_data_dir(getattr(args, "data_dir", None))
    loaded = load_config(find_config_file(getattr(args, "config", None), data_dir))
    return loaded.config.sandbox, data_dir


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.sandbox.registry import SandboxRegistry

    config, data_dir = _config(args)
    registry = SandboxRegistry(config, data_dir)
    rows = registry.doctor()
    layers = registry.layers()
    native, native_detail = registry.native_summary()
    if args.json:
        doc = {
            "tiers": [
                {"tier": r.tier.value, "name": r.name, "available": r.available, "detail": r.detail, "fix": r.fix}
                for r in rows
            ],
            "layers": [{"layer": name, "in_force": ok, "detail": detail} for name, ok, detail in layers],
            "native": {"executor": native, "detail": native_detail},
        }
        print(json.dumps(doc, indent=2))
        return 0
    width = max(60, min(shutil.get_terminal_size((120, 20)).columns, 160))
    indent = 7 + 1 + 15 + 1 + 8 + 1
    text_width = width - indent

    def row(first: str, name: str, status: str, detail: str, fix: str | None = None) -> None:
        lines = textwrap.wrap(detail, text_width, break_on_hyphens=False) or [""]
        if fix:
            lines += textwrap.wrap(f"fix: {fix}", text_width, break_on_hyphens=False)
        print(f"{first:<7} {name:<15} {status:<8} {lines[0]}")
        for line in lines[1:]:
            print(" " * indent + line)

    row("TIER", "NAME", "STATUS", "DETAIL / FIX")
    for r in rows:
        row(r.tier.value, r.name, "ok" if r.available else "missing", r.detail, r.fix)
    print()
    row("LAYER", "", "STATUS", "WHAT IT DOES HERE")
    for name, ok, detail in layers:
        row("", name, "on" if ok else "off", detail)
    working = sorted({r.tier.value for r in rows if r.available})
    print(f"\ntiers that work here: {', '.join(working) or 'none'}")
    if native is None:
        print(f"native agents here: REFUSED: {native_detail}")
    else:
        print(f"native agents here: {native}: {native_detail}")
    return 0


def cmd_prepare_image(args: argparse.Namespace) -> int:
    from engine.sandbox.image import prepare_image

    config, _ = _config(args)
    tag = args.tag or config.docker_image
    prepare_image(tag, rootfs=Path(args.rootfs) if args.rootfs else None, rebuild=args.rebuild)
    return 0


def register(subparsers: Any) -> None:
    """Add ``sandbox doctor`` and ``sandbox prepare-image`` to the ``symbiont`` parser."""
    sandbox = subparsers.add_parser("sandbox", help="security tiers: what works here, the local agent image")
    sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    doctor = sub.add_parser("doctor", help="show which security tiers work on this machine and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--config", help="runtime_config.toml to read [sandbox] from")
    doctor.set_defaults(func=cmd_doctor)
    prep = sub.add_parser("prepare-image", help="build the local agent image for Docker/gVisor (no registry)")
    prep.add_argument("--tag", help="image name:tag (default: sandbox.docker_image)")
    prep.add_argument("--rootfs", help="Debian rootfs to use or create (default: /var/cache/symbi/rootfs)")
    prep.add_argument("--rebuild", action="store_true", help="import again even if the image is up to date")
    prep.add_argument("--config", help="runtime_config.toml to read [sandbox] from")
    prep.set_defaults(func=cmd_prepare_image)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.sandbox.cli doctor|prepare-image ...``: the same as ``symbiont sandbox ...``."""
    parser = argparse.ArgumentParser(prog="python -m engine.sandbox.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except SymbiError as exc:
        print(f"symbiont: {exc.render()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
