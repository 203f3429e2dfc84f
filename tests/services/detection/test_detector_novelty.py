"""The detector applies a card's temporal-novelty term frame by frame, as ``satwatch evaluate`` applies it to a
stream (``stream_with_novelty``): the same scores, batch or one frame at a time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from satwatch.services.config import DetectorSettings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.detector import Detector, FrameOutcome
from satwatch.services.frames.frame import Frame
from satwatch.services.models.anomaly import AnomalyResult, stream_with_novelty
from satwatch.services.models.modelcard import Scoring
from satwatch.services.retrieval.index import SimilarityIndex
from tests.helpers import T0, make_frame
from tests.services.detection.stand_ins import MeanEncoder

SCORING = Scoring(
    aggregate="with_consistency",
    novelty_frames=2,
    novelty_span_s=1800.0,
    novelty_top=1,
    novelty_center=0.0,
    novelty_scale=10.0,
)


class PatchScorer:
    """A frame's patch map is its first channel's 4 x 5 block means; its own weather term is 0."""

    threshold = 3.0
    card = SimpleNamespace(scoring=SCORING)

    def score(self, frame: Frame) -> AnomalyResult:
        patches = frame.data[0].reshape(4, 75, 5, 75).mean(axis=(1, 3)).astype(np.float32)
        return AnomalyResult(0.0, patches, self.threshold, weather=0.0, patches=patches)

    def score_batch(self, frames: list[Frame]) -> list[AnomalyResult]:
        return [self.score(f) for f in frames]


def _detector(tmp_path: Path) -> Detector:
    settings = DetectorSettings.model_validate({"window_size": 4, "min_frames_for_search": 2, "k": 3})
    return Detector(
        MeanEncoder(),
        PatchScorer(),
        SimilarityIndex(dim=4, max_elements=64),
        AlertStore(tmp_path / "a.sqlite"),
        settings,
        now=lambda: T0 + timedelta(days=30),
    )


def _frames() -> list[Frame]:
    frames = [make_frame(T0 + i * timedelta(minutes=15), 60) for i in range(6)]
    frames.append(make_frame(T0 + timedelta(hours=3), 60))  # after a gap: no previous frame in reach
    # A bright cell appears in the fourth frame and stays.
    for f in frames[3:6]:
        f.data[0, 80:140, 80:140] = 250
    return frames


def test_the_detector_scores_novelty_as_evaluate_does(tmp_path: Path) -> None:
    frames = _frames()
    scorer = PatchScorer()
    want = stream_with_novelty(scorer.score_batch(frames), [f.time for f in frames], SCORING)
    assert want[0].novelty is None and want[-1].novelty is None
    assert want[3].score > scorer.threshold > max(want[4].score, want[2].score)  # new, then persistent
    batch = _detector(tmp_path / "batch").process_batch(frames)
    det = _detector(tmp_path / "one")
    single = [det.process(f) for f in frames]
    for got in (batch, single):
        assert all(isinstance(o, FrameOutcome) for o in got)
        assert [o.score for o in got if isinstance(o, FrameOutcome)] == [r.score for r in want]
