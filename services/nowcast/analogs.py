"""Finding the analogs: the past windows most like the current one, each with what followed it.

Two ways, one result (:class:`~satwatch.services.nowcast.forecast.Analog`):

- :func:`exact_analogs` scores every past window of a source with the exact ground-truth metric (per-frame
  grid signatures computed once, then one-to-many comparison). Right for small archives: a few days is a few
  hundred windows and costs seconds.
- :func:`analogs_from_neighbours` takes what the index search (``services.retrieval``, HNSW + exact
  re-rank) already returned, for archives too long to scan; the detector has these on every alert.

Either way a past window is admitted only if the frames that followed it up to the horizon lie before the
query window began (no peeking at the query, nor at the future), and overlapping windows are folded into
one event, kept at its most similar window, as search folds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from satwatch.services.frames.windows import frames_after, window_ending
from satwatch.services.metric.groundtruth import (
    FrameSignature,
    GridSpec,
    frame_signature,
    similarity_one_to_many,
    window_signature,
)
from satwatch.services.nowcast.forecast import Analog, FrameSource, load_shrunk
from satwatch.services.retrieval.index import Neighbour


class SignatureMemo:
    """Per-frame ground-truth signatures of a source, computed once each (the metric's general mode over
    shrunk frames, as the search re-rank uses)."""

    def __init__(self, source: FrameSource, spec: GridSpec | None = None) -> None:
        self.source = source
        self.spec = spec or GridSpec(n=24, bins=20, mode="general")
        self._memo: dict[datetime, FrameSignature] = {}

    def __call__(self, time: datetime) -> FrameSignature:
        sig = self._memo.get(time)
        if sig is None:
            sig = self._memo[time] = frame_signature(load_shrunk(self.source, time), self.spec)
        return sig


def fold_events(
    scored: Sequence[tuple[datetime, float]], separation: timedelta, k: int
) -> list[tuple[datetime, float]]:
    """The ``k`` best (end, similarity) pairs whose ends lie at least ``separation`` apart, best first."""
    kept: list[tuple[datetime, float]] = []
    for end, sim in sorted(scored, key=lambda x: -x[1]):
        if all(abs(end - e) >= separation for e, _ in kept):
            kept.append((end, sim))
            if len(kept) == k:
                break
    return kept


def exact_analogs(
    past: FrameSource,
    query_times: Sequence[datetime],
    query_signatures: Sequence[FrameSignature],
    *,
    k: int,
    horizon: timedelta,
    frames: int,
    span: timedelta,
    min_frames: int | None = None,
    past_signatures: SignatureMemo | None = None,
) -> list[Analog]:
    """The ``k`` past windows of ``past`` most similar to the query window by the exact metric.

    A candidate ends at a frame time of ``past``, holds at least ``min_frames`` (default ``frames``) frames by
    the one window rule, and has frames following it up to ``horizon`` that all lie before the query's first
    frame. Overlapping candidates fold into one event (ends at least ``span`` apart).
    """
    if k < 1 or not query_times:
        raise ValueError("k must be at least 1 and the query window must hold frames")
    need = frames if min_frames is None else min_frames
    begin = query_times[0]
    memo = past_signatures or SignatureMemo(past)
    ends, windows = [], []
    for end in past.times:
        if end + horizon >= begin:
            break
        times = window_ending(past.times, end, frames, span)
        if len(times) < need or not frames_after(past.times, end, horizon):
            continue
        ends.append(end)
        windows.append(window_signature([memo(t) for t in times]))
    if not windows:
        return []
    sims = similarity_one_to_many(window_signature(list(query_signatures)), windows)
    best = fold_events(list(zip(ends, (float(s) for s in sims), strict=True)), span, k)
    return [Analog(end=e, similarity=s) for e, s in best]


def analogs_from_neighbours(neighbours: Sequence[Neighbour]) -> list[Analog]:
    """Search hits as analogs; a hit not re-ranked (no exact similarity) is weighted by its rank instead."""
    out = []
    for rank, n in enumerate(neighbours):
        sim = n.similarity if n.similarity is not None else 1.0 / (rank + 1)
        out.append(Analog(end=n.record.end, similarity=float(sim), start=n.record.start))
    return out


class PastEvent(Protocol):
    """What an alert's similar event carries (``services.detection.alerts.SimilarEvent`` fits)."""

    start: datetime
    end: datetime
    similarity: float | None


def analogs_from_events(events: Sequence[PastEvent]) -> list[Analog]:
    """An alert's similar events as analogs, so the detector or the feed can call
    ``summary.alert_summary`` with what the alert already holds; unranked ones are weighted by rank."""
    return [
        Analog(
            end=e.end, similarity=float(e.similarity if e.similarity is not None else 1.0 / (rank + 1)), start=e.start
        )
        for rank, e in enumerate(events)
    ]


def similarity_spread(analogs: Sequence[Analog]) -> tuple[float, float]:
    """Best and mean similarity of the analogs (how much like today the past ever was)."""
    if not analogs:
        return float("nan"), float("nan")
    s = np.array([a.similarity for a in analogs])
    return float(s.max()), float(s.mean())
