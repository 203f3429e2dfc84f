from datetime import timedelta

from satwatch.services.detection.alerts import Alert, AlertStore, SimilarEvent, alert_from_json, alert_id, alert_to_json
from tests.helpers import T0


def make_alert(end_offset: int = 0) -> Alert:
    end = T0 + timedelta(minutes=15 * end_offset)
    return Alert(
        id=alert_id("COMS-1", end, "anomaly"),
        satellite="COMS-1",
        window_start=end - timedelta(hours=5, minutes=45),
        window_end=end,
        frames_in_window=20,
        score=0.5,
        threshold=0.1,
        similar=[SimilarEvent(window_id="w", satellite="COMS-1", start=T0, end=T0, distance=0.3, similarity=0.8)],
        created=T0,
    )


def test_alert_id_is_deterministic_and_distinguishes_inputs() -> None:
    assert alert_id("A", T0, "anomaly") == alert_id("A", T0, "anomaly")
    assert alert_id("A", T0, "anomaly") != alert_id("B", T0, "anomaly")
    assert alert_id("A", T0, "anomaly") != alert_id("A", T0 + timedelta(minutes=15), "anomaly")


def test_store_is_idempotent_and_survives_reopen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = AlertStore(tmp_path / "a.sqlite")
    a = make_alert()
    assert store.put(a) is True
    assert store.put(a) is False
    assert store.put(make_alert(1)) is True
    assert [x.id for x in store.unpublished()] == [a.id, make_alert(1).id]
    store.mark_published([a.id])
    store.close()
    again = AlertStore(tmp_path / "a.sqlite")
    assert again.count() == 2
    assert [x.id for x in again.unpublished()] == [make_alert(1).id]
    assert again.acknowledge(a.id, "seen, convection over Jeju")
    assert again.get(a.id) == a


def test_json_round_trip_and_summary() -> None:
    a = make_alert()
    assert alert_from_json(alert_to_json(a)) == a
    text = a.summary()
    assert "COMS-1" in text and "score 0.5000 > threshold 0.1000" in text and "gt-sim 0.800" in text


def test_a_data_quality_alert_does_not_claim_its_score_beat_the_threshold() -> None:
    # A frozen frame is raised by the data-quality checks; its weather score is usually under the threshold.
    fault = make_alert().model_copy(update={"kind": "frozen_frame", "score": -0.7534, "threshold": 4.1871})
    head = fault.summary().splitlines()[0]
    assert "frozen_frame (data quality, for operators; weather score -0.7534, threshold 4.1871)" in head
    assert ">" not in head
    # A weather alert states the comparison as it is.
    assert "score 0.5000 > threshold 0.1000" in make_alert().summary()


def test_summary_says_when_the_exact_similarity_compared_fewer_frames() -> None:
    alert = make_alert()
    start = T0 - timedelta(days=2)
    ev = SimilarEvent(
        window_id="w", satellite="COMS-1", start=start, end=start + timedelta(hours=5), distance=1.0, similarity=0.8,
        frames_compared=12,
    )  # fmt: skip
    text = alert.model_copy(update={"similar": [ev], "frames_in_window": 20}).summary()
    assert "gt-sim 0.800 (on 12 frames: part-filled window)" in text
    full = alert.model_copy(update={"similar": [ev.model_copy(update={"frames_compared": 20})], "frames_in_window": 20})
    assert "part-filled" not in full.summary()


def test_uncommitted_alerts_are_durable_only_at_commit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = AlertStore(tmp_path / "a.sqlite")
    assert store.put(make_alert(), commit=False) is True
    assert store.put(make_alert(), commit=False) is False  # still idempotent inside the open transaction
    store.put(make_alert(1), commit=False)
    store.amend(make_alert(1).model_copy(update={"score": 0.9}), commit=False)
    other = AlertStore(tmp_path / "a.sqlite")  # another reader (the feed) sees committed rows only
    assert other.count() == 0
    store.commit()
    assert other.count() == 2 and other.get(make_alert(1).id).score == 0.9  # type: ignore[union-attr]
    # A crash before the commit loses the uncommitted alerts: the consumer has not committed their offsets,
    # so it reads their frames again and stores them then.
    store.put(make_alert(2), commit=False)
    store._db.close()
    assert AlertStore(tmp_path / "a.sqlite").count() == 2
