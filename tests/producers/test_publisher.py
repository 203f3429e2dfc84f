"""Publishing over the real embedded broker."""

from __future__ import annotations

import time

from kafka import KafkaConsumer

from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.producers.sources import DirectoryWatcher
from satwatch.services.config import Settings
from satwatch.services.frames.codec import decode_inline, decode_meta
from satwatch.services.frames.frame import CHANNELS, kma_filename, write_rgb_png
from satwatch.topics import DLQ_REASON, ensure_topics
from tests.helpers import T0, make_frame


def read_topic(settings: Settings, topic: str, expect: int, timeout: float = 15.0) -> list:  # type: ignore[type-arg]
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1500,
    )
    out: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.extend(consumer)
        if len(out) >= expect:
            time.sleep(1.0)  # and nothing more arrives
            out.extend(consumer)
            break
    consumer.close()
    return out


def test_watched_directory_publishes_each_frame_exactly_once(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="watch")
    watcher = DirectoryWatcher(tmp_path, settle_seconds=0.05)
    frame = make_frame(T0, shape=(1300, 1500))
    for i, c in enumerate(CHANNELS):
        write_rgb_png(tmp_path / kma_filename(c, "ea040ps", T0), frame.data[i])
        time.sleep(0.1)
        for _ in range(2):  # several scans per landing file, as the live loop does
            for item in watcher.scan():
                publisher.publish(item)
            time.sleep(0.06)
    (tmp_path / kma_filename("ir01", "ea040ps", T0)).touch()  # a rewrite of a published channel
    for item in watcher.scan():
        publisher.publish(item)
    publisher.flush()
    msgs = read_topic(settings, settings.kafka.frames_topic, expect=1)
    assert len(msgs) == 1
    assert msgs[0].key == b"COMS-1"
    meta, payload = decode_meta(msgs[0].value)
    assert meta.time == T0 and meta.shape == (4, 300, 375)  # shrunk to the study size on the way
    assert decode_inline(meta, payload).data.shape == (4, 300, 375)
    assert publisher.metrics.published.labels("COMS-1", "watch")._value.get() == 1
    producer.close()


def test_corrupt_png_goes_to_dead_letter_topic(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="watch")
    watcher = DirectoryWatcher(tmp_path, settle_seconds=0.0)
    frame = make_frame(T0)
    for i, c in enumerate(CHANNELS[:3]):
        write_rgb_png(tmp_path / kma_filename(c, "ea040ps", T0), frame.data[i])
    (tmp_path / kma_filename("wv", "ea040ps", T0)).write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    watcher.scan()
    publisher.publish_all(watcher.scan())
    dead = read_topic(settings, settings.kafka.dead_letter_topic, expect=1)
    assert len(dead) == 1 and dict(dead[0].headers)[DLQ_REASON] == b"corrupt_png"
    assert read_topic(settings, settings.kafka.frames_topic, expect=1, timeout=2) == []
    producer.close()


# -- broker restarts -------------------------------------------------------------------------------------------


def _own_broker_settings(broker) -> Settings:  # type: ignore[no-untyped-def]
    s = Settings()
    s.kafka.bootstrap_servers = broker.bootstrap_servers
    s.kafka.partitions = 1
    return s


def _times(messages: list) -> list:  # type: ignore[type-arg]
    return [decode_meta(m.value)[0].time for m in messages]


def test_producer_survives_a_broker_restart() -> None:
    """Tansu keeps everything in memory: after a restart the idempotent producer's id is unknown and the old
    producer turns fatal. The publisher replaces it and sends again: nothing published after the restart (or
    while the broker was down) is lost or doubled, and nothing counts as failed."""
    from collections import Counter
    from datetime import timedelta

    from satwatch.broker import EmbeddedBroker, free_port

    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    try:
        settings = _own_broker_settings(broker)
        ensure_topics(settings.kafka)
        publisher = FramePublisher(make_producer(settings.kafka), settings.kafka, source="test")
        frames = [make_frame(T0 + i * timedelta(minutes=15)) for i in range(24)]
        for f in frames[:8]:
            publisher.publish(f)
        publisher.flush()
        broker.stop()
        broker = EmbeddedBroker(port=port).start()
        ensure_topics(settings.kafka)
        for f in frames[8:]:
            publisher.publish(f)
        publisher.flush()
        on_topic = _times(read_topic(settings, settings.kafka.frames_topic, 16))
        publisher.close()
    finally:
        broker.stop()
    assert Counter(on_topic) == Counter(f.time for f in frames[8:])  # each once, none lost
    assert on_topic == sorted(on_topic)  # and in order
    assert publisher.failed == 0 and publisher.delivered == 24
    assert publisher.producers_replaced >= 1


def test_unreachable_broker_is_counted_not_swallowed(caplog) -> None:  # type: ignore[no-untyped-def]
    """With the broker gone for good, every frame ends counted as failed, by error class, and logged."""
    import logging

    from satwatch.broker import EmbeddedBroker, free_port

    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    settings = _own_broker_settings(broker)
    ensure_topics(settings.kafka)
    quick = {"max_block_ms": 2000, "request_timeout_ms": 1000, "delivery_timeout_ms": 2000, "linger_ms": 0}
    quick["bootstrap_timeout_ms"] = 2000
    publisher = FramePublisher(
        make_producer(settings.kafka, **quick),
        settings.kafka,
        source="test",
        producer_factory=lambda: make_producer(settings.kafka, **quick),
        max_attempts=2,
    )
    publisher.publish(make_frame(T0))
    publisher.flush()
    broker.stop()
    with caplog.at_level(logging.ERROR, logger="satwatch.producers.publisher"):
        for i in range(3):
            publisher.publish(make_frame(T0.replace(hour=i + 1)))
        publisher.flush()
    assert publisher.delivered == 1 and publisher.failed == 3
    errors = publisher.metrics.publish_errors.collect()[0].samples
    assert sum(s.value for s in errors if s.name.endswith("_total")) == 3
    assert not [s for s in errors if s.labels["reason"] == "Frame"]  # the reason is the error class
    assert caplog.text.count("could not publish COMS-1") == 3
    publisher.producer.close(0)
