import numpy as np
import pytest

from satwatch.services.training.report import pair_pearsons, study_triplet_pairs


def test_study_triplet_pairs_pair_each_anchor_with_a_near_and_a_far_window() -> None:
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(30, 2))
    sim = 1.0 - np.linalg.norm(pts[:, None] - pts[None], axis=-1) / 10.0
    pairs = study_triplet_pairs(sim, seed=1, near_fraction=0.1)
    near, far = pairs[: len(pairs) // 2], pairs[len(pairs) // 2 :]
    assert len(near) == len(far) == 30
    np.testing.assert_array_equal(near[:, 0], far[:, 0])
    assert (sim[near[:, 0], near[:, 1]] > sim[far[:, 0], far[:, 1]]).all()
    # near windows come from the anchor's 3 most similar others (10% of 29)
    for a, b in near:
        others = np.delete(np.arange(30), a)
        assert b in others[np.argsort(-sim[a, others])[:3]]


def test_pair_pearsons_reads_each_pair_set() -> None:
    rng = np.random.default_rng(4)
    sim = rng.uniform(size=(12, 12))
    sim = (sim + sim.T) / 2
    dist = 1.0 - sim
    apart = np.ones((12, 12), dtype=bool)
    out = pair_pearsons(sim, dist, apart, study_triplet_pairs(sim))
    assert out["all"] == pytest.approx(-1.0)
    assert out["disjoint"] == pytest.approx(-1.0)
    assert out["study_triplets"] == pytest.approx(-1.0)
    noisy = pair_pearsons(sim, dist + rng.normal(scale=0.3, size=(12, 12)), apart, study_triplet_pairs(sim))
    assert noisy["study_triplets"] > -0.99
