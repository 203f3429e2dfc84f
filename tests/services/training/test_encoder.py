from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from satwatch.services.models.embedding import FrameEncoder  # noqa: E402
from satwatch.services.training.data import FrameSet  # noqa: E402
from satwatch.services.training.encoder import (  # noqa: E402
    export_encoder,
    log_ratio_loss,
    prepare_encoder_data,
    train_encoder,
)


def test_loss_is_zero_when_log_ratios_match() -> None:
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(6, 4, generator=g, dtype=torch.float64)
    d = torch.cdist(emb, emb)
    # similarities whose (1 - s + eps) are proportional to the distances
    sim = 1.0 + 1e-6 - d / (d.max() * 1.5)
    sim.fill_diagonal_(1.0)
    assert float(log_ratio_loss(emb, sim)) < 1e-10
    # and clearly positive once the ranking disagrees
    assert float(log_ratio_loss(emb, sim.flip(0).flip(1))) > 1e-3


def test_loss_finite_at_identical_embeddings_and_similarity_one() -> None:
    emb = torch.zeros(4, 8, requires_grad=True)
    sim = torch.ones(4, 4)
    sim[0, 1] = sim[1, 0] = 0.3
    loss = log_ratio_loss(emb, sim)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()
    # similarity above 1 by rounding is clipped, not turned into log of a negative
    sim[2, 3] = sim[3, 2] = 1.0 + 1e-9
    assert torch.isfinite(log_ratio_loss(torch.randn(4, 8), sim))


def test_loss_needs_three_windows() -> None:
    with pytest.raises(ValueError):
        log_ratio_loss(torch.randn(2, 3), torch.ones(2, 2))


def _tiny_frames(n: int = 60) -> FrameSet:
    rng = np.random.default_rng(3)
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    base = rng.integers(0, 256, (4, 300, 375))
    data = np.empty((n, 4, 300, 375), dtype=np.uint8)
    for i in range(n):
        # a slowly drifting scene, so nearby windows are more similar than distant ones
        data[i] = np.clip(base + 3 * i + rng.integers(-10, 10, base.shape), 0, 255)
    return FrameSet("COMS-1", [t0 + timedelta(minutes=15 * i) for i in range(n)], data)


def test_tiny_encoder_trains_resumes_and_exports(tmp_path: Path) -> None:
    data = prepare_encoder_data(_tiny_frames(), window_size=4, stride=2, train_stride=1, progress=False)
    assert all(len(s.windows) >= 3 for s in data.splits.values())
    # no window crosses a block boundary
    ends = [s.windows.max() for s in (data.splits["train"], data.splits["valid"])]
    assert ends[0] < data.splits["valid"].windows.min() and ends[1] < data.splits["test"].windows.min()
    first = train_encoder(data, tmp_path, epochs=1, batch_size=8, lr=1e-3, progress=False)
    assert len(first.history) == 1
    resumed = train_encoder(
        data, tmp_path, epochs=2, batch_size=8, lr=1e-3, resume=tmp_path / "encoder.ckpt", progress=False
    )
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert np.isfinite(resumed.history[-1]["train_loss"])
    card = export_encoder(resumed.model, tmp_path, resumed.metrics, "tiny test data")
    assert card.metrics["export_max_abs_diff"] <= 1e-4
    enc = FrameEncoder.load(tmp_path)
    out = enc.encode(data.frames.data[:3])
    assert out.shape == (3, 128) and out.dtype == np.float32
    with torch.no_grad():
        ref = resumed.model(torch.from_numpy(data.frames.data[:3]).float()).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_front_end_is_the_ground_truth_metrics_cells_and_bins() -> None:
    from satwatch.services.metric.groundtruth import GridSpec, frame_signature
    from satwatch.services.training.models import CdfFrontEnd

    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (2, 4, 300, 375), dtype=np.uint8)
    frames[0, :, :10] = 51  # exactly on a bin edge
    cdf = CdfFrontEnd()(torch.from_numpy(frames).float()).numpy()
    assert cdf.shape == (2, 80, 24, 24)
    for i in range(2):
        sig = frame_signature(frames[i], GridSpec(n=24, bins=20, mode="general"))
        ref = sig.cumulative() / sig.cell_pixels[None, :, None]  # (channels, cells, bins)
        got = cdf[i].reshape(4, 20, 576).transpose(0, 2, 1)
        np.testing.assert_allclose(got, ref, atol=1e-6)
    hist = CdfFrontEnd(features="sqrt_hist")(torch.from_numpy(frames).float()).numpy()
    np.testing.assert_allclose((hist.reshape(2, 4, 21, 576) ** 2).sum(axis=2), 1.0, atol=1e-5)
