"""Tests of ``satwatch search`` on a tiny simulated archive indexed with a tiny stand-in encoder."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from satwatch.cli import build_parser, main
from tests.cli.test_index import make_sim_archive, make_tiny_encoder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("search_cli")
    paths = {"model": make_tiny_encoder(root / "model"), "archive": make_sim_archive(root / "archive", days=1.0)}
    paths["index"] = root / "index"
    argv = ["index", "build", "--archive", str(paths["archive"]), "--out", str(paths["index"])]
    assert main([*argv, "--model-dir", str(paths["model"]), "--quiet"]) == 0
    return paths


def run_json(built: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    argv = ["search", "--index", str(built["index"]), "--archive", str(built["archive"])]
    assert main([*argv, "--model-dir", str(built["model"]), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_explains_every_option() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for action in sub.choices["search"]._actions:  # type: ignore[attr-defined]
        assert action.help, f"search {action.option_strings} lacks help"


def test_time_query_excludes_itself_and_reranks(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    t = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    out = run_json(built, capsys, "--time", "2024-07-01T12:00Z", "--k", "5", "--rerank", "30")
    assert out["query"] == "COMS-1:20240701T1200Z"
    matches = out["matches"]
    assert len(matches) == 5
    query_start = t - timedelta(minutes=15 * 19)
    for m in matches:
        start, end = datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"])
        assert end < query_start or start > t  # no window sharing a frame with the query
        assert 0.0 <= m["similarity"] <= 1.0 and m["distance"] >= 0.0
    sims = [m["similarity"] for m in matches]
    assert sims == sorted(sims, reverse=True)


def test_embedding_order_without_rerank(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(built, capsys, "--time", "202407011200", "--k", "4", "--rerank", "0")
    d = [m["distance"] for m in out["matches"]]
    assert len(d) == 4 and d == sorted(d) and all(m["similarity"] is None for m in out["matches"])


def test_filters_and_recent_exclusion(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--k", "50", "--exclude-recent-hours", "12")
    cut = datetime(2024, 7, 1, 11, 45, tzinfo=UTC)
    assert out["matches"] and all(datetime.fromisoformat(m["end"]) <= cut for m in out["matches"])
    out = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--months", "1,2")
    assert out["matches"] == []
    out = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--to", "2024-07-01T08:00Z", "--rerank", "0")
    assert out["matches"] and all(datetime.fromisoformat(m["end"]) <= cut for m in out["matches"])


def test_window_folder_query_and_plot(
    built: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A folder holding 20 frames of the archive: the top match by exact similarity is that very window.
    from satwatch.services.frames.archive import Archive

    archive = Archive(built["archive"])
    times = archive.times[30:50]
    folder = tmp_path / "query"
    folder.mkdir()
    for t in times:
        for p in archive.files(t).paths.values():
            shutil.copy(p, folder / p.name)
    out = run_json(built, capsys, "--window", str(folder), "--k", "3")
    assert out["matches"] and all(
        datetime.fromisoformat(m["end"]) < times[0] or datetime.fromisoformat(m["start"]) > times[-1]
        for m in out["matches"]
    )
    png = tmp_path / "matches.png"
    argv = ["search", "--index", str(built["index"]), "--archive", str(built["archive"]), "--model-dir"]
    assert main([*argv, str(built["model"]), "--time", "2024-07-01T18:00Z", "--k", "3", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "rank" in text and "2024-07-0" in text and png.stat().st_size > 1000
    from PIL import Image

    with Image.open(png) as im:
        assert im.width > im.height > 100  # 4 rows (query + 3 matches), 10 frames each


def test_unknown_time_is_a_clear_error(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["search", "--index", str(built["index"]), "--archive", str(built["archive"]), "--model-dir"]
    assert main([*argv, str(built["model"]), "--time", "2024-07-01T12:07Z"]) == 2
    err = capsys.readouterr().err
    assert "no complete frame" in err and "2024-07-01T12:00Z" in err
    assert main([*argv, str(built["model"]), "--time", "2024-07-01T00:30Z"]) == 2  # 3 frames: too few to search
