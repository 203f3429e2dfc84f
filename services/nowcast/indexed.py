"""Analogs from the similarity index, for archives too long to scan with the exact metric: the search use
case (``services.retrieval.query``: HNSW candidates, exact re-rank, overlapping windows folded into events)
asked for a few more events than needed, keeping those whose following hours ended before the query
window began and lie in the archive."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from satwatch.services.config import DetectorSettings
from satwatch.services.detection.router import archive_route
from satwatch.services.frames.archive import Archive
from satwatch.services.nowcast.analogs import analogs_from_neighbours
from satwatch.services.nowcast.forecast import Analog
from satwatch.services.retrieval.index import SimilarityIndex
from satwatch.services.retrieval.query import LazyEncoder, SearchOptions, find_similar, window_at


class IndexAnalogs:
    """Finds the analogs of a window of ``archive`` through the index built from it (opened once)."""

    def __init__(
        self,
        index_dir: str | Path,
        archive: Archive,
        settings: DetectorSettings,
        k: int,
        hours: float,
        model_dir: str | Path | None = None,
        rerank: int = 50,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.index = SimilarityIndex.load(self.index_dir)
        self.archive, self.settings, self.k = archive, settings, k
        self.horizon = timedelta(hours=hours)
        # index build's rule: a named folder, the detector's for this profile, a procedural simulated archive's
        # set, else the profile's encoder
        self.choice = archive_route(settings, archive.root, archive.profile, model_dir, index_named=True).choice
        self.encoder = LazyEncoder(self.choice.dirs.encoder, threads=2)
        # asked for 3k events: some end too close to the query to have their whole horizon before it
        self.options = SearchOptions(k=3 * k, rerank=max(rerank, 3 * k), following_hours=hours)

    def __call__(self, at: datetime) -> list[Analog]:
        size = self.settings.window_size or self.archive.profile.window_frames
        query = window_at(self.archive, at, size, self.settings.min_frames_for_search)
        hits = find_similar(self.index_dir, self.index, self.archive, query, self.encoder, self.settings, self.options)
        begin = query.record.start if query.record is not None else at
        kept = [h for h in hits if h.following and h.record.end + self.horizon < begin]
        return analogs_from_neighbours(kept[: self.k])
