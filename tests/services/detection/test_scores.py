"""Every frame's score and terms in the alert store's scores table: the study's 25 real COMS-1 frames through
the real detector (shipped encoder, a --model-dir holding only the autoencoder), not only the alerts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from satwatch.services.config import Settings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.detector import build_detector
from satwatch.services.detection.scores import COLUMNS, FrameScore, ScoresFile, read_scores
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import shrink
from satwatch.services.models.modelcard import packaged_model_dir
from tests.helpers import shared_data


def test_every_real_frame_scored_into_the_store(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    model = tmp_path / "ae"
    model.mkdir()
    for name in ("autoencoder.onnx", "autoencoder.card.json"):
        shutil.copy(packaged_model_dir() / name, model / name)
    settings = Settings()
    settings.detector.state_dir = str(tmp_path / "state")
    settings.detector.model_dir = str(model)
    with caplog.at_level("INFO", logger="satwatch.services.models.locate"):
        detector = build_detector(settings)
    assert "has no encoder: using the shipped encoder" in caplog.text
    outcomes = [detector.process(shrink(archive.load(t))) for t in archive.times]
    detector.close()  # flush: the scores are durable once the batch is
    store = AlertStore(tmp_path / "state" / "alerts.sqlite")
    rows = store.scores("COMS-1")
    alerts = {a.window_end: a.kind for a in store.all()}
    store.close()
    assert len(rows) == len(archive.times) == 25
    assert [r.time for r in rows] == list(archive.times)
    for row, outcome in zip(rows, outcomes, strict=True):
        assert row == outcome.frame_score
        assert row.score == pytest.approx(outcome.score) and row.threshold == outcome.threshold
        assert row.pixel + row.consistency + row.lines == pytest.approx(row.score, rel=1e-5)
        assert row.alert == alerts.get(row.time, "")  # the alert the frame raised, if any


def test_scores_rows_are_idempotent_and_the_tsv_round_trips(tmp_path: Path) -> None:
    t = datetime(2024, 7, 1, 6, tzinfo=UTC)
    row = FrameScore("COMS-1", t, 5.0, 4.5, 0.5, 0.0, 3.4, "anomaly", texture=4.5)
    store = AlertStore(tmp_path / "a.sqlite")
    store.put_scores([row])
    store.put_scores([row])  # a replay rewrites, never duplicates
    assert store.scores() == [row]
    store.close()
    with ScoresFile(tmp_path / "s.tsv") as f:
        f.write([row, FrameScore("COMS-1", t, 1.0, 1.0, 0.0, 0.0, 3.4, labels="fog,dust")])
    back = read_scores(tmp_path / "s.tsv")
    assert back[0]["time"] == "2024-07-01T06:00:00Z" and back[0]["alert"] == "anomaly"
    assert back[1]["labels"] == "fog,dust" and float(back[1]["score"]) == 1.0
    assert float(back[0]["texture"]) == 4.5 and float(back[1]["texture"]) == 0.0
    with ScoresFile(tmp_path / "s.tsv") as f:  # a restarted detector continues the file
        f.write([row])
    assert len(read_scores(tmp_path / "s.tsv")) == 3
    with ScoresFile(tmp_path / "s.tsv", append=False) as f:  # an evaluation starts it afresh
        f.write([row])
    assert len(read_scores(tmp_path / "s.tsv")) == 1


def test_a_scores_table_from_before_the_texture_term_gains_its_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE scores (satellite TEXT NOT NULL, time TEXT NOT NULL, score REAL, pixel REAL, consistency REAL, "
        "lines REAL, threshold REAL, alert TEXT, PRIMARY KEY (satellite, time))"
    )
    old.execute("INSERT INTO scores VALUES ('COMS-1', '2024-07-01T06:00:00+00:00', 2.0, 2.0, 0, 0, 3.4, '')")
    old.commit()
    old.close()
    store = AlertStore(path)
    t = datetime(2024, 7, 1, 6, 15, tzinfo=UTC)
    store.put_scores([FrameScore("COMS-1", t, 5.0, 5.0, 0.0, 0.0, 3.4, "anomaly", texture=5.0, novelty=5.0)])
    rows = store.scores()
    assert [r.texture for r in rows] == [0.0, 5.0] and rows[0].score == 2.0
    assert [r.novelty for r in rows] == [0.0, 5.0], "and the novelty column"
    store.close()


def test_a_scores_file_begun_before_the_novelty_term_keeps_its_own_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A detector upgraded mid-file appends rows its header describes, rather than a column the header lacks."""
    path = tmp_path / "s.tsv"
    old = [c for c in COLUMNS if c != "novelty"]
    path.write_text("\t".join(old) + "\n")
    t = datetime(2024, 7, 1, 6, tzinfo=UTC)
    with caplog.at_level("WARNING", logger="satwatch.services.detection.scores"), ScoresFile(path) as f:
        f.write([FrameScore("COMS-1", t, 5.0, 5.0, 0.0, 0.0, 3.4, "anomaly", texture=1.0, novelty=5.0)])
    assert "without the columns ['novelty']" in caplog.text
    (row,) = read_scores(path)  # every row as long as the header
    assert list(row) == old and float(row["texture"]) == 1.0
    path.write_text("when\twhat\n")
    with pytest.raises(ValueError, match="not a scores file"):
        ScoresFile(path)


def test_a_frames_novelty_is_recorded_as_a_term() -> None:
    import numpy as np

    from satwatch.services.models.anomaly import AnomalyResult

    t, heat = datetime(2024, 7, 1, 6, tzinfo=UTC), np.zeros((2, 2), np.float32)
    row = FrameScore.of("COMS-1", t, AnomalyResult(score=6.0, heatmap=heat, texture=2.0, novelty=6.0), 4.19)
    assert row.novelty == 6.0 and row.texture == 2.0 and row.pixel == 6.0
    assert FrameScore.of("COMS-1", t, AnomalyResult(score=1.0, heatmap=heat), 4.19).novelty == 0.0
