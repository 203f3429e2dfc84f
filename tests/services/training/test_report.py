import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.models.embedding import FrameEncoder
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


def test_the_encoder_section_needs_no_pytorch(tmp_path: Path) -> None:
    """``satwatch evaluate``'s encoder report (ground truth, ONNX encoder, plots) in a process where importing
    torch fails: the ground truth it compares with comes from ``training.truth``, not the training code."""
    code = """
import sys; sys.modules["torch"] = None  # any import of torch fails
from datetime import UTC, datetime, timedelta
from pathlib import Path
import numpy as np
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.training.data import FrameSet
from satwatch.services.training.report import encoder_section
enc = FrameEncoder.load(None)
n, h, w = 67, enc.card.normalisation.height, enc.card.normalisation.width
times = [datetime(2024, 7, 1, tzinfo=UTC) + i * timedelta(minutes=15) for i in range(n)]
base = np.random.default_rng(0).integers(0, 256, (4, h, w), dtype=np.uint8)
data = np.stack([np.roll(base, 3 * i, axis=2) for i in range(n)])  # a field drifting east
lines, metrics = encoder_section(enc, FrameSet("COMS-1", times, data), Path(sys.argv[1]), progress=False)
print(metrics["test_windows"], lines[0])
"""
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"6 ## Frame encoder (v{FrameEncoder.load(None).card.version})"
    assert (tmp_path / "encoder_scatter.png").stat().st_size > 0
