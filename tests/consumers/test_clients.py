"""The consumers' Kafka clients over the real broker: a whole-topic read, and its time limit."""

from __future__ import annotations

import pytest

from satwatch.consumers.clients import read_to_end, reliable_producer
from satwatch.services.config import Settings
from satwatch.topics import ensure_topics


def test_read_to_end_reads_every_record_then_stops(settings: Settings) -> None:
    ensure_topics(settings.kafka)
    topic = settings.kafka.alerts_topic
    producer = reliable_producer(settings.kafka, "test")
    for i in range(25):
        producer.send(topic, key=b"k", value=str(i).encode())
    producer.flush()
    producer.close()
    values = [int(r.value) for r in read_to_end(settings.kafka, topic, "test-read", timeout=15)]
    assert values == list(range(25))
    assert list(read_to_end(settings.kafka, "no-such-topic-here", "test-read", timeout=2)) == []


def test_read_to_end_calls_on_timeout_when_the_end_is_not_reached(settings: Settings) -> None:
    ensure_topics(settings.kafka)
    topic = settings.kafka.alerts_topic
    producer = reliable_producer(settings.kafka, "test")
    producer.send(topic, value=b"x")
    producer.flush()
    producer.close()

    def too_slow() -> None:
        raise TimeoutError("too slow")

    with pytest.raises(TimeoutError):
        list(read_to_end(settings.kafka, topic, "test-read", timeout=0, on_timeout=too_slow))
