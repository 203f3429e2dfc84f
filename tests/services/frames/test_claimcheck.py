"""The claim-check reader the detector uses: a folder that keeps filling (a watched drop folder) is read again
for a frame that landed after it was first read; frames sit flat or in sub-folders; satellites and areas sharing
a folder are kept apart; a claim check without an area (from a producer before areas) is read as before; what is
not there says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.frames import archive as archive_module
from satwatch.services.frames.claimcheck import ClaimCheckReader
from satwatch.services.frames.codec import FrameDecodeError, claim_check_uri, decode_meta, encode_claim_check
from satwatch.services.frames.frame import Frame, load_plane, write_rgb_png
from satwatch.services.frames.profiles import get_profile
from tests.helpers import T0, make_frame


def land(folder: Path, frame: Frame, area: str) -> Frame:
    """The frame's planes as its satellite names them, in ``folder``; the frame as a watcher would read it."""
    profile = get_profile(frame.satellite)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for channel, plane in zip(frame.channels, frame.data, strict=True):
        paths.append(folder / profile.filename(channel, frame.time, area))
        write_rgb_png(paths[-1], plane)
    return Frame(frame.satellite, frame.time, frame.channels, np.stack([load_plane(p, profile) for p in paths]))


def meta_of(frame: Frame, root: Path, area: str | None = None):  # type: ignore[no-untyped-def]
    return decode_meta(encode_claim_check(frame, claim_check_uri(root, frame.time, area)))[0]


def test_a_frame_that_lands_after_the_folder_was_read_is_found(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    first = land(drop, make_frame(T0), "ea040ps")  # flat
    reader = ClaimCheckReader([str(drop)])
    assert np.array_equal(reader.read(meta_of(first, drop)).data, first.data)
    later = T0 + timedelta(minutes=15)
    second = land(drop / f"{later:%Y%m%d%H%M}_image", make_frame(later), "ea040ps")  # KMA's sub-folder
    got = reader.read(meta_of(second, drop))
    assert got.time == later and np.array_equal(got.data, second.data)
    with pytest.raises(FrameDecodeError, match="no complete COMS-1 frame of 2024-07-01 01:00") as err:
        reader.read(meta_of(make_frame(T0 + timedelta(hours=1)), drop))
    assert err.value.reason == "claim_check_unreadable"


@pytest.mark.parametrize("layout", ["", "{t:%Y%m%d%H%M}_image", "{t:%Y%m%d}", "{t:%Y/%m/%d}"])
def test_a_new_frame_in_a_watched_folder_is_found_without_reading_the_folder_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    drop = tmp_path / "drop"
    first = land(drop, make_frame(T0), "ea040ps")
    reader = ClaimCheckReader([str(drop)])
    assert np.array_equal(reader.read(meta_of(first, drop)).data, first.data)
    walks: list[Path] = []
    real = archive_module._files_under
    monkeypatch.setattr(archive_module, "_files_under", lambda root: walks.append(root) or real(root))
    for n in (1, 2):
        later = T0 + timedelta(minutes=10 * n)
        frame = land(drop / layout.format(t=later), make_frame(later), "ea040ps")
        got = reader.read(meta_of(frame, drop))
        assert got.time == later and np.array_equal(got.data, frame.data)
    assert walks == []  # found where the layout puts it: the folder was not walked again
    assert np.array_equal(reader.read(meta_of(first, drop)).data, first.data)  # the index still holds the first
    (drop / "odd" / "deeper").mkdir(parents=True)  # a layout nobody predicts: the folder is read again
    later = T0 + timedelta(minutes=30)
    frame = land(drop / "odd" / "deeper", make_frame(later), "ea040ps")
    assert np.array_equal(reader.read(meta_of(frame, drop)).data, frame.data)
    assert walks == [drop.resolve()]


def test_two_satellites_in_one_folder_are_read_each_by_its_own_profile(tmp_path: Path) -> None:
    coms = land(tmp_path, make_frame(T0), "ea040ps")
    mtsat = make_frame(T0, value=60, satellite="MTSAT-2")
    mtsat = land(tmp_path, Frame("MTSAT-2", T0, get_profile("MTSAT-2").channels, mtsat.data), "ea")
    reader = ClaimCheckReader([str(tmp_path)])
    assert np.array_equal(reader.read(meta_of(coms, tmp_path)).data, coms.data)
    assert np.array_equal(reader.read(meta_of(mtsat, tmp_path)).data, mtsat.data)


def test_claim_checks_outside_the_roots_are_refused(tmp_path: Path) -> None:
    frame = land(tmp_path / "drop", make_frame(T0), "ea040ps")
    for roots in ([], [str(tmp_path / "elsewhere")]):
        with pytest.raises(FrameDecodeError) as err:
            ClaimCheckReader(roots).read(meta_of(frame, tmp_path / "drop"))
        assert err.value.reason == "claim_check_refused"


def test_two_areas_in_one_folder_are_read_each_by_its_claim_checks_area(tmp_path: Path) -> None:
    east = land(tmp_path, make_frame(T0, value=40), "ea040ps")
    other = land(tmp_path / "fd", make_frame(T0, value=200), "fd010ge")  # the same time, another sector
    reader = ClaimCheckReader([str(tmp_path)])
    assert np.array_equal(reader.read(meta_of(east, tmp_path, "ea040ps")).data, east.data)
    assert np.array_equal(reader.read(meta_of(other, tmp_path, "fd010ge")).data, other.data)
    # The area's frames only: a time another area has, this one lacks.
    later = land(tmp_path, make_frame(T0 + timedelta(minutes=15)), "fd010ge")
    with pytest.raises(FrameDecodeError, match=r"no complete COMS-1 frame of 2024-07-01 00:15 \(area ea040ps\)") as err:
        reader.read(meta_of(later, tmp_path, "ea040ps"))
    assert err.value.reason == "claim_check_unreadable"
    assert np.array_equal(reader.read(meta_of(later, tmp_path, "fd010ge")).data, later.data)


def test_a_claim_check_without_an_area_is_read_as_before(tmp_path: Path) -> None:
    """An old-style URI (``kma+file://<root>#<stamp>``, already on a topic) into a folder of one area."""
    frame = land(tmp_path / "archive", make_frame(T0), "ea040ps")
    meta = meta_of(frame, tmp_path / "archive")
    assert meta.uri == f"kma+file://{(tmp_path / 'archive').resolve()}#202407010000"
    reader = ClaimCheckReader([str(tmp_path)])
    assert np.array_equal(reader.read(meta).data, frame.data)
    # Into a folder that has since come to hold a second area it cannot say which: refused, saying why.
    land(tmp_path / "archive", make_frame(T0, value=9), "fd010ge")
    reader = ClaimCheckReader([str(tmp_path)])
    with pytest.raises(FrameDecodeError, match="holds several areas") as err:
        reader.read(meta)
    assert err.value.reason == "claim_check_unreadable"
    assert np.array_equal(reader.read(meta_of(frame, tmp_path / "archive", "ea040ps")).data, frame.data)
