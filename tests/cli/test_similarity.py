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
    rc = main(
        ["similarity", "2013-01-01T00:00Z", "2013-01-01T00:15Z", "--archive", str(arch), "--window-size", "2", *args]
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
