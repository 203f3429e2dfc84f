"""``satwatch detect``: run the detector consumer."""

from __future__ import annotations

import argparse
import math
import signal
import threading

from satwatch.cli._common import add_service_arguments, settings_from_args
from satwatch.consumers.detector import DetectorConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert
from satwatch.services.detection.detector import FrameOutcome
from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer
from satwatch.services.detection.router import DetectorRouter, FrameDetector, build_frame_detector
from satwatch.services.detection.scores import COLUMNS as SCORE_COLUMNS
from satwatch.services.detection.scores import ScoresFile
from satwatch.services.frames.frame import Frame
from satwatch.topics import ensure_topics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="run the detector consumer: windows, similar-event search, anomaly alerts, metrics",
        description=(
            "Consume the frames topic, keep a rolling 20-frame window per satellite, embed each frame with the "
            "ONNX encoder, find the most similar past windows in the HNSW index, score the frame with the "
            "anomaly autoencoder, and write alerts to the alerts topic and the local alert store. Prometheus "
            "metrics are served at /metrics. Scale out by starting more detectors with the same group id."
        ),
    )
    add_service_arguments(p)
    p.add_argument("--state-dir", help="alert store, index and journal directory (config detector.state_dir)")
    p.add_argument(
        "--model-dir",
        action="append",
        metavar="[PROFILE=]DIR",
        help="directory with encoder and/or autoencoder ONNX files and cards, e.g. a 'satwatch train --out' folder "
        "(a model it lacks is the shipped one, logged). Default: the models the satellite profile names (COMS-1: "
        "the shipped encoder and onnx_models/autoencoder-v2, trained for real imagery; the procedural simulator "
        "needs --model-dir onnx_models, its own set). Give PROFILE=DIR once "
        "per satellite profile to serve several model sets at once (config detector.model_dirs); frames of a "
        "profile with none are refused as no_model",
    )
    p.add_argument(
        "--threshold",
        type=finite_float,
        help="anomaly threshold, any finite number (a model whose normal scores are negative, as COMS-1's v2 set "
        "on real frames, takes a negative one); overrides the model card's calibrated one",
    )
    p.add_argument("--metrics-port", type=int, help="Prometheus port (config metrics.port; 0 = a free port)")
    p.add_argument("--group-id", help="Kafka consumer group (config kafka.group_id)")
    p.add_argument("--exit-when-idle", type=float, metavar="SECONDS", help="stop after this long without frames")
    p.add_argument(
        "--pictures-dir",
        metavar="DIR",
        help="write each alert's pictures here for 'satwatch feed' (heat map, window strip, similar events and "
        "what followed them); point the feed's feed.pictures_dir at the same folder",
    )
    p.add_argument(
        "--pictures-archive",
        metavar="DIR",
        help="archive to read similar past events' frames from when they are older than the frames held in memory",
    )
    p.add_argument(
        "--pictures-keep",
        type=int,
        default=400,
        metavar="N",
        help="frames per satellite held in memory for pictures and --nowcast (default 400, about 4 days at 15 minutes)",
    )
    p.add_argument(
        "--nowcast",
        action="store_true",
        help="put an analog nowcast on each new alert (cold-cloud cover at +1/+2/+3 h from what followed its "
        "similar events, among the frames held in memory; see docs/nowcast.md)",
    )
    p.add_argument(
        "--scores-out",
        metavar="FILE",
        help=f"append every frame's anomaly score and terms to this TSV ({', '.join(SCORE_COLUMNS)}); the alert "
        "store's scores table holds them too",
    )
    p.set_defaults(func=run)


def apply_detector_overrides(args: argparse.Namespace, settings: Settings) -> Settings:
    d = settings.detector
    if args.state_dir:
        d.state_dir = args.state_dir
    if args.model_dir:
        d.model_dir, routes = parse_model_dirs(args.model_dir)
        d.model_dirs = routes or d.model_dirs
    if args.threshold is not None:
        d.anomaly_threshold = args.threshold
    if args.metrics_port is not None:
        settings.metrics.port = args.metrics_port
    if getattr(args, "group_id", None):
        settings.kafka.group_id = args.group_id
    return settings


def parse_model_dirs(values: list[str]) -> tuple[str | None, dict[str, str]]:
    """``--model-dir`` values: one plain DIR, or PROFILE=DIR pairs (not both)."""
    routes = dict(v.split("=", 1) for v in values if "=" in v)
    plain = [v for v in values if "=" not in v]
    if (plain and routes) or len(plain) > 1:
        raise SystemExit("--model-dir: give one DIR, or PROFILE=DIR once per satellite profile, not both")
    return (plain[0] if plain else None), routes


def print_alert(alert: Alert) -> None:
    print(alert.summary(), flush=True)


def finite_float(text: str) -> float:
    """An argparse type: a float that is a number (not nan or inf)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def describe_thresholds(detector: FrameDetector) -> str:
    if isinstance(detector, DetectorRouter):
        return "model sets " + ", ".join(f"{name} (threshold {t:.4f})" for name, t in detector.thresholds.items())
    return f"threshold {detector.threshold:.4f}"


def run(args: argparse.Namespace) -> int:
    settings = apply_detector_overrides(args, settings_from_args(args))
    ensure_topics(settings.kafka)
    metrics = DetectorMetrics()
    server = MetricsServer(metrics.registry, settings.metrics.host, settings.metrics.port)
    detector = build_frame_detector(settings, metrics)
    pictures = None
    if args.pictures_dir:
        from satwatch.services.feed.pictures import AlertPictures

        pictures = AlertPictures(args.pictures_dir, keep=args.pictures_keep, archive=args.pictures_archive)
    scores = ScoresFile(args.scores_out) if args.scores_out else None
    nowcast = None
    if args.nowcast:
        from satwatch.services.nowcast.on_alert import AlertNowcast

        nowcast = AlertNowcast(keep=args.pictures_keep)

    def on_frame(frame: Frame) -> None:
        if pictures is not None:
            pictures.on_frame(frame)
        if nowcast is not None:
            nowcast.on_frame(frame)

    tally = {"frames": 0, "weather": 0, "operators": 0}

    def on_alert(alert: Alert) -> None:
        tally["weather" if alert.kind == "anomaly" else "operators"] += 1
        print_alert(alert)

    def on_outcome(outcome: FrameOutcome) -> None:
        tally["frames"] += 1
        if nowcast is not None:  # before the pictures and the publish, so the alert carries it
            nowcast.on_outcome(outcome)
        if pictures is not None:
            pictures.on_outcome(outcome)
        if scores is not None and outcome.frame_score is not None:
            scores.write([outcome.frame_score])

    consumer = DetectorConsumer(
        settings,
        detector,
        on_alert=on_alert,
        on_outcome=on_outcome,
        on_frame=on_frame if pictures or nowcast else None,
    )
    server.ready = consumer.ready  # /readyz: models loaded, loop running, partitions assigned
    print(
        f"detector consuming {settings.kafka.frames_topic} at {settings.kafka.bootstrap_servers}; "
        f"{describe_thresholds(detector)}; metrics {server.url}",
        flush=True,
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    try:
        consumer.run(max_idle_seconds=args.exit_when_idle)
    except KeyboardInterrupt:
        consumer.stop()
    finally:
        server.close()
        if pictures is not None:
            pictures.close()
        if scores is not None:
            scores.close()
    refused = sum(
        s.value for m in metrics.registry.collect() for s in m.samples if s.name == "satwatch_invalid_frames_total"
    )
    print(
        f"stopped: {tally['frames']} frames processed, {refused:.0f} refused; {tally['weather'] + tally['operators']} "
        f"new alerts published ({tally['weather']} weather, {tally['operators']} to operators)",
        flush=True,
    )
    return 0
