"""Analogs found by the exact metric and composited: a perfect analog reproduces what happened."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.detection.alerts import SimilarEvent
from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import get_profile
from satwatch.services.nowcast.analog import frame_at
from satwatch.services.nowcast.analogs import analogs_from_events, analogs_from_neighbours, fold_events
from satwatch.services.nowcast.forecast import Analog, MemorySource, NowcastInput, lead_times
from satwatch.services.nowcast.interface import get_method
from satwatch.services.nowcast.run import CELL_HISTOGRAMS, Nowcaster, NowcastOptions
from satwatch.services.nowcast.verify import Scoreboard
from satwatch.services.retrieval.index import Neighbour, WindowRecord

PROFILE = get_profile("COMS-1")


def test_a_copy_of_the_past_is_found_and_forecasts_what_happened(stream: list[Frame], day_before: MemorySource) -> None:
    source = MemorySource(stream)
    options = NowcastOptions(methods=("persistence", "analog", "analog_change"), k=2, cell_histograms=True)
    nowcaster = Nowcaster(source, PROFILE, options, past=day_before)
    issue = stream[34].time  # 8.5 h in: a full window behind, 3 h of truth ahead, another event before
    run = nowcaster.issue(issue)
    best = run.analogs[0]
    assert best.end == issue - timedelta(days=1)
    assert best.similarity == pytest.approx(1.0)
    # the second event is folded a window span away from the first, and is less alike
    assert abs(run.analogs[1].end - best.end) >= PROFILE.window_span
    assert run.analogs[1].similarity < 1.0

    one = Nowcaster(source, PROFILE, replace(options, k=1), past=day_before)
    run1 = one.issue(issue)
    board = Scoreboard()
    assert one.verify(run1, board) == 3 * 12
    by = {(s.method, s.lead): s for s in board.table()}
    for lead in lead_times(3, PROFILE.cadence):
        truth = source.load(issue + lead).data.astype(np.float32)
        assert np.abs(run1.forecasts["analog"].at(lead) - truth).max() == 0
        assert np.abs(run1.forecasts["analog_change"].at(lead) - truth).max() <= 1e-3
        assert by[("analog", lead)].mae_k == pytest.approx(0.0, abs=1e-9)
        assert by[(CELL_HISTOGRAMS, lead)].cell_similarity == pytest.approx(1.0)
    # persistence is not perfect three hours on (the weather moved), so the scores can tell them apart
    assert by[("persistence", timedelta(hours=3))].mae_k > 0.5


def test_analogs_never_reach_into_the_query_window(stream: list[Frame]) -> None:
    source = MemorySource(stream)
    nowcaster = Nowcaster(source, PROFILE, NowcastOptions(methods=("analog",), k=5, hours=1))
    run = nowcaster.issue(stream[-1].time)
    begin = nowcaster.source.times[nowcaster.source.times.index(stream[-1].time) - PROFILE.window_frames + 1]
    assert run.analogs, "12 h of stream hold windows whose next hour ended before the last window began"
    assert all(a.end + timedelta(hours=1) < begin for a in run.analogs)
    # at the start of the stream there is no such past: the analog is not issued, and says why
    early = nowcaster.issue(stream[4].time)
    assert "analog" in early.skipped and "analog" not in early.forecasts


def test_composite_is_similarity_weighted_and_skips_missing_leads(stream: list[Frame]) -> None:
    past = MemorySource([f for i, f in enumerate(stream) if i != 13])  # the frame 1 h after analog b is missing
    a, b = Analog(stream[4].time, 0.75), Analog(stream[9].time, 0.25)
    leads = (timedelta(hours=1), timedelta(hours=2))
    data = NowcastInput(
        [stream[30].time], stream[30].data[None], stream[30].channels, leads, PROFILE.cadence, (a, b), past
    )
    fc = get_method("analog")(data)
    f = {i: stream[i].data.astype(np.float64) for i in (8, 13, 12, 17)}
    assert np.allclose(fc.at(leads[0]), f[8], atol=1e-3)  # b has no frame at +1 h: a alone
    assert np.allclose(fc.at(leads[1]), 0.75 * f[12] + 0.25 * f[17], atol=1e-3)
    assert fc.notes["used"] == [1, 2]


def test_frame_at_takes_the_nearest_following_frame_within_half_a_cadence(stream: list[Frame]) -> None:
    past = MemorySource([f for i, f in enumerate(stream) if i != 8])
    end = stream[4].time
    assert frame_at(past, end, timedelta(minutes=45), PROFILE.cadence / 2) == stream[7].time
    assert frame_at(past, end, timedelta(hours=1), PROFILE.cadence / 2) is None
    assert frame_at(past, stream[-1].time, timedelta(minutes=15), PROFILE.cadence / 2) is None


def test_fold_events_keeps_the_best_of_overlapping_windows(stream: list[Frame]) -> None:
    t = [f.time for f in stream]
    kept = fold_events([(t[0], 0.5), (t[2], 0.9), (t[30], 0.6), (t[31], 0.7)], timedelta(hours=6), 5)
    assert kept == [(t[2], 0.9), (t[31], 0.7)]


def test_search_hits_become_analogs(stream: list[Frame]) -> None:
    rec = WindowRecord.from_times("COMS-1", [f.time for f in stream[:20]])
    hits = [Neighbour(rec, 1.0, similarity=0.8), Neighbour(rec, 2.0)]
    out = analogs_from_neighbours(hits)
    assert [a.similarity for a in out] == [0.8, 0.5]  # not re-ranked: weighted by rank
    assert out[0].end == stream[19].time and out[0].start == stream[0].time


def test_an_alerts_similar_events_become_analogs(stream: list[Frame]) -> None:
    events = [
        SimilarEvent(window_id="a", satellite="COMS-1", start=stream[0].time, end=stream[19].time, distance=1.0),
        SimilarEvent(
            window_id="b", satellite="COMS-1", start=stream[5].time, end=stream[24].time, distance=2.0, similarity=0.7
        ),
    ]
    out = analogs_from_events(events)
    assert [(a.end, a.similarity) for a in out] == [(stream[19].time, 1.0), (stream[24].time, 0.7)]


def test_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="persistence"):
        get_method("climatology")
    with pytest.raises(ValueError, match="persistence"):
        NowcastOptions(methods=("persistance",))
