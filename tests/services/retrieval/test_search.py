"""Tests of search orchestration: exclusions, filters, exact re-ranking and archive helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS, kma_filename, write_rgb_png
from satwatch.services.retrieval.index import FrameVectorStore, Neighbour, SimilarityIndex, WindowRecord
from satwatch.services.retrieval.search import (
    ensure_frame_vectors,
    exclusion_rules,
    rerank,
    search,
)

T0 = datetime(2013, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


def rec(i: int, n: int = 20, sat: str = "COMS-1") -> WindowRecord:
    return WindowRecord.from_times(sat, [T0 + (i + j) * STEP for j in range(n)])


def scalar_similarity(query: float, many: Sequence[float]) -> np.ndarray:
    """Stand-in metric: signatures are numbers, similarity falls with their difference."""
    return 1.0 - np.abs(np.asarray(many, dtype=np.float64) - query)


def test_exclusion_rules() -> None:
    q = rec(100)
    assert exclusion_rules(None) == {}
    assert exclusion_rules(q) == {"exclude_overlap_with": (q.start, q.end)}
    rules = exclusion_rules(q, exclude_recent_hours=24)
    assert rules["exclude_after"] == q.end - timedelta(hours=24)
    now = T0 + timedelta(days=10)
    assert exclusion_rules(q, 1.5, now=now)["exclude_after"] == now - timedelta(hours=1.5)


def test_rerank_orders_by_exact_similarity_and_keeps_both_scores() -> None:
    neigh = [Neighbour(rec(i), distance=float(i)) for i in range(5)]
    sigs = {neigh[0].record.window_id: 0.1, neigh[1].record.window_id: 0.9, neigh[3].record.window_id: 0.5}
    out = rerank(1.0, neigh, lambda r: sigs.get(r.window_id), scalar_similarity)
    assert [n.record for n in out] == [neigh[i].record for i in (1, 3, 0, 2, 4)]
    assert [n.distance for n in out] == [1.0, 3.0, 0.0, 2.0, 4.0]
    assert out[0].similarity == pytest.approx(0.9) and out[1].similarity == pytest.approx(0.5)
    assert out[3].similarity is None and out[4].similarity is None  # no signature: last, by distance


def test_rerank_breaks_ties_by_distance() -> None:
    neigh = [Neighbour(rec(i), distance=float(10 - i)) for i in range(3)]
    out = rerank(0.0, neigh, lambda r: 0.2, scalar_similarity)
    assert [n.distance for n in out] == [8.0, 9.0, 10.0]


def _index_along_line(n: int, sat: str = "COMS-1") -> tuple[SimilarityIndex, np.ndarray, list[WindowRecord]]:
    recs = [rec(i, sat=sat) for i in range(n)]
    vecs = np.zeros((n, 4), np.float32)
    vecs[:, 0] = np.arange(n)  # embedding distance grows with time difference
    index = SimilarityIndex(dim=4, max_elements=n)
    index.add_many(recs, vecs)
    return index, vecs, recs


def test_search_excludes_overlap_and_reranks_wider_candidates() -> None:
    index, vecs, recs = _index_along_line(200)
    q = recs[100]
    plain = search(index, vecs[100], query=q, k=3, before_query=False, fold=False)
    # Windows sharing a frame with the query (starting within 19 steps either side) never come back.
    assert {h.record for h in plain[:2]} == {recs[80], recs[120]} and plain[2].record in (recs[79], recs[121])
    assert [h.distance for h in plain] == pytest.approx([20.0, 20.0, 21.0])
    # An exact metric preferring the window at index 50 pulls it up from the 90 candidates.
    label = {r.window_id: i for i, r in enumerate(recs)}
    hits = search(
        index,
        vecs[100],
        query=q,
        k=3,
        candidates=90,
        query_signature=0.0,
        signature_lookup=lambda r: abs(label[r.window_id] - 50) / 100.0,
        similarity_fn=scalar_similarity,
        fold=False,
    )
    # 50 is exact; 49 and 51 tie on similarity and 51 wins on embedding distance.
    assert [label[h.record.window_id] for h in hits] == [50, 51, 49]
    assert hits[0].similarity == pytest.approx(1.0) and hits[0].distance == pytest.approx(50.0)


def test_search_recent_hours_and_filters() -> None:
    index, vecs, recs = _index_along_line(300)
    q = recs[299]
    hits = search(index, vecs[299], query=q, k=5, exclude_recent_hours=48, fold=False)
    cut = q.end - timedelta(hours=48)
    assert len(hits) == 5 and all(h.record.end <= cut for h in hits)
    hits = search(index, vecs[299], k=5, time_range=(recs[0].start, recs[40].end), fold=False)
    assert {h.record for h in hits} == set(recs[36:41])
    assert search(index, vecs[299], k=5, satellite="GK-2A") == []
    assert search(index, vecs[299], k=5, months={7}) == []


def test_search_answers_with_past_events_only_by_default() -> None:
    index, vecs, recs = _index_along_line(200)
    q = recs[100]
    # The nearest windows by embedding are the query's neighbours on both sides: by default only those that
    # ended before the query's first frame count, and overlapping ones are one event.
    hits = search(index, vecs[100], query=q, k=3)
    assert [h.record for h in hits] == [recs[80], recs[60], recs[40]]
    assert all(h.record.end < q.start for h in hits)
    # Turned off one at a time: later windows come back (never the query's own frames), or every window.
    later = search(index, vecs[100], query=q, k=3, before_query=False)
    assert {h.record for h in later[:2]} == {recs[80], recs[120]}
    unfolded = search(index, vecs[100], query=q, k=3, fold=False)
    assert [h.record for h in unfolded] == [recs[80], recs[79], recs[78]]


def test_folding_fetches_enough_candidates_for_k_events() -> None:
    # 20 events ten days apart, each 60 windows a minute apart (all overlapping: one event): the nearest
    # 40 * k windows hold fewer than k events, so the search has to widen its candidate list.
    n = 1200
    recs = [
        WindowRecord.from_times(
            "COMS-1",
            [T0 + (i // 60) * timedelta(days=10) + (i % 60) * timedelta(minutes=1) + j * STEP for j in range(20)],
        )
        for i in range(n)
    ]
    vecs = np.zeros((n, 4), np.float32)
    vecs[:, 0] = np.arange(n) // 60 * 10.0 + np.arange(n) % 60 * 0.001
    index = SimilarityIndex(dim=4, max_elements=n)
    index.add_many(recs, vecs)
    hits = search(index, np.zeros(4, np.float32), k=12)
    assert [h.record for h in hits] == [recs[60 * e] for e in range(12)]  # each event at its nearest window
    assert len(search(index, np.zeros(4, np.float32), k=12, fold=False)) == 12


def test_season_filter_keeps_the_time_of_year_in_any_year() -> None:
    day = timedelta(days=1)
    ends = [datetime(2011, 7, 1, tzinfo=UTC) + k * day for k in range(0, 365, 5)]
    ends += [datetime(2015, 1, 1, tzinfo=UTC) + k * day for k in range(0, 365, 5)]
    recs = [WindowRecord.from_times("COMS-1", [e - 19 * STEP + j * STEP for j in range(20)]) for e in ends]
    vecs = np.random.default_rng(1).normal(size=(len(recs), 4)).astype(np.float32)
    index = SimilarityIndex(dim=4, max_elements=len(recs))
    index.add_many(recs, vecs)
    q = WindowRecord.from_times("COMS-1", [datetime(2020, 1, 10, tzinfo=UTC) + j * STEP for j in range(20)])
    hits = search(index, vecs[0], query=q, k=500, season_days=30, before_query=False, fold=False)

    def days_apart(a: datetime, b: datetime) -> float:
        d = abs((a.replace(year=2001) - b.replace(year=2001)).total_seconds()) / 86400
        return min(d, 365 - d)

    expected = {r.window_id for r in recs if days_apart(r.end, q.end) <= 30}
    # Within a day of the calendar distance (the filter uses the mean year): 1 December to 9 February.
    assert {h.record.window_id for h in hits} >= {r.window_id for r in recs if days_apart(r.end, q.end) <= 29}
    assert {h.record.window_id for h in hits} <= {r.window_id for r in recs if days_apart(r.end, q.end) <= 31}
    assert any(h.record.end.year == 2011 for h in hits) and any(h.record.end.month == 12 for h in hits)
    assert len(expected) > 10
    with pytest.raises(ValueError, match="time-of-year"):
        search(index, vecs[0], k=3, season_days=30)


def test_each_event_carries_what_followed_it() -> None:
    index, vecs, recs = _index_along_line(200)
    q = recs[150]
    hits = search(
        index, vecs[150], query=q, k=2, following=lambda r: index.frames_after(r.satellite, r.end, timedelta(hours=2))
    )
    assert [h.record for h in hits] == [recs[130], recs[110]]
    for h in hits:
        assert h.following == tuple(h.record.end + j * STEP for j in range(1, 9))  # 8 frames at 15 min
    assert search(index, vecs[150], query=q, k=1)[0].following == ()


def test_search_with_real_ground_truth_metric() -> None:
    gt = pytest.importorskip("satwatch.services.metric.groundtruth")
    spec = gt.GridSpec(n=4, bins=20, mode="general")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(8, 2, 40, 36), dtype=np.uint8)
    frames[4:] //= 4  # darker frames: a different distribution
    sigs = [gt.frame_signature(f, spec) for f in frames]
    windows = [gt.window_signature(sigs[i : i + 2]) for i in range(0, 8, 2)]
    neigh = [Neighbour(rec(i * 100), float(i)) for i in range(3)]
    lookup = {n.record.window_id: windows[i + 1] for i, n in enumerate(neigh)}
    out = rerank(windows[0], neigh, lambda r: lookup[r.window_id])
    expected = [gt.window_similarity(windows[0], windows[i + 1]) for i in range(3)]
    assert [n.similarity for n in out] == pytest.approx(sorted(expected, reverse=True), abs=1e-12)
    assert out[0].record == neigh[0].record  # the bright window is the most similar


def write_tiny_archive(root: Path, n: int, h: int = 24, w: int = 20, seed: int = 0) -> list[datetime]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    times = [T0 + i * STEP for i in range(n)]
    for t in times:
        for c in CHANNELS:
            write_rgb_png(root / kma_filename(c, "ea040ps", t), rng.integers(0, 256, (h, w), dtype=np.uint8))
    return times


class CountingEncoder:
    """Stand-in encoder: per-channel means, counting frames it was asked to encode."""

    dim = 4

    def __init__(self) -> None:
        self.frames = 0

    def encode(self, frames: np.ndarray) -> np.ndarray:
        self.frames += len(frames)
        return frames.reshape(len(frames), 4, -1).mean(axis=2).astype(np.float32)


def test_ensure_frame_vectors_encodes_each_frame_once(tmp_path: Path) -> None:
    times = write_tiny_archive(tmp_path / "arc", 7)
    archive = Archive(tmp_path / "arc")
    store = FrameVectorStore(tmp_path / "fv", dim=4)
    enc = CountingEncoder()
    assert ensure_frame_vectors(archive, times[:5], enc, store, batch=2, workers=2, progress=False) == 5
    assert ensure_frame_vectors(archive, times, enc, store, batch=2, progress=False) == 2
    assert enc.frames == 7
    frame = archive.load(times[3])
    assert np.allclose(store.get_many("COMS-1", [times[3]])[0], frame.data.reshape(4, -1).mean(axis=1))
    # A reopened store (a restarted build) needs nothing new.
    assert ensure_frame_vectors(archive, times, enc, FrameVectorStore(tmp_path / "fv", 4), progress=False) == 0


def test_archive_signatures_cache_on_disk(tmp_path: Path) -> None:
    gt = pytest.importorskip("satwatch.services.metric.groundtruth")
    from satwatch.services.retrieval.search import ArchiveSignatures

    times = write_tiny_archive(tmp_path / "arc", 4, h=48, w=40)
    archive = Archive(tmp_path / "arc")
    sigs = ArchiveSignatures(archive, cache_dir=tmp_path / "sig", grid=4)
    record = WindowRecord.from_times("COMS-1", times[:3])
    a = sigs(record)
    assert a is not None and sigs.cache is not None and sigs.cache.misses == 3
    again = ArchiveSignatures(archive, cache_dir=tmp_path / "sig", grid=4)
    b = again(record)
    assert b is not None and again.cache is not None and again.cache.hits == 3
    assert gt.window_similarity(a, b) == pytest.approx(1.0)
    direct = gt.window_signature([gt.frame_signature(archive.load(t).data, sigs.spec) for t in times[:3]])
    other = sigs(WindowRecord.from_times("COMS-1", times[1:]))
    assert gt.window_similarity(a, other) == pytest.approx(gt.window_similarity(direct, other), abs=1e-12)
    assert gt.window_similarity(a, other) < 1.0
    assert sigs(WindowRecord.from_times("COMS-1", [T0 - STEP])) is None  # frame not in the archive


def test_rerank_of_part_filled_windows_says_how_many_frames_were_compared() -> None:
    from satwatch.services.metric.groundtruth import GridSpec, frame_signature, window_signature, window_similarity
    from satwatch.services.retrieval.search import frames_compared

    spec = GridSpec(n=4, bins=20, mode="general")
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, size=(9, 2, 40, 36), dtype=np.uint8)
    frames[5:] //= 3
    sigs = [frame_signature(f, spec) for f in frames]
    full = [window_signature(sigs[i : i + 4]) for i in range(0, 6)]  # 4-frame candidates
    query = window_signature(sigs[7:9])  # a part-filled query: 2 frames after a gap
    neigh = [Neighbour(rec(i * 100), float(i)) for i in range(len(full))]
    lookup = {n.record.window_id: full[i] for i, n in enumerate(neigh)}
    out = rerank(query, neigh, lambda r: lookup[r.window_id])
    assert [n.frames_compared for n in out] == [2] * len(full)
    for n in out:
        cand = lookup[n.record.window_id]
        assert n.similarity == pytest.approx(window_similarity(query, window_signature(cand.frames[-2:])), abs=1e-12)
    assert out[0].record == neigh[5].record  # the candidate whose last two frames are the dark ones
    assert frames_compared(full[0], query) == 2 and frames_compared(1.0, query) is None
    # Full windows: every frame compared; stand-in signatures without frames leave it unknown.
    assert {n.frames_compared for n in rerank(full[0], neigh, lambda r: lookup[r.window_id])} == {4}
    assert rerank(1.0, neigh[:1], lambda r: 0.5, scalar_similarity)[0].frames_compared is None
