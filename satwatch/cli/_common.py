"""Options shared by the Kafka-facing commands."""

from __future__ import annotations

import argparse

from satwatch.services.config import Settings, load_settings


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (config kafka.bootstrap_servers; default 127.0.0.1:9092)",
    )
    parser.add_argument("--frames-topic", help="topic frames are published to (default 'frames')")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Config file + environment, then the command-line flags on top."""
    settings = load_settings(getattr(args, "config", None))
    if getattr(args, "bootstrap_servers", None):
        settings.kafka.bootstrap_servers = args.bootstrap_servers
    if getattr(args, "frames_topic", None):
        settings.kafka.frames_topic = args.frames_topic
    return settings
