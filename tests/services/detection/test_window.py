from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.detection.window import Admission, RollingWindow, WindowEntry
from satwatch.services.frames.windows import window_ending
from tests.helpers import T0

Q = timedelta(minutes=15)
SPAN = timedelta(hours=6)


def entry(i: int, vec: list[float] | None = None) -> WindowEntry:
    return WindowEntry(T0 + i * Q, np.asarray(vec if vec is not None else [float(i), 1.0]))


def test_running_mean_matches_mean_of_last_frames() -> None:
    w = RollingWindow(3, SPAN)
    for i in range(5):
        assert w.add(entry(i)) is Admission.APPENDED
    assert w.full and len(w) == 3
    np.testing.assert_allclose(w.embedding(), [3.0, 1.0], rtol=1e-6)
    assert w.start == T0 + 2 * Q and w.end == T0 + 4 * Q


def test_duplicate_and_out_of_order_leave_window_unchanged() -> None:
    w = RollingWindow(4, SPAN)
    for i in (0, 1, 2):
        w.add(entry(i))
    before = w.embedding().copy()
    assert w.add(entry(2, [99.0, 99.0])) is Admission.DUPLICATE
    assert w.add(entry(1, [99.0, 99.0])) is Admission.DUPLICATE
    assert w.add(WindowEntry(T0 + Q / 2, np.zeros(2))) is Admission.OUT_OF_ORDER
    np.testing.assert_array_equal(w.embedding(), before)
    assert len(w) == 3


def test_gap_leaves_a_part_filled_window_and_a_span_long_gap_restarts_it() -> None:
    w = RollingWindow(20, SPAN)
    w.add(entry(0))
    assert w.add(entry(3)) is Admission.APPENDED  # 45 min: missing frames leave the window part-filled
    assert w.add(entry(10)) is Admission.APPENDED  # 2.5 h gap: still inside the 6-hour span
    assert len(w) == 3
    assert w.add(entry(27)) is Admission.APPENDED  # frames 0 and 3 are now 6 h or more older: gone
    assert w.times == (T0 + 10 * Q, T0 + 27 * Q)
    np.testing.assert_allclose(w.embedding(), [18.5, 1.0], rtol=1e-6)
    assert w.add(entry(51)) is Admission.RESTARTED  # exactly the span: nothing earlier remains
    assert len(w) == 1 and w.start == T0 + 51 * Q


def test_window_matches_the_one_window_rule() -> None:
    rng = np.random.default_rng(3)
    slots = np.flatnonzero(rng.random(200) > 0.2)  # a fifth of the frames missing, at random
    times = [T0 + int(i) * Q for i in slots]
    w = RollingWindow(20, SPAN)
    for t in times:
        w.add(WindowEntry(t, np.zeros(2)))
        assert list(w.times) == window_ending(times, t, 20, SPAN)


def test_empty_window_has_no_embedding() -> None:
    with pytest.raises(ValueError):
        RollingWindow(2, SPAN).embedding()


def test_part_means_follow_the_window_as_it_slides_fills_and_restarts() -> None:
    from satwatch.services.models.embedding import part_means

    rng = np.random.default_rng(3)
    vecs = rng.random((60, 5))
    w = RollingWindow(20, SPAN)
    # a steady stream, then a 3-hour gap (frames leave by time, part-filled), then a span-long gap (restart)
    steps = list(range(30)) + list(range(42, 50)) + list(range(80, 84))
    for i in steps:
        w.add(WindowEntry(T0 + i * Q, vecs[i % 60]))
        held = np.stack([vecs[int((t - T0) / Q) % 60] for t in w.times])
        for parts in (1, 2, 4):
            np.testing.assert_allclose(w.part_means(parts), part_means(held, parts), rtol=1e-5, atol=1e-6)
    assert len(w) == 4 and w.start == T0 + 80 * Q
    # the parts are the window's consecutive quarters, not its mean four times over
    assert not np.allclose(w.part_means(4)[:5], w.part_means(4)[-5:])
