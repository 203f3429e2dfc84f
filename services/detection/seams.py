"""What the detector needs from its parts, named in full: every method it calls, with typed results.

The shipped parts (``FrameEncoder``, ``AnomalyScorer``, ``SimilarityIndex``, ``StreamSignatures``) satisfy
these; tests pass small stand-ins that do too. Nothing is probed with ``getattr``: a part that lacks a
capability says so (``signature_spec`` None, an empty ``flush``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from satwatch.services.frames.frame import Frame
from satwatch.services.metric.groundtruth import FrameSignature, GridSpec
from satwatch.services.models.anomaly import AnomalyResult
from satwatch.services.retrieval.index import Neighbour, WindowRecord


class Encoder(Protocol):
    """Per-frame vectors whose running mean, mapped by ``embed_windows``, is a window's index vector.

    For a v1 encoder the per-frame vector is the frame's embedding and the map is the identity; for v2 it is
    the frame's per-cell histograms and the map is the model.
    """

    dim: int
    #: Consecutive parts of the window whose means ``embed_windows`` reads (1: the window mean).
    parts: int

    @property
    def signature_spec(self) -> GridSpec | None:
        """The ground-truth grid the encoder reads its input from, or None when it reads pixels."""
        ...

    def encode(self, frames: np.ndarray) -> np.ndarray: ...

    def encode_signatures(self, signatures: Sequence[FrameSignature]) -> np.ndarray: ...

    def embed_windows(self, means: np.ndarray) -> np.ndarray: ...


class Scorer(Protocol):
    """The anomaly score of a frame, with its heat map, against a calibrated threshold."""

    threshold: float

    def score(self, frame: Frame) -> AnomalyResult: ...

    def score_batch(self, frames: list[Frame]) -> list[AnomalyResult]: ...


class Index(Protocol):
    """The similar-event index of past windows."""

    #: The saved index was damaged and an older snapshot or an empty index stands in (rebuild from the stream).
    recovered: bool

    def __len__(self) -> int: ...

    def add(self, record: WindowRecord, vector: np.ndarray) -> bool: ...

    def query(
        self,
        vector: np.ndarray,
        k: int = 10,
        *,
        exclude_overlap_with: tuple[datetime, datetime] | None = None,
        exclude_after: datetime | None = None,
    ) -> list[Neighbour]: ...

    def contains(self, window_id: str) -> bool: ...

    def frames_after(self, satellite: str, end: datetime, horizon: timedelta) -> list[datetime]: ...

    def save(self, directory: str | Path) -> None: ...


class Reranker(Protocol):
    """Exact re-ranking of search results from per-frame ground-truth signatures."""

    spec: GridSpec

    def add(
        self, satellite: str, time: datetime, planes: np.ndarray, signature: FrameSignature | None = None
    ) -> FrameSignature: ...

    def rerank(self, satellite: str, times: Sequence[datetime], neighbours: list[Neighbour]) -> list[Neighbour]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
