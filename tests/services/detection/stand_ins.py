"""In-memory stand-ins for the detector's two models, and a detector built over them (the real ONNX models are
covered end to end in tests/consumers/test_detector.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np

from satwatch.services.config import DetectorSettings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.detector import Detector
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.detection.seams import Reranker
from satwatch.services.frames.frame import Frame
from satwatch.services.metric.groundtruth import FrameSignature, GridSpec
from satwatch.services.models.anomaly import AnomalyResult
from satwatch.services.retrieval.index import SimilarityIndex
from tests.helpers import T0


class MeanEncoder:
    """Embeds a frame as its per-channel means (enough to tell bright from dark scenes)."""

    dim = 4
    parts = 1
    signature_spec: GridSpec | None = None  # reads pixels, not ground-truth signatures

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return frames.reshape(len(frames), 4, -1).mean(axis=2).astype(np.float32) / 255.0

    def encode_signatures(self, signatures: Sequence[FrameSignature]) -> np.ndarray:
        raise AssertionError("a pixel encoder is never handed signatures")

    def embed_windows(self, means: np.ndarray) -> np.ndarray:
        return np.asarray(means, dtype=np.float32)


class BrightnessScorer:
    """Scores a frame by how bright its first channel is."""

    threshold = 0.6

    def score(self, frame: Frame) -> AnomalyResult:
        heat = frame.data[0].astype(np.float32) / 255.0
        return AnomalyResult(float(heat.mean()), heat, self.threshold)

    def score_batch(self, frames: list[Frame]) -> list[AnomalyResult]:
        return [self.score(f) for f in frames]


def make_detector(
    tmp_path: Path,
    reranker: Reranker | None = None,
    persistent: bool = True,
    metrics: DetectorMetrics | None = None,
    **overrides: object,
) -> Detector:
    """A detector over the stand-ins, windows of 4 frames, 30 days after T0. ``persistent``: its index is saved
    under ``tmp_path/index`` (with a journal); otherwise it lives in memory. ``overrides``: DetectorSettings."""
    settings = DetectorSettings.model_validate({"window_size": 4, "min_frames_for_search": 2, "k": 3, **overrides})
    index_dir = tmp_path / "index" if persistent else None
    index = (
        SimilarityIndex.open_or_create(index_dir, dim=4, max_elements=16)
        if index_dir is not None
        else SimilarityIndex(dim=4, max_elements=64)
    )
    return Detector(
        MeanEncoder(),
        BrightnessScorer(),
        index,
        AlertStore(tmp_path / "a.sqlite"),
        settings,
        metrics,
        index_dir=index_dir,
        reranker=reranker,
        now=lambda: T0 + timedelta(days=30),
    )
