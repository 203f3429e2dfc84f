"""The study's own ground-truth program, built at test time, and study-layout windows cut from real frames.

Shared by the tests that compare satwatch's seed mode with the program. The program's sources stay where they
are (``../shared/data/study/reference``); ``benchmarks/reference/study_driver.cpp`` includes its ``main.cpp``
unchanged (its ``main`` renamed) and prints results with 17 significant digits.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.profiles import get_profile
from satwatch.services.frames.windows import windows_over
from tests.helpers import shared_data

REPO = Path(__file__).resolve().parents[3]
DRIVER_CPP = REPO / "benchmarks" / "reference" / "study_driver.cpp"


@dataclass(frozen=True)
class StudyProgram:
    """``run``: the study's main.cpp as published; ``driver``: the same code printing full precision."""

    run: Path
    driver: Path

    def window(self, a: Path, b: Path, n: int, bins: int, frames: int = 20) -> float:
        return self._number("window", a, b, n, bins, frames)

    def image(self, a: Path, b: Path, n: int, bins: int) -> float:
        """Sum over the N x N cells of 1 - D for one image pair (the study's ``get_image_sim``)."""
        return self._number("image", a, b, n, bins)

    def anysize(self, a: Path, b: Path, n: int, bins: int) -> float:
        """``Similarity::compute_similarity`` on images of any size (main.cpp's size check skipped)."""
        return self._number("anysize", a, b, n, bins)

    def _number(self, mode: str, *args: object) -> float:
        out = subprocess.run([str(self.driver), mode, *map(str, args)], check=True, capture_output=True, text=True)
        return float(out.stdout.split()[-1])


def build_study_program(out: Path, *, published: bool = True) -> StudyProgram:
    """Compile the driver (and with ``published`` the study's main.cpp as it is) with g++ -O2 into ``out``;
    skips when g++ or the study's data is absent."""
    if shutil.which("g++") is None:
        pytest.skip("needs g++ to build the study's program")
    ref = shared_data("study", "reference")
    run, driver = out / "run", out / "driver"
    if published:
        subprocess.run(["g++", "-O2", "-o", str(run), str(ref / "main.cpp")], check=True)
    subprocess.run(["g++", "-O2", "-I", str(ref), "-o", str(driver), str(DRIVER_CPP)], check=True)
    return StudyProgram(run, driver)


def real_archive() -> Archive:
    """The study's 25 real COMS-1 frames (1500 wide x 1300 high, two times missing)."""
    return Archive(shared_data("study", "raw_images"), "COMS-1")


def real_windows(archive: Archive) -> list[list[datetime]]:
    """Every full window the one window rule cuts from the real frames (20 frames within 6 hours)."""
    p = get_profile("COMS-1")
    return windows_over(archive.times, p.window_frames, p.window_span)


def study_folder(archive: Archive, times: list[datetime], out: Path) -> Path:
    """A study-layout window ``out/image_1..image_K/{channel}.png`` of symlinks to the archive's files."""
    for k, t in enumerate(times, start=1):
        d = out / f"image_{k}"
        d.mkdir(parents=True, exist_ok=True)
        for c in archive.channels:
            (d / f"{c}.png").symlink_to(archive.files(t).paths[c].resolve())
    return out
