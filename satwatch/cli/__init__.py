"""The ``satwatch`` command line. Each subcommand lives in its own module here and exposes ``register``.

A module registers itself with ``register(subparsers)``, adding a parser whose ``func`` default takes the
parsed arguments and returns an exit code. Modules are discovered, so adding a command touches one file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from satwatch import __version__


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The --config option every subcommand takes."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $SATWATCH_CONFIG); env vars SATWATCH_<SECTION>__<KEY> override it",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="satwatch",
        description=(
            "Streaming detector for geostationary weather-satellite imagery. Frames flow "
            "source -> producer -> Kafka 'frames' -> detector -> alerts + metrics."
        ),
        epilog="Run 'satwatch COMMAND --help' for what each command does and its options.",
    )
    parser.add_argument("--version", action="version", version=f"satwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"satwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
