"""The detector consumer's outputs as sinks: things are added as a batch is processed and made durable by
``flush``, which the checkpoint calls in its fixed order before offsets are committed.

Both sinks write through one :class:`OutputProducer`, which replaces the Kafka producer when a broker
restart has left the idempotent one unusable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from satwatch.services.detection.alerts import Alert, AlertStore, alert_to_json
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.topics import dead_letter_headers

log = logging.getLogger(__name__)

#: A dead-letter record copies at most this much of the refused message (Kafka's default limit is 1 MB, and
#: the headers need room); a longer one is cut here, and its headers say so and where the whole message lies
#: (topic:partition:offset), for as long as the frames topic keeps it.
DEAD_LETTER_MAX_BYTES = 900_000
#: A refused message's key is copied up to this length.
DEAD_LETTER_MAX_KEY = 256
DLQ_TRUNCATED = "satwatch-truncated-from"
#: Attempts (each on a fresh producer) to get a batch's alerts acknowledged before giving up on the batch.
ALERT_SEND_ATTEMPTS = 3
#: Longest wait for the output producer's flush (its delivery timeout is 30 s).
FLUSH_TIMEOUT_S = 35.0


class Sink(Protocol):
    """An output of the consumer: ``flush`` returns once what was added is durable, or raises."""

    def flush(self) -> None: ...


class OutputProducer:
    """The Kafka producer of alerts and dead letters, replaced when a broker restart leaves it unusable."""

    def __init__(self, make: Callable[[], KafkaProducer]) -> None:
        self._make = make
        self.producer: Any = make()

    def replace(self) -> None:
        old = self.producer
        try:
            old.close(timeout=0)
        except Exception as exc:  # noqa: BLE001 - a broken producer may fail to close; it is dropped anyway
            log.debug("closing the failed producer: %s", exc)
        time.sleep(1.0)  # give a restarting broker a moment
        self.producer = self._make()

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        self.producer.flush(timeout)

    def close(self) -> None:
        try:
            self.producer.flush(10)
        finally:
            self.producer.close(5)


class DeadLetterSink:
    """Refused messages parked on the dead-letter topic: a bounded copy with the reason. ``add`` never raises."""

    def __init__(self, output: OutputProducer, topic: str, metrics: DetectorMetrics) -> None:
        self.output = output
        self.topic = topic
        self.metrics = metrics

    def add(self, record: ConsumerRecord, reason: str, error: str, origin: str) -> None:
        self.metrics.invalid_frames.labels(reason).inc()
        log.warning("invalid frame at %s: %s [%s] -> %s", origin, error, reason, self.topic)
        value = record.value
        headers = dead_letter_headers(reason, error, origin)
        if value is not None and len(value) > DEAD_LETTER_MAX_BYTES:
            # Too large to copy whole: a truncated copy; the origin header says where the whole message is.
            headers.append((DLQ_TRUNCATED, str(len(value)).encode()))
            value = bytes(value[:DEAD_LETTER_MAX_BYTES])
        key = record.key
        if isinstance(key, bytes | bytearray) and len(key) > DEAD_LETTER_MAX_KEY:
            key = bytes(key[:DEAD_LETTER_MAX_KEY])
        try:
            future = self.output.producer.send(self.topic, key=key, value=value, headers=headers)
        except Exception as exc:  # noqa: BLE001 - the dead-letter copy must never stop the partition
            self._failed(origin, exc)
            return
        if isinstance(future, FutureRecordMetadata):
            future.add_errback(lambda exc: self._failed(origin, exc))

    def _failed(self, origin: str, exc: BaseException) -> None:
        self.metrics.errors.labels("dead_letter").inc()
        log.error("could not park %s on %s: %s", origin, self.topic, exc)

    def flush(self) -> None:
        try:
            self.output.flush()
        except KafkaError as exc:  # a dead letter that cannot be sent is counted by its errback, not fatal
            log.warning("dead-letter flush did not complete: %s", exc)


class AlertSink:
    """New alerts for the alerts topic. ``flush`` publishes them and marks each published in the alert store
    only once Kafka acknowledged it; sends that fail go again on a new producer, a few times. Alerts that still
    cannot be sent stay unpublished in the store and ``flush`` raises, so the batch is not committed and the
    next start publishes them."""

    def __init__(
        self,
        output: OutputProducer,
        topic: str,
        store: AlertStore,
        metrics: DetectorMetrics,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self.output = output
        self.topic = topic
        self.store = store
        self.metrics = metrics
        self.on_alert = on_alert
        #: Ids already on the alerts topic (read at start, then every one acknowledged): never sent twice.
        self.published_ids: set[str] = set()
        self._pending: list[Alert] = []

    def add(self, alert: Alert) -> None:
        self._pending.append(alert)

    def flush(self) -> None:
        alerts, self._pending = self._pending, []
        self.publish(alerts)

    def publish(self, alerts: list[Alert]) -> None:
        todo = [a for a in alerts if a.id not in self.published_ids]
        already = [a.id for a in alerts if a.id in self.published_ids]
        if already:
            self.store.mark_published(already)
        for attempt in range(1, ALERT_SEND_ATTEMPTS + 1):
            if not todo:
                return
            sent = [(alert, self._send(alert)) for alert in todo]
            try:
                self.output.flush()
            except KafkaError as exc:
                log.warning("alert flush did not complete: %s", exc)
            landed = [a for a, future in sent if future is not None and future.is_done and future.succeeded()]
            if landed:
                self.store.mark_published([a.id for a in landed])
                self.published_ids.update(a.id for a in landed)
                for alert in landed:
                    if self.on_alert:
                        self.on_alert(alert)
            todo = [a for a, _ in sent if a not in landed]
            if not todo:
                return
            self.metrics.errors.labels("alert_publish").inc()
            log.warning(
                "%d alerts not acknowledged by Kafka (attempt %d of %d); replacing the producer",
                len(todo),
                attempt,
                ALERT_SEND_ATTEMPTS,
            )
            self.output.replace()
        raise KafkaError(
            f"{len(todo)} alerts could not be published to {self.topic} after "
            f"{ALERT_SEND_ATTEMPTS} attempts; they stay in the alert store and are published on the next start"
        )

    def _send(self, alert: Alert) -> Any:
        """Send one alert; its future, or None when the send itself failed (the producer is unusable).

        Keyed by satellite, as frames are: one satellite's alerts share a partition and keep their order there,
        so the feed reads them in time order whatever the alerts topic's partition count. Nothing reads the
        key back (the topic is not compacted; duplicates are kept off by the ids in ``published_ids``)."""
        try:
            return self.output.producer.send(self.topic, key=alert.satellite.encode(), value=alert_to_json(alert))
        except KafkaError as exc:
            log.warning("could not send alert %s: %s", alert.id, exc)
            return None
