"""Encoder v3, the count sketch: balanced buckets, the ONNX file against a NumPy reference, distances kept."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from satwatch.services.frames.archive import Archive  # noqa: E402
from satwatch.services.frames.frame import shrink  # noqa: E402
from satwatch.services.models.embedding import FrameEncoder  # noqa: E402
from satwatch.services.training.data import FrameSet  # noqa: E402
from satwatch.services.training.metrics import pairwise_distances, pearson  # noqa: E402
from satwatch.services.training.sketch import (  # noqa: E402
    SketchEncoderNet,
    choose_sketch,
    count_sketch,
    export_sketch,
    sketch_data,
    sketch_reference,
)
from tests.helpers import shared_data  # noqa: E402

D = 2 * 84 * 24 * 24  # two parts' histograms: 96,768 numbers


@pytest.fixture(scope="module")
def real() -> FrameSet:
    """The study's 25 real COMS frames at the study size."""
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    data = np.stack([shrink(archive.load(t)).data for t in archive.times])
    return FrameSet("COMS-1", list(archive.times), data)


@pytest.fixture(scope="module")
def windows(real: FrameSet) -> np.ndarray:
    """Inputs of the real frames' windows of 6 at every start: (20, 2, 84, 24, 24), as the runtime builds them."""
    from satwatch.services.metric.groundtruth import GridSpec, frame_signature
    from satwatch.services.models.embedding import hist_from_signature, part_means

    spec = GridSpec(n=24, bins=20, mode="general")
    per_frame = np.stack([hist_from_signature(frame_signature(f, spec)).reshape(-1) for f in real.data])
    return np.stack([part_means(per_frame[i : i + 6], 2) for i in range(len(per_frame) - 5)]).reshape(-1, 2, 84, 24, 24)


@pytest.mark.parametrize(("d", "k"), [(D, 256), (D, 1024), (10, 3)])
def test_every_coordinate_goes_once_with_a_sign_into_balanced_buckets(d: int, k: int) -> None:
    sk = count_sketch(d, k, seed=3)
    real = sk.sign != 0
    assert sk.index.shape == sk.sign.shape == (k, -(-d // k))
    np.testing.assert_array_equal(np.sort(sk.index[real]), np.arange(d))  # a permutation: each exactly once
    assert set(np.unique(sk.sign[real]).tolist()) == {-1.0, 1.0}
    sizes = real.sum(axis=1)
    assert sizes.max() - sizes.min() <= 1  # balanced, padding spread over the buckets
    assert np.all(sk.index[~real] == 0)  # padding reads a real coordinate, weighted 0
    np.testing.assert_array_equal(count_sketch(d, k, seed=3).index, sk.index)  # the seed fixes it


def test_exported_sketch_equals_the_numpy_reference(windows: np.ndarray, tmp_path: Path) -> None:
    sk = count_sketch(D, 1024, seed=0)  # 1,024 does not divide 96,768: padding slots are exercised
    export_sketch(SketchEncoderNet(sk, parts=2), tmp_path, {}, "none, for a test")
    enc = FrameEncoder.load(tmp_path)
    assert (enc.dim, enc.parts, enc.feature_dim) == (1024, 2, D // 2)
    assert enc.card.window_embedding == "map_of_part_means" and enc.card.version.startswith("3.")
    x = windows.astype(np.float32)
    x[0, 0, 0, 0, 0] = -1e-9  # running sums can round below zero: the graph reads it as 0, not NaN
    got = enc.embed_windows(x.reshape(len(x), -1))
    np.testing.assert_allclose(got, sketch_reference(x, sk), rtol=1e-5, atol=1e-5)
    # a few MB, not a dense 96,768 x 1,024 matrix (400 MB)
    assert (tmp_path / "encoder.onnx").stat().st_size < 3_000_000


def test_sketch_keeps_the_distances_of_the_square_roots(windows: np.ndarray) -> None:
    exact = pairwise_distances(np.sqrt(windows.reshape(len(windows), -1)))
    iu = np.triu_indices(len(windows), 1)
    for k, worst in ((256, 0.5), (2048, 0.2)):
        got = pairwise_distances(sketch_reference(windows, count_sketch(D, k, seed=1)))
        ratio = (got[iu] / exact[iu]) ** 2  # squared distances: unbiased, spread about sqrt(2 / k)
        assert abs(np.median(ratio) - 1.0) < 0.1
        assert np.percentile(np.abs(ratio - 1.0), 90) < worst
        assert pearson(got[iu], exact[iu]) > (0.9 if k == 256 else 0.98)


def test_choose_sketch_picks_a_seed_on_validation_data_and_exports_a_card(real: FrameSet, tmp_path: Path) -> None:
    # 25 real frames, windows of 3: a tiny but real valid/test split (5:15 frames)
    data = sketch_data(real, window_size=3, stride=1, parts=2, progress=False)
    result = choose_sketch(data, 64, seeds=(0, 1, 2))
    tried = result.metrics["seeds_tried"]
    assert [t["seed"] for t in tried] == [0, 1, 2]
    assert result.seed == min(tried, key=lambda t: t["valid_pearson"])["seed"]
    assert np.isfinite(result.metrics["test"]["pearson"])
    card = export_sketch(result.model, tmp_path, result.metrics, "none: nothing learned")
    assert card.outputs[0].shape == ["batch", 64] and card.metrics["seed"] == result.seed
    enc = FrameEncoder.load(tmp_path)
    x = data.splits["test"].feats.float().numpy()
    np.testing.assert_allclose(
        enc.embed_windows(x.reshape(len(x), -1)), sketch_reference(x, count_sketch(D, 64, result.seed)), atol=1e-5
    )
