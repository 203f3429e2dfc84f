"""Approximate nearest-neighbour index of window embeddings (HNSW) with its window metadata.

One :class:`SimilarityIndex` holds an hnswlib graph plus, per window, its id, satellite, start, end and
frame times. Labels inside hnswlib are dense integers 0..n-1 assigned in insertion order, so metadata lives
in flat numpy arrays indexed by label (compact at millions of windows; records are built on demand).

Concurrency: a readers-writer lock lets any number of queries run together while an add, a resize or a
save holds the index alone (hnswlib's ``add_items`` must not overlap ``knn_query``).

Persistence: :meth:`SimilarityIndex.save` writes a new snapshot folder and then atomically swaps a
``CURRENT`` pointer file, so a crash mid-save leaves the previous snapshot readable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

#: Bumped when the on-disk layout changes.
FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_GRAPH = "hnsw.bin"
_META = "meta.npz"
_IDS = "ids.txt"
_PARAMS = "params.json"
_DATA_FILES = (_GRAPH, _META, _IDS)

log = logging.getLogger(__name__)
#: Filters that leave at most this many windows are answered exactly by brute force: HNSW degrades
#: (and hnswlib raises) when the allowed set is a tiny fraction of the graph.
BRUTE_FORCE_MAX = 20_000
#: Window records kept built for answering queries (about 2 KB each).
RECORD_CACHE = 16_384
#: Extra neighbours fetched (at least) so that excluded windows can be dropped after an unfiltered search.
EXCLUSION_MARGIN = 64


def window_id(satellite: str, end: datetime) -> str:
    """The deterministic id of the window of ``satellite`` ending at ``end``."""
    return f"{satellite}:{end.astimezone(UTC):%Y%m%dT%H%MZ}"


@dataclass(frozen=True)
class WindowRecord:
    """One indexed window: its id, satellite, first and last frame time and all frame times."""

    window_id: str
    satellite: str
    start: datetime
    end: datetime
    frame_times: tuple[datetime, ...]

    @classmethod
    def from_times(cls, satellite: str, times: Sequence[datetime]) -> WindowRecord:
        """The record of the window made of ``times`` (sorted, UTC-aware)."""
        if not times:
            raise ValueError("a window needs at least one frame time")
        ts = tuple(times)
        return cls(window_id(satellite, ts[-1]), satellite, ts[0], ts[-1], ts)


@dataclass(frozen=True)
class Neighbour:
    """A search hit: the window, its embedding distance and, after re-ranking, exact similarity computed on
    ``frames_compared`` frame pairs (fewer than the window's frames when one of the two windows is part-filled:
    the latest frames of each, aligned from the end); ``following``: the frame times that came after it, when
    the search was asked for them."""

    record: WindowRecord
    distance: float
    similarity: float | None = None
    frames_compared: int | None = None
    following: tuple[datetime, ...] = ()


def _epoch(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"time {t} must be timezone-aware (UTC)")
    return int(t.timestamp())


def _from_epoch(s: int) -> datetime:
    return datetime.fromtimestamp(int(s), tz=UTC)


class RWLock:
    """Readers-writer lock preferring writers, so a steady stream of queries cannot starve appends."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _Growable:
    """An int64 array with amortised appends."""

    def __init__(self, data: np.ndarray | None = None) -> None:
        data = np.zeros(0, np.int64) if data is None else np.asarray(data, np.int64)
        self._buf = np.empty(max(16, len(data)), np.int64)
        self._buf[: len(data)] = data
        self.n = len(data)

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self._buf):
            grown = np.empty(max(need, 2 * len(self._buf)), np.int64)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown
        self._buf[self.n : need] = values
        self.n = need

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self.n]


class SimilarityIndex:
    """HNSW index of window embeddings plus window metadata; thread-safe, persistent, idempotent adds."""

    #: True when the saved state was damaged and an older snapshot (or an empty index) stands in for it:
    #: windows added since must be rebuilt from the stream.
    recovered: bool = False

    def __init__(
        self,
        dim: int = 128,
        max_elements: int = 100_000,
        m: int = 16,
        ef_construction: int = 200,
        ef: int = 64,
        space: str = "l2",
    ) -> None:
        self._setup(dim, m, ef_construction, ef, space)
        self._graph.init_index(max_elements=max(1, int(max_elements)), ef_construction=self.ef_construction, M=self.m)
        self._graph.set_ef(self._ef)

    def _setup(self, dim: int, m: int, ef_construction: int, ef: int, space: str) -> None:
        if space not in ("l2", "ip", "cosine"):
            raise ValueError(f"space must be l2, ip or cosine, got {space!r}")
        self.dim = int(dim)
        self.space = space
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self._ef = int(ef)
        self._graph = hnswlib.Index(space=space, dim=self.dim)
        self._lock = RWLock()
        self._ids: list[str] = []
        self._label_of: dict[str, int] = {}
        self._satellites: list[str] = []
        self._sat_code_of: dict[str, int] = {}
        self._start = _Growable()
        self._end = _Growable()
        self._sat = _Growable()
        self._ft_flat = _Growable()
        self._ft_off = _Growable(np.zeros(1, np.int64))
        # Labels in order of window end, built lazily for frames_after; extended in place while windows come
        # in time order (as the detector and index build add them), re-sorted when one does not.
        self._sort_lock = threading.Lock()
        self._by_end = _Growable()
        self._by_end_ends = _Growable()
        self._span_max = 0  # the longest window's end - start, seconds
        # A label's record never changes once added, and building one converts 20 epochs to datetimes: the
        # same recent windows come back query after query, so keep the latest ones built.
        self._record: Callable[[int], WindowRecord] = lru_cache(maxsize=RECORD_CACHE)(self._build_record)

    # ----------------------------------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ef(self) -> int:
        """Search breadth (hnswlib's ef); larger is slower and more exact."""
        return self._ef

    @ef.setter
    def ef(self, value: int) -> None:
        with self._lock.write():
            self._ef = int(value)
            self._graph.set_ef(self._ef)

    @property
    def max_elements(self) -> int:
        return int(self._graph.get_max_elements())

    def contains(self, window_id: str) -> bool:
        return window_id in self._label_of

    def record(self, window_id: str) -> WindowRecord:
        """The stored record of ``window_id`` (KeyError when absent)."""
        return self._record(self._label_of[window_id])

    def vector(self, window_id: str) -> np.ndarray:
        """The stored embedding of ``window_id`` (normalised when the space is cosine)."""
        label = self._label_of[window_id]
        with self._lock.read():
            return np.asarray(self._graph.get_items([label], return_type="numpy"), np.float32)[0]

    def records(self) -> Iterator[WindowRecord]:
        """Every stored record in insertion order."""
        for label in range(len(self._ids)):
            yield self._build_record(label)  # not through the query cache: a full scan would flush it

    def _build_record(self, label: int) -> WindowRecord:
        lo, hi = self._ft_off.view[label], self._ft_off.view[label + 1]
        return WindowRecord(
            window_id=self._ids[label],
            satellite=self._satellites[int(self._sat.view[label])],
            start=_from_epoch(self._start.view[label]),
            end=_from_epoch(self._end.view[label]),
            frame_times=tuple(_from_epoch(s) for s in self._ft_flat.view[lo:hi]),
        )

    # ------------------------------------------------------------------------------------------- adds
    def add(self, record: WindowRecord, vector: np.ndarray) -> bool:
        """Add one window; False (and no change) when its id is already indexed."""
        return self.add_many([record], np.asarray(vector, np.float32).reshape(1, -1)) == 1

    def add_many(self, records: Sequence[WindowRecord], vectors: np.ndarray) -> int:
        """Add windows whose ids are new (duplicates, also within the batch, are skipped); returns how many."""
        vecs = np.asarray(vectors, np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim or len(vecs) != len(records):
            raise ValueError(f"expected {len(records)} vectors of dim {self.dim}, got shape {vecs.shape}")
        if not np.isfinite(vecs).all():
            raise ValueError("vectors must be finite")
        with self._lock.write():
            seen: set[str] = set()
            keep: list[int] = []
            for i, rec in enumerate(records):
                if "\n" in rec.window_id:
                    raise ValueError(f"window id {rec.window_id!r} must not contain a newline")
                if rec.window_id in self._label_of or rec.window_id in seen:
                    continue
                seen.add(rec.window_id)
                keep.append(i)
            if not keep:
                return 0
            kept = [records[i] for i in keep]
            # Convert (and so validate) every time before touching the graph, so a bad record changes nothing.
            starts = np.array([_epoch(r.start) for r in kept], np.int64)
            ends = np.array([_epoch(r.end) for r in kept], np.int64)
            flat = np.array([_epoch(t) for r in kept for t in r.frame_times], np.int64)
            lengths = np.array([len(r.frame_times) for r in kept], np.int64)
            n0 = len(self._ids)
            need = n0 + len(keep)
            if need > self._graph.get_max_elements():
                # Doubling keeps the number of (costly, full-copy) resizes logarithmic in the final size.
                self._graph.resize_index(max(need, 2 * self._graph.get_max_elements()))
            labels = np.arange(n0, need, dtype=np.int64)
            # Parallel insertion pays off only for large batches; a single add stays on this thread.
            threads = -1 if len(keep) >= 1000 else 1
            self._graph.add_items(vecs[keep], labels, num_threads=threads)
            for rec in kept:
                code = self._sat_code_of.get(rec.satellite)
                if code is None:
                    code = self._sat_code_of[rec.satellite] = len(self._satellites)
                    self._satellites.append(rec.satellite)
                self._label_of[rec.window_id] = len(self._ids)
                self._ids.append(rec.window_id)
            self._start.extend(starts)
            self._end.extend(ends)
            self._span_max = max(self._span_max, int((ends - starts).max()))
            self._sat.extend(np.array([self._sat_code_of[r.satellite] for r in kept], np.int64))
            self._ft_flat.extend(flat)
            self._ft_off.extend(self._ft_off.view[-1] + np.cumsum(lengths))
            return len(keep)

    # ------------------------------------------------------------------------------------------ query
    def query(
        self,
        vector: np.ndarray,
        k: int = 10,
        *,
        exclude_overlap_with: tuple[datetime, datetime] | None = None,
        exclude_after: datetime | None = None,
        satellite: str | None = None,
        time_range: tuple[datetime, datetime] | None = None,
        months: set[int] | None = None,
        season: tuple[datetime, float] | None = None,
    ) -> list[Neighbour]:
        """Up to ``k`` nearest windows, closest first, honouring every filter given.

        ``exclude_overlap_with=(a, b)`` drops windows sharing any instant with [a, b];
        ``exclude_after`` drops windows ending after that time; ``satellite`` keeps one satellite;
        ``time_range=(a, b)`` keeps windows lying wholly inside [a, b]; ``months`` keeps windows whose end
        falls in those calendar months (1-12, UTC); ``season=(t, days)`` keeps windows ending within ``days``
        of t's time of year, in any year (see :func:`season_distance_days`). Distances are Euclidean for
        the l2 space.
        """
        q = np.asarray(vector, np.float32).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise ValueError(f"query vector has dim {q.shape[1]}, index has {self.dim}")
        if k <= 0:
            return []
        with self._lock.read():
            n = len(self._ids)
            if n == 0:
                return []
            selective = satellite is not None or time_range is not None or months is not None or season is not None
            if not selective and exclude_overlap_with is None and exclude_after is None:
                return self._knn(q, min(k, n), None)
            if selective:
                # Vectorised mask over the metadata: its size tells whether HNSW or brute force fits.
                mask = self._mask(n, exclude_overlap_with, exclude_after, satellite, time_range, months, season)
                allowed = int(mask.sum())
                if allowed == 0:
                    return []
                if allowed <= max(BRUTE_FORCE_MAX, 4 * k) or allowed <= k:
                    return self._brute(q, np.flatnonzero(mask), k)
                allow = mask.tobytes()
                return self._knn_or_brute(q, k, lambda label: allow[label] == 1, mask)
            return self._knn_excluding(q, k, exclude_overlap_with, exclude_after)

    def _knn_excluding(
        self, q: np.ndarray, k: int, overlap: tuple[datetime, datetime] | None, after: datetime | None
    ) -> list[Neighbour]:
        """Nearest windows once a few (usually the query's own overlapping ones) are excluded.

        Asks HNSW for a margin more than ``k`` without a filter and drops the excluded ones vectorised: a
        Python filter called for every candidate HNSW visits cost milliseconds a query. Only when the
        margin runs out does the filter go inside the search; a small index is answered exactly.
        """
        n = len(self._ids)
        want = k + max(k, EXCLUSION_MARGIN)
        if want >= n:
            labels = np.arange(n)
            return self._brute(q, labels[self._exclusion_mask(labels, overlap, after)], k)
        found, dists = self._graph.knn_query(q, k=want, num_threads=1)
        keep = self._exclusion_mask(found[0].astype(np.int64), overlap, after)
        if int(keep.sum()) >= k:
            return [
                self._neighbour(int(lab), float(d))
                for lab, d in zip(found[0][keep][:k], dists[0][keep][:k], strict=True)
            ]
        return self._knn_or_brute(q, k, self._exclusion_filter(overlap, after), None)

    def _exclusion_mask(
        self, labels: np.ndarray | slice, overlap: tuple[datetime, datetime] | None, after: datetime | None
    ) -> np.ndarray:
        """Which of ``labels`` (an array, or a slice of all labels) survive the overlap and end-time exclusions."""
        starts, ends = self._start.view[labels], self._end.view[labels]
        keep = np.ones(len(ends), dtype=bool)
        if overlap is not None:
            keep &= ~((starts <= _epoch(overlap[1])) & (ends >= _epoch(overlap[0])))
        if after is not None:
            keep &= ends <= _epoch(after)
        return keep

    def _exclusion_filter(
        self, overlap: tuple[datetime, datetime] | None, after: datetime | None
    ) -> Callable[[int], bool]:
        starts, ends = self._start.view, self._end.view
        o_lo = _epoch(overlap[0]) if overlap else None
        o_hi = _epoch(overlap[1]) if overlap else None
        cut = _epoch(after) if after is not None else None

        def allowed(label: int) -> bool:
            end = int(ends[label])
            if cut is not None and end > cut:
                return False
            return not (o_lo is not None and o_hi is not None and int(starts[label]) <= o_hi and end >= o_lo)

        return allowed

    def _mask(
        self,
        n: int,
        overlap: tuple[datetime, datetime] | None,
        after: datetime | None,
        satellite: str | None,
        time_range: tuple[datetime, datetime] | None,
        months: set[int] | None,
        season: tuple[datetime, float] | None = None,
    ) -> np.ndarray:
        starts, ends = self._start.view[:n], self._end.view[:n]
        mask = self._exclusion_mask(slice(0, n), overlap, after)
        if satellite is not None:
            code = self._sat_code_of.get(satellite)
            if code is None:
                return np.zeros(n, dtype=bool)
            mask &= self._sat.view[:n] == code
        if time_range is not None:
            mask &= (starts >= _epoch(time_range[0])) & (ends <= _epoch(time_range[1]))
        if months is not None:
            end_months = ends.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12 + 1
            mask &= np.isin(end_months, np.fromiter(months, np.int64, len(months)))
        if season is not None:
            mask &= season_distance_days(ends, _epoch(season[0])) <= season[1]
        return mask

    def _knn(self, q: np.ndarray, k: int, filt: Callable[[int], bool] | None) -> list[Neighbour]:
        labels, dists = self._graph.knn_query(q, k=k, num_threads=1, filter=filt)
        return [self._neighbour(int(lab), float(d)) for lab, d in zip(labels[0], dists[0], strict=True)]

    def _knn_or_brute(
        self, q: np.ndarray, k: int, filt: Callable[[int], bool], mask: np.ndarray | None
    ) -> list[Neighbour]:
        try:
            return self._knn(q, min(k, len(self._ids)), filt)
        except RuntimeError:
            # hnswlib raises when it finds fewer than k allowed windows; answer exactly instead.
            if mask is None:
                m = np.fromiter((filt(i) for i in range(len(self._ids))), bool, len(self._ids))
            else:
                m = mask
            return self._brute(q, np.flatnonzero(m), k)

    def _brute(self, q: np.ndarray, labels: np.ndarray, k: int) -> list[Neighbour]:
        if len(labels) == 0:
            return []
        vecs = np.asarray(self._graph.get_items(labels, return_type="numpy"), np.float32)
        qq = q[0]
        if self.space == "l2":
            d = ((vecs - qq) ** 2).sum(axis=1)
        elif self.space == "ip":
            d = 1.0 - vecs @ qq
        else:  # cosine: stored vectors are normalised by hnswlib
            qn = qq / max(float(np.linalg.norm(qq)), 1e-30)
            d = 1.0 - vecs @ qn
        kk = min(k, len(labels))
        top = np.argpartition(d, kk - 1)[:kk] if kk < len(labels) else np.arange(len(labels))
        top = top[np.argsort(d[top], kind="stable")]
        return [self._neighbour(int(labels[i]), float(d[i])) for i in top]

    def _neighbour(self, label: int, raw: float) -> Neighbour:
        # hnswlib's l2 space reports squared distances; the study's d is the Euclidean one.
        dist = math.sqrt(max(raw, 0.0)) if self.space == "l2" else raw
        return Neighbour(self._record(label), dist)

    def frames_after(self, satellite: str, end: datetime, horizon: timedelta) -> list[datetime]:
        """The frame times of ``satellite``'s indexed windows in (end, end + horizon], in order: what followed
        the window ending at ``end``, as far as the index holds it (the detector indexes a window at every
        frame, so this is every frame it saw). The same rule as ``services.frames.windows.frames_after``."""
        code = self._sat_code_of.get(satellite)
        if code is None or horizon.total_seconds() <= 0:
            return []
        t = _epoch(end)
        until = t + int(horizon.total_seconds())
        with self._lock.read():
            n = len(self._ids)
            order, ends = self._labels_by_end(n)
            # Only windows ending within the horizon plus the longest window can hold a frame in it.
            lo = int(np.searchsorted(ends, t, side="right"))
            hi = int(np.searchsorted(ends, until + self._span_max, side="right"))
            labels = order[lo:hi]
            labels = labels[(self._sat.view[labels] == code) & (self._start.view[labels] <= until)]
            if not len(labels):
                return []
            offs = self._ft_off.view
            flat = np.concatenate([self._ft_flat.view[offs[lab] : offs[lab + 1]] for lab in labels.tolist()])
        times = np.unique(flat)
        return [_from_epoch(int(s)) for s in times[(times > t) & (times <= until)]]

    def _labels_by_end(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels 0..n-1 sorted by window end, and those ends (call under the read lock)."""
        with self._sort_lock:
            done = self._by_end.n
            if done < n:
                ends = self._end.view[:n]
                fresh = ends[done:n]
                in_order = bool(np.all(fresh[1:] >= fresh[:-1])) and (
                    done == 0 or fresh[0] >= self._by_end_ends.view[-1]
                )
                if in_order:
                    self._by_end.extend(np.arange(done, n, dtype=np.int64))
                    self._by_end_ends.extend(fresh)
                else:
                    order = np.argsort(ends, kind="stable")
                    self._by_end = _Growable(order)
                    self._by_end_ends = _Growable(ends[order])
            return self._by_end.view[:n], self._by_end_ends.view[:n]

    # ------------------------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write a complete snapshot, then atomically point ``CURRENT`` at it and drop older snapshots."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        snap = f"snap-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"  # names sort by time
        tmp = root / f".{snap}.tmp"
        tmp.mkdir()
        try:
            # A write lock: hnswlib's save must not overlap add_items, and the metadata must match the graph.
            with self._lock.write():
                n = len(self._ids)
                self._graph.save_index(str(tmp / _GRAPH))
                np.savez(
                    tmp / _META,
                    start=self._start.view[:n],
                    end=self._end.view[:n],
                    sat=self._sat.view[:n],
                    ft_flat=self._ft_flat.view,
                    ft_off=self._ft_off.view[: n + 1],
                )
                (tmp / _IDS).write_text("".join(i + "\n" for i in self._ids))
                params = {
                    "format_version": FORMAT_VERSION,
                    **self.params(),
                    "count": n,
                    "satellites": self._satellites,
                    "saved_at": datetime.now(UTC).isoformat(),
                    # Checked on load: a damaged snapshot is refused and an older intact one used instead.
                    "sha256": {name: _sha256(tmp / name) for name in _DATA_FILES},
                }
                (tmp / _PARAMS).write_text(json.dumps(params, indent=2) + "\n")
            for f in tmp.iterdir():
                _fsync_file(f)
            tmp.rename(root / snap)
            pointer = root / f".{_CURRENT}.{uuid.uuid4().hex[:8]}.tmp"
            pointer.write_text(snap + "\n")
            _fsync_file(pointer)
            os.replace(pointer, root / _CURRENT)
            _fsync_dir(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # Keep the snapshot before this one as well: should this one be damaged later, that one is intact.
        older = sorted((d for d in root.glob("snap-*") if d.is_dir() and d.name != snap), key=lambda d: d.name)
        for old in older[:-1]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def exists(directory: str | Path) -> bool:
        """Whether ``directory`` holds a saved index."""
        return (Path(directory) / _CURRENT).is_file()

    @classmethod
    def load(cls, directory: str | Path, ef: int | None = None) -> SimilarityIndex:
        """Read the current snapshot; ``ef`` overrides the saved search breadth."""
        root = Path(directory)
        if not cls.exists(root):
            raise FileNotFoundError(f"no saved index in {root} (missing {_CURRENT})")
        return cls._load_snapshot(root / (root / _CURRENT).read_text().strip(), ef)

    @classmethod
    def _load_snapshot(cls, snap: Path, ef: int | None = None) -> SimilarityIndex:
        """Read one snapshot folder, verifying its files' checksums when it records them."""
        root = snap.parent
        params = json.loads((snap / _PARAMS).read_text())
        for name, digest in dict(params.get("sha256", {})).items():
            if _sha256(snap / name) != digest:
                raise ValueError(f"index snapshot {snap}: {name} does not match its checksum (damaged)")
        if params.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"index in {root} has format {params.get('format_version')}, expected {FORMAT_VERSION}")
        count = int(params["count"])
        self = cls.__new__(cls)
        self._setup(
            params["dim"], params["m"], params["ef_construction"], params["ef"] if ef is None else ef, params["space"]
        )
        self._graph.load_index(str(snap / _GRAPH), max_elements=max(int(params["max_elements"]), count, 1))
        # hnswlib does not store ef in its file: restore ours.
        self._graph.set_ef(self._ef)
        with np.load(snap / _META) as meta:
            self._start = _Growable(meta["start"])
            self._end = _Growable(meta["end"])
            self._sat = _Growable(meta["sat"])
            self._ft_flat = _Growable(meta["ft_flat"])
            self._ft_off = _Growable(meta["ft_off"])
        if count:
            self._span_max = int((self._end.view - self._start.view).max())
        self._ids = (snap / _IDS).read_text().splitlines()
        if len(self._ids) != count or self._graph.get_current_count() != count:
            raise ValueError(f"index snapshot {snap} is inconsistent: {len(self._ids)} ids, {count} expected")
        self._label_of = {wid: i for i, wid in enumerate(self._ids)}
        self._satellites = list(params["satellites"])
        self._sat_code_of = {s: i for i, s in enumerate(self._satellites)}
        return self

    @classmethod
    def open_or_create(cls, directory: str | Path, dim: int, **params: Any) -> SimilarityIndex:
        """Load the index saved in ``directory`` or start an empty one with ``params``.

        An existing index keeps its own build parameters; only ``ef`` from ``params`` overrides it.
        """
        root = Path(directory)
        snapshots = sorted((d for d in root.glob("snap-*") if d.is_dir()), key=lambda d: d.name, reverse=True)
        if cls.exists(root):
            current = root / (root / _CURRENT).read_text().strip()
            snapshots = [current] + [d for d in snapshots if d != current]
        elif snapshots:
            log.warning("index %s: the %s pointer is missing; looking for an intact snapshot", root, _CURRENT)
        for i, snap in enumerate(snapshots):
            try:
                index = cls._load_snapshot(snap, ef=params.get("ef"))
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                log.warning("index %s: snapshot %s cannot be used: %s", root, snap.name, exc)
                continue
            if i > 0 or not cls.exists(root):
                index.recovered = True
                log.warning(
                    "index %s: using the older intact snapshot %s (%d windows); windows added after it are "
                    "added again from the journal and the re-read stream",
                    root,
                    snap.name,
                    len(index),
                )
            if index.dim != dim:
                raise ValueError(f"index in {directory} has dim {index.dim}, expected {dim}")
            return index
        fresh = cls(dim=dim, **params)
        if snapshots:
            log.error("index %s: no intact snapshot; starting an empty index (rebuild it from the stream)", root)
            fresh.recovered = True
        return fresh

    # ------------------------------------------------------------------------------------------- info
    def params(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "space": self.space,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef": self._ef,
            "max_elements": self.max_elements,
        }

    def memory_bytes(self) -> int:
        """Estimated resident size of graph plus metadata (allocation for max_elements included)."""
        return estimate_memory(self.max_elements, self.dim, self.m, n=len(self)) + self._meta_bytes()

    def _meta_bytes(self) -> int:
        arrays = (self._start, self._end, self._sat, self._ft_flat, self._ft_off)
        ids = sum(len(i) + 49 for i in self._ids)  # str object overhead + dict slot, roughly
        return int(sum(a.view.nbytes for a in arrays) + ids + 100 * len(self._ids))

    def info(self) -> dict[str, Any]:
        """Size, parameters, satellites, time coverage and memory estimate, as plain JSON-able values."""
        with self._lock.read():
            n = len(self._ids)
            out: dict[str, Any] = {"size": n, **self.params()}
            counts = np.bincount(self._sat.view[:n], minlength=len(self._satellites))
            out["satellites"] = {s: int(counts[i]) for i, s in enumerate(self._satellites)}
            if n:
                out["first_start"] = _from_epoch(int(self._start.view[:n].min())).isoformat()
                out["last_end"] = _from_epoch(int(self._end.view[:n].max())).isoformat()
            else:
                out["first_start"] = out["last_end"] = None
            out["memory_bytes_estimate"] = self.memory_bytes()
            out["bytes_per_vector"] = bytes_per_vector(self.dim, self.m)
            return out


#: Seconds in a mean (Julian) year: the time of year of an instant is its offset into this cycle.
_YEAR_S = 365.25 * 86400.0


def season_distance_days(ends: np.ndarray, ref: int) -> np.ndarray:
    """Days between the time of year of each epoch second in ``ends`` and that of ``ref``, in any year (0 to
    about 182.6): 1 January and 31 December are a day apart. Measured on the mean year, so the same calendar
    day of two years may differ by up to a day (leap years); a filter of +-30 days is +-30 days to within one.
    """
    d = np.abs(np.mod(np.asarray(ends, np.float64) - float(ref), _YEAR_S)) / 86400.0
    return np.minimum(d, _YEAR_S / 86400.0 - d)


def bytes_per_vector(dim: int, m: int) -> float:
    """hnswlib's memory per element: vector, level-0 links (2M), label, and the expected upper links."""
    level0 = dim * 4 + (2 * m) * 4 + 4 + 8
    # An element reaches level >= 1 with probability 1/M; each upper level costs M links + a count.
    upper = (m * 4 + 4) / (m - 1) + 8  # plus the per-element pointer to its upper-level block
    return level0 + upper


def estimate_memory(max_elements: int, dim: int, m: int, n: int | None = None) -> int:
    """Bytes hnswlib allocates for ``max_elements`` slots (level 0 is preallocated for every slot)."""
    level0 = dim * 4 + (2 * m) * 4 + 4 + 8
    used = max_elements if n is None else n
    upper = (m * 4 + 4) / max(m - 1, 1)
    # Per slot: level-0 block, upper-level pointer, a lock (std::mutex, 40 bytes) for insertion;
    # per stored element: expected upper-level links and an entry of the label -> slot hash map (~48 bytes).
    return int(max_elements * (level0 + 8 + 40) + used * (upper + 48))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass


class FrameVectorStore:
    """Per-frame embeddings on disk, keyed by (satellite, time), so windows never re-encode a frame.

    Each :meth:`put_many` appends one chunk file (written then renamed, so an interrupted build leaves only
    whole chunks). Opening the store reads only each chunk's keys and its vectors' shape; a chunk's vectors
    are read when a frame in it is asked for (a search needs its query's 20 frames, not a month of 48,384
    numbers a frame), and the last few chunks read stay in memory for a build's sequential reads. A chunk
    whose keys cannot be read is left out with a warning: its frames count as missing and are encoded again.
    Keep one store per encoder model: vectors from different models are not comparable.
    """

    #: Chunks whose vectors stay in memory after a read (a build walks windows across chunk boundaries).
    CACHED_CHUNKS = 8

    def __init__(self, directory: str | Path, dim: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = int(dim)
        self._chunks: list[Path] = []
        self._row: dict[tuple[str, int], tuple[int, int]] = {}  # key -> (chunk number, row in the chunk)
        self._cache: dict[int, np.ndarray] = {}  # chunk number -> vectors, oldest read first
        for path in sorted(self.directory.glob("chunk-*.npz")):
            try:
                with np.load(path) as z:
                    keys = list(zip(z["satellites"].tolist(), z["times"].tolist(), strict=True))
                    shape = _npz_member_shape(z, "vectors")
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                log.warning("frame-vector chunk %s is unreadable (%s): its frames will be encoded again", path, exc)
                continue
            if len(shape) != 2 or shape[1] != self.dim or shape[0] != len(keys):
                raise ValueError(f"{path} holds vectors of shape {shape}, expected ({len(keys)}, {self.dim})")
            number = len(self._chunks)
            self._chunks.append(path)
            for i, (sat, t) in enumerate(keys):
                self._row.setdefault((str(sat), int(t)), (number, i))  # two builds raced: first copy wins

    def __len__(self) -> int:
        return len(self._row)

    def has(self, satellite: str, time: datetime) -> bool:
        return (satellite, _epoch(time)) in self._row

    def missing(self, satellite: str, times: Sequence[datetime]) -> list[datetime]:
        """The times (in order, without repeats) whose vectors are not stored yet."""
        seen: set[datetime] = set()
        out = []
        for t in times:
            if t not in seen and (satellite, _epoch(t)) not in self._row:
                seen.add(t)
                out.append(t)
        return out

    def _vectors(self, number: int) -> np.ndarray:
        """A chunk's vectors, from memory when read lately."""
        vecs = self._cache.pop(number, None)
        if vecs is None:
            with np.load(self._chunks[number]) as z:
                vecs = np.asarray(z["vectors"], np.float32)
        self._remember(number, vecs)
        return vecs

    def _remember(self, number: int, vecs: np.ndarray) -> None:
        """Keep a chunk's vectors as the most recent, dropping the oldest beyond ``CACHED_CHUNKS``."""
        self._cache[number] = vecs
        while len(self._cache) > self.CACHED_CHUNKS:
            del self._cache[next(iter(self._cache))]

    def get_many(self, satellite: str, times: Sequence[datetime]) -> np.ndarray:
        """Vectors (len(times), dim) in the order given; KeyError names the first missing frame."""
        where = []
        for t in times:
            loc = self._row.get((satellite, _epoch(t)))
            if loc is None:
                raise KeyError(f"no stored embedding for {satellite} at {t.isoformat()}")
            where.append(loc)
        out = np.empty((len(where), self.dim), np.float32)
        for number in dict.fromkeys(c for c, _ in where):
            picks = [(i, r) for i, (c, r) in enumerate(where) if c == number]
            vecs = self._vectors(number)
            out[[i for i, _ in picks]] = vecs[[r for _, r in picks]]
        return out

    def put_many(self, satellite: str, times: Sequence[datetime], vectors: np.ndarray) -> int:
        """Store vectors of new frames (already stored ones are skipped); returns how many were new."""
        vecs = np.asarray(vectors, np.float32)
        if vecs.shape != (len(times), self.dim):
            raise ValueError(f"expected vectors of shape ({len(times)}, {self.dim}), got {vecs.shape}")
        keep: list[int] = []
        fresh: set[int] = set()
        for i, t in enumerate(times):
            sec = _epoch(t)
            if (satellite, sec) not in self._row and sec not in fresh:
                fresh.add(sec)
                keep.append(i)
        if not keep:
            return 0
        secs = np.array([_epoch(times[i]) for i in keep], np.int64)
        name = f"chunk-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}.npz"
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, satellites=np.array([satellite] * len(keep)), times=secs, vectors=vecs[keep])
        os.replace(tmp, self.directory / name)
        number = len(self._chunks)
        self._chunks.append(self.directory / name)
        for row, s in enumerate(secs.tolist()):
            self._row[(satellite, int(s))] = (number, row)
        self._remember(number, vecs[keep])
        return len(keep)


def _npz_member_shape(npz: Any, name: str) -> tuple[int, ...]:
    """The shape of one array of an open ``.npz`` from its header alone (its data is not read)."""
    with npz.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(f)
    return tuple(int(d) for d in shape)
