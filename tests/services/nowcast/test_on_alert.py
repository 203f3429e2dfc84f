"""The detector hook: a new alert leaves with an analog nowcast built from the frames the detector saw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from satwatch.services.detection.alerts import Alert, SimilarEvent, alert_id
from satwatch.services.detection.detector import FrameOutcome
from satwatch.services.detection.window import Admission
from satwatch.services.frames.frame import Frame
from satwatch.services.nowcast.blend import DEFAULT_BLEND
from satwatch.services.nowcast.on_alert import AlertNowcast
from satwatch.services.nowcast.verify import cold_cloud_grey


def _outcome(stream: list[Frame], end: int, similar: list[SimilarEvent]) -> FrameOutcome:
    t = stream[end].time
    alert = Alert(
        id=alert_id("COMS-1", t, "anomaly"),
        satellite="COMS-1",
        window_start=stream[end - 19].time,
        window_end=t,
        frames_in_window=20,
        score=9.0,
        threshold=3.0,
        similar=similar,
        created=datetime.now(UTC),
    )
    return FrameOutcome("COMS-1", t, Admission.APPENDED, 9.0, 3.0, 20, alert=alert)


def _event(stream: list[Frame], end: int, satellite: str = "COMS-1", similarity: float | None = 0.8) -> SimilarEvent:
    return SimilarEvent(
        window_id=f"w{end}",
        satellite=satellite,
        start=stream[0].time,
        end=stream[end].time,
        distance=1.0,
        similarity=similarity,
    )


def test_a_new_alert_carries_what_followed_its_similar_events(stream: list[Frame]) -> None:
    hook = AlertNowcast(keep=100)
    for f in stream[:41]:
        hook.on_frame(f)
    outcome = _outcome(stream, 40, [_event(stream, 8), _event(stream, 10, satellite="GK-2A")])
    hook.on_outcome(outcome)
    assert outcome.alert is not None
    nowcast = outcome.alert.nowcast
    assert nowcast is not None and nowcast["analogs"] == 1  # the other satellite's event is not ours to read
    thr = cold_cloud_grey()
    expected = [float((stream[i].data[0] >= thr).mean()) for i in (12, 16, 20)]
    assert [o["analog_cold_fraction"] for o in nowcast["outlook"]] == pytest.approx(expected)
    # the cover shown is the analogs' pulled towards today's by the fitted weight of each lead
    now = float((stream[40].data[0] >= thr).mean())
    b = [DEFAULT_BLEND.at(timedelta(hours=h))[1] for h in (1, 2, 3)]
    assert 0 < b[0] < b[1] < b[2] < 1
    blended = [(1 - w) * now + w * e for w, e in zip(b, expected, strict=True)]
    assert [o["cold_fraction"] for o in nowcast["outlook"]] == pytest.approx(blended)
    assert [o["lead_minutes"] for o in nowcast["outlook"]] == [60, 120, 180]
    assert "analog nowcast" in outcome.alert.summary()
    # it survives the alert's JSON round trip (the store and the alerts topic)
    assert Alert.model_validate_json(outcome.alert.model_dump_json()).nowcast == nowcast


def test_no_nowcast_when_the_frames_after_the_events_are_gone(stream: list[Frame]) -> None:
    hook = AlertNowcast(keep=10)  # only the last 10 frames kept: the event's following hours are forgotten
    for f in stream[:41]:
        hook.on_frame(f)
    outcome = _outcome(stream, 40, [_event(stream, 8)])
    hook.on_outcome(outcome)
    assert outcome.alert is not None and outcome.alert.nowcast is None
    assert "analog nowcast" not in outcome.alert.summary()
