"""The autoencoder recipe end to end on a shortened simulated default: data, candidate runs, choice, export."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from satwatch.services.models.anomaly import AnomalyScorer  # noqa: E402
from satwatch.services.training.pipeline import (  # noqa: E402
    AE_DEV_SIMS,
    AE_TRAIN_SEEDS,
    TrainOptions,
    autoencoder_dev_frames,
    autoencoder_frames,
    run_autoencoder,
)


def test_training_runs_cover_the_day_on_one_coastline(tmp_path: Path) -> None:
    train, valid, desc = autoencoder_frames(None, tmp_path, scale=0.05)
    assert len(train) == len(AE_TRAIN_SEEDS)  # one frame (0.0125 d) per run at this scale
    assert {t.hour for t in train.times} == {0, 6, 12, 18} and {t.hour for t in valid.times} == {3, 9, 15, 21}
    assert len({t.month for t in train.times}) == 12 and "coastline of seed 7" in desc


def test_candidates_are_chosen_on_the_development_periods(tmp_path: Path) -> None:
    opts = TrainOptions(out=tmp_path / "ae", epochs=1, batch_size=16, progress=False)
    card = run_autoencoder(opts, None, tmp_path / "cache", baseline=False, scale=0.12, candidates=2)
    cand = card.metrics["conditioned"]["candidates"]
    assert [r["seed"] for r in cand["runs"]] == [0, 1]
    assert all(0.0 <= r["dev_roc_auc"] <= 1.0 for r in cand["runs"])  # the shortened periods hold events
    assert str(AE_DEV_SIMS[0][0]) in cand["development_periods"]
    assert (tmp_path / "ae" / "candidate-0" / "autoencoder.ckpt").is_file()
    assert (tmp_path / "ae" / "candidate-1" / "autoencoder.ckpt").is_file()
    outputs = ["reconstruction", "error", "consistency", "lines", "texture", "texture_map"]
    assert [o.name for o in card.outputs] == outputs
    scorer = AnomalyScorer.load(tmp_path / "ae")  # verified against its card
    assert scorer.threshold == pytest.approx(card.metrics["conditioned"]["threshold"])
    assert len(autoencoder_dev_frames(tmp_path / "cache", scale=0.12)) > 0
    # Resuming from that folder re-exports the finished runs as they are and trains only the new third one.
    more = TrainOptions(out=tmp_path / "ae3", epochs=1, batch_size=16, progress=False, resume=tmp_path / "ae")
    card3 = run_autoencoder(more, None, tmp_path / "cache", baseline=False, scale=0.12, candidates=3)
    runs3 = card3.metrics["conditioned"]["candidates"]["runs"]
    assert [r["dev_roc_auc"] for r in runs3[:2]] == pytest.approx([r["dev_roc_auc"] for r in cand["runs"]])
    assert all((tmp_path / "ae3" / f"candidate-{i}" / "autoencoder.ckpt").is_file() for i in range(3))
