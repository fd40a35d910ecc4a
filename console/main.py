"""``symbi-console``: launch the Textual console, or the engine headless.

Errors become one clear line (code, message, hint) on stderr and exit
status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from engine.api import boot
from engine.errors import SymbiError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="symbi-console", description="Operations console for Symbi agents.")
    p.add_argument("--headless", action="store_true", help="run the engine without the UI until SIGINT/SIGTERM")
    p.add_argument("--data-dir", help="where the engine keeps its data (default: SYMBI_DATA_DIR or the per-user dir)")
    p.add_argument("--config", help="runtime_config.toml to read (default: SYMBI_CONFIG, then the data dir)")
    p.add_argument("--readonly", action="store_true", help="hide and refuse every mutating action")
    p.add_argument(
        "--connect",
        metavar="URL",
        help="attach to an engine serving its HTTP API at URL (token from SYMBI_API_TOKEN); "
        "quitting leaves its agents running",
    )
    p.add_argument("--theme", help="symbi-dark, symbi-light or symbi-ansi")
    p.add_argument("--context", metavar="NAME", help="open the engine of [[console.contexts]] NAME (as :ctx NAME)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        setup = boot.load_setup(args.config, args.data_dir)
    except SymbiError as exc:
        print(f"symbi-console: {exc.render()}", file=sys.stderr)
        return 2
    boot.setup_logging(setup, to_stderr=args.headless)
    import logging

    log = logging.getLogger("symbi.console")
    for warning in setup.warnings:
        log.warning("config: %s", warning)
        if args.headless:
            continue
        print(f"symbi-console: warning: {warning}", file=sys.stderr)
    try:
        if args.headless:
            return asyncio.run(boot.run_headless(setup))
        from console.app import SymbiConsole

        if args.context:
            engine = boot.context_engine(setup, args.context)
        elif args.connect:
            engine = boot.connect(args.connect)
        else:  # a data dir an engine already holds: attach to it through its socket
            engine = boot.attach(setup) or boot.local_engine(setup)
        while True:  # `:ctx NAME` ends an app and names the engine the next one opens
            app = SymbiConsole(
                engine,
                readonly=args.readonly,
                settings=setup.console,
                theme_name=args.theme,
            )
            app.run()
            error = getattr(app, "startup_error", None)
            if error is not None:
                print(f"symbi-console: {error.render()}", file=sys.stderr)
                return 2
            if app.next_context is None:
                return app.return_code or 0
            engine = boot.context_engine(setup, app.next_context)
    except SymbiError as exc:
        print(f"symbi-console: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
