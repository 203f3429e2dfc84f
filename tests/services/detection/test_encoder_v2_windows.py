"""The detector with the shipped encoder v2 on the study's real frames: each indexed window's vector is the
model's map of the window's mean per-frame histograms, kept as a running sum, not a mean of frame vectors."""

from pathlib import Path

import numpy as np

from satwatch.services.config import DetectorSettings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.detector import Detector
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import Frame, shrink
from satwatch.services.models.anomaly import AnomalyResult
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.retrieval.index import SimilarityIndex
from tests.helpers import shared_data


class QuietScorer:
    """Never alerts: this test is about the index's window vectors."""

    threshold = float("inf")

    def score(self, frame: Frame) -> AnomalyResult:
        return AnomalyResult(0.0, np.zeros((2, 2), np.float32), self.threshold)

    def score_batch(self, frames: list[Frame]) -> list[AnomalyResult]:
        return [self.score(f) for f in frames]


def test_v2_window_vectors_are_the_map_of_the_running_mean(tmp_path: Path) -> None:
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    frames = [shrink(archive.load(t)) for t in archive.times]
    encoder = FrameEncoder.load()
    assert encoder.card.window_embedding == "map_of_mean"
    settings = DetectorSettings.model_validate({"window_size": 6, "min_frames_for_search": 2, "k": 3})
    index = SimilarityIndex(dim=encoder.dim, max_elements=64)
    det = Detector(encoder, QuietScorer(), index, AlertStore(tmp_path / "a.sqlite"), settings)
    for f in frames:
        det.process(f)
    per_frame = encoder.encode(np.stack([f.data for f in frames]))
    records = list(index.records())
    full = [r for r in records if len(r.frame_times) == 6]
    assert len(full) >= 15  # 25 frames, windows of 6 within 6 hours
    pos = {t: i for i, t in enumerate(archive.times)}
    for r in full:
        rows = [pos[t] for t in r.frame_times]
        want = encoder.embed_windows(per_frame[rows].mean(axis=0, dtype=np.float64)[None])[0]
        np.testing.assert_allclose(index.vector(r.window_id), want, rtol=1e-4, atol=1e-4)
        # not the mean of the frames' own mapped vectors (the v1 design)
        assert np.abs(encoder.embed_windows(per_frame[rows]).mean(axis=0) - want).max() > 1e-3
