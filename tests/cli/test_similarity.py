"""``satwatch similarity`` end to end on tiny windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.cli import build_parser, main
from satwatch.services.frames.frame import CHANNELS, kma_filename, write_rgb_png
from satwatch.services.metric.groundtruth import GridSpec, similarity_from_paths, window_files
from satwatch.services.metric.study import write_video2image


def _window(root: Path, rng: np.random.Generator, frames: int, shape: tuple[int, int]) -> Path:
    for k in range(1, frames + 1):
        d = root / f"image_{k}"
        d.mkdir(parents=True)
        for c in CHANNELS:
            write_rgb_png(d / f"{c}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def test_help_explains_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["similarity", "--help"])
    out = capsys.readouterr().out
    for opt in ("--grid", "--bins", "--mode", "--cells", "--plot", "--cache", "--study-root", "--archive"):
        assert opt in out
    assert "Kolmogorov-Smirnov" in out


def test_study_layout_pair_cells_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    a = _window(tmp_path / "a", rng, 3, (30, 26))
    b = _window(tmp_path / "b", rng, 3, (30, 26))
    plot = tmp_path / "cells.png"
    rc = main(
        ["similarity", str(a), str(b), "--grid", "3", "--bins", "20", "--mode", "general", "--cells"]
        + ["--plot", str(plot), "--cache", str(tmp_path / "cache"), "--workers", "1"]
    )
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    expected = similarity_from_paths(window_files(a), window_files(b), GridSpec(3, 20, "general"))
    assert float(out[0]) == pytest.approx(expected, abs=1e-9)
    assert out[1].startswith("ir01: mean")
    assert len(out[2].split()) == 3  # one row of the 3 x 3 grid
    assert any("least similar" in line for line in out)
    assert plot.stat().st_size > 1000
    # Same window against itself: exactly 1.
    assert main(["similarity", str(a), str(a), "--grid", "3", "--mode", "general", "--workers", "1"]) == 0
    assert float(capsys.readouterr().out.split()[0]) == 1.0


def test_study_root_and_archive_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    root = tmp_path / "study"
    for image_id in range(1, 5):
        d = root / "images" / f"image_{image_id}"
        d.mkdir(parents=True)
        for c in CHANNELS:
            write_rgb_png(d / f"{c}.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    write_video2image(root / "video2image.txt", [[1, 2], [3, 4], [2, 3]])
    args = ["--grid", "4", "--mode", "general", "--workers", "1"]
    assert main(["similarity", "1", "3", "--study-root", str(root), *args]) == 0
    by_study = float(capsys.readouterr().out.split()[0])

    arch = tmp_path / "arch"
    arch.mkdir()
    t0 = datetime(2013, 1, 1, tzinfo=UTC)
    for image_id in range(1, 5):
        t = t0 + timedelta(minutes=15 * (image_id - 1))
        for c in CHANNELS:
            src = root / "images" / f"image_{image_id}" / f"{c}.png"
            (arch / kma_filename(c, "ea040ps", t)).write_bytes(src.read_bytes())
    # With --archive a window is named by its end time: the latest 2 frames up to 00:15, and up to 00:30.
    rc = main(
        ["similarity", "2013-01-01T00:15Z", "2013-01-01T00:30Z", "--archive", str(arch), "--window-size", "2", *args]
    )
    assert rc == 0
    by_archive = float(capsys.readouterr().out.split()[0])
    assert by_study == by_archive < 1.0  # windows 1 = [1,2] and 3 = [2,3] are the same frames as in the archive


def test_seed_mode_refuses_wrong_size_and_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    full = rng.integers(0, 256, (1300, 1500), dtype=np.uint8)  # a COMS frame: 1500 wide x 1300 high
    a = tmp_path / "a" / "image_1"
    b = tmp_path / "b" / "image_1"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    for c in CHANNELS:
        write_rgb_png(a / f"{c}.png", full)
        write_rgb_png(b / f"{c}.png", full if c != "swir" else full[:1200])
    rc = main(["similarity", str(tmp_path / "a"), str(tmp_path / "b"), "--workers", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert (
        "swir.png" in err and "1500 wide x 1200 high" in err and "only accepts COMS images 1500 wide x 1300 high" in err
    )
    # The full-size window itself is accepted in seed mode.
    assert main(["similarity", str(tmp_path / "a"), str(tmp_path / "a"), "--workers", "1"]) == 0
    assert float(capsys.readouterr().out.split()[0]) == 1.0


def test_missing_window_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similarity", str(tmp_path / "nope"), str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- the study's 25 real COMS frames (1500 wide x 1300 high, 08:30 and 11:30 missing) ---------------------

#: What the study's own program prints for the windows ending 12:00 and 13:15 at N=24, B=20, with 17 digits
#: (benchmarks/reference/study_driver.cpp; tests/services/metric/test_study_program.py recomputes it).
STUDY_PROGRAM_12_00_VS_13_15 = 0.77473918249959894


@pytest.mark.slow
def test_real_frames_by_archive_and_by_study_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from satwatch.services.frames.archive import Archive
    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    cache = ["--cache", str(tmp_path / "cache"), "--workers", "2"]
    assert main(["similarity", "--archive", str(raw), "2011-03-03T12:00Z", "2011-03-03T13:15Z", *cache]) == 0
    got = capsys.readouterr()
    by_archive = float(got.out.split()[0])
    assert by_archive == pytest.approx(STUDY_PROGRAM_12_00_VS_13_15, abs=1e-9)
    # Both windows are full by the rule (20 frames within 6 hours, spanning the missing 08:30 and 11:30).
    assert "window A ends 2011-03-03 12:00Z, starts 2011-03-03 06:45Z: 20 frames" in got.err
    assert "window B ends 2011-03-03 13:15Z, starts 2011-03-03 08:00Z: 20 frames" in got.err
    assert "part-filled" not in got.err and "aligned" not in got.err

    # The same windows as study-layout folders (image_1..image_20/{channel}.png).
    arch = Archive(raw)
    folders = []
    for name, end in (("a", "12:00"), ("b", "13:15")):
        times = arch.window(datetime.fromisoformat(f"2011-03-03T{end}+00:00"))
        for k, t in enumerate(times, start=1):
            d = tmp_path / name / f"image_{k}"
            d.mkdir(parents=True)
            for c in CHANNELS:
                (d / f"{c}.png").symlink_to(arch.files(t).paths[c])
        folders.append(str(tmp_path / name))
    assert main(["similarity", *folders, *cache, "--cells"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert float(out[0]) == by_archive
    assert out[1].startswith("ir01: mean")


def test_real_frames_part_filled_window_is_compared_on_its_latest_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.metric.groundtruth import compare_paths
    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    args = ["--archive", str(raw), "--grid", "10", "--bins", "8", "--workers", "2"]
    # Up to 08:00 the archive holds 6 frames (06:45 .. 08:00): a part-filled window against a full one.
    assert main(["similarity", "2011-03-03T08:00Z", "2011-03-03T13:15Z", *args]) == 0
    got = capsys.readouterr()
    assert "window A ends 2011-03-03 08:00Z, starts 2011-03-03 06:45Z: part-filled, 6 of 20 frames" in got.err
    assert "windows hold 6 and 20 frames: compared the latest 6 frames of each, aligned from the end" in got.err
    arch = Archive(raw)
    end_a = datetime(2011, 3, 3, 8, 0, tzinfo=UTC)
    end_b = datetime(2011, 3, 3, 13, 15, tzinfo=UTC)
    wa = [[arch.files(t).paths[c] for c in CHANNELS] for t in arch.window(end_a)]
    wb = [[arch.files(t).paths[c] for c in CHANNELS] for t in arch.window(end_b)]
    expected = compare_paths(wa, wb, GridSpec(10, 8, "seed"))
    assert (expected.frames, expected.frames_a, expected.frames_b) == (6, 6, 20)
    assert float(got.out.split()[0]) == pytest.approx(expected.similarity, abs=1e-9)
    assert expected.similarity == similarity_from_paths(wa, wb[-6:], GridSpec(10, 8, "seed"))
    # A time with no frame in the 6 hours before it: a clear error.
    assert main(["similarity", "2011-03-02T12:00Z", "2011-03-03T13:15Z", *args]) == 2
    assert "holds no complete COMS-1 frame in the 6 h up to 2011-03-02 12:00Z" in capsys.readouterr().err
