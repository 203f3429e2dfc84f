"""Publishes frames to the frames topic, keyed by satellite so one satellite's frames stay in order."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from kafka import KafkaProducer

from satwatch.services.config import KafkaSettings
from satwatch.services.detection.metrics import ProducerMetrics
from satwatch.services.frames.codec import encode_claim_check, encode_inline
from satwatch.services.frames.frame import Frame, shrink
from satwatch.topics import dead_letter_headers

log = logging.getLogger(__name__)


@dataclass
class Rejected:
    """Something a source could not turn into a frame (corrupt file, missing channel, ...)."""

    reason: str
    error: str
    origin: str  # where it came from: file paths, archive time
    payload: bytes = b""
    satellite: str = ""
    time: datetime | None = None


SourceItem: TypeAlias = Frame | Rejected


def make_producer(settings: KafkaSettings) -> KafkaProducer:
    """A producer with idempotence and retries: a retried send never duplicates or reorders a frame."""
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="satwatch-producer",
        acks="all",
        enable_idempotence=True,
        retries=10,
        max_in_flight_requests_per_connection=5,
        linger_ms=5,
        max_request_size=1_048_576,
        compression_type=settings.compression_type,
    )


class FramePublisher:
    """Encodes and sends frames; refused input goes to the dead-letter topic with its reason."""

    def __init__(
        self,
        producer: KafkaProducer,
        settings: KafkaSettings,
        metrics: ProducerMetrics | None = None,
        source: str = "unknown",
        claim_check_uri: str | None = None,
    ) -> None:
        self.producer = producer
        self.settings = settings
        self.metrics = metrics or ProducerMetrics()
        self.source = source
        self.claim_check_uri = claim_check_uri

    def publish(self, item: SourceItem) -> None:
        if isinstance(item, Rejected):
            self.reject(item)
            return
        frame = item
        if self.claim_check_uri:
            value = encode_claim_check(frame, f"{self.claim_check_uri}#{frame.time:%Y%m%d%H%M}")
        else:
            value = encode_inline(shrink(frame))
        future = self.producer.send(self.settings.frames_topic, key=frame.satellite.encode(), value=value)
        future.add_errback(self._on_error, frame)
        self.metrics.published.labels(frame.satellite, self.source).inc()
        self.metrics.message_bytes.observe(len(value))

    def _on_error(self, exc: BaseException, frame: Frame) -> None:
        self.metrics.publish_errors.labels(type(exc).__name__).inc()
        log.error("could not publish %s %s: %s", frame.satellite, frame.time.isoformat(), exc)

    def reject(self, item: Rejected) -> None:
        log.warning(
            "refused input from %s: %s (%s); sent to %s",
            item.origin,
            item.error,
            item.reason,
            self.settings.dead_letter_topic,
        )
        self.metrics.publish_errors.labels(item.reason).inc()
        self.producer.send(
            self.settings.dead_letter_topic,
            key=item.satellite.encode() or None,
            value=item.payload,
            headers=dead_letter_headers(item.reason, item.error, item.origin),
        )

    def publish_all(self, items: Iterable[SourceItem]) -> int:
        n = 0
        for item in items:
            self.publish(item)
            n += 1
        self.flush()
        return n

    def flush(self, timeout: float = 30.0) -> None:
        self.producer.flush(timeout)


def only_frames(items: Iterable[SourceItem]) -> Iterator[Frame]:
    for item in items:
        if isinstance(item, Frame):
            yield item
