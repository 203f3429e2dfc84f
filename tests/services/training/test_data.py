from datetime import UTC, datetime, timedelta

import numpy as np

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
    w = block_windows(times, range(10, 40), size=5, stride=1)
    assert w.min() >= 10 and w.max() < 40
    assert not any(24 in row and 25 in row for row in w.tolist())
    assert np.all(np.diff(w, axis=1) == 1)
    assert block_windows(times, range(0, 4), size=5).shape == (0, 5)
