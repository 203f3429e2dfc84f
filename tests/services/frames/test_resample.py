"""Tests of the box-filter downsizing that feeds the autoencoder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from satwatch.services.frames.resample import box_moments, box_taps


def pillow_box(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BOX))


@pytest.mark.parametrize(("size", "out"), [((300, 375), (152, 176)), ((30, 17), (9, 5)), ((12, 12), (12, 12))])
def test_means_and_spreads_equal_pillow(size: tuple[int, int], out: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 3, *size), dtype=np.uint8)
    frames[0, 0, : size[0] // 2] = 255  # a flat block: its spread must be exactly 0, not rounding noise
    mean, spread = box_moments(frames, *out)
    assert spread is not None and mean.dtype == spread.dtype == np.float32
    for i in range(2):
        for c in range(3):
            plane = frames[i, c].astype(np.float64)
            want_mean = pillow_box(plane, *out)
            want_spread = np.sqrt(np.maximum(pillow_box(plane**2, *out) - want_mean.astype(np.float64) ** 2, 0))
            np.testing.assert_allclose(mean[i, c], want_mean, atol=1e-4)
            np.testing.assert_allclose(spread[i, c], want_spread, atol=2e-2)
    rows = out[0] * (size[0] // 2) // size[0]  # output rows lying wholly inside the flat block
    assert np.all(spread[0, 0, :rows] == 0.0)


def test_taps_sum_to_one_and_mean_only_skips_spread() -> None:
    index, weight = box_taps(375, 176)
    assert index.shape == weight.shape and index.shape[0] == 176
    np.testing.assert_allclose(weight.sum(axis=1), 1.0, atol=1e-6)
    mean, spread = box_moments(np.full((1, 1, 8, 8), 7, np.uint8), 4, 4, spread=False)
    assert spread is None and np.all(mean == 7.0)


def test_refuses_float_frames() -> None:
    with pytest.raises(ValueError, match="uint8"):
        box_moments(np.zeros((1, 1, 8, 8), np.float32), 4, 4)
