"""Seed mode against the study's own program (built from ``../shared/data/study/reference`` at test time) on
windows cut from the 25 real COMS frames, at their real geometry: 1500 wide x 1300 high.

Each window pair costs the program about 15 s (it decodes 160 PNGs and sorts every cell), so the programs
for all pairs run side by side while satwatch computes its own values.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.profiles import get_profile
from satwatch.services.metric.groundtruth import (
    SEED_HEIGHT,
    SEED_WIDTH,
    GridSpec,
    ImageSizeError,
    WindowSignature,
    cell_similarities,
    frame_signature_from_paths,
    frame_signatures_from_paths,
    similarity_from_paths,
    window_files,
    window_signature,
    window_similarity,
)
from tests.services.metric.study_program import (
    StudyProgram,
    build_study_program,
    real_archive,
    real_windows,
    study_folder,
)

pytestmark = pytest.mark.slow

#: (N, B) and the window pairs (indices into the six full windows) compared at each.
CASES: list[tuple[int, int, list[tuple[int, int]]]] = [
    (24, 20, [(0, 5), (1, 3)]),
    (10, 8, [(0, 2)]),
    (7, 33, [(2, 5)]),
    (1, 255, [(4, 1)]),
]


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> StudyProgram:
    return build_study_program(tmp_path_factory.mktemp("study_program"))


@pytest.fixture(scope="module")
def archive() -> Archive:
    return real_archive()


@pytest.fixture(scope="module")
def folders(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("real_windows")
    return [study_folder(archive, w, root / f"w{k}") for k, w in enumerate(real_windows(archive))]


def test_real_frames_and_windows_are_what_the_study_program_expects(archive: Archive) -> None:
    assert (SEED_WIDTH, SEED_HEIGHT) == (1500, 1300)
    assert len(archive.times) == 25
    with Image.open(archive.files(archive.times[0]).paths["ir01"]) as im:
        assert im.size == (SEED_WIDTH, SEED_HEIGHT) and im.mode == "RGB"
    wins = real_windows(archive)
    p = get_profile("COMS-1")
    assert [w[-1].strftime("%H%M") for w in wins] == ["1200", "1215", "1230", "1245", "1300", "1315"]
    for w in wins:
        assert len(w) == p.window_frames and w[-1] - w[0] < p.window_span
        assert max(b - a for a, b in zip(w, w[1:], strict=False)) == timedelta(minutes=30)  # spans a gap


def test_seed_mode_reproduces_the_study_program_on_real_windows(
    program: StudyProgram, archive: Archive, folders: list[Path]
) -> None:
    # Start every run of the program at once; compute satwatch's values while they work.
    runs = []
    for n, bins, pairs in CASES:
        for i, j in pairs:
            cmd = [str(program.driver), "window", str(folders[i]), str(folders[j]), str(n), str(bins)]
            runs.append((n, bins, i, j, subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)))
    # The same numbers from the program's own main(), as published: 6 significant digits.
    published = subprocess.Popen(
        [str(program.run), str(folders[0]), str(folders[5]), "24", "20"], stdout=subprocess.PIPE, text=True
    )
    wins = real_windows(archive)
    frames = sorted({t for w in wins for t in w})
    paths = [[archive.files(t).paths[c] for c in archive.channels] for t in frames]
    ours: dict[tuple[int, int, int, int], float] = {}
    for n, bins, pairs in CASES:
        sigs = dict(zip(frames, frame_signatures_from_paths(paths, GridSpec(n, bins, "seed"), workers=2), strict=True))
        win: list[WindowSignature] = [window_signature([sigs[t] for t in w]) for w in wins]
        for i, j in pairs:
            ours[n, bins, i, j] = window_similarity(win[i], win[j])
    # And once through the study-layout folders, the way `satwatch similarity DIR_A DIR_B` reads them.
    by_folder = similarity_from_paths(window_files(folders[0]), window_files(folders[5]), GridSpec(24, 20, "seed"))
    assert by_folder == ours[24, 20, 0, 5]

    diffs = []
    for n, bins, i, j, proc in runs:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0
        theirs = float(out.split()[-1])
        assert theirs > 0, f"the study's program failed on windows {i}, {j} at N={n}, B={bins}"
        diffs.append(abs(ours[n, bins, i, j] - theirs))
        assert ours[n, bins, i, j] == pytest.approx(theirs, abs=1e-9), (n, bins, i, j)
    assert max(diffs) < 1e-9
    # Different (N, B) give different numbers: the comparison is not of one constant.
    assert len({round(v, 6) for v in ours.values()}) == len(ours)
    out, _ = published.communicate(timeout=900)
    assert out.strip() == f"{ours[24, 20, 0, 5]:.6g}"


@pytest.mark.parametrize("n,bins", [(24, 20), (7, 33)])
def test_per_image_similarity_per_channel_matches_the_program(
    program: StudyProgram, archive: Archive, n: int, bins: int
) -> None:
    spec = GridSpec(n, bins, "seed")
    first, last = archive.times[0], archive.times[-1]
    fa = [archive.files(first).paths[c] for c in archive.channels]
    fb = [archive.files(last).paths[c] for c in archive.channels]
    wa = window_signature([frame_signature_from_paths(fa, spec)])
    cells = cell_similarities(wa, window_signature([frame_signature_from_paths(fb, spec)]))
    assert cells.shape == (1, len(archive.channels), n, n)
    for c, channel in enumerate(archive.channels):
        theirs = program.image(fa[c], fb[c], n, bins)
        ours = float(cells[0, c].sum())
        assert ours == pytest.approx(theirs, abs=1e-9), channel
        assert 0 < ours < n * n  # frames 6.5 hours apart differ in every channel
    # A frame against itself: every cell identical.
    assert program.image(fa[0], fa[0], n, bins) == n * n


def test_both_refuse_a_transposed_image(program: StudyProgram, archive: Archive, tmp_path: Path) -> None:
    src = archive.files(archive.times[0]).paths["ir01"]
    with Image.open(src) as im:
        Image.fromarray(np.ascontiguousarray(np.asarray(im).transpose(1, 0, 2))).save(tmp_path / "t.png")
    assert program.image(src, tmp_path / "t.png", 24, 20) == -1
    with pytest.raises(ImageSizeError, match=r"t\.png: image is 1300 wide x 1500 high.*1500 wide x 1300 high"):
        frame_signature_from_paths([tmp_path / "t.png"], GridSpec())
    # The published main() gives up on the window and says so.
    win = study_folder(archive, archive.times[:1], tmp_path / "w")
    (win / "image_1" / "wv.png").unlink()
    (win / "image_1" / "wv.png").symlink_to(tmp_path / "t.png")
    out = subprocess.run([str(program.run), str(win), str(win), "24", "20"], capture_output=True, text=True)
    assert out.stdout.split("\n")[:2] == ["Similarity computation failed.", "-1"]
