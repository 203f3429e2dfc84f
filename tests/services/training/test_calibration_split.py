"""Threshold calibration frames cover every hour of the day (normal scores swing with the hour)."""

from datetime import UTC, datetime, timedelta

import numpy as np

from satwatch.services.training.data import calibration_split, hours_covered


def _times(days: float, start_hour: int = 0) -> list[datetime]:
    t0 = datetime(2024, 7, 1, start_hour, tzinfo=UTC)
    return [t0 + timedelta(minutes=15 * i) for i in range(int(days * 96))]


def test_whole_days_when_the_archive_spans_enough_of_them() -> None:
    times = _times(10, start_hour=5)
    mask, how = calibration_split(times)
    held = [t for t, m in zip(times, mask, strict=True) if m]
    assert "every 5th UTC day" in how
    assert hours_covered(held) == 24
    assert {t.date() for t in held} == {datetime(2024, 7, 5).date(), datetime(2024, 7, 10).date()}
    assert 0.15 < mask.mean() < 0.25


def test_every_fifth_hour_on_a_short_archive() -> None:
    times = _times(2.5)
    mask, how = calibration_split(times)
    held = [t for t, m in zip(times, mask, strict=True) if m]
    assert "every 5th hour" in how
    assert np.isclose(mask.mean(), 0.2, atol=0.02)
    assert hours_covered(held) >= 12  # spread over the day, where the last 20% by time holds 12 contiguous hours
    assert {t.hour for t in held} >= {4, 9, 14, 19, 0, 5}


def test_days_are_counted_at_the_archives_cadence() -> None:
    from satwatch.services.training.autoencoder import calibrate_threshold
    from satwatch.services.training.data import frames_per_day

    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    ten_minutes = [t0 + timedelta(minutes=10 * i) for i in range(288)]
    assert frames_per_day(ten_minutes) == 144.0 and frames_per_day(_times(1)) == 96.0
    scores = np.arange(288, dtype=np.float64)  # two days at 10 minutes: two frames may exceed at 1 a day
    assert calibrate_threshold(scores, 1.0, frames_per_day(ten_minutes)) == 285.5
    assert calibrate_threshold(scores, 1.0) == 284.5  # counted at 15 minutes, the 288 frames make three days
