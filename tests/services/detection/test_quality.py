from datetime import timedelta

import numpy as np

from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector
from satwatch.services.detection.quality import QUALITY_KINDS, check_model_terms, check_pixels
from satwatch.services.frames.archive import Archive
from satwatch.services.models.anomaly import AnomalyResult
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


def test_model_terms_alone_above_the_threshold_are_instrument_faults() -> None:
    heat = np.zeros((4, 4), np.float32)
    assert check_model_terms(AnomalyResult(9.0, heat, 3.4, consistency_excess=1.0), 3.4) == []
    found = check_model_terms(AnomalyResult(9.0, heat, 3.4, consistency_excess=5.0, lines_excess=4.0), 3.4)
    assert [f.kind for f in found] == ["calibration_jump", "striping"]


def test_the_studys_real_frames_hold_no_pixel_fault() -> None:
    archive = Archive(shared_data("study", "raw_images"))
    assert all(check_pixels(archive.load(t).data) == [] for t in archive.times)


def test_a_simulated_fault_alerts_operators_by_its_kind_and_never_as_weather(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = SceneSimulator(SimConfig(seed=7, days=10.25 / 24))
    (event,) = [e for e in sim.events if e.start <= sim.times[-1]]
    assert event.kind in QUALITY_KINDS
    s = Settings()
    s.detector.state_dir = str(tmp_path)
    detector = build_detector(s)
    outcomes = [detector.process(f) for f in sim.frames()]
    during = [o for o in outcomes if event.active(o.time)]
    assert during and all(o.alert is not None and o.alert.kind == event.kind for o in during)
    after = event.end + timedelta(hours=1)
    assert [o for o in outcomes if o.alert is not None and not event.start <= o.time <= after] == []
    assert detector.metrics.quality_faults.labels(event.kind)._value.get() == len(during)
    detector.close()
