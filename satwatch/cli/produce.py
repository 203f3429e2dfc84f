"""``satwatch produce``: publish frames from the simulator, an archive, or a watched directory."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from satwatch.cli import add_config_argument
from satwatch.cli._common import add_kafka_arguments, settings_from_args
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.producers.sources import DirectoryWatcher, WatchPosition, archive_source, paced
from satwatch.services.detection.metrics import MetricsServer, ProducerMetrics
from satwatch.services.frames.archive import Archive, NoFramesError
from satwatch.services.frames.profiles import ProfileError, profile_names
from satwatch.topics import ensure_topics

log = logging.getLogger(__name__)


def parse_time(text: str) -> datetime:
    """ISO time; a value without offset is taken as UTC."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce",
        help="publish frames to Kafka from the simulator, an archive replay or a watched directory",
        description=(
            "Publish satellite frames to the frames topic, keyed by satellite, shrunk to the study size and "
            "encoded inline (or as a claim check to the archive with --claim-check). Input that cannot be read "
            "goes to the dead-letter topic with its reason."
        ),
    )
    sources = p.add_subparsers(dest="source", metavar="SOURCE", required=True)

    sim = sources.add_parser("simulator", help="frames from the built-in scene simulator (config [simulator])")
    sim.add_argument("--days", type=float, help="length of the simulated stream in days")
    sim.add_argument("--seed", type=int, help="simulator seed (same seed, same frames)")

    arc = sources.add_parser(
        "archive", help="replay an archive of a satellite's images (named as its profile says) between two times"
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
    arc.add_argument("--claim-check", action="store_true", help="send a reference to the full-resolution archive frame")

    watch = sources.add_parser("watch", help="publish each frame once all its channels have landed in a directory")
    watch.add_argument("--dir", required=True, type=Path, help="directory the images land in (sub-folders too)")
    watch.add_argument("--satellite", default="COMS-1", help="satellite profile of the images that land")
    watch.add_argument("--area", help="area (sector) to publish; default: the first one seen")
    watch.add_argument(
        "--position",
        type=Path,
        help="file that records what was published, so a restart re-sends nothing "
        "(default: <detector.state_dir>/watch-<satellite>.json)",
    )
    watch.add_argument("--poll", type=float, default=1.0, help="seconds between directory scans")
    watch.add_argument("--settle", type=float, default=0.5, help="a file counts once its size is stable this long")

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
            "0 = as fast as possible",
        )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
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
        if args.source == "simulator":
            from satwatch.services.simulator.scene import SceneSimulator, SimConfig

            cfg = SimConfig.from_settings(settings.simulator, days=args.days, seed=args.seed)
            sim = SceneSimulator(cfg)
            publisher = FramePublisher(producer, settings.kafka, metrics, source="simulator")
            items = tqdm(
                paced(iter(sim.frames()), args.speed),
                total=len(sim.times),
                unit="frame",
                desc="simulator",
                disable=None,  # a progress bar only on a terminal
            )
            n = publisher.publish_all(items)
        elif args.source == "archive":
            archive = Archive(args.archive, args.satellite, args.area)
            metrics.unrecognised_files.labels(archive.satellite).inc(len(archive.unrecognised))
            archive.require_frames()
            if not archive.times_between(args.start, args.end):
                raise NoFramesError(
                    f"{len(archive)} {archive.satellite} frames under {args.archive} "
                    f"({archive.times[0]:%Y-%m-%dT%H:%MZ} .. {archive.times[-1]:%Y-%m-%dT%H:%MZ}), none between "
                    f"--start and --end"
                )
            root = args.archive if args.claim_check else None
            publisher = FramePublisher(producer, settings.kafka, metrics, source="archive", claim_check_root=root)
            times = archive.times_between(args.start, args.end)
            items = tqdm(
                paced(archive_source(archive, args.start, args.end), args.speed),
                total=len(times),
                unit="frame",
                desc="replay",
                disable=None,  # a progress bar only on a terminal
            )
            n = publisher.publish_all(items)
        else:
            watcher = DirectoryWatcher(
                args.dir,
                args.satellite,
                args.area,
                settle_seconds=args.settle,
                on_unrecognised=lambda _: metrics.unrecognised_files.labels(args.satellite).inc(),
                position=WatchPosition(
                    args.position or Path(settings.detector.state_dir) / f"watch-{args.satellite}.json"
                ),
            )
            publisher = FramePublisher(producer, settings.kafka, metrics, source="watch")
            print(
                f"watching {args.dir} for {args.satellite} images named like {watcher.profile.filename_template} "
                "(Ctrl-C stops)",
                flush=True,
            )
            n = 0
            for item in watcher.watch(args.poll):
                publisher.publish(item)
                publisher.flush()
                if item.time is not None:
                    watcher.commit([item.time])
                n += 1
                log.info("published %s", getattr(item, "time", item))
        publisher.flush()
        if publisher.failed:
            print(
                f"error: {publisher.failed} of {n} messages could not be published to {settings.kafka.frames_topic} "
                f"at {settings.kafka.bootstrap_servers} (see the log)",
                file=sys.stderr,
            )
            return 1
        print(f"published {n} frames to {settings.kafka.frames_topic} at {settings.kafka.bootstrap_servers}")
    except (NoFramesError, ProfileError) as exc:
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
