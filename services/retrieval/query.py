"""The forecaster's question as one use case: given a window (a time in an archive, or a folder), which past
windows of the index are most like it. The command line only parses arguments and prints this."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from satwatch.services.config import DetectorSettings
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import load_plane
from satwatch.services.metric.groundtruth import (
    GridSpec,
    WindowSignature,
    frame_signature,
    window_files,
    window_signature,
)
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.retrieval.build import frame_vector_dir
from satwatch.services.retrieval.index import FrameVectorStore, Neighbour, SimilarityIndex, WindowRecord
from satwatch.services.retrieval.provenance import IndexProvenance, check_provenance
from satwatch.services.retrieval.search import ArchiveSignatures, load_shrunk, search


@dataclass
class QueryWindow:
    """The query's shrunk frames (N, C, H, W); its record and archive when it is a window of the archive."""

    frames: np.ndarray
    record: WindowRecord | None
    source: Archive | None
    label: str


def window_at(archive: Archive, end: datetime, window_size: int, min_frames: int) -> QueryWindow:
    """The archive's window ending at ``end`` by the window rule; a clear error when there is no such frame."""
    times = archive.window(end, window_size)
    if not times or times[-1] != end:
        before = archive.times_between(None, end)[-2:]
        after = archive.times_between(end, None)[:2]
        hint = ", ".join(f"{t:%Y-%m-%dT%H:%MZ}" for t in before + after) or "the archive is empty"
        raise ValueError(f"the archive has no complete frame at {end:%Y-%m-%dT%H:%MZ} (nearby: {hint})")
    if len(times) < min_frames:
        raise ValueError(
            f"only {len(times)} frames in the window ending {end:%Y-%m-%dT%H:%MZ}; a search needs at "
            f"least {min_frames} (detector.min_frames_for_search)"
        )
    record = WindowRecord.from_times(archive.satellite, times)
    return QueryWindow(load_shrunk(archive, times, workers=2), record, archive, record.window_id)


def window_in_folder(folder: Path, archive: Archive, window_size: int) -> QueryWindow:
    """A query window given as a folder: the study's layout (image_1/..), or images in the profile's naming."""
    if not folder.is_dir():
        raise FileNotFoundError(f"query window folder {folder} does not exist")
    if any(d.is_dir() and d.name.startswith("image_") for d in folder.iterdir()):
        profile = archive.profile
        planes = [np.stack([load_plane(p, profile) for p in paths]) for paths in window_files(folder, profile.channels)]
        return QueryWindow(np.stack(planes), None, None, str(folder))
    source = Archive(folder, archive.profile)
    source.require_frames()
    times = source.window(source.times[-1], window_size)
    record = WindowRecord.from_times(source.satellite, times)
    return QueryWindow(load_shrunk(source, times, workers=2), record, source, record.window_id)


@dataclass(frozen=True)
class SearchOptions:
    k: int = 10
    rerank: int = 50
    exclude_recent_hours: float = 0.0
    satellite: str | None = None
    time_range: tuple[datetime, datetime] | None = None
    months: set[int] | None = None


def find_similar(
    index_dir: Path,
    index: SimilarityIndex,
    archive: Archive,
    query: QueryWindow,
    encoder: FrameEncoder,
    settings: DetectorSettings,
    options: SearchOptions,
) -> list[Neighbour]:
    """Embed the query (from stored frame vectors where the build kept them), search, re-rank exactly."""
    if options.k < 1 or options.rerank < 0:
        raise ValueError("k must be at least 1 and rerank at least 0")
    window_size = settings.window_size or archive.profile.window_frames
    check_provenance(index_dir, IndexProvenance(encoder.card.name, encoder.card.sha256, window_size))
    store_dir = frame_vector_dir(index_dir, encoder.card.sha256)
    store = FrameVectorStore(store_dir, encoder.dim) if store_dir.is_dir() else None
    record = query.record
    if record is not None and store is not None and not store.missing(record.satellite, record.frame_times):
        vectors = store.get_many(record.satellite, record.frame_times)  # the build already encoded them
    else:
        vectors = encoder.encode(query.frames)
    vector = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    query_sig: WindowSignature | None = None
    lookup: ArchiveSignatures | None = None
    if options.rerank > 0:
        lookup = ArchiveSignatures(archive, cache_dir=index_dir / "signatures")
        if query.source is archive and record is not None:
            query_sig = lookup.window(record.frame_times)
        else:
            spec = GridSpec(n=lookup.spec.n, bins=lookup.spec.bins, mode="general")
            query_sig = window_signature([frame_signature(f, spec) for f in query.frames])
    return search(
        index,
        vector,
        query=record,
        k=options.k,
        candidates=options.rerank,
        exclude_recent_hours=options.exclude_recent_hours,
        satellite=options.satellite,
        time_range=options.time_range,
        months=options.months,
        query_signature=query_sig,
        signature_lookup=lookup,
    )
