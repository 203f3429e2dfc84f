"""The incidents sink: reads the ``alerts`` topic, groups alerts into incidents, stores them, publishes their
latest version to the compacted ``incidents`` topic (key = incident id) and routes data-quality incidents to
Alertmanager. Offsets are committed only after the store and the topic have the batch's incidents, and the
store remembers every alert it grouped, so at-least-once delivery never duplicates an incident."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError

from satwatch.consumers.clients import group_consumer, read_to_end, reliable_producer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert, alert_from_json
from satwatch.services.feed.alertmanager import AlertmanagerRouter
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import Change, Incident
from satwatch.services.feed.metrics import FeedMetrics
from satwatch.services.feed.sink import IncidentSink
from satwatch.services.feed.store import IncidentStore
from satwatch.services.frames.codec import FrameDecodeError, decode_meta
from satwatch.topics import ensure_compacted_topic

log = logging.getLogger(__name__)


class DetectorClock:
    """Stream time as far as the detector has got: for each frames partition, the time of the frame just before
    the detector group's committed offset. Read-only on the detector's group (an admin offset fetch and a
    group-less reader), so incidents resolve after their quiet time even when no later alert comes."""

    def __init__(self, settings: Settings) -> None:
        k = settings.kafka
        self.group, self.topic = k.group_id, k.frames_topic
        self.admin = KafkaAdminClient(bootstrap_servers=k.bootstrap_servers, client_id="satwatch-incidents-clock")
        self.reader = KafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            enable_auto_commit=False,
            client_id="satwatch-incidents-clock",
            max_partition_fetch_bytes=2 * 1024 * 1024,
        )
        self.seen: dict[TopicPartition, int] = {}

    def read(self, timeout: float = 3.0) -> dict[str, datetime]:
        """Satellite -> time of the detector's last committed frame, for partitions that moved since last time."""
        offsets = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        want = {
            tp: int(om.offset) - 1
            for tp, om in offsets.items()
            if tp.topic == self.topic and om.offset > 0 and self.seen.get(tp) != om.offset
        }
        if not want:
            return {}
        self.reader.assign(list(want))
        for tp, off in want.items():
            self.reader.seek(tp, off)
        got: dict[str, datetime] = {}
        pending = set(want)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for tp, records in self.reader.poll(timeout_ms=200).items():
                if tp not in pending or not records:
                    continue
                pending.discard(tp)
                self.seen[tp] = want[tp] + 1
                try:
                    meta, _ = decode_meta(records[0].value)
                except FrameDecodeError:
                    continue  # a dead-lettered message: the next commit gives a time
                t = got.get(meta.satellite)
                got[meta.satellite] = meta.time if t is None else max(t, meta.time)
        return got

    def close(self) -> None:
        self.reader.close()
        self.admin.close()


class IncidentsConsumer:
    """Runs the incidents sink over the alerts topic until stopped."""

    def __init__(
        self,
        settings: Settings,
        feed: FeedSettings,
        store: IncidentStore | None = None,
        feed_url: str | None = None,
        on_change: Callable[[Change], None] | None = None,
        metrics: FeedMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.feed = feed
        k = settings.kafka
        ensure_compacted_topic(k, feed.incidents_topic)
        self.store = store or IncidentStore(feed.store)
        self.consumer = group_consumer(
            k, feed.group_id, "satwatch-incidents", k.alerts_topic, max_poll_records=200, max_poll_interval_ms=5000
        )
        self.producer = reliable_producer(k, "satwatch-incidents-out", linger_ms=0)
        self.restored = self._restore_from_topic()
        router = (
            AlertmanagerRouter(feed.alertmanager_url, feed.alertmanager_resend_seconds, feed_url)
            if feed.alertmanager_url
            else None
        )
        self.metrics = metrics or FeedMetrics(self.store)
        self.sink = IncidentSink(
            self.store,
            feed,
            router=router,
            publish=self._publish,
            on_change=on_change,
            metrics=self.metrics,
            retire=self._retire,
        )
        self._stop = threading.Event()
        self.detector_clock = DetectorClock(settings) if feed.stream_clock_seconds > 0 else None
        self._clock_due = 0.0
        self._clock_pending: tuple[dict[str, datetime], dict[TopicPartition, int]] | None = None
        self._clock: list[tuple[str, datetime]] = []
        self._clock_lock = threading.Lock()
        self.bad_messages = 0
        self.ready = threading.Event()

    def _restore_from_topic(self, timeout: float = 15.0) -> int:
        """The store is a cache: incidents the compacted topic holds and the store lacks (a lost or new disk)
        are loaded back before any alert is read, so a group whose offsets are committed splits nothing."""
        k, topic = self.settings.kafka, self.feed.incidents_topic

        def too_slow() -> None:
            raise RuntimeError(f"could not read the {topic} topic to its end in {timeout:.0f} s")

        latest: dict[str, Incident] = {}
        for rec in read_to_end(k, topic, "satwatch-incidents-restore", timeout, too_slow, poll_ms=500):
            if rec.value is None and rec.key is not None:  # a tombstone: the incident was merged into another
                latest.pop(rec.key.decode(), None)
                continue
            try:
                latest[rec.key.decode()] = Incident.model_validate_json(rec.value)
            except (ValidationError, ValueError, AttributeError) as exc:
                log.warning("skipping an unreadable incident at offset %d: %s", rec.offset, exc)
        n = self.store.restore(list(latest.values()))
        if n:
            log.info("restored %d incidents from the %s topic", n, topic)
        return n

    def _publish(self, incidents: list[Incident]) -> None:
        for inc in incidents:
            self.producer.send(self.feed.incidents_topic, key=inc.id.encode(), value=inc.model_dump_json().encode())
        self.producer.flush(30)

    def _retire(self, ids: list[str]) -> None:
        """Tombstones for incidents merged into another, so the compacted topic forgets them."""
        for iid in ids:
            self.producer.send(self.feed.incidents_topic, key=iid.encode(), value=None)
        self.producer.flush(30)

    def advance(self, satellite: str, now: datetime) -> None:
        """Tell the sink that the detector processed a frame of ``satellite`` at stream time ``now`` (from any
        thread), so incidents resolve even when no further alert comes."""
        with self._clock_lock:
            self._clock.append((satellite, now))

    def stop(self) -> None:
        self._stop.set()

    def run(self, max_idle_seconds: float | None = None) -> None:
        """Consume until ``stop`` (or ``max_idle_seconds`` without a message)."""
        self.sink.republish()
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self.consumer.poll(timeout_ms=200)
                if self.consumer.assignment():
                    self.ready.set()
                alerts: list[Alert] = []
                for records in batch.values():
                    for rec in records:
                        try:
                            alerts.append(alert_from_json(rec.value))
                        except (ValidationError, ValueError) as exc:
                            self.bad_messages += 1
                            self.metrics.alerts.labels("unreadable").inc()
                            log.warning("skipping an unreadable alert at offset %d: %s", rec.offset, exc)
                if alerts:
                    self.sink.handle(alerts)
                    self.consumer.commit()
                    idle_since = time.monotonic()
                with self._clock_lock:
                    ticks, self._clock = self._clock, []
                latest: dict[str, datetime] = {}
                for sat, t in ticks:
                    latest[sat] = max(t, latest.get(sat, t))
                for sat, t in latest.items():
                    self.sink.advance(sat, t)
                self._follow_detector()
                self.sink.tick()
                if max_idle_seconds is not None and not alerts and time.monotonic() - idle_since > max_idle_seconds:
                    break
        finally:
            self.close()

    def _follow_detector(self) -> None:
        """Every ``stream_clock_seconds``, read how far the detector has got; apply it once this sink has read
        the alerts topic as far as it reached when the clock was read (the detector commits a frame only after
        its alert is on the topic, so no alert of an earlier frame can still be on its way)."""
        clock = self.detector_clock
        assigned = self.consumer.assignment()
        if clock is None or not assigned:
            return
        if self._clock_pending is None and time.monotonic() >= self._clock_due:
            self._clock_due = time.monotonic() + self.feed.stream_clock_seconds
            try:
                ticks = clock.read()
            except KafkaError as exc:
                log.warning("cannot read the detector's progress: %s", exc)
                return
            if ticks:
                self._clock_pending = (ticks, self.consumer.end_offsets(list(assigned)))
        if self._clock_pending is not None:
            ticks, ends = self._clock_pending
            if all(self.consumer.position(tp) >= end for tp, end in ends.items() if tp in assigned):
                self._clock_pending = None
                for sat, t in ticks.items():
                    self.sink.advance(sat, t)

    def close(self) -> None:
        try:
            self.consumer.close()
            if self.detector_clock is not None:
                self.detector_clock.close()
        finally:
            self.producer.close(5)
