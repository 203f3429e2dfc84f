"""Real-frame replay: the study's 25 real COMS-1 frames through producer, embedded broker and detector.

    python benchmarks/bench_real_frames.py [--data ../shared/data/study/raw_images] [--model-dir DIR] [--repeat 3]

Reads the real 1500 x 1300 RGB PNGs with the COMS-1 profile (the study's crop, grey and 4 x 4 block mean),
publishes them to the embedded Tansu broker, runs the detector consumer with the shipped (or given) models
and reports: frames published, processed, refused (dead letters, by reason), alerts, anomaly scores against
the threshold, and the per-frame processing time (p50, p99), each frame fed alone as a live feed would.
``--repeat`` replays the same frames under new satellite-free state that many times for the timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer

from satwatch.broker import EmbeddedBroker
from satwatch.consumers.detector import DetectorConsumer
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.producers.sources import archive_source
from satwatch.services.config import Settings
from satwatch.services.detection.detector import FrameOutcome, build_detector
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.frames.archive import Archive
from satwatch.topics import DLQ_REASON, ensure_topics

HERE = Path(__file__).resolve().parent


def dead_letters(s: Settings) -> Counter[str]:
    consumer = KafkaConsumer(
        s.kafka.dead_letter_topic,
        bootstrap_servers=s.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    reasons = Counter(dict(r.headers).get(DLQ_REASON, b"?").decode() for r in consumer)
    consumer.close()
    return reasons


def run_once(broker: EmbeddedBroker, archive: Archive, model_dir: str | None, tag: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as state:
        s = Settings()
        s.kafka.bootstrap_servers = broker.bootstrap_servers
        s.kafka.partitions = 1
        for topic in ("frames_topic", "alerts_topic", "dead_letter_topic"):
            setattr(s.kafka, topic, f"{getattr(s.kafka, topic)}-{tag}")
        s.kafka.group_id = f"bench-{tag}"
        s.detector.state_dir = state
        s.detector.model_dir = model_dir
        ensure_topics(s.kafka)
        metrics = DetectorMetrics()
        samples: dict[str, list[float]] = defaultdict(list)
        metrics.stage_listeners.append(lambda name, dt: samples[name].append(dt))
        outcomes: list[FrameOutcome] = []
        consumer = DetectorConsumer(s, build_detector(s, metrics), on_outcome=outcomes.append)
        worker = threading.Thread(target=consumer.run)
        worker.start()
        producer = make_producer(s.kafka)
        publisher = FramePublisher(producer, s.kafka, source="bench-real")
        published = 0
        for item in archive_source(archive):
            publisher.publish(item)
            publisher.flush()
            published += 1
            deadline = time.monotonic() + 30
            while len(outcomes) < published and time.monotonic() < deadline:  # one frame at a time, as live
                time.sleep(0.005)
        producer.close()
        consumer.stop()
        worker.join(60)
        return {
            "published": published,
            "processed": len(outcomes),
            "refused": dead_letters(s),
            "alerts": sum(o.alert is not None for o in outcomes),
            "scores": [o.score for o in outcomes],
            "threshold": outcomes[0].threshold if outcomes else float("nan"),
            "total_ms": np.asarray(samples["total"], dtype=np.float64) * 1000,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data" / "study" / "raw_images")
    ap.add_argument("--model-dir", help="folder with both models (default: the shipped onnx_models/)")
    ap.add_argument("--repeat", type=int, default=3, help="replays for the timing (each on fresh state)")
    args = ap.parse_args()
    archive = Archive(args.data, "COMS-1")
    archive.require_frames()
    with EmbeddedBroker() as broker:
        runs = [run_once(broker, archive, args.model_dir, f"r{i}") for i in range(args.repeat)]
    first = runs[0]
    scores = np.asarray(first["scores"], dtype=np.float64)
    totals = np.concatenate([r["total_ms"] for r in runs])  # type: ignore[misc]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"real frames: {len(archive)} under {args.data.name} ({archive.times[0]:%Y-%m-%d %H:%M} .. "
          f"{archive.times[-1]:%H:%M} UTC), models: {args.model_dir or 'shipped'}")  # fmt: skip
    print(f"published {first['published']}, processed {first['processed']}, refused {sum(first['refused'].values())} "
          f"{dict(first['refused'])}, alerts {first['alerts']}")  # type: ignore[union-attr]  # fmt: skip
    print(f"anomaly score: min {scores.min():.3f} median {np.median(scores):.3f} max {scores.max():.3f} "
          f"against threshold {first['threshold']:.3f}")  # fmt: skip
    print(f"per-frame processing ('total' stage, {totals.size} frames over {len(runs)} replays): "
          f"p50 {np.percentile(totals, 50):.1f} ms, p99 {np.percentile(totals, 99):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
