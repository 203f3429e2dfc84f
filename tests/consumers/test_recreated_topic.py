"""A topic recreated under a consumer group, and a commit refused by a rebalance, neither skip nor crash."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError

from satwatch.consumers.detector import DetectorConsumer, _Pending
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.topics import ensure_topics
from tests.helpers import T0, make_frame


def test_committed_offset_past_the_end_reads_from_the_beginning(settings: Settings) -> None:
    """The group's committed offset (50) outlived its topic, recreated with 5 frames and a bad message: the
    frames are processed and the bad message dead-lettered, not taken for replays of records already seen."""
    ensure_topics(settings.kafka)
    tp = TopicPartition(settings.kafka.frames_topic, 0)
    stale = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=settings.kafka.group_id)
    stale.assign([tp])
    stale.commit({tp: OffsetAndMetadata(50, "", -1)})
    stale.close()
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="test")
    frames = [make_frame(T0 + i * timedelta(minutes=15)) for i in range(5)]
    publisher.publish_all(frames)
    publisher.producer.send(settings.kafka.frames_topic, key=b"COMS-1", value=None)  # and one bad message
    publisher.close()

    settings.detector.rebuild_messages = 2
    metrics = DetectorMetrics()
    seen: list[object] = []
    consumer = DetectorConsumer(settings, build_detector(settings, metrics), on_outcome=seen.append)
    worker = threading.Thread(target=consumer.run, kwargs={"max_idle_seconds": 8})
    worker.start()
    deadline = time.monotonic() + 60
    dead_lettered = metrics.invalid_frames.labels("null_value")._value
    while (len(seen) < len(frames) or dead_lettered.get() < 1) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    consumer.stop()
    worker.join(30)
    assert len(seen) == len(frames)
    assert metrics.frames_consumed.labels("COMS-1")._value.get() == len(frames)
    assert metrics.errors.labels("stale_offset")._value.get() == 1
    # Not mistaken for a replay of records already handled: the bad message is dead-lettered.
    assert dead_lettered.get() == 1


def test_refused_commit_is_logged_not_fatal(settings: Settings, caplog) -> None:  # type: ignore[no-untyped-def]
    metrics = DetectorMetrics()
    detector = SimpleNamespace(metrics=metrics, threshold=1.0, flush=lambda: None, store=None)
    consumer = DetectorConsumer(settings, detector)  # type: ignore[arg-type]
    consumer.consumer.close()

    class Rebalanced:
        def commit(self, offsets: object) -> None:
            raise CommitFailedError("the group has already rebalanced")

    consumer.consumer = Rebalanced()  # type: ignore[assignment]
    pending = _Pending({TopicPartition("frames", 0): OffsetAndMetadata(3, "", -1)}, [], None)
    consumer._finish(pending)
    assert metrics.errors.labels("commit")._value.get() == 1
    assert "offset commit refused" in caplog.text
    consumer.producer.close(1)
