"""Tests of ``satwatch search`` on a tiny simulated archive indexed with a tiny stand-in encoder, and on the
study's real COMS frames indexed with the shipped encoder."""

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


def test_time_query_answers_with_past_events_and_what_followed(
    built: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from satwatch.services.frames.archive import Archive

    archive = Archive(built["archive"])
    t = datetime(2024, 7, 1, 23, 45, tzinfo=UTC)
    out = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--k", "5", "--rerank", "30")
    assert out["query"] == "COMS-1:20240701T2345Z"
    matches = out["matches"]
    query_start = t - timedelta(minutes=15 * 19)
    spans = [(datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"])) for m in matches]
    # 19 hours of windows before the query's first frame hold a few events, never more than the k asked for.
    assert 2 <= len(matches) <= 5
    assert all(end < query_start for _, end in spans)  # ended before the query began: no future, no self
    assert all(b[1] < a[0] or a[1] < b[0] for i, a in enumerate(spans) for b in spans[i + 1 :])  # one per event
    for m, (_, end) in zip(matches, spans, strict=True):
        assert 0.0 <= m["similarity"] <= 1.0 and m["distance"] >= 0.0
        following = [datetime.fromisoformat(f) for f in m["following"]]
        assert following == archive.following(end, timedelta(hours=6)) and following
        assert end < following[0] and following[-1] <= end + timedelta(hours=6)
    sims = [m["similarity"] for m in matches]
    assert sims == sorted(sims, reverse=True)
    # The defaults turned off: later windows (still never the query's own frames), every window unfolded.
    later = run_json(built, capsys, "--time", "2024-07-01T12:00Z", "--k", "5", "--include-later")
    assert any(datetime.fromisoformat(m["start"]) > datetime(2024, 7, 1, 12, tzinfo=UTC) for m in later["matches"])
    every = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--k", "5", "--include-overlapping")
    assert len(every["matches"]) == 5
    none = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--k", "2", "--following-hours", "0")
    assert all(m["following"] == [] for m in none["matches"])


def test_embedding_order_without_rerank(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(built, capsys, "--time", "202407011200", "--k", "4", "--rerank", "0", "--include-overlapping")
    d = [m["distance"] for m in out["matches"]]
    assert len(d) == 4 and d == sorted(d) and all(m["similarity"] is None for m in out["matches"])


def test_season_filter(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # One day of July: within 30 days of the query's time of year every event stays; within 0.4 days (9.6 h
    # of the year's cycle) only events ending since 14:09 do. Years apart is tested on the index itself.
    near = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--season-days", "30")
    plain = run_json(built, capsys, "--time", "2024-07-01T23:45Z")
    assert near["matches"] == plain["matches"] and near["matches"]
    tight = run_json(built, capsys, "--time", "2024-07-01T23:45Z", "--season-days", "0.4", "--include-overlapping")
    ends = [datetime.fromisoformat(m["end"]) for m in tight["matches"]]
    assert ends and all(e >= datetime(2024, 7, 1, 14, 9, tzinfo=UTC) for e in ends)
    assert min(datetime.fromisoformat(m["end"]) for m in plain["matches"]) < min(ends)


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
    assert "then 24 frames in 6 h:" in text
    from PIL import Image

    with Image.open(png) as im:
        # A row for the query and one per event (at most 3): 6 window frames, then 6 that followed, 188 px each.
        assert im.width >= 12 * 188
        assert 2 * 200 <= im.height <= 4 * 260


def test_unknown_time_is_a_clear_error(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["search", "--index", str(built["index"]), "--archive", str(built["archive"]), "--model-dir"]
    assert main([*argv, str(built["model"]), "--time", "2024-07-01T12:07Z"]) == 2
    err = capsys.readouterr().err
    assert "no complete frame" in err and "2024-07-01T12:00Z" in err
    assert main([*argv, str(built["model"]), "--time", "2024-07-01T00:30Z"]) == 2  # 3 frames: too few to search


REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "study" / "raw_images"


@pytest.mark.skipif(not REAL.is_dir(), reason="the study's real frames are not here")
def test_real_frames_event_and_what_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The study's 25 real COMS frames (08:30 and 11:30 missing), indexed by our own build with the shipped
    encoder: the query ending 13:15 began at 08:00, so the only past event is the windows ending 07:30-07:45,
    folded into one, and what followed it is every real frame after 07:45 within 6 hours, gaps included."""
    from satwatch.services.frames.archive import Archive

    index = tmp_path / "index"
    assert main(["index", "build", "--archive", str(REAL), "--out", str(index), "--min-frames", "4", "--quiet"]) == 0
    capsys.readouterr()
    argv = ["search", "--archive", str(REAL), "--index", str(index), "--time", "2011-03-03T13:15Z", "--json"]
    assert main(argv) == 0
    matches = json.loads(capsys.readouterr().out)["matches"]
    assert len(matches) == 1
    (m,) = matches
    assert m["end"] == "2011-03-03T07:45:00+00:00" and 0.0 < m["similarity"] < 1.0
    archive = Archive(REAL)
    after = [t.isoformat() for t in archive.times if datetime(2011, 3, 3, 7, 45, tzinfo=UTC) < t]
    assert m["following"] == after and len(after) == 20
    assert "2011-03-03T08:30:00+00:00" not in m["following"]  # missing in the archive, so not claimed
    png = tmp_path / "real.png"
    assert main([*argv[:-1], "--plot", str(png)]) == 0
    assert png.stat().st_size > 20_000
