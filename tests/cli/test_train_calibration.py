"""``satwatch train autoencoder --calibration-archive DIR``: the scoring's standardisation and the threshold come
from whole normal streams the network never trained on, in the training run and in the ``--novelty`` step;
without the option the card is calibrated on the training archives' held-out days as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from satwatch.cli import main  # noqa: E402
from satwatch.services.models.anomaly import AnomalyScorer, aggregate_score, stream_with_novelty  # noqa: E402
from satwatch.services.models.modelcard import packaged_model_dir  # noqa: E402
from satwatch.services.training.autoencoder import calibrate_threshold  # noqa: E402
from satwatch.services.training.data import load_archive  # noqa: E402
from satwatch.services.training.pipeline import load_archives, split_archives  # noqa: E402
from tests.helpers import shared_data  # noqa: E402


def _simulate(out: Path, seed: int, start: str, days: str, *scene: str) -> Path:
    argv = ["simulate", "--days", days, "--seed", str(seed), "--start", start, "--no-events", "--quiet"]
    assert main([*argv, *scene, "--out", str(out)]) == 0
    return out


def _halves(tmp_path: Path, *scene: str) -> list[Path]:
    """Two half-day streams of other weather, one from midnight and one from noon: every hour between them."""
    return [
        _simulate(tmp_path / "cal-a", 31, "2024-09-01T00:00Z", "0.5", *scene),
        _simulate(tmp_path / "cal-b", 32, "2024-11-01T12:00Z", "0.5", *scene),
    ]


def test_training_calibrates_on_the_calibration_archives(tmp_path: Path) -> None:
    train = _simulate(tmp_path / "train", 11, "2024-07-01T00:00Z", "1")
    cal = _halves(tmp_path)
    out = tmp_path / "ae"
    argv = ["train", "autoencoder", "--archive", str(train), "--out", str(out), "--epochs", "1", "--batch-size", "16"]
    extra = [a for p in cal for a in ("--calibration-archive", str(p))]
    assert main([*argv, *extra, "--no-baseline", "--no-progress"]) == 0
    scorer = AnomalyScorer.load(out)
    card = scorer.card
    c = card.metrics["calibration"]
    assert [a["archive"] for a in c["archives"]] == ["cal-a", "cal-b"]
    assert c["frames"] == 96 and c["hours_covered"] == 24 and "never trained on" in c["method"]
    # The training archive's held-out days only stopped training early, and the card says so.
    assert c["early_stopping"] == split_archives(load_archives(train, progress=False)).calibration
    assert "never trained on" in card.training_data
    # The threshold is what the calibration streams' frames imply (the exported graph, as the detector scores).
    frames = [fs.frame(i) for fs in (load_archive(p, progress=False) for p in cal) for i in range(len(fs))]
    scores = np.array([r.score for r in scorer.score_batch(frames)])
    assert scorer.threshold == pytest.approx(calibrate_threshold(scores), rel=1e-4)
    # ... and so are the centres: the pixel score's mean over those frames.
    pix = aggregate_score(scorer.outputs(frames, [scorer.scoring.error_output])[0], scorer.scoring.fraction)
    assert scorer.scoring.pixel_center == pytest.approx(float(pix.mean()), rel=1e-4)


def test_without_the_option_the_card_is_calibrated_as_before(tmp_path: Path) -> None:
    train = _simulate(tmp_path / "train", 11, "2024-07-01T00:00Z", "1")
    out = tmp_path / "ae"
    argv = ["train", "autoencoder", "--archive", str(train), "--out", str(out), "--epochs", "1", "--batch-size", "16"]
    assert main([*argv, "--no-baseline", "--no-progress"]) == 0
    card = AnomalyScorer.load(out).card
    split = split_archives(load_archives(train, progress=False))
    assert card.metrics["calibration"] == split.calibration
    assert card.training_data == split.desc


def test_novelty_step_recalibrates_on_the_calibration_archives(tmp_path: Path) -> None:
    shared_data("study", "raw_images")  # the texture scene takes its clouds from the real frames
    texture = ("--scene", "texture")
    trained = _simulate(tmp_path / "trained", 5, "2024-05-01T00:00Z", "0.25", *texture)
    cal = _halves(tmp_path, *texture)
    v2, out = packaged_model_dir() / "autoencoder-v2", tmp_path / "set"
    argv = ["train", "autoencoder", "--archive", str(trained), "--novelty", str(v2), "--out", str(out)]
    extra = [a for p in cal for a in ("--calibration-archive", str(p))]
    assert main([*argv, *extra, "--no-progress"]) == 0
    scorer, shipped = AnomalyScorer.load(out), AnomalyScorer.load(v2)
    sc, card = scorer.scoring, scorer.card
    c = card.metrics["calibration"]
    assert [a["archive"] for a in c["archives"]] == ["cal-a", "cal-b"] and c["trained_on"] == "archive trained"
    assert c["replaced"]["calibration"] == shipped.card.metrics["calibration"]
    assert c["replaced"]["texture_center"] == shipped.scoring.texture_center != sc.texture_center
    assert card.metrics["novelty_calibration"]["archive"].startswith("archives cal-a, cal-b: 48 frames")
    sets = [load_archive(p, progress=False) for p in cal]
    # The texture term's centre and spread: the raw texture output over the calibration frames.
    raw = np.concatenate(
        [scorer.outputs([fs.frame(i) for i in range(len(fs))], [str(sc.texture_output)])[0] for fs in sets]
    )
    assert sc.texture_center == pytest.approx(float(raw.mean()), rel=1e-5)
    assert sc.texture_scale == pytest.approx(float(raw.std()), rel=1e-5)
    # The threshold: each calibration archive scored as its own stream, with the novelty term in time order.
    scores, first = [], []
    for fs in sets:
        results = stream_with_novelty(scorer.score_batch([fs.frame(i) for i in range(len(fs))]), fs.times, sc)
        first.append(results[0].novelty)
        scores += [r.score for r in results]
    assert first == [None, None] and card.metrics["novelty_calibration"]["frames"] == 96
    assert scorer.threshold == pytest.approx(calibrate_threshold(np.array(scores)), rel=1e-6)


def test_calibration_archives_must_cover_every_hour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained = _simulate(tmp_path / "trained", 5, "2024-05-01T00:00Z", "0.25")
    short = _simulate(tmp_path / "short", 7, "2024-05-09T00:00Z", "0.25")
    v2 = packaged_model_dir() / "autoencoder-v2"
    argv = ["train", "autoencoder", "--archive", str(trained), "--novelty", str(v2), "--calibration-archive"]
    assert main([*argv, str(short), "--out", str(tmp_path / "set"), "--no-progress"]) == 2
    assert "cover 6 of 24 hours" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()
