"""``satwatch detect --scores-out``: every frame's score and terms, as the store's scores table holds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from satwatch.cli import main
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.scores import COLUMNS, read_scores
from satwatch.topics import ensure_topics
from tests.consumers.test_detector import STREAM, publish
from tests.consumers.test_real_frames import _config


def test_detect_writes_every_frames_scores(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from satwatch.services.simulator.scene import SceneSimulator

    frames = list(SceneSimulator(STREAM).frames())
    ensure_topics(settings.kafka)
    publish(settings, frames)
    config = _config(settings, tmp_path / "satwatch.toml")
    state, scores = tmp_path / "state", tmp_path / "scores.tsv"
    argv = ["detect", "--config", str(config), "--state-dir", str(state), "--metrics-port", "0", "--group-id", "sc"]
    assert main([*argv, "--scores-out", str(scores), "--exit-when-idle", "8"]) == 0
    rows = read_scores(scores)
    assert list(rows[0]) == list(COLUMNS)
    assert [r["time"] for r in rows] == [f"{f.time:%Y-%m-%dT%H:%M:%SZ}" for f in frames]
    store = AlertStore(state / "alerts.sqlite")
    stored, alerts = store.scores(), store.all()
    store.close()
    assert len(stored) == len(frames)
    for row, db in zip(rows, stored, strict=True):
        assert float(row["score"]) == pytest.approx(db.score, rel=1e-6) and row["alert"] == db.alert
        assert float(row["pixel"]) + float(row["consistency"]) + float(row["lines"]) == pytest.approx(db.score, 1e-4)
    assert alerts and {a.window_end for a in alerts} == {r.time for r in stored if r.alert}
    weather = sum(a.kind == "anomaly" for a in alerts)
    summary = (
        f"stopped: {len(frames)} frames processed, 0 refused; {len(alerts)} new alerts published ({weather} weather, "
        f"{len(alerts) - weather} to operators)"
    )
    assert summary in capsys.readouterr().out, "the run ends saying what it did"
