"""Calibration streams: every normal frame of each archive, counted per stream, and what the card records."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from satwatch.services.training.calibration import CalibrationStreams
from satwatch.services.training.data import FrameSet


def _stream(start: datetime, hours: int, event_hours: range = range(0)) -> FrameSet:
    times = [start + timedelta(minutes=15 * i) for i in range(hours * 4)]
    labels = [("fog",) if int((t - start).total_seconds() // 3600) in event_hours else () for t in times]
    return FrameSet("COMS-1", times, np.arange(len(times), dtype=np.uint8)[:, None], labels)


def test_every_normal_frame_calibrates_and_the_card_says_which() -> None:
    a = _stream(datetime(2024, 3, 1, tzinfo=UTC), 12, event_hours=range(2, 4))
    b = _stream(datetime(2024, 7, 1, tzinfo=UTC), 24)
    cal = CalibrationStreams([Path("x/a"), Path("y/b")], [a, b])
    normal = cal.normal
    assert len(normal) == 48 - 8 + 96 and all(not lab for lab in normal.labels)
    # Four months apart, the streams still count 96 frames a day: the gap between them is not a cadence.
    assert cal.per_day == 96.0
    rec = cal.record()
    assert [r["archive"] for r in rec["archives"]] == ["a", "b"]
    assert [r["frames"] for r in rec["archives"]] == [40, 96]
    assert rec["frames"] == 136 and rec["hours_covered"] == 24  # b covers the hours a's event took
    assert [r["hours_covered"] for r in rec["archives"]] == [10, 24]
    assert rec["normal_days"] == 136 / 96 and "never trained on" in rec["method"]
