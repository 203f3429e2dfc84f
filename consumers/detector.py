"""The detector consumer: frames topic in; alerts topic, alert store and dead-letter topic out.

Delivery is at-least-once with idempotent effects. Per poll batch: process frames (alerts go to the store,
index additions to the journal, refused messages to the dead-letter sink), then the checkpoint
(``consumers/checkpoint.py``) completes it: durable state, dead letters, alerts (marked published once Kafka
acknowledged them), and only then the offset commit. The outputs are sinks (``consumers/sinks.py``).
On (re)assignment each partition is rewound a little so the rolling windows refill; replayed messages
recompute the same alert ids, which the store and the published-id set absorb.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from satwatch.consumers.checkpoint import Checkpoint
from satwatch.consumers.clients import group_consumer, read_to_end, reliable_producer
from satwatch.consumers.sinks import AlertSink, DeadLetterSink, OutputProducer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert, alert_from_json
from satwatch.services.detection.detector import FrameOutcome, InvalidFrame
from satwatch.services.detection.router import FrameDetector
from satwatch.services.detection.window import Admission
from satwatch.services.frames.claimcheck import ClaimCheckReader
from satwatch.services.frames.codec import Encoding, FrameDecodeError, FrameMeta, decode_inline, decode_meta
from satwatch.services.frames.frame import Frame

log = logging.getLogger(__name__)

#: Refusals by the window's order check alone (the header's time): an inline payload is still checked under them.
ORDER_REFUSALS = frozenset({Admission.DUPLICATE.value, Admission.OUT_OF_ORDER.value})

#: Poll batches started (decoded, scoring queued) ahead of the one being finished. Two keep both scoring
#: workers supplied through a poll that finds nothing fetched; each costs only its frames' memory.
LOOKAHEAD = 2


class _Rewind(ConsumerRebalanceListener):
    """Notes newly assigned partitions; the poll loop rewinds them (blocking calls are not allowed here)."""

    def __init__(self, owner: DetectorConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.owner.to_rewind.discard(tp)
            self.owner.assigned.discard(tp)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.owner.to_rewind.update(assigned)
        self.owner.assigned.update(assigned)


@dataclass
class _Pending:
    """A polled batch, decoded, whose anomaly scoring runs while the batch before it is finished."""

    offsets: dict[TopicPartition, OffsetAndMetadata]
    accepted: list[tuple[ConsumerRecord, Frame, bool]]
    scores: Iterator[Any] | None

    def without(self, partitions: set[TopicPartition]) -> _Pending:
        """The batch less the records of rewound partitions (they will be read again); scored afresh."""
        offsets = {tp: o for tp, o in self.offsets.items() if tp not in partitions}
        if len(offsets) == len(self.offsets):  # every record's partition has an offset here
            return self
        kept = [a for a in self.accepted if TopicPartition(a[0].topic, a[0].partition) not in partitions]
        return _Pending(offsets, kept, None)


class DetectorConsumer:
    """Runs a Detector over the frames topic until stopped."""

    def __init__(
        self,
        settings: Settings,
        detector: FrameDetector,
        on_alert: Callable[[Alert], None] | None = None,
        on_outcome: Callable[[FrameOutcome], None] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        self.settings = settings
        self.detector = detector
        self.on_alert = on_alert
        self.on_outcome = on_outcome
        #: Sees every accepted frame before it is processed (the feed's pictures keep recent frames).
        self.on_frame = on_frame
        k = settings.kafka
        self.consumer = group_consumer(
            k,
            k.group_id,
            "satwatch-detector",
            max_poll_records=20,
            fetch_max_bytes=16 * 1024 * 1024,
            # A message larger than a partition's fetch size must still be fetched (and dead-lettered).
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        self.output = OutputProducer(lambda: self._make_producer())
        self.dead_letters = DeadLetterSink(self.output, k.dead_letter_topic, detector.metrics)
        self.alerts = AlertSink(
            self.output, k.alerts_topic, detector.store, detector.metrics, lambda a: self.on_alert and self.on_alert(a)
        )
        self.checkpoint = Checkpoint(
            lambda: self.detector.flush(),
            [self.dead_letters, self.alerts],
            lambda offsets: self.consumer.commit(offsets),
            detector.metrics,
        )
        self.replay_until: dict[TopicPartition, int] = {}
        self.to_rewind: set[TopicPartition] = set()
        #: Partitions this consumer holds now (the rebalance listener keeps it); readiness reads it.
        self.assigned: set[TopicPartition] = set()
        self._running = False
        self.claim_checks = ClaimCheckReader(settings.detector.claim_check_roots)
        self._stop = threading.Event()

    def _make_producer(self) -> KafkaProducer:
        """The producer of alerts and dead letters (replaced when a broker restart leaves it unusable)."""
        return reliable_producer(
            self.settings.kafka,
            "satwatch-detector-out",
            request_timeout_ms=10_000,
            delivery_timeout_ms=30_000,  # bounds a flush: an unreachable broker is noticed within the poll interval
        )

    def stop(self) -> None:
        self._stop.set()

    def ready(self) -> bool:
        """Ready to serve: models loaded (the detector exists), the loop running and partitions assigned.

        Safe to call from another thread (the metrics server's /readyz).
        """
        return self._running and not self._stop.is_set() and bool(self.assigned)

    # -- start-up -------------------------------------------------------------------------------------
    def _read_published_ids(self, timeout: float = 5.0) -> set[str]:
        """Ids already on the alerts topic, so a restart never publishes one twice."""
        k = self.settings.kafka
        ids: set[str] = set()
        for r in read_to_end(k, k.alerts_topic, "satwatch-alert-scan", timeout):
            try:
                ids.add(alert_from_json(r.value).id)
            except ValueError:
                continue
        return ids

    @property
    def producer(self) -> Any:
        """The Kafka producer the sinks write through (replaced after a broker restart)."""
        return self.output.producer

    @producer.setter
    def producer(self, value: Any) -> None:
        self.output.producer = value

    @property
    def published_ids(self) -> set[str]:
        return self.alerts.published_ids

    def _publish_pending(self) -> None:
        pending = [a for a in self.detector.store.unpublished() if a.id not in self.published_ids]
        self.alerts.publish(pending)
        self.detector.store.mark_published([a.id for a in self.detector.store.unpublished()])
        if pending:
            log.info("published %d alerts stored before the last stop", len(pending))

    # -- main loop ------------------------------------------------------------------------------------
    def run(self, max_idle_seconds: float | None = None) -> None:
        """Consume until stop() (or, if given, until no message arrived for ``max_idle_seconds``).

        The loop runs up to ``LOOKAHEAD`` polls ahead: batches are decoded and their anomaly scoring started
        before the batch before them is processed, flushed and committed, so the model never waits on the
        broker round trips, nor on a poll that finds nothing fetched yet. Batches finish in poll order.
        """
        self.alerts.published_ids = self._read_published_ids()
        if self.alerts.published_ids:
            # A second detector, or one with fresh state, recomputes these; say why they will not appear again.
            log.info(
                "%s holds %d alerts already: the same alerts recomputed here are stored but not published again",
                self.settings.kafka.alerts_topic,
                len(self.alerts.published_ids),
            )
        self._publish_pending()
        self.consumer.subscribe([self.settings.kafka.frames_topic], listener=_Rewind(self))
        idle_since = time.monotonic()
        started: deque[_Pending] = deque()
        self._running = True
        try:
            while not self._stop.is_set():
                # With batches in hand, only look for what has already arrived.
                batch = self.consumer.poll(timeout_ms=0 if started else 500)
                if self.to_rewind:
                    # Records fetched before the rewind are read again from the earlier position.
                    batch = {tp: recs for tp, recs in batch.items() if tp not in self.to_rewind}
                    started = deque(p.without(self.to_rewind) for p in started)
                    self._rewind()
                if batch:
                    started.append(self._start(batch))
                # Finish the oldest batch when nothing more has arrived (the next fetch is under way) or enough
                # are started ahead; the rest stay queued for the scoring workers meanwhile.
                if started and (not batch or len(started) > LOOKAHEAD):
                    self._finish(started.popleft())
                if batch:
                    idle_since = time.monotonic()
                elif not self.consumer.assignment():
                    idle_since = time.monotonic()  # still joining the group: not idle yet
                elif not started and max_idle_seconds is not None and time.monotonic() - idle_since > max_idle_seconds:
                    break
            while started:
                self._finish(started.popleft())
        finally:
            self._running = False
            self.close()

    def _rewind(self) -> None:
        """Seek newly assigned partitions back so rolling windows refill; remember where replay ends."""
        tps = sorted(self.to_rewind, key=lambda t: t.partition)
        ends = self.consumer.end_offsets(tps) if tps else {}
        for tp in tps:
            committed = self.consumer.committed(tp) or 0
            end = ends.get(tp)
            if end is not None and committed > end:
                # The topic was deleted and created again (or its log lost): the committed offset points past
                # everything there is. Resuming there would skip every record that arrives until then.
                log.warning(
                    "partition %d: committed offset %d is past the end of the log (%d); the topic was recreated? "
                    "reading it from the beginning",
                    tp.partition,
                    committed,
                    end,
                )
                self.detector.metrics.errors.labels("stale_offset").inc()
                committed = 0
            self.replay_until[tp] = committed
            start = max(0, committed - self.settings.detector.rebuild_messages)
            if self.detector.needs_rebuild:
                # Damaged saved state: rebuild the index (and windows) from everything the topic still holds.
                # Effects stay idempotent: alert ids and index entries already present are not added twice.
                start = 0
            self.consumer.seek(tp, start)
            if committed:
                log.info(
                    "partition %d: committed %d, re-reading from %d to %s",
                    tp.partition,
                    committed,
                    start,
                    "rebuild damaged state" if self.detector.needs_rebuild else "refill windows",
                )
        if tps and self.detector.needs_rebuild:
            self.detector.metrics.errors.labels("state_rebuilt").inc()
            self.detector.needs_rebuild = False
        self.to_rewind.clear()

    def _start(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> _Pending:
        """Decode a polled batch (refused messages go to the dead-letter topic) and start its scoring."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        accepted: list[tuple[ConsumerRecord, Frame, bool]] = []
        for tp, records in batch.items():
            for record in records:
                replay = record.offset < self.replay_until.get(tp, 0)
                frame = self._decode(record, replay)
                if frame is not None:
                    accepted.append((record, frame, replay))
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
        scores = self.detector.score_ahead([f for _, f, _ in accepted]) if accepted else None
        return _Pending(offsets, accepted, scores)

    def _finish(self, pending: _Pending) -> None:
        """Process a started batch, then complete it: durable state, dead letters, alerts, offset commit."""
        for alert in self._process(pending.accepted, pending.scores):
            if alert is not None:
                self.alerts.add(alert)
        self.checkpoint.complete(pending.offsets)

    def _process(
        self, accepted: list[tuple[ConsumerRecord, Frame, bool]], scores: Iterator[Any] | None = None
    ) -> list[Alert | None]:
        """Run decoded frames through the detector as one batch; refused frames go to the dead-letter topic."""
        if not accepted:
            return []
        metrics = self.detector.metrics
        frames = [f for _, f, _ in accepted]
        if self.on_frame is not None:
            for f in frames:
                self.on_frame(f)
        stamps = [r.timestamp / 1000.0 for r, _, _ in accepted]
        try:
            with metrics.stage("total"):
                results = self.detector.process_batch(frames, stamps, scores)
        except Exception:  # noqa: BLE001 - fall back to one at a time so one bad frame cannot sink the batch
            if len(accepted) == 1:
                record, _, replay = accepted[0]
                metrics.errors.labels("process").inc()
                log.exception("unexpected error on %s:%d:%d", record.topic, record.partition, record.offset)
                if not replay:
                    self.dead_letters.add(
                        record, "processing_error", "unexpected error while processing", self._origin(record)
                    )
                return [None]
            return [a for item in accepted for a in self._process([item])]
        alerts: list[Alert | None] = []
        for (record, _, replay), result in zip(accepted, results, strict=True):
            if isinstance(result, InvalidFrame):
                if not replay:
                    self.dead_letters.add(record, result.reason, str(result), self._origin(record))
                alerts.append(None)
                continue
            if self.on_outcome:
                self.on_outcome(result)
                if result.alert is not None:
                    # A hook may add to the new alert (its nowcast): store what is about to be published, so that
                    # a republication after a crash carries it too.
                    self.detector.store.amend(result.alert, commit=False)  # durable at the checkpoint
            alerts.append(result.alert)
        return alerts

    @staticmethod
    def _origin(record: ConsumerRecord) -> str:
        return f"{record.topic}:{record.partition}:{record.offset}"

    def _decode(self, record: ConsumerRecord, replay: bool) -> Frame | None:
        """Decode and validate one message; refused ones are dead-lettered (once) and give None.

        Whatever goes wrong with one message (including an error nobody foresaw) ends as that message's dead
        letter, a metric and a log line; it never escapes, so the offset moves on.
        """
        try:
            with self.detector.metrics.stage("decode"):
                meta, payload = decode_meta(record.value)
                key = record.key
                if key != meta.satellite.encode():
                    shown = key[:64] if isinstance(key, bytes) else key
                    raise FrameDecodeError(
                        "key_mismatch",
                        f"message key {shown!r} differs from its satellite {meta.satellite!r}; frames are keyed "
                        "by satellite so that one satellite's frames stay in order in one partition",
                    )
                try:
                    self.detector.validate_meta(meta)
                except InvalidFrame as exc:
                    # The order check needs only the header, but a corrupt or truncated inline payload under an
                    # already-processed time is a fault, not a harmless duplicate: its integrity refusal
                    # (checksum_mismatch, wrong_size, corrupt_payload) wins. A claim check is not read for it.
                    if exc.reason in ORDER_REFUSALS and meta.encoding != Encoding.CLAIM_CHECK:
                        self._frame(meta, payload)
                    raise
                return self._frame(meta, payload)
        except (FrameDecodeError, InvalidFrame) as exc:
            if not replay:  # a replayed message was dead-lettered the first time round
                self.dead_letters.add(record, exc.reason, str(exc), self._origin(record))
            return None
        except Exception as exc:  # noqa: BLE001 - one message must never stop the partition
            self.detector.metrics.errors.labels("decode").inc()
            log.exception("unexpected error decoding %s", self._origin(record))
            if not replay:
                self.dead_letters.add(record, "decode_error", f"{type(exc).__name__}: {exc}", self._origin(record))
            return None

    def _frame(self, meta: FrameMeta, payload: bytes) -> Frame:
        if meta.encoding != Encoding.CLAIM_CHECK:
            return decode_inline(meta, payload, self.detector.profile(meta.satellite).shrunk_shape)
        # Claim check: pixels read from the archive or watched folder it names, under a configured root, verified.
        return self.claim_checks.read(meta)

    def close(self) -> None:
        try:
            self.output.close()
        finally:
            self.detector.close()
            self.consumer.close()
