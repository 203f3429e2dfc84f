"""``satwatch demo``: the whole pipeline on the embedded default, in one terminal."""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from satwatch.broker import EmbeddedBroker
from satwatch.cli import add_config_argument
from satwatch.cli._common import settings_from_args
from satwatch.consumers.detector import DetectorConsumer
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.producers.sources import paced
from satwatch.services.detection.alerts import Alert
from satwatch.services.detection.detector import FrameOutcome, build_detector
from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer, ProducerMetrics
from satwatch.topics import ensure_topics

if TYPE_CHECKING:
    from satwatch.localfeed import LocalFeed
    from satwatch.services.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run everything locally: broker, simulated satellite stream, detector, metrics; print alerts",
        description=(
            "Start the embedded Kafka-protocol broker on a free loopback port, a Prometheus metrics endpoint, "
            "the detector consumer (shipped ONNX models) and a producer replaying the scene simulator's stream "
            "with its labelled events, then print alerts as they fire. The first simulated day has no history; "
            "from then on alerts list similar past windows. Ctrl-C stops everything cleanly."
        ),
    )
    add_config_argument(p)
    p.add_argument("--days", type=float, default=3.0, help="length of the simulated stream (default 3 days)")
    p.add_argument(
        "--speed",
        type=float,
        default=5400.0,
        help="simulated seconds per real second (default 5400: six 15-minute frames a second)",
    )
    p.add_argument("--seed", type=int, help="simulator seed")
    p.add_argument("--state-dir", default="var/demo", help="where the demo keeps its alert store and index")
    p.add_argument("--metrics-port", type=int, help="metrics port (default config metrics.port, 9108)")
    p.add_argument("--keep-state", action="store_true", help="keep alerts and index from the previous demo run")
    p.add_argument("--no-feed", action="store_true", help="do not run the incidents sink and the feed web page")
    p.add_argument("--feed-port", type=int, help="feed port (default config feed.port, 8088; taken: a free one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from satwatch.producers.interface import require_simulator_sendable
    from satwatch.services.feed.config import load_feed_settings
    from satwatch.services.simulator.scene import PROCEDURAL_MODELS, SimConfig
    from satwatch.services.simulator.scenes import open_scene

    settings = settings_from_args(args)
    load_feed_settings(getattr(args, "config", None))  # a misspelt [feed] key fails before anything starts
    state = Path(args.state_dir)
    if state.exists() and not args.keep_state:
        shutil.rmtree(state)
    settings.detector.state_dir = str(state)
    cfg = SimConfig.from_settings(settings.simulator, days=args.days, seed=args.seed)
    require_simulator_sendable(cfg.satellite, cfg.width, cfg.height)  # before the broker starts
    sim = open_scene(cfg)  # [simulator] scene: procedural, or texture (real cloud fields)
    if cfg.scene == "procedural" and not (settings.detector.model_dir or settings.detector.model_dirs):
        # COMS-1's own autoencoder knows real cloud fields; the procedural scene is the root set's world.
        settings.detector.model_dir = PROCEDURAL_MODELS  # a shipped set's name: found from any directory
    print(
        f"simulated stream: {len(sim.times)} frames of {cfg.satellite} from {sim.times[0]:%Y-%m-%d %H:%M}Z, "
        f"{len(sim.events)} labelled events",
        flush=True,
    )

    t_start = time.monotonic()
    first_alert: list[float] = []
    counts = {"frames": 0, "alerts": 0}

    def on_alert(alert: Alert) -> None:
        if not first_alert:
            first_alert.append(time.monotonic() - t_start)
        counts["alerts"] += 1
        active = [e.kind for e in sim.labels_at(alert.window_end)]
        label = f"  [simulator label: {', '.join(active)}]" if active else "  [no labelled event: a false alert]"
        head, _, rest = alert.summary().partition("\n")
        print(f"{head}{label}\n{rest}", flush=True)

    def on_outcome(outcome: FrameOutcome) -> None:
        counts["frames"] += 1
        if feed is not None:
            feed.on_outcome(outcome)
        if counts["frames"] % 48 == 0:
            print(
                f"... {counts['frames']} frames processed, stream time {outcome.time:%Y-%m-%d %H:%M}Z, "
                f"{counts['alerts']} alerts",
                flush=True,
            )

    with EmbeddedBroker(settings.broker.host, settings.broker.port or 0) as broker:
        settings.kafka.bootstrap_servers = broker.bootstrap_servers
        ensure_topics(settings.kafka)
        feed = None if args.no_feed else _start_feed(settings, state, args)
        metrics = DetectorMetrics()
        try:
            server = MetricsServer(
                metrics.registry,
                settings.metrics.host,
                args.metrics_port if args.metrics_port is not None else settings.metrics.port,
            )
        except OSError:
            server = MetricsServer(metrics.registry, settings.metrics.host, 0)
        detector = build_detector(settings, metrics)
        consumer = DetectorConsumer(settings, detector, on_alert=on_alert, on_outcome=on_outcome)
        server.ready = consumer.ready  # /readyz: models loaded, loop running, partitions assigned
        worker = threading.Thread(target=consumer.run, name="detector", daemon=True)
        print(
            f"broker {broker.bootstrap_servers} | metrics {server.url} | threshold {detector.threshold:.4f} "
            "| Ctrl-C stops",
            flush=True,
        )
        worker.start()
        producer = make_producer(settings.kafka)
        publisher = FramePublisher(producer, settings.kafka, ProducerMetrics(), source="simulator")
        try:
            for frame in paced(iter(sim.frames()), args.speed):
                if feed is not None:
                    feed.on_frame(frame)
                publisher.publish(frame)
            publisher.flush()
            while counts["frames"] < len(sim.times) and worker.is_alive():
                time.sleep(0.2)
            if feed is not None:
                feed.drain(counts["alerts"])
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            producer.close(5)
            consumer.stop()
            worker.join(timeout=30)
            server.close()
            if feed is not None:
                feed.stop()
                print(f"feed: {feed.summary()}", flush=True)
    took = time.monotonic() - t_start
    fa = f"{first_alert[0]:.1f} s" if first_alert else "none"
    print(
        f"demo done: {counts['frames']} frames, {counts['alerts']} alerts in {took:.0f} s; first alert after {fa}; "
        f"alert store {state / 'alerts.sqlite'}"
    )
    return 0


def _start_feed(settings: Settings, state: Path, args: argparse.Namespace) -> LocalFeed | None:
    """The incidents sink and the feed page beside the detector; None (with a note) without the feed extra."""
    from satwatch.localfeed import LocalFeed

    try:
        feed = LocalFeed(settings, state, getattr(args, "config", None), args.feed_port).start()
    except ImportError as exc:  # pragma: no cover - starlette/uvicorn missing
        print(f"feed not started ({exc}); pip install 'satwatch[feed]'", flush=True)
        return None
    print(f"feed {feed.url} (acknowledge with token {feed.feed.token})", flush=True)
    return feed
