from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from satwatch.producers.publisher import Rejected
from satwatch.producers.sources import DirectoryWatcher, WatchPosition, paced
from satwatch.services.frames.frame import CHANNELS, Frame, kma_filename, write_rgb_png
from tests.helpers import T0, make_frame


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def land(directory: Path, frame: Frame, channels: tuple[str, ...] = CHANNELS) -> None:
    for c in channels:
        write_rgb_png(directory / kma_filename(c, "ea040ps", frame.time), frame.data[CHANNELS.index(c)])


def scan_settled(w: DirectoryWatcher, clock: Clock) -> list:  # type: ignore[type-arg]
    """Two passes a second apart: files are taken once their size has been stable."""
    first = w.scan()
    clock.t += 1.0
    return first + w.scan()


def test_frame_published_once_when_last_channel_lands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    w = DirectoryWatcher(tmp_path, settle_seconds=0.5, clock=clock)
    frame = make_frame(T0)
    land(tmp_path, frame, CHANNELS[:3])
    assert scan_settled(w, clock) == []
    land(tmp_path, frame, CHANNELS[3:])
    out = scan_settled(w, clock)
    assert len(out) == 1 and isinstance(out[0], Frame) and out[0].time == T0
    assert out[0].data.shape == frame.data.shape
    assert scan_settled(w, clock) == []  # never twice


def test_an_area_given_in_capitals_matches_the_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    w = DirectoryWatcher(tmp_path, area="EA040PS", settle_seconds=0.5, clock=clock)
    land(tmp_path, make_frame(T0))
    out = scan_settled(w, clock)
    assert len(out) == 1 and isinstance(out[0], Frame) and out[0].area == "ea040ps"


def test_file_still_growing_is_not_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    w = DirectoryWatcher(tmp_path, settle_seconds=0.5, clock=clock)
    frame = make_frame(T0)
    land(tmp_path, frame, CHANNELS[:3])
    partial = tmp_path / kma_filename("wv", "ea040ps", T0)
    partial.write_bytes(b"\x89PNG\r\n")
    w.scan()
    partial.write_bytes(b"\x89PNG\r\n\x1a\n more bytes")  # the copy goes on
    clock.t += 1.0
    assert w.scan() == []


def test_missing_channel_and_corrupt_png_are_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    w = DirectoryWatcher(tmp_path, settle_seconds=0.5, incomplete_after=timedelta(minutes=5), clock=clock)
    land(tmp_path, make_frame(T0), CHANNELS[:2])
    bad = make_frame(T0 + timedelta(minutes=15))
    land(tmp_path, bad, CHANNELS[:3])
    (tmp_path / kma_filename("wv", "ea040ps", bad.time)).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    out = scan_settled(w, clock)
    assert [type(x) for x in out] == [Rejected]
    assert out[0].reason == "corrupt_png" and "2024-07-01 00:15" in out[0].error
    clock.t += 400
    out = w.scan()
    assert len(out) == 1 and out[0].reason == "missing_channel" and "swir" in out[0].error


def test_paced_sleeps_by_observation_time() -> None:
    slept: list[float] = []
    frames = [make_frame(T0 + timedelta(minutes=15 * i), shape=(2, 2)) for i in range(3)]
    assert list(paced(iter(frames), speed=900.0, sleep=slept.append)) == frames
    assert slept == [1.0, 1.0]
    slept.clear()
    list(paced(iter(frames), speed=0.0, sleep=slept.append))
    assert slept == []


def test_a_restarted_watcher_publishes_nothing_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    drop, state = tmp_path / "drop", tmp_path / "state" / "watch.json"
    drop.mkdir()
    clock = Clock()
    first = DirectoryWatcher(drop, settle_seconds=0.5, clock=clock, position=WatchPosition(state))
    for i in range(3):
        land(drop, make_frame(T0 + i * timedelta(minutes=15)))
    out = scan_settled(first, clock)
    assert [f.time for f in out] == [T0 + i * timedelta(minutes=15) for i in range(3)]
    first.commit([f.time for f in out[:2]])  # the third was read but never confirmed sent: a crash here
    land(drop, make_frame(T0 + timedelta(hours=1)))
    restarted = DirectoryWatcher(drop, settle_seconds=0.5, clock=clock, position=WatchPosition(state))
    again = scan_settled(restarted, clock)
    assert [f.time for f in again] == [T0 + timedelta(minutes=30), T0 + timedelta(hours=1)]


def test_the_position_keeps_a_horizon_and_survives_damage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "watch.json"
    pos = WatchPosition(path, keep=timedelta(hours=1))
    pos.add([T0 + i * timedelta(minutes=15) for i in range(12)])
    reread = WatchPosition(path, keep=timedelta(hours=1))
    assert reread.published(T0) and reread.published(T0 + timedelta(hours=2, minutes=45))
    assert not reread.published(T0 + timedelta(hours=3))
    assert len(reread.times) == 4  # only the last hour is listed; older times lie under the horizon
    path.write_text("{not json")
    damaged = WatchPosition(path)
    assert damaged.times == set() and not damaged.published(T0)


def test_refused_times_are_kept_apart_from_published_ones_and_not_read_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    drop, state = tmp_path / "drop", tmp_path / "watch.json"
    drop.mkdir()
    clock = Clock()
    first = DirectoryWatcher(drop, settle_seconds=0.5, clock=clock, position=WatchPosition(state))
    for i in range(2):
        land(drop, make_frame(T0 + i * timedelta(minutes=15)))
    out = scan_settled(first, clock)
    first.commit([out[0].time], refused=True)  # sent to the dead-letter topic
    first.commit([out[1].time])
    body = json.loads(state.read_text())
    assert body["published"] == [(T0 + timedelta(minutes=15)).isoformat()] and body["refused"] == [T0.isoformat()]
    reread = WatchPosition(state)
    assert reread.handled(T0) and not reread.published(T0) and reread.published(T0 + timedelta(minutes=15))
    restarted = DirectoryWatcher(drop, settle_seconds=0.5, clock=clock, position=reread)
    assert scan_settled(restarted, clock) == []  # neither is read again after a restart
    state.write_text(json.dumps({"horizon": None, "published": [T0.isoformat()]}))  # a position from before
    assert WatchPosition(state).published(T0) and WatchPosition(state).refused == set()


def test_unrecognised_file_warning_reads_cleanly(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """One space between the words whether or not the file's area is known (it read 'COMS-1  image')."""
    (tmp_path / "COMS_IR1_201103030830.png").write_bytes(b"x")
    clock = Clock()
    w = DirectoryWatcher(tmp_path, settle_seconds=0.5, clock=clock)
    with caplog.at_level("WARNING"):
        scan_settled(w, clock)
    (message,) = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert "not a COMS-1 image (naming" in message and "  " not in message


def _real_frame_with_ir01_resized(folder: Path) -> Path:
    """A real study frame (COMS-1, 1500 x 1300) copied into ``folder`` with its ir01 resized to 1400 x 1300."""
    import shutil

    from PIL import Image

    from tests.helpers import shared_data

    real = shared_data("study", "raw_images") / "201103031245_image"
    folder.mkdir(parents=True, exist_ok=True)
    for png in sorted(real.glob("*.png")):
        if "_ir01_" in png.name:
            with Image.open(png) as im:
                im.resize((1400, 1300)).save(folder / png.name)
        else:
            shutil.copyfile(png, folder / png.name)
    return folder / "coms_mi_le1b_ir01_ea040ps_201103031245.png"


def test_one_real_channel_of_the_wrong_size_is_wrong_shape_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Not corrupt_png with numpy shapes mixing shrunk and native sizes: wrong_shape, the channel file named,
    its size as stored against the other channels' (the profile's native size)."""
    from satwatch.producers.sources import archive_source
    from satwatch.services.frames.archive import Archive

    odd = _real_frame_with_ir01_resized(tmp_path / "drop")
    clock = Clock()
    w = DirectoryWatcher(tmp_path / "drop", settle_seconds=0.5, clock=clock)
    watched = scan_settled(w, clock)
    replayed = list(archive_source(Archive(tmp_path / "drop")))
    for out in (watched, replayed):
        assert len(out) == 1 and isinstance(out[0], Rejected), out
        assert out[0].reason == "wrong_shape"
        assert out[0].error == (
            f"frame 2011-03-03 12:45: ir01 ({odd.name}) is 1400 wide x 1300 high; expected 1500 x 1300 like the "
            "other channels (the COMS-1 native size)"
        )


def test_an_empty_channel_file_is_refused_once_it_stays_empty_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A failed transfer leaves a 0-byte swir file: not half an hour of silence and then 'still lacks
    ['swir']', but a refusal once it has stayed empty for ``empty_after``, naming the empty file."""
    clock = Clock()
    w = DirectoryWatcher(tmp_path, settle_seconds=0.5, empty_after=10.0, clock=clock)
    frame = make_frame(T0)
    land(tmp_path, frame, ("ir01", "ir02", "wv"))
    empty = tmp_path / kma_filename("swir", "ea040ps", T0)
    empty.touch()
    assert scan_settled(w, clock) == [], "an empty file may still be being written"
    clock.t += 10.0
    out = w.scan()
    assert len(out) == 1 and isinstance(out[0], Rejected) and out[0].reason == "corrupt_png"
    assert out[0].error == (
        f"frame 2024-07-01 00:00: swir file {empty.name} is empty (0 bytes) 10 s after it appeared: a failed or "
        "unfinished transfer"
    )
    assert str(empty) in out[0].origin.split(",")
    assert w.scan() == []  # refused once


def test_an_empty_file_filled_in_time_is_published(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    w = DirectoryWatcher(tmp_path, settle_seconds=0.5, empty_after=10.0, clock=clock)
    frame = make_frame(T0)
    land(tmp_path, frame, ("ir01", "ir02", "wv"))
    (tmp_path / kma_filename("swir", "ea040ps", T0)).touch()
    assert scan_settled(w, clock) == []
    land(tmp_path, frame, ("swir",))
    out = scan_settled(w, clock)
    assert len(out) == 1 and isinstance(out[0], Frame)
