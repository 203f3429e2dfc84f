"""``satwatch train autoencoder --novelty MODEL_DIR``: the temporal-novelty term and the threshold calibrated on an
archive's calibration frames, the network copied unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from satwatch.cli import main  # noqa: E402
from satwatch.services.models.anomaly import AnomalyScorer, stream_with_novelty  # noqa: E402
from satwatch.services.models.modelcard import packaged_model_dir  # noqa: E402
from satwatch.services.training.autoencoder import calibrate_threshold  # noqa: E402
from satwatch.services.training.data import calibration_split, load_archive  # noqa: E402
from tests.helpers import shared_data  # noqa: E402


def test_novelty_is_calibrated_on_the_archives_calibration_frames(tmp_path: Path) -> None:
    shared_data("study", "raw_images")  # the texture scene takes its clouds from the real frames
    archive, out = tmp_path / "archive", tmp_path / "set"
    sim = ["simulate", "--scene", "texture", "--days", "0.25", "--seed", "5", "--no-events", "--quiet"]
    assert main([*sim, "--start", "2024-05-01T00:00Z", "--out", str(archive)]) == 0
    v2 = packaged_model_dir() / "autoencoder-v2"
    argv = ["train", "autoencoder", "--archive", str(archive), "--novelty", str(v2), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    scorer = AnomalyScorer.load(out)  # the graph copied: its sha256 still matches the card
    shipped = AnomalyScorer.load(v2)
    sc, cal = scorer.scoring, scorer.card.metrics["novelty_calibration"]
    assert sc.novelty_frames == 3 and sc.novelty_span_s == 2700.0 and sc.novelty_scale > 0
    assert sc.texture_center == shipped.scoring.texture_center  # the other checks are kept
    # A set that had the term is recalibrated: the same minor version, the next patch (2.1.0 -> 2.1.1).
    major, minor, patch = shipped.card.version.split(".")
    assert scorer.card.version == f"{major}.{minor}.{int(patch) + 1}"
    # The threshold is the one the calibration frames' scores give, with the novelty term applied in time order.
    fs = load_archive(archive, progress=False)
    held, _ = calibration_split(fs.times)
    results = stream_with_novelty(scorer.score_batch([fs.frame(i) for i in range(len(fs))]), fs.times, sc)
    scores = np.array([r.score for r in results])
    assert cal["frames"] == int(held.sum()) > 0
    assert scorer.threshold == cal["threshold"] == pytest.approx(calibrate_threshold(scores[held]), rel=1e-6)
