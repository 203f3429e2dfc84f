from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from satwatch.services.frames.frame import load_plane, read_image
from satwatch.services.frames.profiles import (
    BUILTIN_PROFILES,
    ProfileError,
    SatelliteProfile,
    get_profile,
    load_profiles,
    recognise,
    study_shrink,
)
from tests.helpers import shared_data

STAMP = "201103030645"
CHANNELS = ("ir01", "ir02", "swir", "wv")


def test_builtin_profiles_describe_each_satellite_of_the_study() -> None:
    names = {p.name for p in BUILTIN_PROFILES}
    assert {"COMS-1", "GK-2A", "Himawari-8", "Himawari-9", "MTSAT-1R", "MTSAT-2", "GMS-5"} <= names
    coms = get_profile("COMS-1")
    assert (coms.native_width, coms.native_height) == (1500, 1300)
    assert coms.block == 4 and coms.shrunk_shape == (4, 300, 375)
    assert coms.window_frames == 20 and coms.window_span == timedelta(hours=6)
    gk2a = get_profile("GK-2A")
    assert len(gk2a.channels) == 16 and gk2a.cadence == timedelta(minutes=10)
    assert gk2a.shrunk_shape == (16, 308, 375)
    assert get_profile("GMS-5").image_format == "gif"


def test_file_names_are_recognised_per_profile() -> None:
    coms = get_profile("COMS-1")
    parsed = coms.parse_filename(f"coms_mi_le1b_ir01_ea040ps_{STAMP}.png")
    assert parsed is not None and parsed.channel == "ir01" and parsed.area == "ea040ps"
    assert parsed.time == datetime(2011, 3, 3, 6, 45, tzinfo=UTC)
    assert coms.parse_filename("gk2a_ami_le1b_ir105_ea020lc_202001010000.png") is None
    assert coms.parse_filename("coms_mi_le1b_ir01_ea040ps_201113030645.png") is None  # month 13
    found = recognise("gk2a_ami_le1b_ir105_ea020lc_202001010000.png")
    assert found is not None and found[0].name == "GK-2A" and found[1].channel == "ir105"
    assert coms.filename("wv", parsed.time) == f"coms_mi_le1b_wv_ea040ps_{STAMP}.png"


def test_unknown_satellite_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="no satellite profile named 'NOAA-20'.*COMS-1"):
        get_profile("NOAA-20")


def test_a_user_adds_a_profile_in_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "profiles.toml"
    path.write_text(
        """
[[profile]]
name = "TEST-SAT"
channels = ["ir", "wv"]
filename_patterns = ['testsat_(?P<channel>[a-z]+)_(?P<stamp>\\d{12})\\.png']
filename_template = "testsat_{channel}_{stamp}.png"
cadence_minutes = 30
native_width = 800
native_height = 700
crop_top = 0
"""
    )
    (p,) = load_profiles(path)
    assert get_profile("TEST-SAT") == p and p.block == 2 and p.shrunk_shape == (2, 350, 400)
    assert p.parse_filename("testsat_wv_202401010030.png") is not None
    path.write_text('[[profile]]\nname = "X"\nchanels = ["a"]\n')
    with pytest.raises(ProfileError, match="chanels"):
        load_profiles(path)
    path.write_text("[[profile]\n")
    with pytest.raises(ProfileError, match="profiles.toml"):
        load_profiles(path)


def test_a_pattern_without_the_needed_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="named groups"):
        SatelliteProfile(
            name="B", channels=("a",), filename_patterns=(r"x_(\d+)\.png",), filename_template="x", cadence_minutes=10,
            native_width=100, native_height=100,
        )  # fmt: skip


def test_study_shrink_reproduces_the_studys_own_output_byte_for_byte() -> None:
    study = shared_data("study")
    coms = get_profile("COMS-1")
    for ch in CHANNELS:
        name = f"coms_mi_le1b_{ch}_ea040ps_{STAMP}.png"
        raw = read_image(study / "raw_images" / f"{STAMP}_image" / name)
        assert raw.shape == (1300, 1500, 3)  # 1500 wide x 1300 high, RGB with coloured overlays
        ours = coms.shrink_plane(raw)
        theirs = np.asarray(Image.open(study / "reduced_images" / f"{STAMP}_image" / name))
        assert ours.shape == theirs.shape == (300, 375)
        np.testing.assert_array_equal(ours, theirs)


def test_the_title_band_never_reaches_the_shrunk_frame() -> None:
    study = shared_data("study")
    raw = read_image(study / "raw_images" / f"{STAMP}_image" / f"coms_mi_le1b_ir01_ea040ps_{STAMP}.png")
    scribbled = raw.copy()
    scribbled[:100] = np.random.default_rng(0).integers(0, 256, scribbled[:100].shape, dtype=np.uint8)
    coms = get_profile("COMS-1")
    np.testing.assert_array_equal(coms.shrink_plane(scribbled), coms.shrink_plane(raw))


def test_the_wrong_geometry_is_refused_with_width_and_height() -> None:
    with pytest.raises(ProfileError, match="1300 wide x 1500 high.*1500 x 1300"):
        get_profile("COMS-1").shrink_plane(np.zeros((1500, 1300, 3), np.uint8))


def test_deeper_images_are_scaled_by_the_declared_depth_or_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    grey16 = np.full((1300, 1500), 40000, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(grey16).save(path)
    with pytest.raises(ProfileError, match="8-bit range"):
        load_plane(path, get_profile("COMS-1"))
    deep = get_profile("COMS-1").model_copy(update={"bit_depth": 16})
    plane = load_plane(path, deep)
    assert plane.shape == (300, 375)
    assert int(plane[0, 0]) == int(40000 / 65535 * 0.9999 * 255)  # scaled, not clipped to 255
    np.testing.assert_array_equal(study_shrink(grey16, 16, 100, 4), plane)
