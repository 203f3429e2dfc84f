import numpy as np
import pytest
from scipy import stats

from satwatch.services.training.metrics import (
    average_precision,
    pairwise_distances,
    pearson,
    reference_distances,
    retrieval_report,
    roc_auc,
    spearman,
    window_mean_cdfs,
)


def test_correlations_match_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = 0.5 * a + rng.normal(size=200)
    b[:20] = b[20]  # ties
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)


def test_auc_and_ap() -> None:
    y = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    perfect = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
    assert roc_auc(perfect, y) == 1.0 and average_precision(perfect, y) == 1.0
    assert roc_auc(-perfect, y) == 0.0
    assert roc_auc(np.ones(6), y) == 0.5
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    y2 = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    assert average_precision(s, y2) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert np.isnan(roc_auc(s, np.zeros(6, dtype=bool)))


def test_retrieval_report_perfect_embedding() -> None:
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(40, 3))
    dist = pairwise_distances(pts)
    np.testing.assert_allclose(dist, np.linalg.norm(pts[:, None] - pts[None], axis=-1), atol=1e-9)
    sim = 1.0 - dist / dist.max()
    rep = retrieval_report(sim, dist, k=5)
    assert rep.pearson == pytest.approx(-1.0)
    assert rep.recall_at_k == 1.0 and rep.topk_ratio == pytest.approx(1.0)
    shuffled = retrieval_report(sim, pairwise_distances(rng.normal(size=(40, 3))), k=5)
    assert shuffled.recall_at_k < 0.6 and shuffled.topk_mean_similarity < rep.topk_mean_similarity


def test_reference_distances_on_hand_made_windows() -> None:
    # Two one-channel, one-cell windows of two frames, CDFs over 2 bins (3 grey-level bins in all).
    cdfs = np.array(
        [
            [[[1.0, 1.0]]],  # every pixel in the lowest bin
            [[[0.0, 1.0]]],  # every pixel in the middle bin
            [[[0.0, 0.0]]],  # every pixel in the top bin
            [[[0.5, 1.0]]],
        ]
    )
    windows = np.array([[0, 1], [2, 3]])
    means = window_mean_cdfs(cdfs, windows)
    np.testing.assert_allclose(means[:, 0, 0], [[0.5, 1.0], [0.25, 0.5]])
    ref = reference_distances(cdfs, windows)
    ks, hell, roots, l2 = ref.values()
    # KS: the largest CDF gap, 0.5 at the second edge.
    np.testing.assert_allclose(ks, [[0.0, 0.5], [0.5, 0.0]])
    np.testing.assert_allclose(l2[0, 1], np.hypot(0.25, 0.5))
    # Window-mean histograms (0.5, 0.5, 0) and (0.25, 0.25, 0.5): Euclidean distance of their square roots.
    h = np.sqrt([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(hell[0, 1], np.linalg.norm(h[0] - h[1]))
    # The design's linear ceiling averages the frames' square-root histograms instead: (1,0,0) and (0,1,0)
    # give (0.5, 0.5, 0); (0,0,1) and (0.5,0.5,0) give (r/2, r/2, 0.5) with r = sqrt(0.5).
    r = np.sqrt(0.5)
    np.testing.assert_allclose(roots[0, 1], np.linalg.norm(np.array([0.5, 0.5, 0.0]) - [r / 2, r / 2, 0.5]), rtol=1e-6)
    assert np.allclose(np.diag(l2), 0) and np.allclose(l2, l2.T)
