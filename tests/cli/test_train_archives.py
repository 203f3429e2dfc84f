"""``satwatch train autoencoder --archive A --archive B``: several streams train one set, each archive holds out
its own calibration days, and ``--novelty`` calibrates over the same archives, each scored as its own stream."""

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


def _simulate(out: Path, seed: int, start: str, days: str, *scene: str) -> Path:
    argv = ["simulate", "--days", days, "--seed", str(seed), "--start", start, "--no-events", "--quiet"]
    assert main([*argv, *scene, "--out", str(out)]) == 0
    return out


def _held(archive: Path) -> int:
    fs = load_archive(archive, progress=False)
    held, _ = calibration_split(fs.times)
    return int((held & fs.normal()).sum())


def test_several_archives_train_one_autoencoder(tmp_path: Path) -> None:
    july = _simulate(tmp_path / "july", 11, "2024-07-01T00:00Z", "1")
    march = _simulate(tmp_path / "march", 12, "2024-03-01T06:00Z", "1")
    out = tmp_path / "ae"
    argv = ["train", "autoencoder", "--archive", str(july), "--archive", str(march), "--out", str(out)]
    assert main([*argv, "--epochs", "1", "--batch-size", "16", "--no-baseline", "--no-progress"]) == 0
    card = AnomalyScorer.load(out).card
    cal = card.metrics["calibration"]
    assert [a["archive"] for a in cal["archives"]] == ["march", "july"]
    assert [a["frames"] for a in cal["archives"]] == [_held(march), _held(july)]
    assert cal["frames"] == _held(march) + _held(july) and "each of the 2 archives" in cal["method"]
    assert card.training_data.startswith("archives march, july: 192 frames")


def test_the_encoder_takes_one_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert main(["train", "encoder", "--archive", str(a), "--archive", str(b), "--out", str(tmp_path / "o")]) == 2
    assert "--extra-archive" in capsys.readouterr().err


def test_novelty_calibrates_over_the_same_archives_each_its_own_stream(tmp_path: Path) -> None:
    shared_data("study", "raw_images")  # the texture scene takes its clouds from the real frames
    texture = ("--scene", "texture")
    may = _simulate(tmp_path / "may", 5, "2024-05-01T00:00Z", "0.25", *texture)
    june = _simulate(tmp_path / "june", 6, "2024-06-01T03:00Z", "0.25", *texture)
    v2, out = packaged_model_dir() / "autoencoder-v2", tmp_path / "set"
    argv = ["train", "autoencoder", "--archive", str(june), "--archive", str(may), "--novelty", str(v2)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    scorer = AnomalyScorer.load(out)
    sc, cal = scorer.scoring, scorer.card.metrics["novelty_calibration"]
    assert cal["archive"].startswith("archives june, may: 24 frames") and "in each of the 2 archives" in cal["method"]
    scores, held, first = [], [], []
    for archive in (june, may):
        fs = load_archive(archive, progress=False)
        results = stream_with_novelty(scorer.score_batch([fs.frame(i) for i in range(len(fs))]), fs.times, sc)
        first.append(results[0].novelty)  # a stream's first frame has nothing before it in its own archive
        scores += [r.score for r in results]
        held.append(calibration_split(fs.times)[0])
    mask = np.concatenate(held)
    assert first == [None, None] and cal["frames"] == int(mask.sum()) > 0
    assert scorer.threshold == pytest.approx(calibrate_threshold(np.array(scores)[mask]), rel=1e-6)
