"""Publishing over the real embedded broker."""

from __future__ import annotations

import time

from kafka import KafkaConsumer

from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.producers.sources import DirectoryWatcher
from satwatch.services.config import Settings
from satwatch.services.frames.codec import decode_inline, decode_meta
from satwatch.services.frames.frame import CHANNELS, kma_filename, write_rgb_png
from satwatch.topics import DLQ_ERROR, DLQ_ORIGIN, DLQ_REASON, ensure_topics
from tests.helpers import T0, make_frame, real_time


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


def test_a_real_frame_at_half_size_is_refused_and_the_next_one_published(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Real COMS frames reduced to 750 x 650 are neither native nor shrunk, and too large to travel inline: the
    frame goes to the dead-letter topic as wrong_shape (files named, what to send instead), the next one goes on."""
    from datetime import UTC, datetime

    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="watch")
    watcher = DirectoryWatcher(tmp_path, settle_seconds=0.0)
    half = real_time("201103031300", tmp_path / "a", size=(750, 650))
    real_time("201103031315", tmp_path / "b")
    watcher.scan()
    items = watcher.scan()
    assert [type(i).__name__ for i in items] == ["Frame", "Frame"]  # both read: the size is the problem
    assert [publisher.publish(i) for i in items] == ["wrong_shape", None]
    publisher.flush()
    dead = read_topic(settings, settings.kafka.dead_letter_topic, expect=1)
    assert len(dead) == 1 and dead[0].key == b"COMS-1"
    headers = dict(dead[0].headers)
    assert headers[DLQ_REASON] == b"wrong_shape"
    assert headers[DLQ_ORIGIN].decode().split(",") == [str(p) for p in half]  # ir01, ir02, swir, wv
    error = headers[DLQ_ERROR].decode()
    assert "750 wide x 650 high" in error and "native size 1500 x 1300" in error and "375 x 300" in error
    sent = read_topic(settings, settings.kafka.frames_topic, expect=1)
    assert _times(sent) == [datetime(2011, 3, 3, 13, 15, tzinfo=UTC)]
    assert (publisher.frames_sent, publisher.refused, publisher.failed) == (1, 1, 0)
    assert publisher.metrics.publish_errors.labels("wrong_shape")._value.get() == 1
    assert publisher.metrics.published.labels("COMS-1", "watch")._value.get() == 1
    producer.close()


def test_a_frame_of_the_shrunk_shape_too_large_inline_is_refused(settings: Settings) -> None:
    """GK-2A's 16 shrunk channels of noise do not fit inline even compressed: refused, not raised."""
    import numpy as np

    from satwatch.services.frames.frame import Frame
    from satwatch.services.frames.profiles import GK2A_CHANNELS, get_profile

    ensure_topics(settings.kafka)
    shape = get_profile("GK-2A").shrunk_shape
    noise = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    publisher = FramePublisher(make_producer(settings.kafka), settings.kafka, source="test")
    assert publisher.publish(Frame("GK-2A", T0, GK2A_CHANNELS, noise)) == "too_large_inline"
    assert publisher.publish(make_frame(T0)) is None
    publisher.close()
    dead = read_topic(settings, settings.kafka.dead_letter_topic, expect=1)
    assert [dict(m.headers)[DLQ_REASON] for m in dead] == [b"too_large_inline"]
    assert "--claim-check" in dict(dead[0].headers)[DLQ_ERROR].decode()
    assert dict(dead[0].headers)[DLQ_ORIGIN] == f"test GK-2A {T0.isoformat()}".encode()  # made in memory
    assert _times(read_topic(settings, settings.kafka.frames_topic, expect=1)) == [T0]


def test_the_too_large_advice_fits_the_source(settings: Settings) -> None:
    """A watcher's frame is not in an archive to replay: its dead letter says to restart it with --claim-check."""
    import numpy as np

    from satwatch.services.frames.frame import Frame
    from satwatch.services.frames.profiles import GK2A_CHANNELS, get_profile

    ensure_topics(settings.kafka)
    noise = np.random.default_rng(0).integers(0, 256, get_profile("GK-2A").shrunk_shape, dtype=np.uint8)
    for source in ("watch", "archive"):
        publisher = FramePublisher(make_producer(settings.kafka), settings.kafka, source=source)
        assert publisher.publish(Frame("GK-2A", T0, GK2A_CHANNELS, noise)) == "too_large_inline"
        publisher.close()
    errors = [dict(m.headers)[DLQ_ERROR].decode() for m in read_topic(settings, settings.kafka.dead_letter_topic, 2)]
    assert errors[0].endswith(
        "restart the watcher with --claim-check (messages then carry a reference to the watched folder's files) "
        "and list the folder in detector.claim_check_roots"
    )
    assert errors[1].endswith("replay it from an archive with --claim-check")


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
