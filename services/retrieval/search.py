"""Similar-event search: HNSW candidates, exclusion rules and filters, exact ground-truth re-ranking, events.

The forecaster's question is *has this happened before, and what came next?* So by default :func:`search`
only admits windows that ended before the query window began (never the query's own frames, never its
future), asks the index for a wider candidate list (e.g. 50) than the answer (e.g. 10), lets :func:`rerank`
order the candidates by the study's exact similarity computed from cached per-frame grid histograms, folds
overlapping windows into one event (``services.retrieval.events``) and attaches to each event the frame
times that followed it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import shrink
from satwatch.services.retrieval.events import distinct_events
from satwatch.services.retrieval.index import FrameVectorStore, Neighbour, SimilarityIndex, WindowRecord

#: Returns the exact-metric signature of a window, or None when it cannot be built (missing frames).
SignatureLookup = Callable[[WindowRecord], Any | None]
#: ``similarity_fn(query_signature, candidate_signatures) -> similarities`` (higher is more similar).
SimilarityFn = Callable[[Any, Sequence[Any]], np.ndarray]
#: The frame times that followed a window (``Archive.following`` or ``SimilarityIndex.frames_after``).
FollowingLookup = Callable[[WindowRecord], Sequence[datetime]]
#: The most candidate windows a folded search fetches while looking for enough distinct events.
MAX_FOLD_CANDIDATES = 5000
#: Candidate windows fetched per event wanted when folding: a 20-frame event is about 40 sliding windows.
WINDOWS_PER_EVENT = 40


def exclusion_rules(
    query: WindowRecord | None,
    exclude_recent_hours: float = 0.0,
    now: datetime | None = None,
    before_query: bool = False,
) -> dict[str, Any]:
    """Keyword filters for :meth:`SimilarityIndex.query` that keep a query from matching itself.

    Windows sharing any instant with the query are dropped; with ``before_query``, so is every window that
    did not end before the query began (its future); with ``exclude_recent_hours`` > 0, so are windows
    ending within that many hours before ``now`` (default: the query's end).
    """
    rules: dict[str, Any] = {}
    if query is not None:
        rules["exclude_overlap_with"] = (query.start, query.end)
    ref = now if now is not None else (query.end if query is not None else None)
    cuts = []
    if exclude_recent_hours > 0 and ref is not None:
        cuts.append(ref - timedelta(hours=exclude_recent_hours))
    if before_query and query is not None:
        cuts.append(query.start - timedelta(seconds=1))  # ended strictly before the query's first frame
    if cuts:
        rules["exclude_after"] = min(cuts)
    return rules


def _default_similarity(query: Any, many: Sequence[Any]) -> np.ndarray:
    from satwatch.services.metric.groundtruth import similarity_one_to_many, window_similarity

    try:
        return similarity_one_to_many(query, many)  # part-filled windows: latest frames, aligned from the end
    except ValueError:
        # Mixed image geometries cannot be batched; compare pair by pair.
        return np.array([window_similarity(query, m) for m in many])


def frames_compared(query_sig: Any, candidate_sig: Any) -> int | None:
    """How many frame pairs the exact metric compares for these two window signatures: the shorter window's
    frame count (windows are aligned from the end), or None for signatures that hold no ``frames``."""
    fa, fb = getattr(query_sig, "frames", None), getattr(candidate_sig, "frames", None)
    if fa is None or fb is None:
        return None
    return min(len(fa), len(fb))


def rerank(
    query_sig: Any,
    neighbours: Sequence[Neighbour],
    signature_lookup: SignatureLookup,
    similarity_fn: SimilarityFn | None = None,
) -> list[Neighbour]:
    """Attach exact similarity to each candidate and sort by it (highest first, ties by distance).

    Part-filled windows (the query after a gap, or a candidate) are compared on the latest frames both hold,
    aligned from the end; each scored neighbour's ``frames_compared`` says how many (None when the signatures
    do not say how many frames they hold). Candidates whose signature cannot be found keep ``similarity=None``
    and go last, in distance order.
    """
    fn = similarity_fn or _default_similarity
    sigs = [signature_lookup(n.record) for n in neighbours]
    have = [i for i, s in enumerate(sigs) if s is not None]
    sims = np.asarray(fn(query_sig, [sigs[i] for i in have]), dtype=np.float64) if have else np.empty(0)
    scored = [
        Neighbour(neighbours[i].record, neighbours[i].distance, float(s), frames_compared(query_sig, sigs[i]))
        for i, s in zip(have, sims, strict=True)
    ]
    scored.sort(key=lambda n: (-(n.similarity or 0.0), n.distance))
    missing = [neighbours[i] for i in range(len(neighbours)) if sigs[i] is None]
    return scored + sorted(missing, key=lambda n: n.distance)


def search(
    index: SimilarityIndex,
    vector: np.ndarray,
    *,
    query: WindowRecord | None = None,
    k: int = 10,
    candidates: int = 50,
    exclude_recent_hours: float = 0.0,
    now: datetime | None = None,
    satellite: str | None = None,
    time_range: tuple[datetime, datetime] | None = None,
    months: set[int] | None = None,
    season_days: float | None = None,
    before_query: bool = True,
    fold: bool = True,
    query_signature: Any | None = None,
    signature_lookup: SignatureLookup | None = None,
    similarity_fn: SimilarityFn | None = None,
    following: FollowingLookup | None = None,
) -> list[Neighbour]:
    """The ``k`` most similar past events to ``vector`` (the window ``query``, when known).

    By default (``before_query``) only windows that ended before the query began are admitted, and
    overlapping windows are folded into one event, kept at its best-ranked window (``fold``). With a query
    signature and a lookup, at least ``candidates`` embedding neighbours are re-ranked by exact similarity;
    otherwise events come in embedding order. When folding, more neighbours are fetched until they hold ``k``
    events (or :data:`MAX_FOLD_CANDIDATES` windows). ``season_days`` keeps windows ending within that many
    days of the query's time of year, in any year. With ``following``, each hit carries the frame times
    that followed it.
    """
    if season_days is not None and query is None:
        raise ValueError("a time-of-year filter needs the query window's time")
    rules = exclusion_rules(query, exclude_recent_hours, now, before_query=before_query)
    filters: dict[str, Any] = {"satellite": satellite, "time_range": time_range, "months": months, **rules}
    if season_days is not None and query is not None:
        filters["season"] = (query.end, float(season_days))
    exact = query_signature is not None and signature_lookup is not None
    fetch = max(candidates, k) if exact else k
    if fold:
        fetch = max(fetch, k * WINDOWS_PER_EVENT)
    hits = index.query(vector, fetch, **filters)
    while fold and len(hits) == fetch and fetch < MAX_FOLD_CANDIDATES and len(distinct_events(hits, k)) < k:
        fetch = min(4 * fetch, MAX_FOLD_CANDIDATES)
        hits = index.query(vector, fetch, **filters)
    if exact and hits:
        assert signature_lookup is not None  # for mypy; checked in `exact`
        hits = rerank(query_signature, hits, signature_lookup, similarity_fn)
    hits = distinct_events(hits, k) if fold else hits[:k]
    if following is not None:
        hits = [replace(h, following=tuple(following(h.record))) for h in hits]
    return hits


class ArchiveSignatures:
    """Ground-truth window signatures for windows of an archive, from per-frame signatures held in memory
    (LRU), in the index's packed store (``FrameSignatureStore``, written by ``index build``) or cached on disk
    (``SignatureCache``), so re-ranking known windows costs no image decoding.

    Frames are shrunk to the study size first (a no-op for already shrunk archives), then signed in the
    groundtruth ``general`` mode, the size-agnostic variant of the study's metric. Frames signed here because
    no store held them go to the store on :meth:`flush`.
    """

    def __init__(
        self,
        archive: Archive,
        cache_dir: str | Path | None = None,
        grid: int = 24,
        bins: int = 20,
        memory_frames: int = 4000,
        store_dir: str | Path | None = None,
    ) -> None:
        from satwatch.services.metric.groundtruth import GridSpec, SignatureCache
        from satwatch.services.retrieval.signature_store import FrameSignatureStore

        self.archive = archive
        self.spec = GridSpec(n=grid, bins=bins, mode="general")
        self.cache = SignatureCache(cache_dir) if cache_dir is not None else None
        self.store = FrameSignatureStore(store_dir, self.spec) if store_dir is not None else None
        self._memory: OrderedDict[datetime, Any] = OrderedDict()
        self._memory_frames = memory_frames
        self._unstored: dict[datetime, Any] = {}

    def add(self, time: datetime, planes: np.ndarray) -> Any:
        """Sign the archive's frame at ``time`` from its shrunk planes (C, H, W) already in hand (the index
        build decodes each frame once for the encoder); stored on :meth:`flush`."""
        from satwatch.services.metric.groundtruth import frame_signature

        sig = frame_signature(np.asarray(planes, np.uint8), self.spec)
        self._remember(time, sig)
        if self.store is not None and not self.store.has(self.archive.satellite, time):
            self._unstored[time] = sig
        return sig

    def missing(self, times: Sequence[datetime]) -> list[datetime]:
        """The times whose signatures the packed store lacks (all of them without a store)."""
        sat = self.archive.satellite
        return [t for t in times if t not in self._unstored and (self.store is None or not self.store.has(sat, t))]

    @property
    def pending(self) -> int:
        """Signatures computed and not yet written to the store."""
        return len(self._unstored)

    def flush(self) -> int:
        """Write the signatures computed since the last flush to the packed store; returns how many."""
        if self.store is None or not self._unstored:
            return 0
        times = sorted(self._unstored)
        n = self.store.put_many(self.archive.satellite, times, [self._unstored[t] for t in times])
        self._unstored.clear()
        return n

    def _remember(self, time: datetime, sig: Any) -> None:
        self._memory[time] = sig
        if len(self._memory) > self._memory_frames:
            self._memory.popitem(last=False)

    def frame(self, time: datetime) -> Any:
        """The signature of the archive's frame at ``time`` (KeyError when the archive lacks it)."""
        from satwatch.services.metric.groundtruth import frame_signature

        hit = self._memory.get(time)
        if hit is not None:
            self._memory.move_to_end(time)
            return hit
        if self.store is not None:
            stored = self.store.get(self.archive.satellite, time)
            if stored is not None:
                self._remember(time, stored)
                return stored
        key = None
        if self.cache is not None:
            files = self.archive.files(time)
            paths = [files.paths[c] for c in self.archive.channels]
            # These signatures come from shrunk 8-bit planes, not the reference's full-size float grey:
            # a key of their own keeps them apart from file-level signatures in a shared cache.
            base = self.cache.key(paths, self.spec)
            key = hashlib.sha256(f"shrunk-uint8:{base}".encode()).hexdigest()
        sig = self.cache.get(key, self.spec) if self.cache is not None and key else None
        if sig is None:
            sig = frame_signature(shrink(self.archive.load(time)).data, self.spec)
            if self.cache is not None and key and self.store is None:
                self.cache.put(key, sig)
        if self.store is not None:
            self._unstored[time] = sig
        self._remember(time, sig)
        return sig

    def window(self, times: Sequence[datetime]) -> Any:
        """The window signature of the frames at ``times``."""
        from satwatch.services.metric.groundtruth import window_signature

        return window_signature([self.frame(t) for t in times])

    def __call__(self, record: WindowRecord) -> Any | None:
        try:
            return self.window(record.frame_times)
        except (KeyError, FileNotFoundError, OSError, ValueError):
            return None


class Encoder(Protocol):
    """What :func:`ensure_frame_vectors` needs of an encoder (``FrameEncoder`` fits)."""

    dim: int

    def encode(self, frames: np.ndarray) -> np.ndarray: ...


def load_shrunk(archive: Archive, times: Sequence[datetime], workers: int = 1) -> np.ndarray:
    """Frames at ``times`` as one (N, C, H, W) uint8 array at the study size; PNG decoding runs in threads."""

    def one(t: datetime) -> np.ndarray:
        return shrink(archive.load(t)).data

    if workers <= 1 or len(times) <= 1:
        planes = [one(t) for t in times]
    else:
        # Pillow releases the GIL while decoding, so threads use both cores without pickling frames.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            planes = list(pool.map(one, times))
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        raise ValueError(f"frames differ in shape after shrinking: {sorted(shapes)}")
    return np.stack(planes)


def ensure_frame_vectors(
    archive: Archive,
    times: Sequence[datetime],
    encoder: Encoder,
    store: FrameVectorStore,
    *,
    batch: int = 32,
    workers: int = 1,
    progress: bool = True,
    signatures: ArchiveSignatures | None = None,
) -> int:
    """Encode and store every frame among ``times`` the store lacks; returns how many were encoded.

    Each batch is stored as soon as it is encoded, so an interrupted run resumes where it stopped. With
    ``signatures``, every frame decoded is also signed for the exact re-rank (a millisecond or two, against
    a PNG decode per frame for a search that has to sign it later), and so is every frame among ``times`` the
    signature store lacks; they are written every :data:`~signature_store.CHUNK_FRAMES` frames.
    """
    from tqdm import tqdm

    from satwatch.services.retrieval.signature_store import CHUNK_FRAMES

    todo = store.missing(archive.satellite, times)
    if signatures is not None:
        wanted = set(todo)
        unsigned = [t for t in signatures.missing(list(dict.fromkeys(times))) if t not in wanted]
        todo_all = todo + unsigned
    else:
        todo_all = todo
    encode = set(todo)
    with tqdm(
        total=len(todo_all), desc="encode frames", unit="frame", disable=None if progress and todo_all else True
    ) as bar:
        for lo in range(0, len(todo_all), batch):
            chunk = todo_all[lo : lo + batch]
            frames = load_shrunk(archive, chunk, workers)
            need = [i for i, t in enumerate(chunk) if t in encode]
            if need:
                store.put_many(archive.satellite, [chunk[i] for i in need], encoder.encode(frames[need]))
            if signatures is not None:
                for t, f in zip(chunk, frames, strict=True):
                    signatures.add(t, f)
                if signatures.pending >= CHUNK_FRAMES:
                    signatures.flush()
            bar.update(len(chunk))
    if signatures is not None:
        signatures.flush()
    return len(todo)
