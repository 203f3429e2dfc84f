from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.detection.quality import MODEL_MISMATCH, QualityFinding
from satwatch.services.models.anomaly import AnomalyResult
from satwatch.services.training.data import FrameSet
from satwatch.services.training.decision import alert_kinds, decision_metrics, findings_of
from tests.helpers import T0, make_frame

JUMP = [QualityFinding("calibration_jump", "swir offset +25")]


def test_a_flagged_fault_ranks_above_every_unflagged_frame_and_false_alerts_split_by_route() -> None:
    # 8 normal frames, 2 vortex frames scored high, 2 calibration-jump frames the model scores low but a
    # check flags; one normal frame is flagged (a data-quality false alert), one scores above the threshold.
    scores = np.array([0.1, 0.2, 0.3, 5.0, 0.5, 0.6, 0.7, 0.8, 9.0, 8.0, 0.05, 0.15])
    labels = [()] * 8 + [("vortex",)] * 2 + [("calibration_jump",)] * 2
    findings = [[] for _ in scores]
    findings[10] = findings[11] = JUMP
    findings[2] = [QualityFinding("frozen_frame", "every channel")]
    m = decision_metrics(scores, findings, labels, threshold=3.0, frames_per_day=4)
    jump, vortex = m["per_kind"]["calibration_jump"], m["per_kind"]["vortex"]
    assert jump["route"] == "data_quality" and vortex["route"] == "weather"
    # The model alone ranks the jump's frames below almost every normal frame; the decision lifts them
    # above every normal frame but the flagged one (scored higher): each beats 7 of the 8.
    assert jump["roc_auc"] == pytest.approx((7 * 2 + 0) / 16)
    assert jump["frames_alerted"] == jump["frames_named_right"] == 1.0 and jump["detected"] == 1
    assert vortex["roc_auc"] == 1.0 and vortex["frames_alerted"] == 1.0
    assert m["false_alerts_per_day"] == {"weather": 0.5, "data_quality": 0.5}
    assert m["normal_faults_by_kind"] == {"frozen_frame": 1}
    assert alert_kinds(scores[:4], findings[:4], 3.0) == ["", "", "frozen_frame", "anomaly"]


def test_a_normal_twin_counts_the_false_alerts() -> None:
    scores = np.array([0.1, 9.0])
    m = decision_metrics(scores, [[], JUMP], [(), ("calibration_jump",)], 3.0, 96, np.array([4.0, 0.1]), [[], JUMP])
    assert m["normal_days"] == pytest.approx(2 / 96)
    assert m["false_alerts_per_day"] == {"weather": pytest.approx(48.0), "data_quality": pytest.approx(48.0)}


def test_findings_follow_the_frames_in_stream_order() -> None:
    frames = [make_frame(T0 + i * timedelta(minutes=15)) for i in range(3)]
    data = np.stack([f.data for f in frames])
    data[2] = data[1]  # sent again under a new time
    fs = FrameSet("COMS-1", [f.time for f in frames], data)
    found = findings_of(fs)
    assert [[f.kind for f in fr] for fr in found] == [[], [], ["frozen_frame"]]


def test_a_frame_the_model_does_not_fit_is_the_operators_model_mismatch_as_in_the_detector() -> None:
    """With the model's results, a frame no check flags but the model set does not fit gets the detector's
    ``model_mismatch`` finding; a finding already there stays the frame's alert."""
    frames = [make_frame(T0 + i * timedelta(minutes=15)) for i in range(3)]
    data = np.stack([f.data for f in frames])
    data[2] = data[1]
    fs = FrameSet("COMS-1", [f.time for f in frames], data)
    heat = np.zeros((2, 2), np.float32)
    results = [AnomalyResult(0.1, heat, 1.0, domain_ratio=r) for r in (0.9, 31.0, 31.0)]
    found = findings_of(fs, results)
    assert [[f.kind for f in fr] for fr in found] == [[], [MODEL_MISMATCH], ["frozen_frame"]]
    assert "31.0x" in found[1][0].detail and "autoencoder-v2" in found[1][0].detail
    assert alert_kinds(np.array([0.1, 5.0, 5.0]), found, 1.0) == ["", MODEL_MISMATCH, "frozen_frame"]
