"""Alert order over the embedded broker: the detector's alerts for one satellite land on one partition of a
many-partition alerts topic, in time order; and the incidents sink, reading a topic an older detector keyed by
alert id (one satellite's alerts spread over every partition), groups them as the time-ordered stream does,
and a sink that lost its store gets the same incidents back from the compacted topic."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from satwatch.consumers.clients import reliable_producer
from satwatch.consumers.incidents import IncidentsConsumer
from satwatch.consumers.sinks import AlertSink, OutputProducer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert, alert_from_json, alert_to_json
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import Incident
from satwatch.services.feed.sink import IncidentSink
from satwatch.services.feed.store import IncidentStore
from tests.consumers.test_incidents import run_until
from tests.services.feed.test_incident_order import day

PARTITIONS = 4


def alerts_topic_with_partitions(settings: Settings, n: int = PARTITIONS) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(settings.kafka.alerts_topic, n, 1)])
    finally:
        admin.close()


def read_all(settings: Settings, topic: str) -> list[Any]:
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    records = list(reader)
    reader.close()
    return records


class Store:
    def mark_published(self, ids: list[str]) -> None:
        pass


def test_the_detectors_alerts_of_one_satellite_share_a_partition_in_order(settings: Settings) -> None:
    alerts_topic_with_partitions(settings)
    output = OutputProducer(lambda: reliable_producer(settings.kafka, "test-alert-keys"))
    sink = AlertSink(output, settings.kafka.alerts_topic, Store(), DetectorMetrics())  # type: ignore[arg-type]
    alerts = sorted(day(), key=lambda a: (a.window_end, a.id))
    for i in range(0, len(alerts), 5):  # in batches, as the detector flushes them
        for a in alerts[i : i + 5]:
            sink.add(a)
        sink.flush()
    output.close()
    records = read_all(settings, settings.kafka.alerts_topic)
    assert len(records) == len(alerts)
    by_satellite: dict[str, list[Any]] = {}
    for r in records:
        by_satellite.setdefault(alert_from_json(r.value).satellite, []).append(r)
    assert set(by_satellite) == {"COMS-1", "GK-2A"}
    for sat, recs in by_satellite.items():
        assert {r.partition for r in recs} == {recs[0].partition}, sat  # one partition each
        assert all(r.key == sat.encode() for r in recs)
        ends = [alert_from_json(r.value).window_end for r in sorted(recs, key=lambda r: r.offset)]
        assert ends == sorted(ends), sat  # in time order there


def summary(incidents: list[Incident]) -> set[tuple[object, ...]]:
    return {
        (i.id, i.status, i.first_window_end, i.last_window_end, i.alert_count, frozenset(i.alert_ids))
        for i in incidents
    }


def send(settings: Settings, alerts: list[Alert]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    for a in alerts:  # as detectors before the fix keyed them: spread over every partition
        producer.send(settings.kafka.alerts_topic, key=a.id.encode(), value=alert_to_json(a))
    producer.flush()
    producer.close()


def test_a_topic_keyed_by_alert_id_gives_the_time_ordered_incidents(settings: Settings, tmp_path: Path) -> None:
    alerts_topic_with_partitions(settings)
    alerts: list[Alert] = sorted(day(), key=lambda a: (a.window_end, a.id))
    # the vortex's first two alerts come late (a replay, a detector catching up): the incident opened at
    # 20:00Z takes them in and is renamed after its 18:30Z alert
    late = [a for a in alerts if a.kind == "vortex" and a.satellite == "COMS-1"][:2]
    send(settings, [a for a in alerts if a not in late])
    parts = {r.partition for r in read_all(settings, settings.kafka.alerts_topic)}
    assert len(parts) > 1

    tag = uuid.uuid4().hex[:8]
    feed = FeedSettings(store=str(tmp_path / "i.sqlite"), incidents_topic=f"incidents-{tag}", group_id=f"inc-{tag}")
    reference = IncidentSink(IncidentStore(tmp_path / "ref.sqlite"), feed)
    reference.handle(alerts)
    expected = summary(reference.store.query(limit=10_000))

    store = IncidentStore(feed.store)
    run_until(IncidentsConsumer(settings, feed, store=store), store, len(alerts) - len(late))
    send(settings, late)
    run_until(IncidentsConsumer(settings, feed, store=store), store, len(late))
    assert summary(store.query(limit=10_000)) == expected
    assert any(e.action == "merged" for e in store.audit())
    tombstones = [r for r in read_all(settings, feed.incidents_topic) if r.value is None]
    assert len(tombstones) == 1

    # a lost store: the compacted topic (latest versions, the renamed incident tombstoned) gives them back
    lost = IncidentStore(tmp_path / "lost.sqlite")
    again = IncidentsConsumer(settings, feed.model_copy(update={"store": str(tmp_path / "lost.sqlite")}), store=lost)
    try:
        assert summary(lost.query(limit=10_000)) == expected
    finally:
        again.close()
