"""``satwatch produce watch --claim-check``: the watched drop folder is the claim checks' root, and the detector's
claim-check reader finds the frames there, flat or in sub-folders, including ones that landed after it first
read the folder. A satellite whose shrunk frames cannot travel inline (GK-2A: 16 x 308 x 375 = 1.85 MB) is
refused at the start without the flag, before a frame is lost; real COMS-1 frames read back through a claim
check are the pixels the same watcher sends inline, and an archive holding two areas sends claim checks that
name the area replayed, which the reader reads to that area's pixels."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satwatch.cli import main
from satwatch.services.config import Settings
from satwatch.services.frames.claimcheck import ClaimCheckReader
from satwatch.services.frames.codec import Encoding, claim_check_uri, decode_inline, decode_meta
from satwatch.services.frames.profiles import get_profile
from satwatch.topics import ensure_topics
from tests.cli.test_produce_refused import _stop, at
from tests.helpers import T0, shared_data
from tests.producers.test_publisher import read_topic

GK2A = get_profile("GK-2A")
COMS_SHAPE = get_profile("COMS-1").shrunk_shape


def land_gk2a(folder: Path, time, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A synthetic GK-2A time: 16 grey PNGs at the native 1500 x 1332, named as the profile says.

    Returns the shrunk frame the detector should see, (16, 308, 375). Blocky fields keep the files small.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shrunk = []
    for channel in GK2A.channels:
        plane = np.kron(rng.integers(0, 256, (37, 50), dtype=np.uint8), np.ones((36, 30), dtype=np.uint8))
        assert plane.shape == (GK2A.native_height, GK2A.native_width)
        Image.fromarray(plane, mode="L").save(folder / GK2A.filename(channel, time, "ea020lc"), compress_level=1)
        shrunk.append(GK2A.shrink_plane(plane))
    return np.stack(shrunk)


def watch(settings: Settings, drop: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SATWATCH_KAFKA__DEAD_LETTER_TOPIC": settings.kafka.dead_letter_topic}
    env["PYTHONFAULTHANDLER"] = "1"
    argv = [sys.executable, "-m", "satwatch", "produce", "watch", "--dir", str(drop), "--position", str(state)]
    argv += ["--poll", "0.2", "--settle", "0.2", "--bootstrap-servers", settings.kafka.bootstrap_servers]
    argv += ["--frames-topic", settings.kafka.frames_topic, *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_a_watched_gk2a_folder_travels_as_claim_checks_the_detector_reads(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings.kafka)
    drop = tmp_path / "drop"
    first = land_gk2a(drop, T0, 1)  # flat in the drop folder
    proc = watch(settings, drop, tmp_path / "watch.json", "--satellite", "GK-2A", "--claim-check")
    reader = ClaimCheckReader([str(drop)])  # the detector's reader, detector.claim_check_roots = [drop]
    later = T0 + timedelta(minutes=10)
    try:
        (message,) = read_topic(settings, settings.kafka.frames_topic, 1, timeout=60)
        meta, payload = decode_meta(message.value)
        assert message.key == b"GK-2A" and meta.encoding == Encoding.CLAIM_CHECK and payload == b""
        assert meta.uri == claim_check_uri(drop, T0, "ea020lc") and meta.shape == (16, 308, 375)
        assert np.array_equal(reader.read(meta).data, first)
        # The next time lands in a dated sub-folder after the reader has indexed the folder: it reads it again.
        second = land_gk2a(drop / "2024" / "07" / "01", later, 2)
        messages = read_topic(settings, settings.kafka.frames_topic, 2, timeout=60)
    finally:
        out = _stop(proc)
    assert "sending claim checks into" in out and f"published {later:%Y-%m-%d %H:%M}Z" in out, out
    metas = [decode_meta(m.value)[0] for m in messages]
    assert [m.time for m in metas] == [T0, later]
    got = reader.read(metas[1])
    assert got.satellite == "GK-2A" and got.channels == GK2A.channels and np.array_equal(got.data, second)
    assert read_topic(settings, settings.kafka.dead_letter_topic, 1, timeout=2) == []


@pytest.mark.parametrize(
    ("source", "satellite", "advice"),
    [("watch", "GK-2A", "Start the watcher with --claim-check"), ("archive", "Himawari-9", "Replay the archive")],
)
def test_a_satellite_too_large_inline_is_refused_at_the_start_without_claim_check(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, satellite: str, advice: str
) -> None:
    drop = tmp_path / "drop"
    land_gk2a(drop, T0, 1)
    flag = ["--dir", str(drop), "--position", str(tmp_path / "watch.json")] if source == "watch" else []
    flag = flag or ["--archive", str(drop)]
    argv = ["produce", source, *flag, "--satellite", satellite, "--bootstrap-servers", settings.kafka.bootstrap_servers]
    assert main([*argv, "--frames-topic", settings.kafka.frames_topic]) == 2
    err = capsys.readouterr().err
    size = "1,848,000 bytes" if satellite == "GK-2A" else "1,575,000 bytes"
    assert err.startswith(f"error: {satellite} frames shrunk to the study size") and size in err, err
    assert advice in err and str(drop.resolve()) in err and "detector.claim_check_roots must list it" in err
    assert not (tmp_path / "watch.json").exists()  # nothing handled, so nothing recorded as refused
    assert read_topic(settings, settings.kafka.frames_topic, 1, timeout=2) == []


def test_real_coms_frames_through_a_claim_check_are_the_pixels_sent_inline(settings: Settings, tmp_path: Path) -> None:
    """Two real times linked (read in place) into a drop folder, one flat and one in KMA's time folder; one
    watcher sends claim checks, another the same folder inline; the reader gives back the inline pixels."""
    raw = shared_data("study", "raw_images")
    drop = tmp_path / "drop"
    stamps = ("201103030645", "201103030700")
    for stamp, folder in zip(stamps, (drop, drop / f"{stamps[1]}_image"), strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        for path in (raw / f"{stamp}_image").glob("*.png"):
            (folder / path.name).symlink_to(path)
    inline = settings.model_copy(deep=True)
    inline.kafka.frames_topic = settings.kafka.frames_topic + ".inline"
    ensure_topics(settings.kafka)
    ensure_topics(inline.kafka)
    by_reference = watch(settings, drop, tmp_path / "claim.json", "--claim-check")
    by_value = watch(inline, drop, tmp_path / "inline.json")
    try:
        claims = read_topic(settings, settings.kafka.frames_topic, 2, timeout=60)
        frames = read_topic(inline, inline.kafka.frames_topic, 2, timeout=60)
    finally:
        _stop(by_reference)
        _stop(by_value)
    reader = ClaimCheckReader([str(tmp_path)])  # a root above the drop folder admits it too
    assert len(claims) == len(frames) == 2
    for claim, value in zip(claims, frames, strict=True):
        meta, _ = decode_meta(claim.value)
        sent = decode_inline(*decode_meta(value.value), COMS_SHAPE)
        assert meta.encoding == Encoding.CLAIM_CHECK and len(claim.value) < 1000
        got = reader.read(meta)
        assert got.time == sent.time and got.data.shape == (4, 300, 375)
        assert np.array_equal(got.data, sent.data)
    assert [decode_meta(m.value)[0].time for m in claims] == [at(s) for s in stamps]


def test_an_archive_of_two_areas_sends_claim_checks_read_back_to_that_areas_pixels(
    settings: Settings, tmp_path: Path
) -> None:
    """Three real COMS-1 times linked (read in place) under their own area, ea040ps, and under a second area
    name whose files at those times are other real times' (so the two areas' pixels differ at every time).
    ``produce archive --area X --claim-check`` for each area through the broker: each claim check names its
    area, and the detector's reader gives back exactly the pixels ``produce archive --area X`` sends inline.
    Before claim checks carried the area, the reader opened the folder without one and refused every claim
    check into it (the folder holds several areas)."""
    raw = shared_data("study", "raw_images")
    stamps = ("201103030645", "201103030700", "201103030715", "201103030730")
    archive = tmp_path / "archive"
    second = "fd010ge"
    for i, stamp in enumerate(stamps[:3]):
        for area, source in (("ea040ps", stamp), (second, stamps[i + 1])):
            folder = archive / area / f"{stamp}_image"
            folder.mkdir(parents=True, exist_ok=True)
            for path in (raw / f"{source}_image").glob("*.png"):
                name = path.name.replace(f"_ea040ps_{source}", f"_{area}_{stamp}")
                (folder / name).symlink_to(path)
    reader = ClaimCheckReader([str(archive)])  # the detector's reader, detector.claim_check_roots = [archive]
    got: dict[str, list[np.ndarray]] = {}
    for area in ("ea040ps", second):
        by_value = settings.model_copy(deep=True)
        by_value.kafka.frames_topic = f"{settings.kafka.frames_topic}.{area}.inline"
        by_reference = settings.model_copy(deep=True)
        by_reference.kafka.frames_topic = f"{settings.kafka.frames_topic}.{area}.claim"
        for s, extra in ((by_value, []), (by_reference, ["--claim-check"])):
            argv = ["produce", "archive", "--archive", str(archive), "--area", area, *extra]
            argv += ["--bootstrap-servers", s.kafka.bootstrap_servers, "--frames-topic", s.kafka.frames_topic]
            assert main(argv) == 0
        frames = read_topic(by_value, by_value.kafka.frames_topic, 3, timeout=60)
        claims = read_topic(by_reference, by_reference.kafka.frames_topic, 3, timeout=60)
        assert len(frames) == len(claims) == 3
        got[area] = []
        for claim, value in zip(claims, frames, strict=True):
            meta, payload = decode_meta(claim.value)
            sent = decode_inline(*decode_meta(value.value), COMS_SHAPE)
            assert meta.encoding == Encoding.CLAIM_CHECK and payload == b""
            assert meta.uri == claim_check_uri(archive, meta.time, area) and meta.uri.endswith(f"?area={area}")
            frame = reader.read(meta)
            assert frame.time == sent.time and frame.data.shape == COMS_SHAPE
            assert np.array_equal(frame.data, sent.data)
            got[area].append(frame.data)
        assert [decode_meta(m.value)[0].time for m in claims] == [at(s) for s in stamps[:3]]
    # The second area's frame at each time is the next real time's: the areas were told apart.
    for i in range(3):
        assert not np.array_equal(got["ea040ps"][i], got[second][i])
    assert all(np.array_equal(got["ea040ps"][i + 1], got[second][i]) for i in range(2))
    assert read_topic(settings, settings.kafka.dead_letter_topic, 1, timeout=2) == []
