"""``satwatch triplets`` smoke test on a tiny archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.cli import main
from satwatch.services.frames.frame import CHANNELS, kma_filename, write_rgb_png
from satwatch.services.metric.study import read_triplets, read_video2image


def test_triplets_command_writes_study_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = tmp_path / "arch"
    arch.mkdir()
    rng = np.random.default_rng(0)
    t0 = datetime(2013, 1, 1, tzinfo=UTC)
    for k in range(30):
        for c in CHANNELS:
            img = (rng.integers(0, 60, (18, 16)) + 6 * k) % 256
            write_rgb_png(arch / kma_filename(c, "ea040ps", t0 + timedelta(minutes=15 * k)), img.astype(np.uint8))
    out = tmp_path / "study"
    rc = main(
        ["triplets", "--archive", str(arch), "--out", str(out), "--grid", "4", "--mode", "general"]
        + ["--window", "3", "--workers", "1", "--export-images", "--quiet"]
    )
    assert rc == 0
    assert "28 windows of 3 frames within 6 h over 30 frames" in capsys.readouterr().out
    assert len(read_video2image(out / "video2image.txt")) == 28
    assert (out / "images" / "image_30" / "wv.png").is_file()
    total = sum(len(read_triplets(out / f"{s}.txt")) for s in ("train", "valid", "test"))
    assert total > 0


def test_triplets_on_the_real_frames_follow_the_window_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.frames.profiles import get_profile
    from satwatch.services.frames.windows import windows_over
    from satwatch.services.metric.groundtruth import GridSpec, similarity_from_paths
    from satwatch.services.metric.study import study_window_files
    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    arch = Archive(raw)
    coms = get_profile("COMS-1")
    # Full COMS-1 windows (20 frames within 6 hours): the six that end 12:00 .. 13:15, each across a gap.
    out = tmp_path / "full"
    assert main(["triplets", "--archive", str(raw), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert "6 windows of 20 frames within 6 h over 25 frames" in capsys.readouterr().out
    v2i = read_video2image(out / "video2image.txt")
    expected = windows_over(arch.times, coms.window_frames, coms.window_span)
    frames = [line.split("\t") for line in (out / "frames.txt").read_text().splitlines()]
    when = {int(i): datetime.fromisoformat(t) for i, t in frames}
    assert [[when[i] for i in w] for w in v2i] == expected

    # Windows of 4 frames ending at every 4th frame: six windows sharing no frame, so the test split gets triplets
    # whose similarities are the exact metric of the study's program on the real frames.
    out = tmp_path / "short"
    rc = main(
        ["triplets", "--archive", str(raw), "--out", str(out), "--window", "4", "--stride", "4", "--grid", "10"]
        + ["--bins", "8", "--workers", "2", "--quiet", "--export-images"]
    )
    assert rc == 0
    assert "6 windows of 4 frames within 6 h over 24 frames" in capsys.readouterr().out
    v2i = read_video2image(out / "video2image.txt")
    assert v2i == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20], [21, 22, 23, 24]]
    trips = read_triplets(out / "test.txt")
    assert trips
    for t in trips:
        wx, wy = study_window_files(out, t.x, v2i), study_window_files(out, t.y, v2i)
        assert similarity_from_paths(wx, wy, GridSpec(10, 8, "seed")) == pytest.approx(t.s_xy, abs=5e-7)
        assert t.s_xy > t.s_xz
