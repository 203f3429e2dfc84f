"""Detector logic with in-memory stand-ins for the two models (the real ONNX models are covered end to end in
tests/consumers/test_detector.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from satwatch.services.detection.detector import InvalidFrame
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.detection.window import Admission
from satwatch.services.frames.codec import decode_meta, encode_inline
from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import get_profile
from satwatch.services.models.anomaly import AnomalyResult
from satwatch.services.retrieval.index import window_id
from tests.helpers import T0, make_frame
from tests.services.detection.stand_ins import BrightnessScorer, make_detector

Q = timedelta(minutes=15)


def test_quiet_frames_do_not_alert_and_bright_frame_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    outcomes = [det.process(make_frame(T0 + i * Q, value=60)) for i in range(10)]
    assert all(o.alert is None for o in outcomes)
    assert len(det.index) == 7  # windows of 4 frames ending at frames 3..9
    hot = det.process(make_frame(T0 + 10 * Q, value=230))
    assert hot.alert is not None and hot.score > det.threshold
    assert hot.alert.window_end == T0 + 10 * Q and hot.alert.frames_in_window == 4
    # Similar past windows never overlap the alert's own window in time.
    assert hot.alert.similar and all(s.end < hot.alert.window_start for s in hot.alert.similar)
    assert det.store.count() == 1


def test_reprocessing_after_restart_neither_duplicates_alerts_nor_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = [make_frame(T0 + i * Q, value=230 if i == 6 else 60) for i in range(9)]
    det = make_detector(tmp_path)
    first = [det.process(f).alert for f in frames]
    size = len(det.index)
    det.close()  # snapshot
    again = make_detector(tmp_path)
    assert len(again.index) == size
    second = [again.process(f).alert for f in frames]
    assert sum(a is not None for a in first) == 1 and all(a is None for a in second)
    assert len(again.index) == size and again.store.count() == 1


def test_batch_scored_in_background_chunks_matches_one_at_a_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = [make_frame(T0 + i * Q, value=230 if i in (6, 9) else 60) for i in range(11)]  # 3 chunks of <= 4
    one = make_detector(tmp_path / "one")
    singly = [one.process(f) for f in frames]
    batched = make_detector(tmp_path / "batch").process_batch(frames)
    assert [(o.time, o.score, o.alert is not None) for o in batched] == [  # type: ignore[union-attr]
        (o.time, o.score, o.alert is not None) for o in singly
    ]


class FailingScorer(BrightnessScorer):
    """Fails on one frame, as a model might on input it cannot handle."""

    def __init__(self, bad: object) -> None:
        self.bad = bad

    def score(self, frame: Frame) -> AnomalyResult:
        if frame.time == self.bad:
            raise RuntimeError("model refused the input")
        return super().score(frame)


def test_model_failure_loses_only_its_frame(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = [make_frame(T0 + i * Q) for i in range(8)]
    det = make_detector(tmp_path)
    det.scorer = FailingScorer(frames[5].time)
    out = det.process_batch(frames)
    refused = [o for o in out if isinstance(o, InvalidFrame)]
    assert len(refused) == 1 and refused[0].reason == "processing_error" and "model refused" in str(refused[0])
    assert out[5] is refused[0]
    assert det.window("COMS-1").end == frames[7].time  # the frames after it went on
    assert det.metrics.errors.labels("anomaly")._value.get() == 1


def test_failure_after_earlier_frames_advanced_loses_only_that_frame(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    frames = [make_frame(T0 + i * Q, value=230 if i == 6 else 60) for i in range(8)]
    det = make_detector(tmp_path)
    query = det.index.query
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("index unavailable")
        return query(*args, **kwargs)

    monkeypatch.setattr(det.index, "query", flaky)
    out = det.process_batch(frames)
    failed = [o for o in out if isinstance(o, InvalidFrame)]
    assert len(failed) == 1 and failed[0].reason == "processing_error" and "index unavailable" in str(failed[0])
    assert sum(1 for o in out if not isinstance(o, InvalidFrame) and o.alert is not None) == 1  # the bright frame
    assert det.metrics.errors.labels("process")._value.get() == 1


def test_warm_up_leaves_no_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    det.warm_up()
    assert len(det.index) == 0 and det.store.count() == 0 and not det._windows


def test_journal_restores_index_without_snapshot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    for i in range(6):
        det.process(make_frame(T0 + i * Q))
    det.index.save(tmp_path / "index")  # an old snapshot ...
    det.process(make_frame(T0 + 6 * Q))  # ... then one more window, journaled only ...
    det.flush()  # ... made durable as the consumer does before committing; then a crash
    restarted = make_detector(tmp_path)
    assert restarted.index.contains(window_id("COMS-1", T0 + 6 * Q))
    assert len(restarted.index) == 4


@pytest.mark.parametrize(
    ("frame_kwargs", "reason"),
    [({"shape": (100, 100)}, "wrong_shape")],
)
def test_validate_meta_refuses_wrong_shape(tmp_path, frame_kwargs, reason) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    meta, _ = decode_meta(encode_inline(make_frame(T0, **frame_kwargs)))
    with pytest.raises(InvalidFrame) as err:
        det.validate_meta(meta)
    assert err.value.reason == reason and "expected (4, 300, 375)" in str(err.value)


def test_validate_meta_refuses_channels_time_duplicates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    good, _ = decode_meta(encode_inline(make_frame(T0 + 2 * Q)))
    det.validate_meta(good)
    det.process(make_frame(T0 + 2 * Q))
    cases = {
        "wrong_channels": good.model_copy(update={"channels": ("ir01", "ir02", "wv")}),
        "time_out_of_range": good.model_copy(update={"time": T0 + timedelta(days=400)}),
        "duplicate": good,
        "out_of_order": good.model_copy(update={"time": T0}),
    }
    for reason, meta in cases.items():
        with pytest.raises(InvalidFrame) as err:
            det.validate_meta(meta)
        assert err.value.reason == reason, reason


def test_satellites_without_a_profile_or_a_model_are_refused_by_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    good, _ = decode_meta(encode_inline(make_frame(T0)))
    with pytest.raises(InvalidFrame, match="no satellite profile named 'NOAA-20'") as err:
        det.validate_meta(good.model_copy(update={"satellite": "NOAA-20"}))
    assert err.value.reason == "unknown_satellite"
    gk2a = get_profile("GK-2A")
    meta = good.model_copy(update={"satellite": "GK-2A", "channels": gk2a.channels, "shape": gk2a.shrunk_shape})
    with pytest.raises(InvalidFrame, match=r"GK-2A: no model serves its channels.*trained on \['ir01'") as err:
        det.validate_meta(meta)
    assert err.value.reason == "no_model"
    # A detector whose models serve GK-2A's channels takes its frames, at GK-2A's own size.
    det.model_channels = gk2a.channels
    det.validate_meta(meta)
    with pytest.raises(InvalidFrame, match="expected \\(16, 308, 375\\)"):
        det.validate_meta(meta.model_copy(update={"shape": (16, 300, 375)}))


def test_threshold_override_from_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path, anomaly_threshold=0.99)
    assert det.threshold == 0.99
    assert det.process(make_frame(T0, value=230)).alert is None


def test_gap_leaves_window_part_filled_and_a_span_long_gap_restarts_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    det.process(make_frame(T0))
    out = det.process(make_frame(T0 + 10 * Q))  # 2.5 h of missing frames: still one 6-hour window
    assert out.admission is Admission.APPENDED and out.window_frames == 2
    out = det.process(make_frame(T0 + 10 * Q + timedelta(hours=6)))
    assert out.admission is Admission.RESTARTED and out.window_frames == 1


def test_similar_events_are_distinct_past_periods(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path)
    for i in range(40):
        det.process(make_frame(T0 + i * Q, value=60 + (i % 7)))
    hot = det.process(make_frame(T0 + 40 * Q, value=230))
    assert hot.alert is not None and len(hot.alert.similar) == 3
    spans = sorted((e.start, e.end) for e in hot.alert.similar)
    assert all(a_end < b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    # Each carries the frames that followed it, as far as the detector saw them (up to 6 hours, 15 min apart).
    for e in hot.alert.similar:
        seen = [T0 + i * Q for i in range(41) if e.end < T0 + i * Q <= e.end + timedelta(hours=6)]
        assert e.following == seen[: len(e.following)] and e.following and e.following[0] == e.end + Q


def test_score_ratio_histogram_puts_model_sets_of_different_thresholds_on_one_scale(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Two model sets in one process (as the router runs them), alerting at 0.2 and at 0.8: the same frame scores
    # about 0.39 in both, above one line and below the other; each lands in the ratio histogram on its own scale.
    metrics = DetectorMetrics()
    low = make_detector(tmp_path / "low", metrics=metrics, anomaly_threshold=0.2)
    high = make_detector(tmp_path / "high", metrics=metrics, anomaly_threshold=0.8)
    score = low.process(make_frame(T0, value=100)).score
    assert high.process(make_frame(T0, value=100)).score == score
    cumulative = {
        float(s.labels["le"]): s.value
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "satwatch_anomaly_score_ratio_bucket" and s.labels["satellite"] == "COMS-1"
    }
    assert 0.45 < score / 0.8 < 0.5 and 1.9 < score / 0.2 < 2.0
    assert (cumulative[0.25], cumulative[0.5], cumulative[1.5], cumulative[2.0]) == (0, 1, 1, 2)
