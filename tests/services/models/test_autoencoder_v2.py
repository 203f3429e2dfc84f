"""The shipped autoencoder v2 (``onnx_models/autoencoder-v2``, trained on the texture scene) on real imagery."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from satwatch.services.frames.archive import Archive
from satwatch.services.models.anomaly import AnomalyScorer, stream_with_novelty
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from tests.helpers import shared_data

V2 = Path(__file__).resolve().parents[3] / "onnx_models" / "autoencoder-v2"


def test_v2_card_names_its_profile_and_the_texture_term() -> None:
    scorer = AnomalyScorer.load(V2)  # verifies the file's sha256 against the card
    card = scorer.card
    assert card.profile == "COMS-1" and card.version.startswith("2.")
    assert card.scoring is not None and card.scoring.texture_output == "texture"
    assert [o.name for o in card.outputs][-2:] == ["texture", "texture_map"]
    # v2.1: the temporal-novelty term, its spread and the threshold calibrated on the same calibration days.
    assert card.scoring.novelty_frames == 3 and card.scoring.novelty_scale > 0
    assert card.metrics["novelty_calibration"]["hours_covered"] == 24
    assert card.thresholds["anomaly"] == card.metrics["novelty_calibration"]["threshold"]


def test_v2_raises_no_alert_on_the_studys_real_frames() -> None:
    """The 25 real COMS frames are ordinary weather: every score sits under the threshold training wrote, the
    temporal-novelty term included (each frame against the frames before it, as the detector scores them)."""
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    frames = [archive.load(t) for t in archive.times]
    scorer = AnomalyScorer.load(V2)
    results = stream_with_novelty(scorer.score_batch(frames), [f.time for f in frames], scorer.scoring)
    assert sum(r.novelty is not None for r in results) == 24  # all but the first have a frame in reach
    scores = np.array([r.score for r in results])
    assert len(scores) == 25 and np.isfinite(scores).all()
    assert scores.max() < scorer.threshold, {
        f.time.strftime("%H:%M"): round(float(s), 2) for f, s in zip(frames, scores, strict=True)
    }
    # Each frame's heat map covers the model's grid (the reconstruction error or, where the texture term
    # carries the score, the patch map).
    assert all(r.heatmap.shape == results[0].heatmap.shape for r in results)


def test_each_shipped_set_knows_the_imagery_it_fits_real_frames_under_v2_procedural_under_v16() -> None:
    """The typical-error check tells a model set fed imagery it never learned from weather: the procedural
    simulator's autoencoder (the default set) sees every real frame far out of its domain, v2 none; the
    procedural frames sit inside the default set's domain."""
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    real = [archive.load(t) for t in archive.times]
    default, v2 = AnomalyScorer.load(), AnomalyScorer.load(V2)
    assert all(r.out_of_domain and r.domain_ratio > 10 for r in default.score_batch(real))
    assert not any(r.out_of_domain for r in v2.score_batch(real))
    sim = SceneSimulator(SimConfig(seed=5, days=8 / 96, events=False))
    procedural = list(sim.frames())
    assert not any(r.out_of_domain for r in default.score_batch(procedural))
