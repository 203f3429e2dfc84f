"""Topic setup and the dead-letter record format shared by producers and consumers."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from satwatch.services.config import KafkaSettings

log = logging.getLogger(__name__)

#: Dead-letter records keep the original bytes as value and say why in these headers.
DLQ_REASON = "satwatch-reason"
DLQ_ERROR = "satwatch-error"
DLQ_ORIGIN = "satwatch-origin"


def dead_letter_headers(reason: str, error: str, origin: str) -> list[tuple[str, bytes]]:
    return [(DLQ_REASON, reason.encode()), (DLQ_ERROR, error.encode()[:4000]), (DLQ_ORIGIN, origin.encode())]


def ensure_topics(settings: KafkaSettings, timeout: float = 30.0) -> None:
    """Create the frames, alerts and dead-letter topics if they do not exist yet."""
    wanted = {
        settings.frames_topic: settings.partitions,
        settings.alerts_topic: 1,  # one partition keeps the alert feed in order
        settings.dead_letter_topic: 1,
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.bootstrap_servers,
                client_id="satwatch-admin",
                bootstrap_timeout_ms=max(500, int((deadline - time.monotonic()) * 1000)),  # honour ``timeout``
            )
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:  # ConnectionError: the command line reports it in one line
                raise ConnectionError(
                    f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}; start one with 'satwatch broker' "
                    "or pass --bootstrap-servers"
                ) from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        if new:
            try:
                admin.create_topics(new)
                log.info("created topics %s", ", ".join(t.name for t in new))
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def ensure_compacted_topic(settings: KafkaSettings, name: str, partitions: int = 1) -> None:
    """Create a compacted topic (cleanup.policy=compact: the latest value per key is kept), if missing."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="satwatch-admin")
    try:
        if name not in set(admin.list_topics()):
            try:
                admin.create_topics([NewTopic(name, partitions, 1, topic_configs={"cleanup.policy": "compact"})])
                log.info("created compacted topic %s", name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
