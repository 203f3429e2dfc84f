"""The temporal-novelty term of v2.1 scoring: each patch against the same patch in the stream's previous frames."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.models.anomaly import (
    AnomalyResult,
    novelty_term,
    previous_within,
    stream_with_novelty,
    with_novelty,
)
from satwatch.services.models.modelcard import Scoring
from tests.helpers import T0

STEP = timedelta(minutes=15)
SC = Scoring(
    aggregate="with_consistency",
    novelty_frames=2,
    novelty_span_s=1800.0,
    novelty_top=2,
    novelty_center=1.0,
    novelty_scale=2.0,
)


def _map(value: float = 5.0, **patches: float) -> np.ndarray:
    m = np.full((4, 5), value, dtype=np.float32)
    for name, v in patches.items():
        r, c = (int(x) for x in name[1:].split("_"))
        m[r, c] = v
    return m


def _result(patches: np.ndarray, weather: float = 0.0, cons: float = 0.0, lines: float = 0.0) -> AnomalyResult:
    score = float(np.float32(weather) + np.float32(cons) + np.float32(lines))
    heat = np.zeros((8, 10), dtype=np.float32)
    return AnomalyResult(score, heat, 3.0, cons, lines, weather, 0.0, weather, patches)


def test_a_new_patch_is_novel_and_a_persistent_one_is_not() -> None:
    quiet, odd = _map(), _map(p1_2=25.0)
    # The odd patch appears: the top-2 excesses are 20 and 0, mean 10, standardised (10 - 1) / 2.
    assert novelty_term(odd, [quiet], SC) == pytest.approx(4.5)
    # The same odd patch was there a frame ago: nothing is new.
    assert novelty_term(odd, [odd], SC) == pytest.approx(-0.5)
    # Each patch is compared with the largest the same patch had in any of the previous frames.
    assert novelty_term(odd, [quiet, odd], SC) == pytest.approx(-0.5)
    # No previous frame, or a card without the term: no novelty.
    assert novelty_term(odd, [], SC) is None
    assert novelty_term(odd, [quiet], Scoring()) is None


def test_previous_frames_are_the_latest_within_the_span() -> None:
    maps = [_map(float(i)) for i in range(4)]
    earlier = [(T0 + i * STEP, m) for i, m in enumerate(maps)]
    got = previous_within(SC, T0 + 4 * STEP, earlier)
    assert [float(m[0, 0]) for m in got] == [3.0, 2.0]  # two frames, newest first
    # After a gap longer than the span, nothing is in reach.
    assert previous_within(SC, T0 + 4 * STEP + timedelta(minutes=31), earlier[-1:]) == []
    # Neither the frame itself nor a later one counts.
    assert previous_within(SC, T0 + 3 * STEP, earlier) == [maps[2], maps[1]]


def test_novelty_raises_the_score_only_where_it_is_the_larger_weather_term() -> None:
    quiet, odd = _map(), _map(p1_2=25.0)
    new = with_novelty(_result(odd, weather=2.0, cons=0.5, lines=0.25), [quiet], SC)
    assert new.novelty == pytest.approx(4.5) and new.score == pytest.approx(4.5 + 0.5 + 0.25)
    # Its heat map is the novelty map: the new patch (row 1, column 2 of 4 x 5, each 2 x 2 pixels here) is the
    # hottest, at (20 - 1) / 2; patches that did not change sit at (0 - 1) / 2.
    assert new.heatmap.shape == (8, 10)
    assert np.unravel_index(int(np.argmax(new.heatmap)), new.heatmap.shape) == (2, 4)
    assert float(new.heatmap.max()) == pytest.approx(9.5) and float(new.heatmap.min()) == pytest.approx(-0.5)
    # The frame's own weather term is larger: the score stays as it was, bit for bit.
    own = _result(odd, weather=6.0, cons=0.5)
    kept = with_novelty(own, [quiet], SC)
    assert kept.score == own.score and kept.novelty == pytest.approx(4.5)
    assert kept.heatmap is own.heatmap  # the frame's own map still explains its score
    # A result without a patch map (a model without the texture term) is left alone.
    bare = AnomalyResult(1.0, np.zeros((2, 2), dtype=np.float32), 3.0)
    assert with_novelty(bare, [quiet], SC) is bare


def test_a_stream_is_scored_frame_by_frame_against_its_own_past() -> None:
    quiet, odd = _map(), _map(p1_2=25.0)
    times = [T0 + i * STEP for i in range(4)] + [T0 + 4 * STEP + timedelta(hours=2)]
    results = [_result(m) for m in (quiet, odd, odd, quiet, odd)]
    out = stream_with_novelty(results, times, SC)
    assert [None if r.novelty is None else round(r.novelty, 3) for r in out] == [None, 4.5, -0.5, -0.5, None]
    assert out[1].score == pytest.approx(4.5) and out[2].score == results[2].score
    # A card without the term leaves the results as they are.
    assert stream_with_novelty(results, times, Scoring()) == results
