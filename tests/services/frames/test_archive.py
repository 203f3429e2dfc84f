import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive, NoFramesError
from satwatch.services.frames.profiles import get_profile
from satwatch.services.frames.windows import window_ending, windows_over
from tests.helpers import shared_data

FIRST = datetime(2011, 3, 3, 6, 45, tzinfo=UTC)
Q = timedelta(minutes=15)


def test_the_studys_real_frames_are_found_in_their_nested_folders() -> None:
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    assert len(archive) == 25 and archive.unrecognised == [] and archive.areas == ["ea040ps"]
    assert archive.times[0] == FIRST and archive.times[-1] == datetime(2011, 3, 3, 13, 15, tzinfo=UTC)
    slots = {FIRST + i * Q for i in range(27)}
    assert sorted(slots - set(archive.times)) == [FIRST + 7 * Q, FIRST + 19 * Q]  # 08:30 and 11:30 missing
    frame = archive.load(FIRST)
    assert frame.data.shape == (4, 300, 375) and frame.channels == ("ir01", "ir02", "swir", "wv")
    assert 0 < frame.data.mean() < 255


def test_windows_over_the_real_frames_span_the_gaps() -> None:
    archive = Archive(shared_data("study", "raw_images"))
    full = archive.windows()
    assert [w[-1] for w in full] == [datetime(2011, 3, 3, h, m, tzinfo=UTC) for h, m in
                                      [(12, 0), (12, 15), (12, 30), (12, 45), (13, 0), (13, 15)]]  # fmt: skip
    assert all(len(w) == 20 and w[-1] - w[0] < timedelta(hours=6) for w in full)
    assert full[0][0] == FIRST  # the first full window reaches over both missing times
    part = archive.window(datetime(2011, 3, 3, 9, 0, tzinfo=UTC))
    assert len(part) == 9  # 06:45 .. 09:00 less 08:30
    assert len(archive.windows(min_frames=1)) == 25


def test_window_rule_takes_the_latest_frames_within_the_span() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    times = [t0 + i * Q for i in range(30)]
    assert window_ending(times, times[-1], 20, timedelta(hours=6)) == times[10:]
    assert window_ending(times, times[-1], 30, timedelta(hours=6)) == times[6:]  # 6 h holds 24 slots
    hourly = [t0 + timedelta(hours=i) for i in range(10)]
    assert window_ending(hourly, hourly[-1], 20, timedelta(hours=6)) == hourly[4:]
    assert windows_over(hourly, 20, timedelta(hours=6)) == []
    assert len(windows_over(hourly, 20, timedelta(hours=6), min_frames=6)) == 5


def test_unrecognised_files_are_counted_and_areas_kept_apart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = shared_data("study", "raw_images") / "201103030645_image"
    for area in ("ea040ps", "fd040ps"):
        d = tmp_path / area
        d.mkdir()
        for f in src.iterdir():
            shutil.copy(f, d / f.name.replace("ea040ps", area))
    (tmp_path / "gk2a_ami_le1b_ir105_ea020lc_202001010000.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"several areas \['ea040ps', 'fd040ps'\]"):
        Archive(tmp_path)
    archive = Archive(tmp_path, area="fd040ps")
    assert len(archive) == 1 and archive.area == "fd040ps"
    assert Archive(tmp_path, area="FD040PS").times == archive.times  # as the files name it, in any case
    assert [p.name for p in archive.unrecognised] == ["gk2a_ami_le1b_ir105_ea020lc_202001010000.png"]
    np.testing.assert_array_equal(archive.load(archive.times[0]).data, Archive(tmp_path, area="ea040ps").load(
        archive.times[0]).data)  # fmt: skip


def test_a_channel_the_frames_do_not_use_is_named_not_called_misnamed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = shared_data("study", "raw_images") / "201103030645_image"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(
        src / "coms_mi_le1b_ir01_ea040ps_201103030645.png", tmp_path / "coms_mi_le1b_vis_ea040ps_201103030645.png"
    )
    with caplog.at_level(logging.INFO, logger="satwatch.services.frames.archive"):
        archive = Archive(tmp_path)
    assert len(archive) == 1 and archive.unrecognised == []  # named as COMS-1 names files: not misnamed
    assert "channels outside COMS-1's frames (vis: 1; its frames are ir01, ir02, swir, wv)" in caplog.text
    assert "naming" not in caplog.text


def test_an_archive_without_frames_says_what_it_looked_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "gk2a_ami_le1b_ir105_ea020lc_202001010000.png").write_bytes(b"x")
    archive = Archive(tmp_path, "COMS-1")
    with pytest.raises(NoFramesError, match=r"coms_mi_le1b_\{channel\}.*ir01, ir02, swir, wv.*1 image files"):
        archive.require_frames()
    assert len(Archive(tmp_path, get_profile("GK-2A"))) == 0  # one channel of sixteen: incomplete
    assert Archive(tmp_path, "GK-2A").incomplete == [datetime(2020, 1, 1, tzinfo=UTC)]


def test_linked_folders_are_followed_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = shared_data("study", "raw_images")
    first = sorted(raw.iterdir())[0]
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / first.name).symlink_to(first, target_is_directory=True)  # a linked KMA folder
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real", target_is_directory=True)  # and a loop
    archive = Archive(tmp_path / "real")
    assert archive.times == Archive(raw).times[:1] and not archive.incomplete
