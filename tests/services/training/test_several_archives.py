"""Several archives train one autoencoder: each archive holds out its own calibration days, and one archive is
cut exactly as before."""

from datetime import UTC, datetime, timedelta

import numpy as np

from satwatch.services.training.data import FrameSet, calibration_split
from satwatch.services.training.pipeline import split_archive, split_archives


def _stream(start: datetime, days: float, event_hours: range = range(0)) -> FrameSet:
    """A stream's frame times at 15 minutes (one byte a frame: the split reads only times and labels)."""
    times = [start + timedelta(minutes=15 * i) for i in range(int(days * 96))]
    labels = [("fog",) if int((t - start).total_seconds() // 3600) in event_hours else () for t in times]
    return FrameSet("COMS-1", times, np.zeros((len(times), 1), dtype=np.uint8), labels)


def test_each_archive_holds_out_its_own_fifth_days_in_every_hour() -> None:
    march = _stream(datetime(2024, 3, 25, tzinfo=UTC), 5, event_hours=range(30, 33))
    june = _stream(datetime(2024, 6, 20, 5, tzinfo=UTC), 6)
    split = split_archives([(june, "june"), (march, "march")])
    days = {t.date() for t in split.valid.times}
    # Counted from each archive's own first day: 2024-03-29 and 2024-06-24. A folder of symlinks would count
    # from March 25 and hold out June 22 (day 89) instead, so which streams calibrate would hang on their dates.
    assert days == {datetime(2024, 3, 29).date(), datetime(2024, 6, 24).date()}
    for fs in (march, june):
        mine = [t for t in split.valid.times if fs.times[0] <= t <= fs.times[-1]]
        assert len({t.hour for t in mine}) == 24
    cal = split.calibration
    assert [a["archive"] for a in cal["archives"]] == ["march", "june"]  # ordered by time
    assert cal["frames"] == len(split.valid) == 2 * 96 and cal["hours_covered"] == 24
    assert "in each of the 2 archives on its own" in cal["method"] and "every 5th UTC day" in cal["method"]
    assert split.train.times == sorted(split.train.times)
    assert len(split.train) == len(march) + len(june) - 2 * 96 - 12  # the 12 event frames never train
    assert len(split.dev) == 2 * 96 + 12
    assert split.desc.startswith("archives march, june: ") and "12 labelled event frames" in split.desc


def test_a_short_archive_beside_a_long_one_holds_out_every_fifth_hour() -> None:
    long, short = _stream(datetime(2024, 4, 1, tzinfo=UTC), 5), _stream(datetime(2024, 7, 1, tzinfo=UTC), 2)
    split = split_archives([(long, "long"), (short, "short")])
    held, _ = calibration_split(short.times)
    assert len(split.valid) == 96 + int(held.sum())
    assert "every 5th hour" in split.calibration["method"] and "every 5th UTC day" in split.calibration["method"]


def test_one_archive_is_cut_exactly_as_before() -> None:
    fs = _stream(datetime(2024, 3, 25, 7, tzinfo=UTC), 6, event_hours=range(10, 14))
    one, before = split_archives([(fs, "a")]), split_archive(fs, "a")
    assert one.desc == before.desc and one.calibration == before.calibration
    assert "archives" not in one.calibration
    for got, want in ((one.train, before.train), (one.valid, before.valid), (one.dev, before.dev)):
        assert got.times == want.times and got.labels == want.labels
