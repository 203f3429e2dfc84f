"""The Kafka clients the long-running consumers make, configured in one place.

A group consumer that commits by hand with the short poll interval Tansu needs to complete a group join
(DESIGN.md section 5), an idempotent producer for what a consumer publishes, and a group-less read of a
whole topic from its start to its end at the time of the call (start-up restores: published alert ids,
incidents).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from satwatch.services.config import KafkaSettings


def group_consumer(
    kafka: KafkaSettings, group_id: str, client_id: str, *topics: str, **options: Any
) -> KafkaConsumer:
    """A consumer in ``group_id`` that commits offsets itself, from the earliest offset when it has none.

    ``options`` are further KafkaConsumer options (poll size and interval, fetch sizes).
    """
    settings: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # Tansu completes a group join only with a short poll interval (DESIGN.md section 5).
        "max_poll_interval_ms": 10000,
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 1000,
    }
    settings.update(options)
    return KafkaConsumer(*topics, **settings)


def reliable_producer(kafka: KafkaSettings, client_id: str, **options: Any) -> KafkaProducer:
    """A producer whose retries never duplicate or reorder: acks from all replicas, idempotence, 10 retries."""
    settings: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "retries": 10,
    }
    settings.update(options)
    return KafkaProducer(**settings)


def read_to_end(
    kafka: KafkaSettings,
    topic: str,
    client_id: str,
    timeout: float,
    on_timeout: Callable[[], None] | None = None,
    poll_ms: int = 200,
) -> Iterator[ConsumerRecord]:
    """Every record of ``topic`` from its start to its end offsets as they stand now, without a group.

    When ``timeout`` seconds pass first, ``on_timeout`` is called (it may raise) and the read stops there.
    """
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False, client_id=client_id)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        if not tps:
            return
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        end = reader.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while any(reader.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                if on_timeout is not None:
                    on_timeout()
                return
            for records in reader.poll(timeout_ms=poll_ms).values():
                yield from records
    finally:
        reader.close()
