from datetime import UTC, datetime, timedelta

import numpy as np

from satwatch.services.frames.windows import windows_over
from satwatch.services.training.data import block_windows, split_blocks


def test_split_blocks_cover_everything_in_order() -> None:
    blocks = split_blocks(101)
    assert [b.start for b in blocks] == [0, blocks[0].stop, blocks[1].stop]
    assert blocks[-1].stop == 101
    assert abs(len(blocks[0]) - 20) <= 1 and abs(len(blocks[2]) - 61) <= 1


def test_block_windows_stay_inside_and_skip_gaps() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(minutes=15 * i) for i in range(40)]
    times[25:] = [t + timedelta(hours=3) for t in times[25:]]  # a 3-hour gap after frame 24
    w = block_windows(times, range(10, 40), size=5, stride=1, span=timedelta(hours=1.5))
    assert w.min() >= 10 and w.max() < 40
    assert not any(24 in row and 25 in row for row in w.tolist())  # the gap is longer than a window's span
    assert np.all(np.diff(w, axis=1) == 1)
    assert block_windows(times, range(0, 4), size=5).shape == (0, 5)


def test_block_windows_follow_the_one_window_rule() -> None:
    """Training cuts windows as the detector and the index do: a window may span a gap its span allows."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(minutes=15 * i) for i in range(60) if i not in (30, 31, 45)]  # frames missing
    w = block_windows(times, range(0, len(times)), size=20, stride=3)
    expected = windows_over(times, 20, timedelta(hours=6), stride=3)
    assert [[times[i] for i in row] for row in w.tolist()] == expected
    assert any(29 in row and 30 in row for row in w.tolist())  # index 30 is the frame after the gap
