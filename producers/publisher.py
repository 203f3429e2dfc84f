"""Publishes frames to the frames topic, keyed by satellite so one satellite's frames stay in order.

Nothing is lost quietly: every send is followed to its outcome. When sends fail for a reason a new producer
can cure (a broker restart leaves the idempotent producer with an unknown producer id and then a fatal
state), the publisher replaces its producer and sends those messages again, a few times; what still cannot be
sent is counted in ``failed``, logged and measured, and the ``produce`` command exits non-zero with the count.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from kafka import KafkaProducer
from kafka.errors import (
    AuthorizationError,
    InvalidRecordError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from satwatch.services.config import KafkaSettings
from satwatch.services.detection.metrics import ProducerMetrics
from satwatch.services.frames.codec import InlineTooLargeError, claim_check_uri, encode_claim_check, encode_inline
from satwatch.services.frames.frame import Frame, shrink
from satwatch.services.frames.profiles import ProfileError, get_profile
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


def make_producer(settings: KafkaSettings, **overrides: Any) -> KafkaProducer:
    """A producer with idempotence and retries: a retried send never duplicates or reorders a frame.

    ``overrides`` are further KafkaProducer options (tests shorten the timeouts).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": "satwatch-producer",
        "acks": "all",
        "enable_idempotence": True,
        "retries": 10,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "max_request_size": 1_048_576,
        "compression_type": settings.compression_type,
    }
    options.update(overrides)
    return KafkaProducer(**options)


#: Errors a new producer cannot cure: the message itself is refused.
_MESSAGE_REFUSED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    InvalidTopicError,
    AuthorizationError,
)


@dataclass
class _Outgoing:
    """One message on its way, kept until the broker acknowledges it (so it can be sent again)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None
    what: str  # for logs: "COMS-1 2024-07-01T06:00:00+00:00" or "dead letter from ..."
    satellite: str | None  # counted as published (frames) when acknowledged
    attempts: int = 1


def too_large_advice(source: str) -> str:
    """What to do about frames too large to travel inline, for the source that produced them."""
    if source == "watch":
        # The files are already in a folder the detector can be given: the watched folder is the claim checks' root.
        return (
            "restart the watcher with --claim-check (messages then carry a reference to the watched folder's "
            "files) and list the folder in detector.claim_check_roots"
        )
    return "replay it from an archive with --claim-check"


class FramePublisher:
    """Encodes and sends frames; refused input goes to the dead-letter topic with its reason."""

    def __init__(
        self,
        producer: KafkaProducer,
        settings: KafkaSettings,
        metrics: ProducerMetrics | None = None,
        source: str = "unknown",
        claim_check_root: str | Path | None = None,
        *,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        max_attempts: int = 4,
        max_in_flight: int = 500,
    ) -> None:
        self.producer = producer
        self.settings = settings
        self.metrics = metrics or ProducerMetrics()
        self.source = source
        #: Archive root of the frames: when set, messages carry a claim check instead of the pixels.
        self.claim_check_root = claim_check_root
        #: Builds a replacement producer after a failure a new one can cure (default: make_producer).
        self.producer_factory = producer_factory or (lambda: make_producer(settings))
        self.max_attempts = max_attempts
        self.max_in_flight = max_in_flight
        #: Messages acknowledged by the broker, and messages given up on (logged and counted by reason).
        self.delivered = 0
        self.failed = 0
        #: Items handed in: frames sent to the frames topic, and items refused (sent to the dead-letter topic).
        self.frames_sent = 0
        self.refused = 0
        self.producers_replaced = 0
        self._in_flight: deque[tuple[Any, _Outgoing]] = deque()
        self._to_resend: list[_Outgoing] = []
        self._recovering = False

    def publish(self, item: SourceItem) -> str | None:
        """Send a frame to the frames topic (None), or refuse the item to the dead-letter topic (its reason).

        A frame that cannot be encoded (too large to travel inline, invalid metadata) is refused like input a
        source could not read: it never stops the stream.
        """
        if isinstance(item, Rejected):
            self.reject(item)
            return item.reason
        frame = item
        try:
            if self.claim_check_root is not None:
                # The area the source read: a folder may hold several, and the reader must open the same one.
                uri = claim_check_uri(self.claim_check_root, frame.time, frame.area)
                value = encode_claim_check(frame, uri)
            else:
                value = encode_inline(shrink(frame))
        except ValueError as exc:  # InlineTooLargeError, ProfileError, pydantic's ValidationError
            refused = self._unsendable(frame, exc)
            self.reject(refused)
            return refused.reason
        self.metrics.message_bytes.observe(len(value))
        what = f"{frame.satellite} {frame.time.isoformat()}"
        self._send(_Outgoing(self.settings.frames_topic, frame.satellite.encode(), value, None, what, frame.satellite))
        self.frames_sent += 1
        return None

    def _unsendable(self, frame: Frame, exc: ValueError) -> Rejected:
        """The dead letter of a frame that cannot be encoded, with a reason and what to do about it."""
        origin = frame.origin or f"{self.source} {frame.satellite} {frame.time.isoformat()}"
        when = f"{frame.time:%Y-%m-%d %H:%M}"

        def refuse(reason: str, error: str) -> Rejected:
            return Rejected(reason, error, origin, satellite=frame.satellite, time=frame.time)

        try:
            profile = get_profile(frame.satellite)
        except ProfileError as err:
            return refuse("unknown_satellite", f"frame {when}: {err}")
        if not isinstance(exc, InlineTooLargeError):
            return refuse("bad_metadata", f"frame {when} cannot be encoded: {exc}")
        size = f"{frame.width} wide x {frame.height} high, {len(frame.channels)} channels"
        native = (len(profile.channels), profile.native_height, profile.native_width)
        if frame.data.shape not in (native, profile.shrunk_shape):
            # Neither native (which is shrunk on the way) nor the shrunk size: the detector would refuse it too.
            return refuse(
                "wrong_shape",
                f"frame {when} is {size}: neither the {profile.name} native size {profile.native_width} x "
                f"{profile.native_height} nor its shrunk size {profile.shrunk_width} x {profile.shrunk_height} "
                f"({len(profile.channels)} channels), and too large to send ({exc.size} bytes, limit {exc.limit}); "
                "send the images at the native size, which satwatch shrinks, or already shrunk",
            )
        return refuse(
            "too_large_inline",
            f"frame {when} ({size}) is {exc.size} bytes inline, over the {exc.limit} byte limit; "
            + too_large_advice(self.source),
        )

    # -- delivery ---------------------------------------------------------------------------------------
    def _send(self, out: _Outgoing) -> None:
        try:
            future = self.producer.send(out.topic, key=out.key, value=out.value, headers=out.headers)
        except KafkaError as exc:  # the producer is in a fatal state, or metadata did not come in time
            self._failed_attempt(out, exc)
        else:
            self._in_flight.append((future, out))
        self._settle(wait=len(self._in_flight) >= self.max_in_flight)

    def _settle(self, wait: bool = False) -> None:
        """Account for finished sends (oldest first); with ``wait``, flush first and account for all of them.

        The flush waits a little longer than the producer's delivery timeout (a producer that lost its broker
        does not always expire its batches); what is still unacknowledged then counts as a failed attempt.
        """
        if wait:
            config = getattr(self.producer, "config", {})
            bound = float(config.get("delivery_timeout_ms", 120_000)) / 1000 + 5.0
            try:
                self.producer.flush(bound)
            except KafkaError as exc:
                log.warning("flush did not complete within %.0f s: %s", bound, exc)
        while self._in_flight:
            future, out = self._in_flight[0]
            if not future.is_done and not wait:
                break
            self._in_flight.popleft()
            if future.is_done and future.succeeded():
                self._delivered(out)
            else:
                self._failed_attempt(out, future.exception or KafkaError("not acknowledged after a flush"))
        if self._to_resend and not self._recovering:
            self._recover()

    def _delivered(self, out: _Outgoing) -> None:
        self.delivered += 1
        if out.satellite is not None:
            self.metrics.published.labels(out.satellite, self.source).inc()

    def _failed_attempt(self, out: _Outgoing, exc: BaseException) -> None:
        if isinstance(exc, _MESSAGE_REFUSED) or out.attempts >= self.max_attempts:
            self.failed += 1
            self.metrics.publish_errors.labels(type(exc).__name__).inc()
            log.error("could not publish %s after %d attempts: %s", out.what, out.attempts, exc)
        else:
            self._to_resend.append(out)

    def _recover(self) -> None:
        """Replace the producer (its state is lost or fatal, e.g. after a broker restart) and send again.

        Repeats until every message is acknowledged or has used its attempts; the order of the messages to
        send again is kept.
        """
        self._recovering = True
        try:
            while self._to_resend:
                # What is still in flight on the old producer gets its outcome first.
                self._settle(wait=True)
                resend, self._to_resend = self._to_resend, []
                try:
                    self.producer.close(timeout=0)
                except Exception as exc:  # noqa: BLE001 - a broken producer may fail to close; it is dropped
                    log.debug("closing the failed producer: %s", exc)
                attempt = max(o.attempts for o in resend)
                time.sleep(min(5.0, 0.5 * attempt))  # give a restarting broker a moment
                log.warning(
                    "replacing the Kafka producer; sending %d messages again (attempt %d of %d)",
                    len(resend),
                    attempt + 1,
                    self.max_attempts,
                )
                self.producers_replaced += 1
                try:
                    self.producer = self.producer_factory()
                except KafkaError as exc:
                    for out in resend:
                        out.attempts += 1
                        self._failed_attempt(out, exc)
                    continue
                for out in resend:
                    out.attempts += 1
                    self._send(out)
                self._settle(wait=True)
        finally:
            self._recovering = False

    def reject(self, item: Rejected) -> None:
        log.warning(
            "refused input from %s: %s (%s); sent to %s",
            item.origin,
            item.error,
            item.reason,
            self.settings.dead_letter_topic,
        )
        self.metrics.publish_errors.labels(item.reason).inc()
        self.refused += 1
        headers = dead_letter_headers(item.reason, item.error, item.origin)
        key = item.satellite.encode() or None
        self._send(
            _Outgoing(self.settings.dead_letter_topic, key, item.payload, headers, f"dead letter {item.origin}", None)
        )

    def publish_all(self, items: Iterable[SourceItem]) -> int:
        n = 0
        for item in items:
            self.publish(item)
            n += 1
        self.flush()
        return n

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message so far is acknowledged or given up on (then counted in ``failed``).

        ``timeout`` is accepted for compatibility; the producer's delivery timeout bounds each attempt.
        """
        self._settle(wait=True)

    def close(self, timeout: float = 5.0) -> None:
        """Flush and close the producer in use (it may have replaced the one passed in)."""
        try:
            self.flush()
        finally:
            try:
                self.producer.close(timeout)
            except KafkaError as exc:  # a producer that lost its broker may not close in time; drop it
                log.warning("closing the Kafka producer: %s", exc)


def only_frames(items: Iterable[SourceItem]) -> Iterator[Frame]:
    for item in items:
        if isinstance(item, Frame):
            yield item
