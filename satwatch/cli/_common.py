"""Options shared by the Kafka-facing commands."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from satwatch.cli import add_config_argument
from satwatch.services.config import Settings, load_settings
from satwatch.services.detection.journal import JOURNAL_FILE, pending_windows
from satwatch.services.metric.groundtruth import GridSpec

if TYPE_CHECKING:
    from satwatch.services.retrieval.index import SimilarityIndex

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


def no_saved_index_message(index_dir: str | Path, save_every: int) -> str:
    """Why ``index_dir`` holds no saved index, and what to do: a running detector that has not snapshotted
    yet (its windows are in the journal), or no index at all (build one)."""
    root = Path(index_dir)
    pending = pending_windows(root)
    if pending:
        return (
            f"no index snapshot in {root} yet: a running detector keeps {pending} window(s) in its journal "
            f"({JOURNAL_FILE}) and saves its index every {save_every} new windows (detector.index_save_every) "
            "and when it stops. Try again after the next save, or stop the detector (SIGTERM) so it saves"
        )
    return (
        f"no saved index in {root}: build one with `satwatch index build --archive DIR`, or point --index at a "
        f"detector's <state_dir>/index (a running detector saves it every {save_every} new windows and when "
        "it stops)"
    )


def load_saved_index(index_dir: str | Path, save_every: int, ef: int | None = None) -> SimilarityIndex:
    """``SimilarityIndex.load`` with a message that says what to do when nothing is saved there yet."""
    from satwatch.services.retrieval.index import SimilarityIndex

    if not SimilarityIndex.exists(index_dir):
        raise FileNotFoundError(no_saved_index_message(index_dir, save_every))
    return SimilarityIndex.load(index_dir, ef=ef)
