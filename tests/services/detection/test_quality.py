from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector
from satwatch.services.detection.quality import (
    CALIBRATION_HOLD,
    MIN_HISTORY,
    QUALITY_KINDS,
    FrameHistory,
    check_pixels,
)
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS
from satwatch.services.models.modelcard import packaged_model_dir
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from tests.helpers import T0, make_frame, shared_data


def test_missing_lines_and_saturated_blocks_are_found_with_their_place() -> None:
    frame = make_frame(T0)
    assert check_pixels(frame.data) == []
    data = frame.data.copy()
    data[:, 150:153, :] = 0
    data[2, 40:72, 300:340] = 255
    kinds = {f.kind: f for f in check_pixels(data)}
    assert set(kinds) == {"missing_lines", "saturated_block"}
    assert kinds["missing_lines"].bbox == (0.0, 0.5, 1.0, 153 / 300)
    x0, y0, x1, y1 = kinds["saturated_block"].bbox or (0, 0, 0, 0)
    assert 290 / 375 <= x0 < x1 <= 345 / 375 and 35 / 300 <= y0 < y1 <= 75 / 300


def test_stripes_in_one_channel_are_found_where_a_row_shared_by_every_channel_is_not(real) -> None:  # type: ignore[no-untyped-def]
    data = real[3][1].copy()
    data[:, 120, :] = 200  # a line drawn across every channel (an overlay, a cloud edge along a row)
    assert check_pixels(data) == []
    striped = data.astype(np.int16)
    striped[1, 60:150:4, :] += 22  # every 4th line of ir02 offset
    (found,) = check_pixels(np.clip(striped, 0, 255).astype(np.uint8), CHANNELS)
    assert found.kind == "striping" and " rows of ir02 offset" in found.detail


def test_missing_lines_under_the_overlays_and_a_grey_saturated_block_are_still_found() -> None:
    data = make_frame(T0).data.copy()
    data[:, 100:104, :] = 0
    data[:, 100:104, ::7] = 180  # KMA's coastlines and grid drawn over the lost rows
    data[1, 200:230, 40:80] = 254  # white after the RGB-to-grey weights
    data[1, 210, 40:80:5] = 251  # a dotted grid line across it
    assert {f.kind for f in check_pixels(data)} == {"missing_lines", "saturated_block"}


def test_a_cold_cloud_top_that_fades_out_is_not_a_saturated_block() -> None:
    data = make_frame(T0, value=60).data.copy()
    yy, xx = np.mgrid[:300, :375]
    dome = np.clip(300 - np.hypot(yy - 150, xx - 180) * 2.0, 0, 254)  # 254 in the middle, 250 around it
    data[0] = np.maximum(data[0], dome).astype(np.uint8)
    assert (data[0] == 254).sum() > 400
    assert check_pixels(data) == []


@pytest.fixture(scope="module")
def real() -> list[tuple]:  # type: ignore[type-arg]
    archive = Archive(shared_data("study", "raw_images"))
    return [(t, archive.load(t).data) for t in archive.times]


def test_the_studys_real_frames_hold_no_fault_of_their_own_or_against_their_predecessors(real) -> None:  # type: ignore[no-untyped-def]
    history = FrameHistory()
    assert all(check_pixels(d) == [] and history.check("COMS-1", t, d, CHANNELS) == [] for t, d in real)


def _shifted(data: np.ndarray, channel: int, offset: float) -> np.ndarray:
    out = data.astype(np.float32)
    out[channel] += offset
    return np.clip(out, 0, 255).astype(np.uint8)


def test_a_calibration_jump_alerts_on_its_channel_for_as_long_as_it_lasts(real) -> None:  # type: ignore[no-untyped-def]
    history = FrameHistory()
    jumped = range(8, 13)
    kinds = []
    for i, (t, d) in enumerate(real):
        found = history.check("COMS-1", t, _shifted(d, 2, 18) if i in jumped else d, CHANNELS)
        kinds.append([f.kind for f in found])
        if i in jumped:
            assert "swir offset +1" in found[0].detail  # the deciles' shift: about the offset
    assert [i for i, k in enumerate(kinds) if k] == list(jumped)
    assert all(kinds[i] == ["calibration_jump"] for i in jumped)


def test_a_steady_drift_like_dawn_and_a_change_in_every_channel_are_not_calibration(real) -> None:  # type: ignore[no-untyped-def]
    history = FrameHistory()
    for i, (t, d) in enumerate(real):
        data = _shifted(d, 2, -5.0 * i)  # the sun warming swir 5 levels a frame, all its deciles together
        if i >= 12:
            data = np.clip(data.astype(np.int16) + 15, 0, 255).astype(np.uint8)  # every channel at once
        assert history.check("COMS-1", t, data, CHANNELS) == []


def test_a_lasting_change_becomes_the_new_level_after_the_hold(real) -> None:  # type: ignore[no-untyped-def]
    history = FrameHistory()
    step = T0 + timedelta(hours=2)
    flagged = []
    for i in range(60):  # 15 hours: the real frames over and over at 15 minutes (with a drift so none repeats)
        t = T0 + i * timedelta(minutes=15)
        data = _shifted(real[i % 5][1], 0, i % 5)
        if t >= step:
            data = _shifted(data, 3, -20)
        if history.check("COMS-1", t, data, CHANNELS):
            flagged.append(t)
    assert flagged[0] == step and flagged[-1] == step + CALIBRATION_HOLD
    assert len(flagged) == CALIBRATION_HOLD // timedelta(minutes=15) + 1


def test_a_new_history_follows_a_step_among_its_first_frames_and_raises_it_only_then(real) -> None:  # type: ignore[no-untyped-def]
    """After a start, a restart or a gap, nothing is raised from a short past; a step seen meanwhile is
    followed, so its frames are raised once the history is long enough (as the first run raised them) and
    the step back ends it."""
    history = FrameHistory()
    raised = []
    for i, (t, d) in enumerate(real[:12]):
        shifted = _shifted(d, 1, 20) if 2 <= i < 8 else d
        raised.append([f.kind for f in history.check("COMS-1", t, shifted, CHANNELS)])
    assert raised[:MIN_HISTORY] == [[]] * MIN_HISTORY
    assert raised[MIN_HISTORY:8] == [["calibration_jump"]] * (8 - MIN_HISTORY) and raised[8:] == [[]] * 4
    later = real[12][0] + timedelta(hours=2)  # a gap: the history starts again
    assert history.check("COMS-1", later, _shifted(real[0][1], 1, 20), CHANNELS) == []


def test_a_repeated_frame_or_channel_is_a_frozen_frame(real) -> None:  # type: ignore[no-untyped-def]
    history = FrameHistory()
    (t0, d0), (t1, d1), (t2, d2) = real[:3]
    assert history.check("COMS-1", t0, d0, CHANNELS) == []
    (whole,) = history.check("COMS-1", t1, d0, CHANNELS)
    assert whole.kind == "frozen_frame" and "every channel" in whole.detail
    stuck = d2.copy()
    stuck[3] = d0[3]
    (one,) = history.check("COMS-1", t2, stuck, CHANNELS)
    assert one.kind == "frozen_frame" and one.detail.startswith("wv ")
    # Satellites are followed apart: another satellite's first frame is compared with nothing.
    assert history.check("COMS-1b", t2, stuck, CHANNELS) == []


def test_simulated_faults_are_found_on_their_frames_and_nowhere_else() -> None:
    sim = SceneSimulator(SimConfig(seed=3, days=12 / 24))
    events = [e for e in sim.events if e.start <= sim.times[-1]]
    assert {e.kind for e in events} == {"calibration_jump", "missing_lines"}
    history = FrameHistory()
    for frame in sim.frames():
        found = {f.kind for f in check_pixels(frame.data) + history.check(frame.satellite, frame.time, frame.data)}
        assert found == {e.kind for e in events if e.active(frame.time)}, frame.time


def test_a_simulated_fault_alerts_operators_by_its_kind_and_never_as_weather(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = SceneSimulator(SimConfig(seed=7, days=10.25 / 24))
    (event,) = [e for e in sim.events if e.start <= sim.times[-1]]
    assert event.kind in QUALITY_KINDS
    s = Settings()
    s.detector.state_dir = str(tmp_path)
    s.detector.model_dir = str(packaged_model_dir())  # the procedural simulator's own set
    detector = build_detector(s)
    outcomes = [detector.process(f) for f in sim.frames()]
    during = [o for o in outcomes if event.active(o.time)]
    assert during and all(o.alert is not None and o.alert.kind == event.kind for o in during)
    after = event.end + timedelta(hours=1)
    assert [o for o in outcomes if o.alert is not None and not event.start <= o.time <= after] == []
    assert detector.metrics.quality_faults.labels(event.kind)._value.get() == len(during)
    detector.close()


def test_one_pass_pixel_stats_give_the_numpy_passes_results() -> None:
    """``pixel_stats`` (one compiled pass) feeds the checks the very numbers their own numpy passes computed,
    on simulated frames with every fault kind the simulator injects and on frames with odd sizes."""
    from satwatch.services.detection.quality import (
        SATURATED_COUNT,
        SATURATED_TILE,
        channel_levels,
        pixel_stats,
        striped_rows,
    )

    frames = [f.data for f in SceneSimulator(SimConfig(seed=11, days=1.5)).frames()][::3]
    rng = np.random.default_rng(5)
    frames += [rng.integers(0, 256, (4, 61, 83), dtype=np.uint8), np.full((2, 16, 16), 255, np.uint8)]
    frames += [rng.integers(0, 256, (c, 40, 50), dtype=np.uint8) for c in (1, 3)]  # odd and even channel counts
    odd = frames[0][:, :45, :70].copy()
    odd[:, 10:12] = 0
    odd[1, 20:36, 30:50] = 255
    frames.append(odd)
    for data in frames:
        st = pixel_stats(data)
        _, h, w = data.shape
        t = SATURATED_TILE
        np.testing.assert_array_equal(st.zeros, np.count_nonzero(data == 0, axis=2))
        np.testing.assert_array_equal(st.row_sums, data.sum(axis=2, dtype=np.uint32))
        crop = data[:, : h // t * t, : w // t * t] >= SATURATED_COUNT
        np.testing.assert_array_equal(st.top, np.count_nonzero(crop.reshape(len(data), -1), axis=1))
        np.testing.assert_array_equal(channel_levels(data, st), channel_levels(data))
        np.testing.assert_array_equal(striped_rows(data, st), _striped_rows_reference(data))


def _striped_rows_reference(data: np.ndarray) -> np.ndarray:
    """``striped_rows`` as first written (np.median throughout, one channel at a time)."""
    rows = data.sum(axis=2, dtype=np.uint32).astype(np.float32) / data.shape[2]
    padded = np.pad(rows, ((0, 0), (4, 4)), mode="edge")
    local = rows - np.median(np.lib.stride_tricks.sliding_window_view(padded, 9, axis=1), axis=2)
    if len(data) == 1:
        return np.count_nonzero(np.abs(local) > 6.0, axis=1)
    out = np.zeros(len(data), dtype=np.int64)
    for c in range(len(data)):
        out[c] = np.count_nonzero(np.abs(local[c] - np.median(np.delete(local, c, axis=0), axis=0)) > 6.0)
    return out
