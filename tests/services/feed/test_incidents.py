from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from satwatch.services.detection.alerts import Alert, SimilarEvent, alert_category, alert_id
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import IncidentTracker, incident_id
from satwatch.services.feed.sink import IncidentSink
from satwatch.services.feed.store import IncidentStore

T0 = datetime(2024, 7, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


def make_alert(
    n: int,
    kind: str = "anomaly",
    score: float = 0.5,
    hotspot: tuple[float, float] | None = (0.7, 0.7),
    satellite: str = "COMS-1",
) -> Alert:
    end = T0 + n * STEP
    return Alert(
        id=alert_id(satellite, end, kind),
        kind=kind,
        satellite=satellite,
        window_start=end - timedelta(hours=6),
        window_end=end,
        frames_in_window=20,
        score=score,
        threshold=0.4,
        hotspot=hotspot,
        similar=[
            SimilarEvent(
                window_id="w1",
                satellite=satellite,
                start=T0 - timedelta(days=300),
                end=T0 - timedelta(days=300) + timedelta(hours=6),
                distance=0.1,
                similarity=0.83,
            )
        ],
        created=end,
    )


def stream() -> list[Alert]:
    """Two events of one kind far apart in time, one fault, one event elsewhere in the image right after."""
    return (
        [make_alert(n, score=0.5 + 0.01 * n) for n in range(10, 16)]
        + [make_alert(n, kind="striping", hotspot=None) for n in range(12, 15)]
        + [make_alert(n, hotspot=(0.02, 0.02)) for n in (16, 17)]
        + [make_alert(n) for n in range(40, 43)]
    )


def test_categories() -> None:
    for k in ("calibration_jump", "saturated_block", "striping", "missing_lines", "dq:stale"):
        assert alert_category(k) == "data_quality"
    for k in ("anomaly", "convection", "vortex"):
        assert alert_category(k) == "weather"


def test_grouping_opens_updates_and_resolves() -> None:
    tr = IncidentTracker(timedelta(minutes=60))
    changes = [c for a in sorted(stream(), key=lambda a: a.window_end) for c in tr.add(a)]
    opened = [c.incident for c in changes if c.action == "opened"]
    assert len(opened) == 4  # anomaly event 1, the fault, the far-away anomaly, anomaly event 2
    first = opened[0]
    assert first.id == incident_id("COMS-1", "anomaly", T0 + 10 * STEP)
    final = [c.incident for c in changes if c.incident.id == first.id][-1]  # resolved, then forgotten
    assert first.id not in tr.incidents
    assert final.status == "resolved" and final.alert_count == 6
    assert abs(final.peak_score - 0.65) < 1e-9 and final.last_window_end == T0 + 15 * STEP
    assert final.resolved_at == T0 + 15 * STEP + timedelta(minutes=60)
    assert final.similar and final.similar[0].similarity == 0.83
    fault = next(i for i in opened if i.kind == "striping")
    assert fault.category == "data_quality"
    # the last event stays open until the stream moves past its quiet time
    last = opened[-1]
    assert tr.incidents[last.id].status == "open"
    res = tr.advance("COMS-1", T0 + 42 * STEP + timedelta(minutes=61))
    assert [c.action for c in res] == ["resolved"]


def test_late_alert_reopens_within_quiet() -> None:
    tr = IncidentTracker(timedelta(minutes=30))
    tr.add(make_alert(0))
    tr.advance("COMS-1", T0 + 3 * STEP)
    inc = next(iter(tr.incidents.values()))
    assert inc.status == "resolved"
    ch = tr.add(make_alert(2))  # within the quiet time of the first alert: the same event
    assert ch[-1].action == "reopened" and ch[-1].incident.id == inc.id


def test_replay_and_restart_give_the_same_incidents(tmp_path: Path) -> None:
    settings = FeedSettings(quiet_minutes=60)
    alerts = sorted(stream(), key=lambda a: a.window_end)
    one = IncidentSink(IncidentStore(tmp_path / "a.sqlite"), settings)
    one.handle(alerts)
    one.handle(alerts)  # a replay of the same alerts changes nothing
    ids_a = {i.id: (i.alert_count, i.status) for i in one.store.query()}
    assert len(ids_a) == 4

    # a restart half way: a new sink on the same store, then the whole stream again (at-least-once)
    two_store = IncidentStore(tmp_path / "b.sqlite")
    IncidentSink(two_store, settings).handle(alerts[:7])
    restarted = IncidentSink(two_store, settings)
    restarted.handle(alerts)
    ids_b = {i.id: (i.alert_count, i.status) for i in two_store.query()}
    assert ids_a == ids_b
    assert two_store.count() == 4


def test_store_acknowledgements_and_audit(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "i.sqlite")
    sink = IncidentSink(store, FeedSettings())
    changed = sink.handle([make_alert(1), make_alert(2)])
    iid = changed[0].id
    assert store.acknowledge("nope", "kim", "x") is None
    ack = store.acknowledge(iid, "kim", "looking at it")
    assert ack is not None and ack.who == "kim"
    assert [a.comment for a in store.acknowledgements(iid)] == ["looking at it"]
    assert [e.action for e in store.audit(iid)] == ["opened", "updated", "acknowledged"]
    assert store.alert_body(make_alert(2).id) is not None
    assert store.query(status="open")[0].id == iid
    assert store.query(day="2024-07-01")[0].id == iid
    assert store.query(day="2024-07-03") == []


def test_incident_carries_the_latest_nowcast() -> None:
    """The page shows the latest alert's analog nowcast; an alert without one (the detector no longer held the
    frames that followed its similar events) keeps the earlier one, and a late alert does not replace it."""
    tr = IncidentTracker(timedelta(minutes=60))

    def nowcast(n: int) -> Alert:
        return make_alert(n).model_copy(update={"nowcast": {"text": f"from alert {n}", "outlook": []}})

    tr.add(make_alert(0))
    inc = next(iter(tr.incidents.values()))
    assert inc.nowcast is None
    tr.add(nowcast(2))
    assert tr.incidents[inc.id].nowcast == {"text": "from alert 2", "outlook": []}
    tr.add(make_alert(3))
    assert tr.incidents[inc.id].nowcast is not None and tr.incidents[inc.id].nowcast["text"] == "from alert 2"
    tr.add(nowcast(1))  # arrives late: older than the latest frame shown
    assert tr.incidents[inc.id].nowcast["text"] == "from alert 2"
    tr.add(nowcast(4))
    assert tr.incidents[inc.id].nowcast["text"] == "from alert 4"
