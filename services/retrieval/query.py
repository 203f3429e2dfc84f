"""The forecaster's question as one use case: given a window (a time in an archive, or a folder), which past
events of the index are most like it, and what came after them. The command line only parses arguments and
prints this.

Cold, a search pays for what it touches, so it touches little: the query window's frames are decoded only
when the build did not keep their embeddings or signatures, and the encoder's ONNX session is opened only
when a frame must be encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

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
from satwatch.services.models.embedding import ENCODER_CARD, FrameEncoder, part_means
from satwatch.services.models.modelcard import ModelCard, load_card, packaged_model_dir, shipped_or_folder
from satwatch.services.retrieval.build import frame_vector_dir
from satwatch.services.retrieval.index import FrameVectorStore, Neighbour, SimilarityIndex, WindowRecord
from satwatch.services.retrieval.provenance import IndexProvenance, check_provenance
from satwatch.services.retrieval.search import ArchiveSignatures, load_shrunk, search
from satwatch.services.retrieval.signature_store import signature_store_dir

log = logging.getLogger(__name__)


@dataclass
class QueryWindow:
    """The query window: its record and archive when it is a window of an archive, and its shrunk frames
    (N, C, H, W), decoded on first use of :attr:`frames` (a search over stored embeddings and signatures
    never needs them)."""

    record: WindowRecord | None
    source: Archive | None
    label: str
    loader: Callable[[], np.ndarray] = field(repr=False)
    _frames: np.ndarray | None = field(default=None, repr=False)

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = self.loader()
        return self._frames

    @property
    def loaded(self) -> bool:
        """Whether the frames were decoded."""
        return self._frames is not None


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
    return QueryWindow(record, archive, record.window_id, lambda: load_shrunk(archive, times, workers=2))


def window_in_folder(folder: Path, archive: Archive, window_size: int) -> QueryWindow:
    """A query window given as a folder: the study's layout (image_1/..), or images in the profile's naming."""
    if not folder.is_dir():
        raise FileNotFoundError(f"query window folder {folder} does not exist")
    if any(d.is_dir() and d.name.startswith("image_") for d in folder.iterdir()):
        profile = archive.profile

        def study_layout() -> np.ndarray:
            files = window_files(folder, profile.channels)
            return np.stack([np.stack([load_plane(p, profile) for p in paths]) for paths in files])

        return QueryWindow(None, None, str(folder), study_layout)
    source = Archive(folder, archive.profile)
    source.require_frames()
    times = source.window(source.times[-1], window_size)
    record = WindowRecord.from_times(source.satellite, times)
    return QueryWindow(record, source, record.window_id, lambda: load_shrunk(source, times, workers=2))


class QueryEncoder(Protocol):
    """What a search needs of the encoder: its card (which index it may query), size, and frames encoded."""

    @property
    def card(self) -> ModelCard: ...

    @property
    def dim(self) -> int: ...

    @property
    def feature_dim(self) -> int: ...

    def encode(self, frames: np.ndarray) -> np.ndarray: ...

    def window_input(self, vectors: np.ndarray) -> np.ndarray: ...

    def embed_windows(self, means: np.ndarray) -> np.ndarray: ...


class LazyEncoder:
    """The encoder of ``model_dir`` (default: the packaged one) whose card is read now and whose ONNX model is
    checked and opened only when a frame has to be encoded: a query window the index build already encoded
    costs no model load (about a third of a cold search before)."""

    def __init__(self, model_dir: str | Path | None = None, threads: int = 2) -> None:
        self.folder = shipped_or_folder(model_dir) if model_dir is not None else packaged_model_dir()
        self.threads = threads
        self._card = load_card(self.folder / ENCODER_CARD)
        self._encoder: FrameEncoder | None = None

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def dim(self) -> int:
        last = self._card.outputs[0].shape[-1]
        if not isinstance(last, int):
            raise ValueError(f"encoder card {self._card.name!r} has no fixed embedding size")
        return last

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    @property
    def parts(self) -> int:
        """Consecutive parts of the window whose means the model reads (v2.1: the input's second axis)."""
        if self._card.window_embedding == "map_of_part_means":
            return int(self._card.input.shape[1])
        return 1

    @property
    def feature_dim(self) -> int:
        """Length of the per-frame vectors a window averages (the card's input size per part for v2)."""
        if self._card.window_embedding == "mean_of_frames":
            return self.dim
        return int(np.prod([int(d) for d in self._card.input.shape[1:]])) // self.parts

    def window_input(self, vectors: np.ndarray) -> np.ndarray:
        """The window's input from its per-frame vectors in time order (no model load)."""
        return part_means(vectors, self.parts)

    def _loaded(self) -> FrameEncoder:
        if self._encoder is None:
            self._encoder = FrameEncoder.load(self.folder, threads=self.threads)
        return self._encoder

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return self._loaded().encode(frames)

    def embed_windows(self, means: np.ndarray) -> np.ndarray:
        """Window vectors from mean per-frame vectors; a v1 encoder's is the mean itself (no model load)."""
        if self._card.window_embedding == "mean_of_frames":
            return np.asarray(means, dtype=np.float32).reshape(-1, self.dim)
        return self._loaded().embed_windows(means)


@dataclass(frozen=True)
class SearchOptions:
    """What to search for. Defaults answer the forecaster: past events only (windows that ended before the
    query began), overlapping windows folded into one event, and the 6 hours that followed each."""

    k: int = 10
    rerank: int = 50
    exclude_recent_hours: float = 0.0
    satellite: str | None = None
    time_range: tuple[datetime, datetime] | None = None
    months: set[int] | None = None
    season_days: float | None = None
    before_query: bool = True
    fold: bool = True
    following_hours: float = 6.0


class SearchSession:
    """An index with its archive, encoder and stores opened once, answering any number of queries: the
    frame vectors, the packed signatures and the signatures already read stay in memory between queries
    (a feed or a notebook asking again pays only for the search itself)."""

    def __init__(
        self,
        index_dir: Path,
        index: SimilarityIndex,
        archive: Archive,
        encoder: QueryEncoder,
        settings: DetectorSettings,
    ) -> None:
        self.index_dir, self.index, self.archive, self.encoder = Path(index_dir), index, archive, encoder
        window_size = settings.window_size or archive.profile.window_frames
        check_provenance(self.index_dir, IndexProvenance(encoder.card.name, encoder.card.sha256, window_size))
        store_dir = frame_vector_dir(self.index_dir, encoder.card.sha256)
        self.vectors = FrameVectorStore(store_dir, encoder.feature_dim) if store_dir.is_dir() else None
        spec = GridSpec(n=24, bins=20, mode="general")
        # The packed store ``index build`` writes; the older per-frame cache is still read where it exists.
        self.signatures = ArchiveSignatures(
            archive, cache_dir=self.index_dir / "signatures", store_dir=signature_store_dir(self.index_dir, spec)
        )

    def find(self, query: QueryWindow, options: SearchOptions) -> list[Neighbour]:
        """Embed the query (from stored frame vectors where the build kept them), search, re-rank exactly,
        fold into events and attach what followed each (frames of the archive; the index's frames for
        another satellite). Frames signed for this query are added to the packed store."""
        if options.k < 1 or options.rerank < 0:
            raise ValueError("k must be at least 1 and rerank at least 0")
        if options.following_hours < 0 or (options.season_days is not None and options.season_days < 0):
            raise ValueError("following hours and season days must not be negative")
        archive, index, store, record = self.archive, self.index, self.vectors, query.record
        if record is not None and store is not None and not store.missing(record.satellite, record.frame_times):
            vectors = store.get_many(record.satellite, record.frame_times)  # the build already encoded them
        else:
            vectors = self.encoder.encode(query.frames)
        vector = self.encoder.embed_windows(self.encoder.window_input(vectors)[None])[0]
        query_sig: WindowSignature | None = None
        lookup = self.signatures if options.rerank > 0 else None
        if lookup is not None:
            if query.source is archive and record is not None:
                query_sig = lookup.window(record.frame_times)
            else:
                query_sig = window_signature([frame_signature(f, lookup.spec) for f in query.frames])
        horizon = timedelta(hours=options.following_hours)

        def following(r: WindowRecord) -> list[datetime]:
            if r.satellite == archive.satellite:
                return archive.following(r.end, horizon)
            return index.frames_after(r.satellite, r.end, horizon)

        try:
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
                season_days=options.season_days,
                before_query=options.before_query,
                fold=options.fold,
                query_signature=query_sig,
                signature_lookup=lookup,
                following=following if options.following_hours > 0 else None,
            )
        finally:
            if lookup is not None:
                try:
                    lookup.flush()
                except OSError as exc:  # a read-only index: the search still answers, next time signs again
                    log.warning(
                        "could not store %d new frame signatures under %s: %s", lookup.pending, self.index_dir, exc
                    )


def find_similar(
    index_dir: Path,
    index: SimilarityIndex,
    archive: Archive,
    query: QueryWindow,
    encoder: QueryEncoder,
    settings: DetectorSettings,
    options: SearchOptions,
) -> list[Neighbour]:
    """One query (:meth:`SearchSession.find` on a session opened for it)."""
    return SearchSession(index_dir, index, archive, encoder, settings).find(query, options)


def plot_search(
    out: str | Path,
    query: QueryWindow,
    hits: list[Neighbour],
    archive: Archive,
    channel: str = "ir01",
    window_frames: int = 6,
    following_frames: int = 6,
) -> Path:
    """Draw the query and each similar past event as a full-width row of ``channel`` thumbnails: the window's
    frames (``window_frames`` evenly spread), then ``following_frames`` of the frames that followed it, each
    labelled with its time. Frames an archive lacks are drawn as "missing" boxes."""
    from satwatch.services.frames.frame import shrink
    from satwatch.services.retrieval.plot import PlotRow, Thumb, sample, save_rows, time_labels

    c = archive.channels.index(channel) if channel in archive.channels else 0

    def archived(source: Archive, t: datetime) -> Callable[[], np.ndarray | None]:
        def plane() -> np.ndarray | None:
            try:
                return shrink(source.load(t)).data[c]
            except (KeyError, FileNotFoundError, OSError, ValueError):
                return None

        return plane

    def given(i: int) -> Callable[[], np.ndarray | None]:
        return lambda: query.frames[i, c]

    if query.record is not None and query.source is not None:
        times = sample(query.record.frame_times, window_frames)
        source = query.source
        thumbs = [Thumb(lab, archived(source, t)) for lab, t in zip(time_labels(times), times, strict=True)]
    else:
        picks = sample(list(range(len(query.frames))), window_frames)
        thumbs = [Thumb(f"frame {i + 1}", given(i)) for i in picks]
    rows = [PlotRow(f"query {query.label}", thumbs)]
    for rank, h in enumerate(hits, 1):
        r = h.record
        past = archive if r.satellite == archive.satellite else None
        win, after = sample(r.frame_times, window_frames), sample(h.following, following_frames)
        labels = time_labels(list(win) + list(after))
        cells = [
            Thumb(lab, archived(past, t) if past is not None else lambda: None, after=i >= len(win))
            for i, (lab, t) in enumerate(zip(labels, list(win) + list(after), strict=True))
        ]
        sim = f", similarity {h.similarity:.3f}" if h.similarity is not None else ""
        then = f"; then {len(h.following)} frames to {h.following[-1]:%H:%M}" if h.following else "; nothing after it"
        title = f"#{rank} {r.satellite} {r.start:%Y-%m-%d %H:%M} .. {r.end:%H:%M}: distance {h.distance:.3f}{sim}{then}"
        rows.append(PlotRow(title, cells))
    return save_rows(out, rows, title=f"{channel}: each window, then (after the red bar) what followed it")
