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
    assert "28 windows over 30 frames" in capsys.readouterr().out
    assert len(read_video2image(out / "video2image.txt")) == 28
    assert (out / "images" / "image_30" / "wv.png").is_file()
    total = sum(len(read_triplets(out / f"{s}.txt")) for s in ("train", "valid", "test"))
    assert total > 0
