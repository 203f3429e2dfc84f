"""The alert's nowcast summary: from the similar events the detector found, what followed them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import get_profile
from satwatch.services.nowcast.forecast import Analog, MemorySource
from satwatch.services.nowcast.summary import alert_summary
from satwatch.services.nowcast.verify import cold_cloud_grey

CADENCE = get_profile("COMS-1").cadence


def test_summary_predicts_what_followed_a_perfect_analog(stream: list[Frame], day_before: MemorySource) -> None:
    issue = stream[20]
    analogs = [Analog(issue.time - timedelta(days=1), 1.0)]
    s = alert_summary(issue.data, issue.channels, issue.time, analogs, day_before, CADENCE)
    assert s is not None and [o.lead for o in s.outlook] == [timedelta(hours=h) for h in (1, 2, 3)]
    thr = cold_cloud_grey()
    for o, i in zip(s.outlook, (24, 28, 32), strict=True):
        assert o.cold_fraction == pytest.approx(float((stream[i].data[0] >= thr).mean()))
        assert o.cold_fraction_spread == 0.0 and o.analogs == 1
    assert s.cold_fraction_now == pytest.approx(float((issue.data[0] >= thr).mean()))
    assert "analog nowcast (1 analogs" in s.text()
    assert s.to_dict()["outlook"][0]["lead_minutes"] == 60


def test_summary_is_none_without_analogs_or_their_frames(stream: list[Frame], day_before: MemorySource) -> None:
    issue = stream[20]
    assert alert_summary(issue.data, issue.channels, issue.time, [], day_before, CADENCE) is None
    gone = [Analog(issue.time - timedelta(days=30), 0.9)]  # the source holds nothing after it
    assert alert_summary(issue.data, issue.channels, issue.time, gone, day_before, CADENCE) is None


def test_summary_weights_by_similarity_and_reports_spread(stream: list[Frame], day_before: MemorySource) -> None:
    issue = stream[20]
    a, b = Analog(stream[0].time - timedelta(days=1), 0.6), Analog(stream[10].time - timedelta(days=1), 0.2)
    s = alert_summary(issue.data, issue.channels, issue.time, [a, b], day_before, CADENCE, leads=(timedelta(hours=1),))
    assert s is not None
    thr = cold_cloud_grey()
    fa, fb = ((stream[i].data[0] >= thr).mean() for i in (4, 14))
    assert s.outlook[0].cold_fraction == pytest.approx(0.75 * fa + 0.25 * fb)
    assert s.outlook[0].cold_fraction_spread == pytest.approx(np.sqrt(0.75 * 0.25) * abs(fa - fb))
