"""``satwatch nowcast`` on the study's real COMS frames and on a small simulated archive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from satwatch.cli import build_parser, main
from tests.helpers import shared_data

pytest.importorskip("pysteps", reason="the [nowcast] extra is not installed")


def test_help_explains_every_option() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for action in sub.choices["nowcast"]._actions:  # type: ignore[attr-defined]
        assert action.help, f"nowcast {action.option_strings} lacks help"


def test_real_frames_verify_the_baselines_and_say_why_analogs_are_missing(capsys: pytest.CaptureFixture[str]) -> None:
    archive = shared_data("study", "raw_images")
    argv = ["nowcast", "--archive", str(archive), "--time", "2011-03-03T12:30Z", "--hours", "0.75"]
    assert main([*argv, "--methods", "persistence,optical_flow,analog", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["analogs"] == [] and "analog" in out["skipped"]
    scores = {(s["method"], s["lead_minutes"]): s for s in out["scores"]}
    assert sorted(scores) == [(m, t) for m in ("optical_flow", "persistence") for t in (15, 30, 45)]
    for s in scores.values():
        assert s["cases"] == 1 and 0 < s["csi"] < 1 and 0 < s["mae_k"] < 30
    # 6.5 h of real weather: the flow moved the clouds, so its forecast is not persistence's
    assert scores[("optical_flow", 45)]["mae_k"] != scores[("persistence", 45)]["mae_k"]


def test_simulated_archive_issues_analogs_prints_the_table_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = pytest.importorskip("satwatch.services.simulator.scene")
    pytest.importorskip("matplotlib")
    folder = tmp_path / "archive"
    sim.write_archive(sim.SimConfig(seed=5, width=120, height=96, days=1.0), folder, progress=False)
    plot = tmp_path / "nowcast.png"
    argv = ["nowcast", "--archive", str(folder), "--time", "2024-07-01T20:00Z", "--to", "2024-07-01T21:00Z"]
    assert main([*argv, "--hours", "1", "--k", "2", "--cells", "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "2 issue time(s)" in text
    assert text.count("analog (the exact metric): window ending") == 2
    for name in ("persistence", "optical_flow", "analog", "analog_change", "analog_cells"):
        assert name in text
    assert "  1:00     2 |" in text  # two issue times verified at one hour
    assert plot.stat().st_size > 10_000 and (tmp_path / "nowcast-skill.png").stat().st_size > 10_000


def test_a_misspelt_method_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    archive = shared_data("study", "raw_images")
    argv = ["nowcast", "--archive", str(archive), "--time", "2011-03-03T12:30Z", "--methods", "persistance"]
    assert main(argv) == 2
    assert "unknown nowcast method 'persistance'" in capsys.readouterr().err


def test_index_finds_analogs_whose_following_hours_precede_the_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli.test_index import make_sim_archive, make_tiny_encoder

    model, archive = make_tiny_encoder(tmp_path / "model"), make_sim_archive(tmp_path / "archive", days=1.0)
    index = tmp_path / "index"
    assert (
        main(["index", "build", "--archive", str(archive), "--out", str(index), "--model-dir", str(model), "--quiet"])
        == 0
    )
    capsys.readouterr()
    argv = ["nowcast", "--archive", str(archive), "--index", str(index), "--model-dir", str(model)]
    argv += ["--time", "2024-07-01T21:00Z", "--k", "2", "--hours", "1", "--methods", "persistence,analog", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    window_start = datetime(2024, 7, 1, 16, 15, tzinfo=UTC)  # 20 frames at 15 min ending 21:00
    assert 1 <= len(out["analogs"]) <= 2 and "analog" not in out["skipped"]
    for a in out["analogs"]:
        assert datetime.fromisoformat(a["end"]) + timedelta(hours=1) < window_start
        assert 0 < a["similarity"] <= 1
    assert {s["method"] for s in out["scores"]} == {"persistence", "analog"}


def test_blend_weights_from_a_file_are_the_ones_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--blend FILE: zero weights at every lead make analog_blend persistence, score for score."""
    sim = pytest.importorskip("satwatch.services.simulator.scene")
    from satwatch.services.nowcast.blend import BlendWeights

    folder = tmp_path / "archive"
    sim.write_archive(sim.SimConfig(seed=5, width=120, height=96, days=1.0), folder, progress=False)
    weights = tmp_path / "blend.json"
    weights.write_text(BlendWeights({15: (0.0, 0.0)}, "zero").to_json())
    argv = ["nowcast", "--archive", str(folder), "--time", "2024-07-01T20:00Z", "--hours", "0.5", "--k", "2"]
    assert main([*argv, "--methods", "persistence,analog_blend", "--blend", str(weights), "--json"]) == 0
    scores = {(s["method"], s["lead_minutes"]): s for s in json.loads(capsys.readouterr().out)["scores"]}
    for lead in (15, 30):
        assert scores[("analog_blend", lead)]["mae_k"] == scores[("persistence", lead)]["mae_k"]
