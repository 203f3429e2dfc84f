"""Building the similar-event index from an archive: every window by the one window rule, resumable.

Each frame is encoded once and its embedding kept in a per-encoder vector store beside the index, so a
window costs the mean of its stored frame vectors; a rerun (after an interruption or when new frames arrive)
adds only the windows the index lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from satwatch.services.config import DetectorSettings
from satwatch.services.frames.archive import Archive
from satwatch.services.metric.groundtruth import GridSpec
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.retrieval.index import FrameVectorStore, SimilarityIndex, WindowRecord, window_id
from satwatch.services.retrieval.provenance import IndexProvenance, check_provenance
from satwatch.services.retrieval.search import ArchiveSignatures, ensure_frame_vectors
from satwatch.services.retrieval.signature_store import signature_store_dir

#: Windows averaged and added per step (bounds the memory of one step).
STEP = 5000


def frame_vector_dir(index_dir: Path, encoder_sha256: str) -> Path:
    """Per-frame embeddings live beside the index, one folder per encoder model."""
    return index_dir / "frame_vectors" / encoder_sha256[:16]


@dataclass(frozen=True)
class BuildPlan:
    """What a build will do, known before any frame is encoded."""

    windows: int
    already: int
    todo: int
    window_size: int


@dataclass(frozen=True)
class BuildResult:
    encoded_frames: int
    added_windows: int
    index_size: int


def build_index(
    archive: Archive,
    encoder: FrameEncoder,
    out: Path,
    settings: DetectorSettings,
    *,
    stride: int = 1,
    min_frames: int | None = None,
    batch: int = 32,
    workers: int = 2,
    progress: bool = True,
    on_plan: Callable[[BuildPlan], None] | None = None,
) -> BuildResult:
    """Index every window of ``archive`` not yet in the index at ``out``; saves even when interrupted."""
    if stride < 1 or workers < 1 or batch < 1:
        raise ValueError("stride, workers and batch must be at least 1")
    archive.require_frames()
    sha = encoder.card.sha256
    size = settings.window_size or archive.profile.window_frames
    check_provenance(out, IndexProvenance(encoder.card.name, sha, size))
    windows = archive.windows(size, stride, min_frames)
    index = SimilarityIndex.open_or_create(
        out,
        dim=encoder.dim,
        max_elements=max(settings.index_max_elements, len(windows)),
        m=settings.index_m,
        ef_construction=settings.index_ef_construction,
        ef=settings.index_ef,
    )
    todo = [w for w in windows if not index.contains(window_id(archive.satellite, w[-1]))]
    if on_plan is not None:
        on_plan(BuildPlan(len(windows), len(windows) - len(todo), len(todo), size))
    out.mkdir(parents=True, exist_ok=True)
    store = FrameVectorStore(frame_vector_dir(out, sha), encoder.feature_dim)
    # The exact re-rank's signatures are made while each frame is decoded for the encoder, so a search never
    # decodes an archive frame; an index built before they were kept gets them on its next build.
    spec = GridSpec(n=24, bins=20, mode="general")  # ArchiveSignatures' defaults: what search re-ranks with
    signatures = ArchiveSignatures(archive, memory_frames=0, store_dir=signature_store_dir(out, spec))
    every = list(dict.fromkeys(t for w in windows for t in w))
    encoded = ensure_frame_vectors(
        archive, every, encoder, store, batch=batch, workers=workers, progress=progress, signatures=signatures
    )
    added = 0
    try:
        with tqdm(
            total=len(todo), desc="index windows", unit="window", disable=None if progress and todo else True
        ) as bar:
            # v2 per-frame vectors are 48,384 numbers, not 128: fewer windows a step keep its memory bounded.
            step = max(16, STEP * encoder.dim // (encoder.feature_dim * encoder.parts))
            for lo in range(0, len(todo), step):
                chunk = todo[lo : lo + step]
                flat = store.get_many(archive.satellite, [t for w in chunk for t in w]).astype(np.float64)
                ends = np.cumsum([len(w) for w in chunk])
                # The window's mean (or its parts' means for v2.1), part-filled windows too.
                inputs = np.stack(
                    [encoder.window_input(flat[e - len(w) : e]) for w, e in zip(chunk, ends, strict=True)]
                )
                vecs = encoder.embed_windows(inputs)  # the identity for v1 encoders (mean of frame embeddings)
                records = [WindowRecord.from_times(archive.satellite, w) for w in chunk]
                added += index.add_many(records, vecs.astype(np.float32))
                bar.update(len(chunk))
    finally:
        # Save even when interrupted: what was added is complete and the rest resumes next run.
        index.save(out)
    return BuildResult(encoded, added, len(index))
