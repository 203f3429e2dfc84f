"""The incidents sink over the embedded broker: alerts in, incidents in the store and on the compacted topic;
a replay and a restart give the same incidents with no duplicates."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from satwatch.consumers.incidents import IncidentsConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert, alert_to_json
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import Incident
from satwatch.services.feed.store import IncidentStore
from satwatch.topics import ensure_topics
from tests.services.feed.test_incidents import make_alert, stream


def publish(settings: Settings, alerts: list[Alert]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    for a in alerts:
        producer.send(settings.kafka.alerts_topic, key=a.id.encode(), value=alert_to_json(a))
    producer.send(settings.kafka.alerts_topic, key=b"junk", value=b"not an alert")  # skipped, not fatal
    producer.flush()
    producer.close()


def run_until(consumer: IncidentsConsumer, store: IncidentStore, alerts_seen: int, timeout: float = 30) -> None:
    t = threading.Thread(target=consumer.run, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while consumer.sink.alerts_seen < alerts_seen and time.monotonic() < deadline:
        time.sleep(0.1)
    consumer.stop()
    t.join(15)


def read_topic(settings: Settings, topic: str) -> dict[str, Incident]:
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    latest = {rec.key.decode(): Incident.model_validate_json(rec.value) for rec in reader}
    reader.close()
    return latest


def test_sink_replay_and_restart(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings.kafka)
    tag = uuid.uuid4().hex[:8]
    feed = FeedSettings(store=str(tmp_path / "i.sqlite"), incidents_topic=f"incidents-{tag}", group_id=f"inc-{tag}")
    alerts = sorted(stream(), key=lambda a: a.window_end)
    first, rest = alerts[:7], alerts[7:]
    publish(settings, first)

    store = IncidentStore(feed.store)
    run_until(IncidentsConsumer(settings, feed, store=store), store, len(first))
    assert store.count() == 2

    # restart: the same group and store; the rest of the stream, and the first part again (a replay)
    publish(settings, rest + first)
    c2 = IncidentsConsumer(settings, feed, store=store)
    run_until(c2, store, len(rest) + len(first))
    # the detector's clock moves past the quiet time with no further alert: everything resolves
    c3 = IncidentsConsumer(settings, feed.model_copy(update={"group_id": f"tick-{tag}"}), store=store)
    c3.advance("COMS-1", alerts[-1].window_end + c3.sink.quiet * 2)
    c3.run(max_idle_seconds=0.5)
    by_id = {i.id: i for i in store.query()}
    assert len(by_id) == 4
    assert sorted(i.alert_count for i in by_id.values()) == [2, 3, 3, 6]
    assert all(i.status == "resolved" for i in by_id.values())

    # a fresh store and group reading the whole topic: the same incidents, no duplicates
    feed2 = feed.model_copy(
        update={"store": str(tmp_path / "j.sqlite"), "group_id": f"inc2-{tag}", "incidents_topic": f"inc2-{tag}"}
    )
    store2 = IncidentStore(feed2.store)
    run_until(IncidentsConsumer(settings, feed2, store=store2), store2, len(alerts) + len(first))
    assert {i.id: i.alert_count for i in store2.query()} == {i.id: i.alert_count for i in by_id.values()}

    on_topic = read_topic(settings, feed.incidents_topic)
    assert set(on_topic) == set(by_id)
    assert {k: v.status for k, v in on_topic.items()} == {k: "resolved" for k in by_id}

    # the store is lost, the group's offsets are committed: the incidents come back from the compacted topic
    store3 = IncidentStore(tmp_path / "k.sqlite")
    c4 = IncidentsConsumer(settings, feed.model_copy(update={"store": str(tmp_path / "k.sqlite")}), store=store3)
    assert c4.restored == 4
    publish(settings, [make_alert(43)])  # the last event goes on: it joins its restored incident
    run_until(c4, store3, 1)
    assert store3.count() == 4
    last = max(store3.query(), key=lambda i: i.last_window_end)
    assert last.alert_count == 4 and last.status == "open"
    assert [e.action for e in store3.audit(last.id)][-2:] == ["restored", "reopened"]
