"""Tests of the HNSW similarity index: adds, filters, persistence, concurrency and recall."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.retrieval.index import (
    Neighbour,
    SimilarityIndex,
    WindowRecord,
    bytes_per_vector,
    window_id,
)

T0 = datetime(2012, 10, 27, tzinfo=UTC)
STEP = timedelta(minutes=15)


def make_windows(n: int, dim: int = 16, seed: int = 0, sat: str = "COMS-1", t0: datetime = T0):
    """Windows along a slow random walk, each the mean of 20 consecutive frame vectors (like embeddings)."""
    rng = np.random.default_rng(seed)
    frames = np.cumsum(rng.normal(size=(n + 19, dim)), axis=0).astype(np.float32)
    vecs = np.stack([frames[i : i + 20].mean(axis=0) for i in range(n)])
    recs = [WindowRecord.from_times(sat, [t0 + (i + j) * STEP for j in range(20)]) for i in range(n)]
    return recs, vecs


def brute(vecs: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(((vecs - q) ** 2).sum(axis=1), kind="stable")[:k]


def test_record_ids_are_deterministic() -> None:
    rec = WindowRecord.from_times("COMS-1", [T0, T0 + STEP])
    assert rec.window_id == window_id("COMS-1", T0 + STEP) == "COMS-1:20121027T0015Z"
    assert rec.start == T0 and rec.end == T0 + STEP and len(rec.frame_times) == 2


def test_add_query_returns_sorted_euclidean_distances() -> None:
    recs, vecs = make_windows(200)
    index = SimilarityIndex(dim=16, max_elements=500)
    assert index.add_many(recs, vecs) == 200
    assert len(index) == 200
    hits = index.query(vecs[50], k=5)
    assert hits[0].record == recs[50] and hits[0].distance == pytest.approx(0.0, abs=1e-4)
    d = [h.distance for h in hits]
    assert d == sorted(d)
    expected = float(np.linalg.norm(vecs[recs.index(hits[1].record)] - vecs[50]))
    assert hits[1].distance == pytest.approx(expected, rel=1e-4)
    assert all(isinstance(h, Neighbour) and h.similarity is None for h in hits)


def test_empty_index_and_k_larger_than_size() -> None:
    index = SimilarityIndex(dim=16, max_elements=10)
    assert index.query(np.zeros(16, np.float32), k=3) == []
    recs, vecs = make_windows(3)
    index.add_many(recs, vecs)
    assert len(index.query(vecs[0], k=10)) == 3


def test_add_is_idempotent() -> None:
    recs, vecs = make_windows(10)
    index = SimilarityIndex(dim=16, max_elements=20)
    assert index.add(recs[0], vecs[0]) is True
    assert index.add(recs[0], vecs[5]) is False
    assert len(index) == 1
    assert np.allclose(index.vector(recs[0].window_id), vecs[0])
    # Duplicates inside one batch and against the index are both skipped.
    assert index.add_many([recs[1], recs[1], recs[0], recs[2]], vecs[[1, 1, 0, 2]]) == 2
    assert len(index) == 3 and index.contains(recs[2].window_id) and not index.contains(recs[3].window_id)


def test_add_rejects_bad_vectors() -> None:
    recs, vecs = make_windows(2)
    index = SimilarityIndex(dim=16, max_elements=4)
    with pytest.raises(ValueError):
        index.add(recs[0], np.zeros(8, np.float32))
    with pytest.raises(ValueError):
        index.add(recs[0], np.full(16, np.nan, np.float32))
    with pytest.raises(ValueError):
        index.add(WindowRecord.from_times("COMS-1", [datetime(2012, 1, 1)]), vecs[0])  # naive time
    assert len(index) == 0


def test_resizes_when_full() -> None:
    recs, vecs = make_windows(50)
    index = SimilarityIndex(dim=16, max_elements=4)
    for r, v in zip(recs, vecs, strict=True):
        assert index.add(r, v)
    assert len(index) == 50 and index.max_elements >= 50
    assert index.query(vecs[49], k=1)[0].record == recs[49]


def test_exclusions_and_filters() -> None:
    recs, vecs = make_windows(400)
    index = SimilarityIndex(dim=16, max_elements=400)
    index.add_many(recs, vecs)
    q = recs[200]
    hits = index.query(vecs[200], k=10, exclude_overlap_with=(q.start, q.end))
    assert len(hits) == 10
    assert all(h.record.end < q.start or h.record.start > q.end for h in hits)

    cut = recs[100].end
    hits = index.query(vecs[200], k=10, exclude_after=cut)
    assert len(hits) == 10 and all(h.record.end <= cut for h in hits)
    allowed = [i for i, r in enumerate(recs) if r.end <= cut]
    assert [h.record for h in hits] == [recs[allowed[i]] for i in brute(vecs[allowed], vecs[200], 10)]

    lo, hi = recs[10].start, recs[60].end
    hits = index.query(vecs[200], k=5, time_range=(lo, hi))
    assert len(hits) == 5 and all(lo <= h.record.start and h.record.end <= hi for h in hits)

    assert index.query(vecs[0], k=5, satellite="GK-2A") == []
    assert len(index.query(vecs[0], k=5, satellite="COMS-1")) == 5
    assert index.query(vecs[0], k=5, months={1}) == []  # all windows lie in October/November
    assert all(h.record.end.month == 10 for h in index.query(vecs[0], k=5, months={10}))


@pytest.mark.parametrize(
    ("n", "cut_at"),
    [
        (50, None),  # k plus the margin covers the index: answered exactly
        (400, None),  # unfiltered search, excluded windows dropped afterwards
        (400, 40),  # most windows excluded: the margin runs out and the filter goes inside the search
    ],
)
def test_exclusions_match_brute_force_on_every_path(n: int, cut_at: int | None) -> None:
    recs, vecs = make_windows(n)
    index = SimilarityIndex(dim=16, max_elements=n, ef=400)
    index.add_many(recs, vecs)
    q = recs[-1]
    cut = recs[cut_at].end if cut_at is not None else None
    hits = index.query(vecs[-1], k=10, exclude_overlap_with=(q.start, q.end), exclude_after=cut)
    allowed = [i for i, r in enumerate(recs) if (r.end < q.start or r.start > q.end) and (cut is None or r.end <= cut)]
    assert [h.record for h in hits] == [recs[allowed[i]] for i in brute(vecs[allowed], vecs[-1], 10)]


def test_satellite_filter_with_two_satellites_matches_brute_force() -> None:
    recs_a, vecs_a = make_windows(300, seed=1, sat="COMS-1")
    recs_b, vecs_b = make_windows(300, seed=2, sat="GK-2A")
    index = SimilarityIndex(dim=16, max_elements=600)
    index.add_many(recs_a + recs_b, np.vstack([vecs_a, vecs_b]))
    hits = index.query(vecs_a[10], k=8, satellite="GK-2A")
    assert [h.record for h in hits] == [recs_b[i] for i in brute(vecs_b, vecs_a[10], 8)]
    assert index.info()["satellites"] == {"COMS-1": 300, "GK-2A": 300}


def test_selective_filter_over_graph_uses_hnsw_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    import satwatch.services.retrieval.index as mod

    monkeypatch.setattr(mod, "BRUTE_FORCE_MAX", 10)  # force the in-graph filtered path
    recs, vecs = make_windows(500)
    index = SimilarityIndex(dim=16, max_elements=500, ef=100)
    index.add_many(recs, vecs)
    lo, hi = recs[0].start, recs[300].end
    hits = index.query(vecs[450], k=5, time_range=(lo, hi))
    assert all(h.record.end <= hi for h in hits)
    assert [h.record for h in hits] == [recs[i] for i in brute(vecs[:301], vecs[450], 5)]


def test_save_load_roundtrip_restores_ef_and_ids(tmp_path: Path) -> None:
    recs, vecs = make_windows(300)
    index = SimilarityIndex(dim=16, max_elements=1000, m=8, ef_construction=100, ef=37)
    index.add_many(recs, vecs)
    index.save(tmp_path / "ix")
    loaded = SimilarityIndex.load(tmp_path / "ix")
    assert loaded.ef == 37 and loaded.m == 8 and loaded.ef_construction == 100 and len(loaded) == 300
    assert loaded._graph.ef == 37  # hnswlib itself searches with the restored ef
    assert list(loaded.records()) == recs
    assert loaded.query(vecs[5], k=5) == index.query(vecs[5], k=5)
    assert SimilarityIndex.load(tmp_path / "ix", ef=90).ef == 90
    # Replaying windows after a restart neither duplicates nor loses them.
    assert loaded.add_many(recs, vecs) == 0
    more, more_vecs = make_windows(5, seed=3, t0=T0 + timedelta(days=30))
    assert loaded.add_many(more, more_vecs) == 5 and len(loaded) == 305
    loaded.save(tmp_path / "ix")
    again = SimilarityIndex.load(tmp_path / "ix")
    assert len(again) == 305 and again.contains(more[4].window_id)
    assert len(list((tmp_path / "ix").glob("snap-*"))) == 2  # older snapshots are cleaned up; the previous one stays


def test_open_or_create(tmp_path: Path) -> None:
    fresh = SimilarityIndex.open_or_create(tmp_path / "ix", dim=16, m=12, ef=20)
    assert len(fresh) == 0 and fresh.m == 12
    recs, vecs = make_windows(5)
    fresh.add_many(recs, vecs)
    fresh.save(tmp_path / "ix")
    reopened = SimilarityIndex.open_or_create(tmp_path / "ix", dim=16, m=99, ef=50)
    assert len(reopened) == 5 and reopened.m == 12 and reopened.ef == 50
    with pytest.raises(ValueError):
        SimilarityIndex.open_or_create(tmp_path / "ix", dim=32)
    with pytest.raises(FileNotFoundError):
        SimilarityIndex.load(tmp_path / "nothing")


def test_failed_save_keeps_previous_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs, vecs = make_windows(20)
    index = SimilarityIndex(dim=16, max_elements=20)
    index.add_many(recs[:10], vecs[:10])
    index.save(tmp_path / "ix")
    index.add_many(recs[10:], vecs[10:])

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        index.save(tmp_path / "ix")
    monkeypatch.undo()
    assert len(SimilarityIndex.load(tmp_path / "ix")) == 10
    assert not list((tmp_path / "ix").glob(".*.tmp"))


def test_concurrent_add_and_query() -> None:
    recs, vecs = make_windows(3000)
    index = SimilarityIndex(dim=16, max_elements=64)  # small on purpose: resizes happen mid-query
    index.add_many(recs[:100], vecs[:100])
    errors: list[BaseException] = []
    stop = threading.Event()
    queried = [0]

    def writer() -> None:
        try:
            for i in range(100, 3000, 25):
                index.add_many(recs[i : i + 25], vecs[i : i + 25])
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set() or queried[0] < 50:
                i = int(rng.integers(0, 100))
                hits = index.query(vecs[i], k=5, exclude_after=recs[2999].end)
                assert hits and hits[0].record.window_id in {r.window_id for r in recs}
                assert [h.distance for h in hits] == sorted(h.distance for h in hits)
                queried[0] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(index) == 3000 and queried[0] >= 50
    assert index.query(vecs[2999], k=1)[0].record == recs[2999]


def test_recall_against_brute_force() -> None:
    recs, vecs = make_windows(2000, dim=32, seed=5)
    rng = np.random.default_rng(9)
    index = SimilarityIndex(dim=32, max_elements=2000, ef=64)
    index.add_many(recs, vecs)
    queries = vecs[rng.choice(2000, 100, replace=False)] + rng.normal(scale=0.5, size=(100, 32)).astype(np.float32)
    pos = {r.window_id: i for i, r in enumerate(recs)}
    hit = 0
    for q in queries:
        got = {pos[h.record.window_id] for h in index.query(q, k=10)}
        hit += len(got & set(brute(vecs, q, 10).tolist()))
    assert hit / (10 * len(queries)) >= 0.95


def test_info_and_memory_estimate() -> None:
    recs, vecs = make_windows(50)
    index = SimilarityIndex(dim=16, max_elements=100, m=16)
    index.add_many(recs, vecs)
    info = index.info()
    assert info["size"] == 50 and info["m"] == 16 and info["ef"] == 64
    assert info["first_start"] == recs[0].start.isoformat() and info["last_end"] == recs[-1].end.isoformat()
    assert info["memory_bytes_estimate"] > 100 * 16 * 4
    assert bytes_per_vector(128, 16) > 128 * 4 + 2 * 16 * 4


def test_frame_vector_store_persists_and_skips_known_frames(tmp_path: Path) -> None:
    from satwatch.services.retrieval.index import FrameVectorStore

    times = [T0 + i * STEP for i in range(6)]
    vecs = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    store = FrameVectorStore(tmp_path / "fv", dim=4)
    assert store.missing("COMS-1", times + times[:1]) == times
    assert store.put_many("COMS-1", times[:4], vecs[:4]) == 4
    # Known frames and repeats inside one batch are skipped; the first copy wins.
    assert store.put_many("COMS-1", times[2:] + times[5:], np.vstack([vecs[2:] + 100, vecs[5:] + 200])) == 2
    assert store.missing("COMS-1", times) == [] and store.missing("GK-2A", times[:1]) == times[:1]
    assert np.array_equal(store.get_many("COMS-1", [times[5], times[0]]), vecs[[5, 0]] + [[100], [0]])
    reopened = FrameVectorStore(tmp_path / "fv", dim=4)
    assert len(reopened) == 6
    assert np.array_equal(reopened.get_many("COMS-1", times), store.get_many("COMS-1", times))
    with pytest.raises(KeyError):
        reopened.get_many("GK-2A", times[:1])
    with pytest.raises(ValueError):
        FrameVectorStore(tmp_path / "fv", dim=8)


def test_rwlock_readers_share_writers_exclude() -> None:
    from satwatch.services.retrieval.index import RWLock

    lock = RWLock()
    inside = threading.Event()
    release = threading.Event()
    events: list[str] = []

    def reader() -> None:
        with lock.read():
            inside.set()
            release.wait(10)
            events.append("reader out")

    def writer() -> None:
        with lock.write():
            events.append("writer in")

    r = threading.Thread(target=reader)
    r.start()
    assert inside.wait(10)
    with lock.read():  # a second reader enters while the first holds the lock
        events.append("second reader")
    w = threading.Thread(target=writer)
    w.start()
    w.join(0.2)
    assert w.is_alive() and "writer in" not in events  # the writer waits for the reader
    release.set()
    r.join(10)
    w.join(10)
    assert events == ["second reader", "reader out", "writer in"]


def test_frames_after_follows_the_window_rule_per_satellite(tmp_path: Path) -> None:
    from satwatch.services.frames.windows import frames_after

    recs, vecs = make_windows(300)
    gk, gvecs = make_windows(100, sat="GK-2A", seed=1)
    index = SimilarityIndex(dim=16, max_elements=10)
    # Out of time order on purpose (an archive build after a live run): the sorted view is rebuilt.
    index.add_many(recs[150:], vecs[150:])
    index.add_many(gk, gvecs)
    index.add_many(recs[:150], vecs[:150])
    frames = sorted({t for r in recs for t in r.frame_times})
    end = recs[100].end
    got = index.frames_after("COMS-1", end, timedelta(hours=6))
    assert got == frames_after(frames, end, timedelta(hours=6)) and len(got) == 24
    # The last frames are known only as the inner frames of the last windows; nothing after the last one.
    assert index.frames_after("COMS-1", frames[-3], timedelta(hours=6)) == frames[-2:]
    assert index.frames_after("COMS-1", frames[-1], timedelta(hours=6)) == []
    assert index.frames_after("GK-2A", end, timedelta(hours=1)) == []  # GK-2A's frames end earlier
    assert index.frames_after("Himawari-8", end, timedelta(hours=1)) == []
    # In time order, windows appended later extend the sorted view; a reloaded index answers the same.
    index.add_many(*make_windows(1, t0=frames[-1] + STEP))
    assert index.frames_after("COMS-1", frames[-1], timedelta(hours=6))[0] == frames[-1] + STEP
    index.save(tmp_path / "ix")
    again = SimilarityIndex.load(tmp_path / "ix")
    assert again.frames_after("COMS-1", end, timedelta(hours=6)) == got


def test_frame_vector_store_reads_vectors_only_when_asked_and_skips_an_unreadable_chunk(tmp_path: Path) -> None:
    import zipfile

    from satwatch.services.retrieval.index import FrameVectorStore

    times = [T0 + i * STEP for i in range(6)]
    vecs = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    store = FrameVectorStore(tmp_path / "fv", dim=4)
    for lo in range(0, 6, 2):  # three chunks of two frames
        store.put_many("COMS-1", times[lo : lo + 2], vecs[lo : lo + 2])
    first, second, third = sorted((tmp_path / "fv").glob("chunk-*.npz"))
    # The middle chunk's vector data is cut short behind an intact header and intact keys: opening the store
    # reads keys and shapes only, so it opens, serves the other chunks, and fails only on the damaged frames.
    with zipfile.ZipFile(second) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["vectors.npy"] = members["vectors.npy"][:-24]  # its header and 2 of its 8 floats
    with zipfile.ZipFile(second, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    reopened = FrameVectorStore(tmp_path / "fv", dim=4)
    assert len(reopened) == 6
    assert np.array_equal(reopened.get_many("COMS-1", [times[5], times[0]]), vecs[[5, 0]])
    with pytest.raises(ValueError):
        reopened.get_many("COMS-1", times[2:3])
    # A chunk cut short as a file (its zip directory lost) is left out with a warning, not fatal: its frames
    # count as missing, are encoded again into a new chunk and read back like the others.
    second.write_bytes(second.read_bytes()[:100])
    reopened = FrameVectorStore(tmp_path / "fv", dim=4)
    assert len(reopened) == 4 and reopened.missing("COMS-1", times) == times[2:4]
    assert reopened.put_many("COMS-1", times[2:4], vecs[2:4] + 1) == 2
    again = FrameVectorStore(tmp_path / "fv", dim=4)
    assert np.array_equal(again.get_many("COMS-1", times), np.vstack([vecs[:2], vecs[2:4] + 1, vecs[4:]]))
    assert first.exists() and third.exists()
