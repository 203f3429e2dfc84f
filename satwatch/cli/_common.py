"""Options shared by the Kafka-facing commands."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from satwatch.cli import add_config_argument
from satwatch.services.config import Settings, load_settings
from satwatch.services.metric.groundtruth import GridSpec

#: What serves an archive's frames when no --model-dir is given (``router.archive_route``), for the help of
#: ``index build``, ``search`` and ``nowcast --index``.
ARCHIVE_ENCODER_DEFAULT = (
    "the config's detector.model_dirs entry for the satellite, or detector.model_dir; else, for a procedural "
    "simulated archive, the set trained on that simulator, onnx_models; else the satellite profile's, COMS-1: "
    "encoder-v3"
)


def parse_time(text: str) -> datetime:
    """A command-line time: ISO 8601 (``2011-03-03T09:00Z``) or KMA's ``YYYYMMDDHHMM``; naive times are UTC."""
    s = text.strip()
    try:
        t = datetime.strptime(s, "%Y%m%d%H%M") if s.isdigit() else datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use e.g. 2011-03-03T09:00Z)") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (config kafka.bootstrap_servers; default 127.0.0.1:9092)",
    )
    parser.add_argument("--frames-topic", help="topic frames are published to (default 'frames')")


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """What the long-running services (``detect``, ``feed``) take alike: config file, Kafka, both topics."""
    add_config_argument(parser)
    add_kafka_arguments(parser)
    parser.add_argument("--alerts-topic", help="topic the detector publishes alerts to (default 'alerts')")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Config file + environment, then the command-line flags on top."""
    settings = load_settings(getattr(args, "config", None))
    if getattr(args, "bootstrap_servers", None):
        settings.kafka.bootstrap_servers = args.bootstrap_servers
    if getattr(args, "frames_topic", None):
        settings.kafka.frames_topic = args.frames_topic
    if getattr(args, "alerts_topic", None):
        settings.kafka.alerts_topic = args.alerts_topic
    return settings


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    """Options naming the metric's grid, bins, mode, cache and worker count."""
    parser.add_argument(
        "--grid", type=int, default=24, metavar="N", help="cut each image into N x N cells (default 24)"
    )
    parser.add_argument(
        "--bins", type=int, default=20, metavar="B", help="histogram bins: values 0..B, B+1 in all (default 20)"
    )
    parser.add_argument(
        "--mode",
        choices=("seed", "general"),
        default="seed",
        help="seed: reproduce the study's C++ program exactly, quirks included; like it, only accepts COMS "
        "images 1500 wide x 1300 high (KMA's full-size PNGs). general: any size, cells cut evenly without "
        "wrap-around (default seed)",
    )
    parser.add_argument(
        "--cache", metavar="DIR", help="keep per-frame signatures here and reuse them (keyed by file path, mtime, size)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="threads decoding images (default: all cores)",
    )


def spec_from_args(args: argparse.Namespace) -> GridSpec:
    return GridSpec(n=args.grid, bins=args.bins, mode=args.mode)
