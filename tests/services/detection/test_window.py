from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.detection.window import Admission, RollingWindow, WindowEntry
from tests.helpers import T0

Q = timedelta(minutes=15)


def entry(i: int, vec: list[float] | None = None) -> WindowEntry:
    return WindowEntry(T0 + i * Q, np.asarray(vec if vec is not None else [float(i), 1.0]))


def test_running_mean_matches_mean_of_last_frames() -> None:
    w = RollingWindow(3, Q)
    for i in range(5):
        assert w.add(entry(i)) is Admission.APPENDED
    assert w.full and len(w) == 3
    np.testing.assert_allclose(w.embedding(), [3.0, 1.0], rtol=1e-6)
    assert w.start == T0 + 2 * Q and w.end == T0 + 4 * Q


def test_duplicate_and_out_of_order_leave_window_unchanged() -> None:
    w = RollingWindow(4, Q)
    for i in (0, 1, 2):
        w.add(entry(i))
    before = w.embedding().copy()
    assert w.add(entry(2, [99.0, 99.0])) is Admission.DUPLICATE
    assert w.add(entry(1, [99.0, 99.0])) is Admission.DUPLICATE
    assert w.add(WindowEntry(T0 + Q / 2, np.zeros(2))) is Admission.OUT_OF_ORDER
    np.testing.assert_array_equal(w.embedding(), before)
    assert len(w) == 3


def test_gap_restarts_window_and_small_gap_does_not() -> None:
    w = RollingWindow(20, Q, max_gap_factor=4)
    w.add(entry(0))
    assert w.add(entry(3)) is Admission.APPENDED  # 45 min: a couple of missing frames is tolerated
    assert w.add(entry(10)) is Admission.RESTARTED  # 105 min > 4 cadences
    assert len(w) == 1 and w.start == T0 + 10 * Q


def test_empty_window_has_no_embedding() -> None:
    with pytest.raises(ValueError):
        RollingWindow(2, Q).embedding()
