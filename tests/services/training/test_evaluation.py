import numpy as np
import pytest

from satwatch.services.training.evaluation import anomaly_metrics, event_runs


def test_event_runs() -> None:
    labels = [(), ("striping",), ("striping", "vortex"), (), ("striping",)]
    assert event_runs(labels, "striping") == [(1, 2), (4, 4)]
    assert event_runs(labels, "vortex") == [(2, 2)]
    assert event_runs(labels, "convection") == []


def test_anomaly_metrics_counts_delay_and_false_alerts() -> None:
    labels = [()] * 10 + [("striping",)] * 3 + [()] * 10 + [("vortex",)] * 4
    scores = np.zeros(len(labels))
    scores[11:13] = 5.0  # striping detected one frame late
    scores[23:27] = 0.5  # vortex below threshold: scored above normal but missed
    normal = np.zeros(192)
    normal[:3] = 2.0  # three false alerts in two days
    m = anomaly_metrics(scores, labels, normal, threshold=1.0)
    assert m["per_kind"]["striping"]["detected"] == 1 and m["per_kind"]["striping"]["mean_delay_frames"] == 1.0
    assert m["per_kind"]["vortex"]["detected"] == 0
    assert m["per_kind"]["vortex"]["roc_auc"] == 1.0
    assert m["events"] == 2 and m["events_detected"] == 1
    assert m["false_alerts_per_day"] == pytest.approx(1.5)
    assert 0.5 < m["roc_auc"] <= 1.0
