"""The detector end to end over the real embedded broker, the shipped ONNX models and the simulator."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import alert_from_json
from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer
from satwatch.services.frames.codec import encode_inline
from satwatch.services.frames.frame import CHANNELS, Frame
from satwatch.services.simulator.scene import SceneSimulator, SimConfig, SimEvent
from satwatch.topics import DLQ_REASON, ensure_topics
from tests.consumers.running import run_detector
from tests.producers.test_publisher import read_topic

# Ten hours of simulated stream holding exactly one labelled event (a saturated block, 06:00-06:30).
STREAM = SimConfig(seed=7, days=10.25 / 24)


@pytest.fixture(scope="module")
def stream() -> tuple[list[Frame], list[SimEvent]]:
    sim = SceneSimulator(STREAM)
    events = [e for e in sim.events if e.start <= sim.times[-1]]
    assert len(events) == 1, events
    return list(sim.frames()), events


def publish(settings: Settings, frames: list[Frame], pause: float = 0.0) -> None:
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="test")
    for f in frames:
        publisher.publish(f)
        if pause:
            publisher.flush()
            time.sleep(pause)
    publisher.flush()
    producer.close()


def active(events: list[SimEvent], t) -> bool:  # type: ignore[no-untyped-def]
    return any(e.active(t) for e in events)


def test_event_alerts_once_quiet_windows_do_not_and_metrics_count(settings: Settings, stream) -> None:  # type: ignore[no-untyped-def]
    frames, events = stream
    ensure_topics(settings.kafka)
    publish(settings, frames)
    metrics = DetectorMetrics()
    server = MetricsServer(metrics.registry)
    try:
        consumer = run_detector(settings, len(frames), metrics)
        alerts = consumer.detector.store.all()
        body = urllib.request.urlopen(server.url).read().decode()
    finally:
        server.close()
    assert alerts, "the labelled event raised no alert"
    assert all(active(events, a.window_end) for a in alerts), [
        a.window_end for a in alerts if not active(events, a.window_end)
    ]
    assert any(a.window_end == events[0].start for a in alerts)
    on_topic = [alert_from_json(m.value) for m in read_topic(settings, settings.kafka.alerts_topic, len(alerts))]
    assert Counter(a.id for a in on_topic) == Counter(a.id for a in alerts)  # each exactly once, both places
    assert f'satwatch_frames_consumed_total{{satellite="COMS-1"}} {float(len(frames))}' in body
    assert 'satwatch_stage_seconds_count{stage="embed"}' in body
    assert "satwatch_index_size" in body and "satwatch_window_fill" in body


def _frames_consumed(url: str) -> float:
    try:
        body = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return 0.0
    m = re.search(r'satwatch_frames_consumed_total\{satellite="COMS-1"\} ([0-9.e+]+)', body)
    return float(m.group(1)) if m else 0.0


def _detector_process(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "SATWATCH_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "SATWATCH_KAFKA__FRAMES_TOPIC": settings.kafka.frames_topic,
            "SATWATCH_KAFKA__ALERTS_TOPIC": settings.kafka.alerts_topic,
            "SATWATCH_KAFKA__DEAD_LETTER_TOPIC": settings.kafka.dead_letter_topic,
            "SATWATCH_KAFKA__GROUP_ID": settings.kafka.group_id,
            "SATWATCH_DETECTOR__STATE_DIR": settings.detector.state_dir,
            "SATWATCH_DETECTOR__INDEX_SAVE_EVERY": "5",
        }
    )
    if settings.detector.model_dir:  # the procedural stream's set (the settings fixture's)
        env["SATWATCH_DETECTOR__MODEL_DIR"] = settings.detector.model_dir
    cmd = [sys.executable, "-m", "satwatch", "detect", "--metrics-port", str(port), "--exit-when-idle", "8"]
    return subprocess.Popen(cmd, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_kill_and_restart_loses_and_duplicates_nothing(settings: Settings, stream, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    frames, _ = stream
    ensure_topics(settings.kafka)
    # Reference: one uninterrupted detector over the same frames.
    reference = settings.model_copy(deep=True)
    reference.kafka.frames_topic += "-ref"
    reference.kafka.alerts_topic += "-ref"
    reference.kafka.group_id += "-ref"
    reference.detector.state_dir = str(tmp_path / "reference")
    ensure_topics(reference.kafka)
    publish(reference, frames)
    expected = {a.id for a in run_detector(reference, len(frames)).detector.store.all()}
    assert expected
    # A second detector with fresh state over the same topics recomputes the alerts, publishes none again,
    # and says so.
    again = reference.model_copy(deep=True)
    again.kafka.group_id += "-again"
    again.detector.state_dir = str(tmp_path / "again")
    with caplog.at_level(logging.INFO, logger="satwatch.consumers.detector"):
        recomputed = {a.id for a in run_detector(again, len(frames)).detector.store.all()}
    assert recomputed == expected
    assert f"holds {len(expected)} alerts already" in caplog.text
    assert len(read_topic(reference, reference.kafka.alerts_topic, len(expected) + 1, timeout=3)) == len(expected)

    from satwatch.broker import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    first = _detector_process(settings, port, tmp_path / "first.log")
    feeder = threading.Thread(target=publish, args=(settings, frames, 0.1))
    feeder.start()
    event_start = next(i for i, f in enumerate(frames) if f.time.hour == 6)
    deadline = time.monotonic() + 120
    while _frames_consumed(url) < event_start + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-stream, mid-event: no chance to clean up
    first.wait(10)
    feeder.join()
    second = _detector_process(settings, port, tmp_path / "second.log")
    assert second.wait(180) == 0, (tmp_path / "second.log").read_text()[-3000:]

    from satwatch.services.detection.alerts import AlertStore

    stored = AlertStore(Path(settings.detector.state_dir) / "alerts.sqlite").all()
    on_topic = [alert_from_json(m.value).id for m in read_topic(settings, settings.kafka.alerts_topic, len(expected))]
    assert {a.id for a in stored} == expected
    assert sorted(on_topic) == sorted(expected)  # nothing lost, nothing twice
    from satwatch.services.retrieval.index import SimilarityIndex

    index = SimilarityIndex.load(Path(settings.detector.state_dir) / "index")
    assert len(index) == len(frames) - 19  # every full window once


def test_bad_input_is_dead_lettered_and_stream_goes_on(settings: Settings, stream, caplog) -> None:  # type: ignore[no-untyped-def]
    frames, _ = stream
    good = frames[:12]
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    topic = settings.kafka.frames_topic

    def send(value: bytes) -> None:
        producer.send(topic, key=b"COMS-1", value=value)

    for f in good[:6]:
        send(encode_inline(f))
    f7 = good[6]
    send(b"\x89PNG\r\n\x1a\n this is not a frame")  # corrupt bytes
    send(encode_inline(f7)[:-40] + bytes(40))  # corrupted pixels
    send(encode_inline(Frame("COMS-1", f7.time, CHANNELS[:3], f7.data[:3])))  # missing channel
    send(encode_inline(Frame("COMS-1", f7.time, CHANNELS, np.zeros((4, 100, 120), np.uint8))))  # wrong size
    send(encode_inline(good[5]))  # duplicate
    early = Frame("COMS-1", good[5].time - timedelta(minutes=7), CHANNELS, f7.data)
    send(encode_inline(early))  # out of order: older than the window's end, not a frame it holds
    late = Frame("COMS-1", f7.time + timedelta(days=3650), CHANNELS, f7.data)
    send(encode_inline(late))  # time out of range
    for f in good[6:]:
        send(encode_inline(f))
    producer.flush()
    producer.close()

    metrics = DetectorMetrics()
    with caplog.at_level(logging.WARNING):
        consumer = run_detector(settings, len(good), metrics)
    assert metrics.frames_consumed.labels("COMS-1")._value.get() == len(good)
    expected = {
        "bad_envelope": 1,
        "checksum_mismatch": 1,
        "wrong_channels": 1,
        "wrong_shape": 1,
        "duplicate": 1,
        "out_of_order": 1,
        "time_out_of_range": 1,
    }
    for reason, n in expected.items():
        assert metrics.invalid_frames.labels(reason)._value.get() == n, reason
    dead = read_topic(settings, settings.kafka.dead_letter_topic, sum(expected.values()))
    assert Counter(dict(m.headers)[DLQ_REASON].decode() for m in dead) == Counter(expected)
    text = caplog.text
    assert "missing ['wv']" in text and "expected (4, 300, 375)" in text and "duplicate frame" in text
    assert consumer.detector.window("COMS-1").end == good[-1].time


def test_claim_check_replay_reads_and_verifies_the_archive(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from satwatch.producers.sources import archive_source
    from satwatch.services.frames.archive import Archive
    from satwatch.services.frames.frame import kma_filename, write_rgb_png
    from satwatch.services.simulator.scene import write_archive

    cfg = SimConfig(seed=5, width=1500, height=1300, days=3 / 24, events=False)  # the native COMS size
    root = write_archive(cfg, tmp_path / "archive", progress=False)
    settings.detector.claim_check_roots = [str(tmp_path / "archive")]  # claim checks resolve only under these
    archive = Archive(root)
    frames = list(archive_source(archive))
    # Tamper with one channel of the last frame after publication: its checksum no longer matches.
    last = frames[-1]
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="archive", claim_check_root=root)
    publisher.publish_all(frames)
    producer.close()
    path = next(root.rglob(kma_filename("wv", cfg.area, last.time)))
    native = np.asarray(Image.open(path).convert("L"))  # the same size: only the pixels change
    write_rgb_png(path, 255 - native)

    metrics = DetectorMetrics()
    consumer = run_detector(settings, len(frames) - 1, metrics)
    assert metrics.frames_consumed.labels("COMS-1")._value.get() == len(frames) - 1
    assert consumer.detector.window("COMS-1").end == frames[-2].time
    dead = read_topic(settings, settings.kafka.dead_letter_topic, 1)
    assert [dict(m.headers)[DLQ_REASON] for m in dead] == [b"checksum_mismatch"]


def test_pending_batch_drops_rewound_partitions_and_their_early_scores() -> None:
    from types import SimpleNamespace

    from kafka import OffsetAndMetadata, TopicPartition

    from satwatch.consumers.detector import _Pending
    from tests.helpers import T0, make_frame

    p0, p1 = TopicPartition("frames", 0), TopicPartition("frames", 1)
    rec0, rec1 = SimpleNamespace(topic="frames", partition=0), SimpleNamespace(topic="frames", partition=1)
    frame = make_frame(T0)
    scores = iter([object(), object()])
    pending = _Pending(
        {p0: OffsetAndMetadata(5, "", -1), p1: OffsetAndMetadata(9, "", -1)},
        [(rec0, frame, False), (rec1, frame, False)],  # type: ignore[list-item]
        scores,
    )
    assert pending.without({TopicPartition("frames", 2)}) is pending  # untouched: keeps its started scores
    kept = pending.without({p1})
    assert list(kept.offsets) == [p0] and [r for r, _, _ in kept.accepted] == [rec0]
    assert kept.scores is None  # scored afresh: the early results belong to the full batch
