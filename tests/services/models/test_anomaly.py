from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from satwatch.services.frames.frame import CHANNELS, Frame
from satwatch.services.models.anomaly import AnomalyScorer, aggregate_score, combine_scores, time_features
from satwatch.services.models.modelcard import Scoring


def _normal_frame(t: datetime) -> Frame:
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    sim = SceneSimulator(SimConfig(seed=4242, start=t, days=0.25, events=False))
    return next(iter(sim.frames()))


@pytest.fixture(scope="module")
def scorer() -> AnomalyScorer:
    return AnomalyScorer.load()


def test_time_features_are_periodic() -> None:
    t = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
    f = time_features([t, t + timedelta(days=1), t + timedelta(hours=12)])
    assert f.shape == (3, 4) and f.dtype == np.float32
    np.testing.assert_allclose(f[0, :2], f[1, :2], atol=1e-6)
    np.testing.assert_allclose(f[0, :2], -f[2, :2], atol=1e-6)
    np.testing.assert_allclose((f[:, :2] ** 2).sum(1), 1.0, atol=1e-6)


def test_aggregate_score_takes_top_fraction() -> None:
    err = np.zeros((2, 10, 10), dtype=np.float32)
    err[1, 0, :5] = 1.0
    s = aggregate_score(err, 0.05)
    assert s[0] == 0.0 and s[1] == pytest.approx(1.0)
    assert aggregate_score(err, 0.10)[1] == pytest.approx(0.5)


def test_combine_scores_adds_frame_level_terms_beyond_their_gates() -> None:
    sc = Scoring(aggregate="with_consistency", consistency_output="c", pixel_center=1.0, pixel_scale=2.0)
    sc = sc.model_copy(update={"consistency_gate": 10.0, "lines_output": "lines", "lines_gate": 5.0})
    pixel, cons, lines = np.array([1.0, 3.0, 1.0, 1.0]), np.array([9.0, 9.0, 14.0, 0.0]), np.array([4, 4, 4, 8.0])
    assert combine_scores(pixel, cons, sc, lines).tolist() == [0.0, 1.0, 4.0, 3.0]
    with pytest.raises(ValueError, match="lines"):
        combine_scores(pixel, cons, sc)
    plain = sc.model_copy(update={"lines_output": None})
    assert combine_scores(pixel, cons, plain).tolist() == [0.0, 1.0, 4.0, 0.0]


def test_shipped_model_scores_corrupted_frame_higher(scorer: AnomalyScorer) -> None:
    frame = _normal_frame(datetime(2024, 7, 20, 3, 0, tzinfo=UTC))
    bad = frame.data.copy()
    bad[:, 100:160, 80:160] = 255  # a saturated block
    bad[:, 200:203, :] = 0  # missing lines
    corrupted = Frame(frame.satellite, frame.time, CHANNELS, bad)
    normal_res, bad_res = scorer.score_batch([frame, corrupted])
    assert bad_res.score > 2 * normal_res.score
    h, w = scorer.card.normalisation.height, scorer.card.normalisation.width
    assert bad_res.heatmap.shape == normal_res.heatmap.shape == (h, w)
    assert bad_res.heatmap.dtype == np.float32
    # the error map peaks inside the corrupted block or on the missing lines (rows 100-203 of 300)
    r, _ = np.unravel_index(np.argmax(bad_res.heatmap), bad_res.heatmap.shape)
    assert 90 / 300 * h <= r <= 210 / 300 * h
    assert bad_res.is_anomaly


def test_score_matches_batch(scorer: AnomalyScorer) -> None:
    frame = _normal_frame(datetime(2024, 7, 2, 12, 0, tzinfo=UTC))
    single = scorer.score(frame)
    batch = scorer.score_batch([frame, frame])
    assert single.score == pytest.approx(batch[1].score, rel=1e-5)
    assert scorer.score_batch([]) == []


def test_threshold_defaults_to_card_and_can_be_overridden() -> None:
    default = AnomalyScorer.load()
    assert default.threshold == pytest.approx(default.card.thresholds["anomaly"])
    custom = AnomalyScorer.load(threshold=123.0)
    assert custom.threshold == 123.0
    frame = _normal_frame(datetime(2024, 7, 3, 0, 0, tzinfo=UTC))
    res = custom.score(frame)
    assert res.threshold == 123.0 and not res.is_anomaly
    assert AnomalyScorer.load(threshold=-1.0).score(frame).is_anomaly
