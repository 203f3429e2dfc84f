"""Training the autoencoder on a researcher's archive: their labels, candidates chosen on the archive's own
labelled development period, and nothing evaluated on (or simulated for) the simulator's periods."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from satwatch.services.models.anomaly import AnomalyScorer  # noqa: E402
from satwatch.services.simulator.scene import SimConfig, write_archive  # noqa: E402
from satwatch.services.training.labels import load_labels  # noqa: E402
from satwatch.services.training.pipeline import TrainOptions, run_autoencoder  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """1.5 simulated days written as PNGs; the labels moved out of the archive into a TSV without regions."""
    root = tmp_path_factory.mktemp("archive")
    write_archive(SimConfig(seed=4001, days=1.5, geography=7), root / "a", progress=False)
    events = load_labels(root / "a" / "labels.json")
    (root / "a" / "labels.json").unlink()
    tsv = root / "events.tsv"
    tsv.write_text("".join(f"{e.kind}\t{e.start:%Y-%m-%dT%H:%MZ}\t{e.end:%Y-%m-%dT%H:%MZ}\n" for e in events))
    assert len({e.kind for e in events}) >= 2
    return root / "a", tsv


def test_candidates_chosen_on_the_archives_own_labels(archive: tuple[Path, Path], tmp_path: Path) -> None:
    root, tsv = archive
    cache = tmp_path / "cache"
    opts = TrainOptions(out=tmp_path / "ae", epochs=1, batch_size=16, progress=False)
    card = run_autoencoder(opts, root, cache, baseline=False, candidates=2, labels=tsv)
    assert not cache.exists()  # nothing simulated: no simulated test or development period
    assert "test_data" not in card.metrics
    assert "not held out" in card.metrics["development_data"] and root.name in card.metrics["development_data"]
    cand = card.metrics["conditioned"]["candidates"]
    assert [r["seed"] for r in cand["runs"]] == [0, 1]
    assert all(0.0 <= r["dev_roc_auc"] <= 1.0 for r in cand["runs"])
    assert "labelled event frames" in cand["development_periods"]
    cond = card.metrics["conditioned"]
    assert cond["evaluated_on"] == "development" and cond["events"] >= 2 and set(cond["per_kind"])
    cal = card.metrics["calibration"]
    assert "every 5th hour" in cal["method"] and cal["frames"] > 0 and cal["hours_covered"] >= 4
    assert "labelled event frames never trained on" in card.training_data
    scorer = AnomalyScorer.load(tmp_path / "ae")
    assert scorer.threshold == pytest.approx(cond["threshold"])


def test_candidates_need_labelled_events(archive: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = archive
    with pytest.raises(ValueError, match="no labelled event: give --labels"):
        run_autoencoder(TrainOptions(out=tmp_path / "ae", epochs=1, progress=False), root, tmp_path, candidates=2)
