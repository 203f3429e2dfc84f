"""``satwatch produce``: publish frames from the simulator, an archive, or a watched directory."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from satwatch.cli import add_config_argument
from satwatch.cli._common import add_kafka_arguments, parse_time, settings_from_args
from satwatch.producers.interface import (
    ClaimCheckNeededError,
    FrameStream,
    SimulatorUnsendableError,
    get_source,
    require_inline_fit,
    require_simulator_sendable,
)
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.services.config import KafkaSettings
from satwatch.services.detection.metrics import MetricsServer, ProducerMetrics
from satwatch.services.frames.archive import NoFramesError
from satwatch.services.frames.profiles import ProfileError, profile_names
from satwatch.topics import ensure_topics

log = logging.getLogger(__name__)


def _when(t: datetime | None) -> str:
    """A frame time as every other log line and the feed write it (``2011-03-03 06:45Z``)."""
    return "(time unknown)" if t is None else f"{t:%Y-%m-%d %H:%M}Z"


def publish_live(stream: FrameStream, publisher: FramePublisher, dead_letter_topic: str) -> int:
    """Send each item as it comes, one at a time, and record it as handled only once Kafka has it.

    A frame the publisher gave up on (``failed`` grew; it has logged why) is left out of the source's record
    (the watcher's position file), so a restart sends it again instead of losing it. Returns the items handed in.
    """
    n = 0
    for item in stream.items:
        failed = publisher.failed
        reason = publisher.publish(item)
        publisher.flush()
        n += 1
        if publisher.failed > failed:
            log.error("not published %s; a restart will send it again", _when(item.time))
            continue
        if stream.on_handled is not None:
            stream.on_handled(item, reason is not None)
        if reason is None:
            log.info("published %s", _when(item.time))
        else:  # the publisher has logged what is wrong
            log.info("refused %s (%s); sent to %s", _when(item.time), reason, dead_letter_topic)
    return n


def summary(published: int, refused: int, kafka: KafkaSettings) -> str:
    """The closing line: frames published, and input refused to the dead-letter topic when there was some."""
    frames = "1 frame" if published == 1 else f"{published} frames"
    line = f"published {frames} to {kafka.frames_topic} at {kafka.bootstrap_servers}"
    if refused:
        line += f"; refused {refused} (sent to {kafka.dead_letter_topic}, see the log)"
    return line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce",
        help="publish frames to Kafka from the simulator, an archive replay or a watched directory",
        description=(
            "Publish satellite frames to the frames topic, keyed by satellite, shrunk to the study size and "
            "encoded inline (or, with --claim-check, as a reference to the files in the archive or watched "
            "directory). Input that cannot be read or sent goes to the dead-letter topic with its reason and is "
            "counted as refused (exit status 0)."
        ),
    )
    sources = p.add_subparsers(dest="source", metavar="SOURCE", required=True)

    sim = sources.add_parser(
        "simulator",
        help="frames from the built-in scene simulator (config [simulator])",
        description="Publish the built-in scene simulator's frames (scene, size, events: config [simulator]), "
        "as fast as possible or paced with --speed. A procedural scene is served by the root model set "
        "(satwatch detect --model-dir onnx_models), as the banner says.",
    )
    sim.add_argument("--days", type=float, help="length of the simulated stream in days")
    sim.add_argument("--seed", type=int, help="simulator seed (same seed, same frames)")

    arc = sources.add_parser(
        "archive",
        help="replay an archive of a satellite's images (named as its profile says) between two times",
        description="Replay the complete frames (every channel present) of an archive between --start and --end, "
        "in time order. Files named otherwise, or of channels the profile does not read, are ignored (and "
        "logged); a time that cannot be read or sent goes to the dead-letter topic and the replay goes on.",
    )
    arc.add_argument("--archive", required=True, type=Path, help="archive directory (searched recursively)")
    arc.add_argument("--start", type=parse_time, help="first observation time, ISO UTC (default: the first)")
    arc.add_argument("--end", type=parse_time, help="last observation time, ISO UTC (default: the last)")
    arc.add_argument(
        "--satellite",
        default="COMS-1",
        help=f"satellite profile: its file naming, channels and size ({', '.join(profile_names())})",
    )
    arc.add_argument("--area", help="area (sector) to replay when the archive holds several, e.g. ea040ps")
    arc.add_argument(
        "--claim-check",
        action="store_true",
        help="send a reference to the archive's frame instead of its pixels; needed for satellites whose shrunk "
        "frames exceed the inline limit (GK-2A, Himawari-8/9: without it the replay refuses to start). The "
        "detector must be able to read the archive "
        "and list it in detector.claim_check_roots",
    )

    watch = sources.add_parser(
        "watch",
        help="publish each frame once all its channels have landed in a directory",
        description="Watch a directory (sub-folders too) where a receiving station drops images; publish each "
        "time once every channel has landed and stopped growing, exactly once across restarts (--position). "
        "Runs until stopped (Ctrl-C or SIGTERM).",
    )
    watch.add_argument("--dir", required=True, type=Path, help="directory the images land in (sub-folders too)")
    watch.add_argument("--satellite", default="COMS-1", help="satellite profile of the images that land")
    watch.add_argument("--area", help="area (sector) to publish; default: the first one seen")
    watch.add_argument(
        "--position",
        type=Path,
        help="file that records what was published or refused, so a restart re-sends nothing "
        "(default: <detector.state_dir>/watch-<satellite>.json)",
    )
    watch.add_argument(
        "--claim-check",
        action="store_true",
        help="send a reference to the files in the watched directory instead of their pixels; needed for "
        "satellites whose shrunk frames exceed the inline limit (GK-2A, Himawari-8/9: without it the watcher "
        "refuses to start). The detector must be able to read the directory and list it in "
        "detector.claim_check_roots; keep the files there while the detector may still read them",
    )
    watch.add_argument("--poll", type=float, default=1.0, help="seconds between directory scans (default %(default)s)")
    watch.add_argument(
        "--settle",
        type=float,
        default=0.5,
        help="seconds a file's size must stay the same before it counts as landed (default %(default)s)",
    )

    for q in (sim, arc, watch):
        add_config_argument(q)
        add_kafka_arguments(q)
        q.add_argument("--metrics-port", type=int, help="serve producer metrics on this port")
    for q in (sim, arc):
        q.add_argument(
            "--speed",
            type=float,
            default=0.0,
            help="replay speed as a multiple of real time by observation time (3600 = one hour a second); "
            "0 = as fast as possible (default %(default)s)",
        )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    # Before Kafka is reached: a source whose every frame would be refused (too large to travel inline, or a
    # simulator set to a satellite whose channels it does not render) is refused at once.
    try:
        if args.source in ("archive", "watch") and not args.claim_check:
            require_inline_fit(args.satellite, args.archive if args.source == "archive" else args.dir, args.source)
        elif args.source == "simulator":
            sim = settings.simulator
            require_simulator_sendable(sim.satellite, sim.width, sim.height)
    except (ProfileError, ClaimCheckNeededError, SimulatorUnsendableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ensure_topics(settings.kafka)
    metrics = ProducerMetrics()
    server = (
        MetricsServer(metrics.registry, settings.metrics.host, args.metrics_port)
        if args.metrics_port is not None
        else None
    )
    producer = make_producer(settings.kafka)
    publisher: FramePublisher | None = None
    try:
        stream = get_source(args.source)(settings, metrics, **vars(args))
        publisher = FramePublisher(
            producer, settings.kafka, metrics, source=stream.name, claim_check_root=stream.claim_check_root
        )
        if stream.banner:
            print(stream.banner, flush=True)
        if stream.live:
            n = publish_live(stream, publisher, settings.kafka.dead_letter_topic)
        else:
            # A progress bar only on a terminal (disable=None).
            bar = tqdm(stream.items, total=stream.total, unit="frame", desc=stream.name, disable=None)
            n = publisher.publish_all(bar)
        publisher.flush()
        if publisher.failed:
            print(
                f"error: {publisher.failed} of {n} messages could not be published to {settings.kafka.frames_topic} "
                f"at {settings.kafka.bootstrap_servers} (see the log)",
                file=sys.stderr,
            )
            return 1
        # Refused input (on the dead-letter topic, each logged with its reason) is no failure: exit 0, and say so.
        print(summary(publisher.frames_sent, publisher.refused, settings.kafka))
    except (NoFramesError, ProfileError, ClaimCheckNeededError, SimulatorUnsendableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped")
    finally:
        if publisher is not None:
            publisher.close()  # the producer in use, which may have replaced the first one
        else:
            producer.close(5)
        if server:
            server.close()
    return 0
