"""Folding overlapping windows into events: the rule the detector and ``satwatch search`` share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from satwatch.services.retrieval.events import distinct_events, overlapping
from satwatch.services.retrieval.index import Neighbour, WindowRecord

T0 = datetime(2024, 7, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


def rec(i: int, sat: str = "COMS-1", n: int = 20) -> WindowRecord:
    return WindowRecord.from_times(sat, [T0 + (i + j) * STEP for j in range(n)])


def test_overlap_is_per_satellite_and_inclusive() -> None:
    assert overlapping(rec(0), rec(19))  # the 19th window's first frame is the first window's last
    assert not overlapping(rec(0), rec(20))
    assert not overlapping(rec(0), rec(5, sat="GK-2A"))


def test_each_event_is_kept_once_at_its_best_rank() -> None:
    # Ranked list: three windows of an event at 0, two of an event at 100, one of a GK-2A event at 0.
    ranked = [
        Neighbour(rec(i, sat), float(d))
        for d, (i, sat) in enumerate(
            [(3, "COMS-1"), (100, "COMS-1"), (1, "COMS-1"), (2, "GK-2A"), (5, "COMS-1"), (104, "COMS-1")]
        )
    ]
    out = distinct_events(ranked, 10)
    assert [(n.record.satellite, n.record.start) for n in out] == [
        ("COMS-1", T0 + 3 * STEP),
        ("COMS-1", T0 + 100 * STEP),
        ("GK-2A", T0 + 2 * STEP),
    ]
    assert [n.distance for n in out] == [0.0, 1.0, 3.0]  # the best-ranked window stands for its event
    assert distinct_events(ranked, 2) == out[:2]
    assert distinct_events([], 3) == []
