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


def _index_windows_of_six(
    encoder: FrameEncoder, frames: list[Frame], tmp_path: Path
) -> tuple[SimilarityIndex, np.ndarray]:
    """Frames through a detector with windows of 6 (a quiet scorer): its index, and each frame's own features."""
    settings = DetectorSettings.model_validate({"window_size": 6, "min_frames_for_search": 2, "k": 3})
    index = SimilarityIndex(dim=encoder.dim, max_elements=64)
    det = Detector(encoder, QuietScorer(), index, AlertStore(tmp_path / "a.sqlite"), settings)
    for f in frames:
        det.process(f)
    return index, encoder.encode(np.stack([f.data for f in frames]))


def test_v2_window_vectors_are_the_map_of_the_running_mean(tmp_path: Path) -> None:
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    frames = [shrink(archive.load(t)) for t in archive.times]
    encoder = FrameEncoder.load()
    assert encoder.card.window_embedding == "map_of_mean"
    index, per_frame = _index_windows_of_six(encoder, frames, tmp_path)
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


def test_a_parts_encoder_indexes_the_map_of_the_windows_part_means(tmp_path: Path) -> None:
    """Encoder v2.1 (2 parts, untrained here): the detector's rolling part means are the windows' own."""
    import pytest

    pytest.importorskip("torch")
    from satwatch.services.training.encoder_v2 import WindowPartsEncoderNet, export_v2

    export_v2(WindowPartsEncoderNet(parts=2, dim=8), tmp_path / "enc", {}, "untrained, for a test")
    _check_part_means_indexed(FrameEncoder.load(tmp_path / "enc"), tmp_path)


def test_packaged_encoder_v22_in_the_detector_indexes_its_part_means_on_real_frames(tmp_path: Path) -> None:
    """The optional encoder v2.2 (``--model-dir onnx_models/encoder-v2.2``: two halves, 256 numbers, a learned
    linear plus convolutional map) runs in the detector on the real frames as its card says."""
    from satwatch.services.models.modelcard import packaged_model_dir

    encoder = FrameEncoder.load(packaged_model_dir() / "encoder-v2.2")  # verifies the file's sha256
    assert encoder.card.version == "2.2.0" and encoder.dim == 256
    _check_part_means_indexed(encoder, tmp_path)


def _check_part_means_indexed(encoder: FrameEncoder, tmp_path: Path) -> None:
    assert encoder.parts == 2 and encoder.card.window_embedding == "map_of_part_means"
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    frames = [shrink(archive.load(t)) for t in archive.times[:12]]
    index, per_frame = _index_windows_of_six(encoder, frames, tmp_path)
    pos = {t: i for i, t in enumerate(archive.times)}
    records = list(index.records())
    assert sum(len(r.frame_times) == 6 for r in records) >= 5
    for r in records:
        rows = [pos[t] for t in r.frame_times]
        want = encoder.embed_windows(encoder.window_input(per_frame[rows])[None])[0]
        np.testing.assert_allclose(index.vector(r.window_id), want, rtol=1e-4, atol=1e-4)
        if len(rows) == 6:  # the order of the frames counts: the map of the plain mean, twice, differs
            mean = np.tile(per_frame[rows].mean(axis=0, dtype=np.float64), 2)
            assert np.abs(encoder.embed_windows(mean[None])[0] - want).max() > 1e-4


def test_packaged_encoder_v3_sketch_indexes_and_searches_the_real_frames(tmp_path: Path) -> None:
    """Encoder v3, the COMS-1 profile's (a count sketch of the two halves' square-root mean histograms, 256
    numbers): the detector indexes the real frames' windows by their part means, each window finds itself
    first, and the index's distances follow the exact distance of the square roots the sketch compresses."""
    from satwatch.services.models.modelcard import packaged_model_dir

    encoder = FrameEncoder.load(packaged_model_dir() / "encoder-v3")  # verifies the file's sha256
    assert encoder.card.version.startswith("3.") and encoder.dim == 256
    _check_part_means_indexed(encoder, tmp_path)

    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    frames = [shrink(archive.load(t)) for t in archive.times]
    index, per_frame = _index_windows_of_six(encoder, frames, tmp_path / "all")
    pos = {t: i for i, t in enumerate(archive.times)}
    full = [r for r in index.records() if len(r.frame_times) == 6]
    roots = np.stack([np.sqrt(encoder.window_input(per_frame[[pos[t] for t in r.frame_times]])) for r in full])
    vectors = np.stack([index.vector(r.window_id) for r in full])
    for r, v in zip(full, vectors, strict=True):
        assert index.query(v, k=1)[0].record.window_id == r.window_id
    iu = np.triu_indices(len(full), 1)
    exact = np.linalg.norm(roots[:, None] - roots[None], axis=-1)[iu]
    sketched = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)[iu]
    assert np.corrcoef(exact, sketched)[0, 1] > 0.9
