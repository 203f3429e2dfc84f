"""The window rule's companion: which frames followed a window."""

from __future__ import annotations

from datetime import datetime, timedelta

from satwatch.services.frames.windows import frames_after


def test_frames_after_takes_the_horizon_after_the_end_only() -> None:
    t0 = datetime(2011, 3, 3, 6, 45)
    times = [t0 + timedelta(minutes=15 * i) for i in range(12)]
    after = frames_after(times, times[3], timedelta(hours=1))
    assert after == times[4:8]
    assert frames_after(times, times[-1], timedelta(hours=1)) == []
