"""Incidents do not depend on the order the feed reads alerts in: time order, the partitions of an alerts topic
keyed by alert id read one after another (the evaluator's finding), reversed, shuffled, in batches of any size
all give the same incidents (ids, first and last alert, counts, alerts), and each incident's id is the one its
first alert gives."""

from __future__ import annotations

import hashlib
import json
import random
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from satwatch.services.detection.alerts import Alert
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import Incident, IncidentTracker, incident_id
from satwatch.services.feed.sink import IncidentSink
from satwatch.services.feed.store import IncidentStore
from tests.services.feed.test_incidents import T0, make_alert, stream

SETTINGS = FeedSettings()  # quiet 120 min, radius 0.75: the shipped grouping


def at(hhmm: str) -> int:
    """The 15-minute step of a time on the first day."""
    h, m = int(hhmm[:2]), int(hhmm[2:])
    return (h * 60 + m) // 15


def day() -> list[Alert]:
    """The finding's day on one satellite: a vortex (18:30..21:00 with a lull), a convection (08:30..09:15),
    a striping fault that comes and goes, and a second satellite's event at the same times."""
    vortex = [
        make_alert(at(t), kind="vortex", hotspot=(0.5 + 0.01 * i, 0.5))
        for i, t in enumerate(["1830", "1915", "2000", "2015", "2030", "2045", "2100"])
    ]
    convection = [make_alert(at(t), kind="convection", hotspot=(0.2, 0.3)) for t in ["0830", "0845", "0900", "0915"]]
    faults = [
        make_alert(n, kind="striping", hotspot=None, score=0.4 + 0.001 * n)
        for n in [
            *range(at("0100"), at("0200")),
            *range(at("0500"), at("0530")),
            at("1200"),
            *range(at("1500"), at("1800"), 3),
        ]
    ]
    other = [make_alert(at(t), kind="vortex", satellite="GK-2A", hotspot=(0.1, 0.9)) for t in ["1830", "1900", "2100"]]
    return vortex + convection + faults + other + stream()


def partitions(alerts: list[Alert], n: int = 4) -> list[list[Alert]]:
    """Alerts keyed by alert id over ``n`` partitions: each partition in time order."""
    parts: list[list[Alert]] = [[] for _ in range(n)]
    for a in sorted(alerts, key=lambda a: a.window_end):
        parts[int(hashlib.sha256(a.id.encode()).hexdigest(), 16) % n].append(a)
    return parts


def orders(alerts: list[Alert]) -> dict[str, list[list[Alert]]]:
    """Named ways to deliver ``alerts``: a list of batches each."""
    timed = sorted(alerts, key=lambda a: (a.window_end, a.id))
    parts = partitions(alerts)
    by_partition = [a for p in parts for a in p]
    # a consumer's polls: up to ``size`` records from each partition in turn, partitions read at different speeds
    polled: list[list[Alert]] = []
    cursors = [0] * len(parts)
    speeds = [5, 1, 3, 2]
    while any(c < len(p) for c, p in zip(cursors, parts, strict=True)):
        batch: list[Alert] = []
        for i, p in enumerate(parts):
            batch += p[cursors[i] : cursors[i] + speeds[i]]
            cursors[i] += speeds[i]
        polled.append(batch)
    shuffled = list(alerts)
    random.Random(13).shuffle(shuffled)
    out = {
        "time order, one batch": [timed],
        "time order, one at a time": [[a] for a in timed],
        "partitions one after another, one batch": [by_partition],
        "polled partitions": polled,
        "reversed, one at a time": [[a] for a in reversed(timed)],
        "reversed, one batch": [list(reversed(timed))],
        "shuffled, one at a time": [[a] for a in shuffled],
    }
    for size in (2, 3, 7, 16):
        out[f"partitions one after another, batches of {size}"] = [
            by_partition[i : i + size] for i in range(0, len(by_partition), size)
        ]
        out[f"shuffled, batches of {size}"] = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    return out


def grouped(tmp: Path, batches: list[list[Alert]]) -> set[tuple[object, ...]]:
    store = IncidentStore(tmp)
    sink = IncidentSink(store, SETTINGS)
    for b in batches:
        sink.handle(b)
    incidents = store.query(limit=10_000)
    for inc in incidents:
        # every alert the incident holds points at it, and the id is the one its first alert gives
        assert {store.incident_of(a) for a in inc.alert_ids} == {inc.id}
        assert inc.id == incident_id(inc.satellite, inc.kind, inc.first_window_end)
        assert inc.alert_count == len(inc.alert_ids) == len(set(inc.alert_ids))
    return {
        (
            i.id,
            i.satellite,
            i.kind,
            i.status,
            i.start,
            i.first_window_end,
            i.last_window_end,
            i.resolved_at,
            i.alert_count,
            frozenset(i.alert_ids),
            i.peak_alert_id,
            i.latest_alert_id,
            tuple(i.scores),
            i.extent,
        )
        for i in incidents
    }


@pytest.mark.parametrize("alerts", [day(), stream()], ids=["day", "stream"])
def test_every_order_gives_the_same_incidents(tmp_path: Path, alerts: list[Alert]) -> None:
    ways = orders(alerts)
    reference = grouped(tmp_path / "ref.sqlite", ways.pop("time order, one batch"))
    for n, (name, batches) in enumerate(ways.items()):
        assert grouped(tmp_path / f"{n}.sqlite", batches) == reference, name


def test_the_vortex_is_one_incident_from_its_first_alert(tmp_path: Path) -> None:
    """The finding: the 7 vortex alerts, read partition after partition, are one incident that starts 18:30Z."""
    store = IncidentStore(tmp_path / "i.sqlite")
    sink = IncidentSink(store, SETTINGS)
    for p in partitions(day()):
        sink.handle(p)
    (vortex,) = store.query(satellite="COMS-1", kind="vortex")
    assert vortex.first_window_end == T0 + at("1830") * timedelta(minutes=15)
    assert vortex.id == incident_id("COMS-1", "vortex", vortex.first_window_end)
    assert vortex.alert_count == 7
    assert len(store.query(kind="convection")) == 1


def test_an_earlier_alert_renames_the_incident_and_keeps_its_acknowledgements(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "i.sqlite")
    retired: list[str] = []
    sink = IncidentSink(store, SETTINGS, retire=retired.extend)
    late = [make_alert(n) for n in (10, 11, 12)]
    (first,) = sink.handle(late)
    assert store.acknowledge(first.id, "duty", "seen") is not None
    (renamed,) = sink.handle([make_alert(8)])  # within the quiet time before the first alert
    assert renamed.id == incident_id("COMS-1", "anomaly", T0 + 8 * timedelta(minutes=15)) != first.id
    assert renamed.alert_count == 4 and renamed.first_window_end == T0 + 8 * timedelta(minutes=15)
    assert retired == [first.id]
    assert store.get(first.id) is None and [a.comment for a in store.acknowledgements(renamed.id)] == ["seen"]
    assert [e.action for e in store.audit(first.id)][-1] == "merged"
    # a restart restores the renamed incident; the same alerts again change nothing
    again = IncidentSink(IncidentStore(tmp_path / "i.sqlite"), SETTINGS)
    assert again.handle([*late, make_alert(8)]) == []


def test_a_tombstone_that_failed_is_sent_on_restart_and_the_merged_incident_not_restored(tmp_path: Path) -> None:
    """The reviewer's script: alerts 10-12 form an incident, a late alert 8 renames it, and writing the old id's
    tombstone fails (the consumer stops). The restart restores from the topic, which still holds the old id:
    one incident for the event, and the tombstone goes out before any alert is read."""
    topic: dict[str, str] = {}  # the compacted incidents topic: id -> latest body

    def publish(incidents: list[Incident]) -> None:
        topic.update({i.id: i.model_dump_json() for i in incidents})

    def broken(ids: list[str]) -> None:
        raise TimeoutError("producer.flush timed out")

    tombstones: list[str] = []

    def retire(ids: list[str]) -> None:
        tombstones.extend(ids)
        for i in ids:
            topic.pop(i, None)

    store = IncidentStore(tmp_path / "i.sqlite")
    sink = IncidentSink(store, SETTINGS, publish=publish, retire=broken)
    (first,) = sink.handle([make_alert(n) for n in (10, 11, 12)])
    with pytest.raises(TimeoutError):
        sink.handle([make_alert(8)])
    new = incident_id("COMS-1", "anomaly", T0 + 8 * timedelta(minutes=15))
    assert set(topic) == {first.id, new} and store.unsent_tombstones() == [first.id]
    store.close()

    # the restart: the consumer restores the store from the topic, then republishes before reading alerts
    store = IncidentStore(tmp_path / "i.sqlite")
    assert store.restore([Incident.model_validate_json(b) for b in topic.values()]) == 0
    sink = IncidentSink(store, SETTINGS, publish=publish, retire=retire)
    sink.republish()
    assert tombstones == [first.id] and set(topic) == {new}
    assert store.unsent_tombstones() == []
    (only,) = store.query(satellite="COMS-1", kind="anomaly")
    assert only.id == new and only.alert_count == 4
    assert store.incident_of(make_alert(10).id) == new
    assert sink.handle([make_alert(n) for n in (8, 10, 11, 12)]) == []
    sink.republish()
    assert tombstones == [first.id]  # sent once


def test_a_bridging_alert_joins_two_parts_but_not_concurrent_events_elsewhere() -> None:
    tr = IncidentTracker(timedelta(minutes=30), radius=0.25)
    tr.add(make_alert(0))
    tr.add(make_alert(4))  # 60 min later: apart
    tr.add(make_alert(3, hotspot=(0.1, 0.1)))  # concurrent and far away: its own incident
    assert len(tr.incidents) == 3
    ch = tr.add(make_alert(2))  # closes the gap between the first two
    assert [c.action for c in ch][-2:] == ["updated", "merged"]
    merged = ch[-2].incident
    assert merged.id == incident_id("COMS-1", "anomaly", T0) and merged.alert_count == 3
    assert len(tr.incidents) == 2


def test_the_page_is_told_to_drop_a_merged_incident(tmp_path: Path) -> None:
    from satwatch.services.feed.app import create_app
    from satwatch.services.feed.server import FeedServer

    store = IncidentStore(tmp_path / "i.sqlite")
    sink = IncidentSink(store, SETTINGS)
    (old,) = sink.handle([make_alert(10), make_alert(11)])
    (new,) = sink.handle([make_alert(9)])
    server = FeedServer(create_app(store, SETTINGS)).start()
    try:
        events: list[tuple[str, dict[str, str]]] = []
        with urllib.request.urlopen(f"{server.url}/api/events?since=0", timeout=5) as resp:
            kind = ""
            while len(events) < 2:
                line = resp.readline().decode().strip()
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
    finally:
        server.stop()
    assert ("retired", {"id": old.id, "into": new.id}) in events
    assert [d["id"] for k, d in events if k == "incident"] == [new.id]
