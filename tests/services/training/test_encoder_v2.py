from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from satwatch.services.frames.archive import Archive  # noqa: E402
from satwatch.services.frames.frame import shrink  # noqa: E402
from satwatch.services.metric.groundtruth import GridSpec, frame_signature  # noqa: E402
from satwatch.services.models.embedding import FrameEncoder, hist_from_signature  # noqa: E402
from satwatch.services.training.data import FrameSet  # noqa: E402
from satwatch.services.training.encoder_v2 import export_v2, prepare_v2_data, train_v2  # noqa: E402
from tests.helpers import shared_data  # noqa: E402

SPEC = GridSpec(n=24, bins=20, mode="general")


@pytest.fixture(scope="module")
def real() -> FrameSet:
    """The study's 25 real COMS frames at the study size."""
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    data = np.stack([shrink(archive.load(t)).data for t in archive.times])
    return FrameSet("COMS-1", list(archive.times), data)


def test_frame_histograms_are_the_metric_cells_and_bins(real: FrameSet) -> None:
    frame = real.data[0]
    hist = hist_from_signature(frame_signature(frame, SPEC))
    assert hist.shape == (4 * 21, 24, 24)
    np.testing.assert_allclose(hist.reshape(4, 21, 24, 24).sum(axis=1), 1.0, atol=1e-6)
    # cell (row 0, column 0) of ir01: rows 0..12 (13 rows), columns 0..15 (16 columns); bins floor(v/255*20)
    cell = frame[0, :13, :16].astype(np.float32)
    counts = np.bincount(np.floor(cell / np.float32(255) * np.float32(20)).astype(int).ravel(), minlength=21)
    np.testing.assert_allclose(hist[:21, 0, 0], counts / cell.size, atol=1e-7)


def test_v2_trains_exports_and_maps_the_running_mean(real: FrameSet, tmp_path: Path) -> None:
    # 25 real frames, windows of 3: a tiny but real train/valid/test split (5:5:15 frames)
    data = prepare_v2_data(real, window_size=3, stride=1, progress=False, parts=1)
    result = train_v2(data, epochs=1, batch_size=4, dim=8, progress=False)
    assert result.best_epoch in (0, 1) and np.isfinite(result.metrics["test"]["pearson"])
    card = export_v2(result.model, tmp_path, result.metrics, "the study's 25 real frames")
    assert card.window_embedding == "map_of_mean" and card.normalisation.front_end == "grid_hist"

    enc = FrameEncoder.load(tmp_path)
    assert (enc.dim, enc.feature_dim) == (8, 4 * 21 * 24 * 24)
    frames = real.data[:4]
    per_frame = enc.encode(frames)
    from_sigs = enc.encode_signatures([frame_signature(f, SPEC) for f in frames])
    np.testing.assert_array_equal(per_frame, from_sigs)
    window = enc.encode_window(frames)
    with torch.no_grad():
        expected = result.model(torch.from_numpy(per_frame.mean(axis=0).reshape(1, 84, 24, 24))).numpy()[0]
    np.testing.assert_allclose(window, expected, atol=1e-4)
    # the embedding is a map of the mean, not a mean of frame embeddings: the two differ
    frame_means = enc.embed_windows(per_frame).mean(axis=0)
    assert np.abs(frame_means - window).max() > 1e-3


def test_v21_maps_the_means_of_the_windows_parts_in_time_order(real: FrameSet, tmp_path: Path) -> None:
    # windows of 3 frames in 2 parts (the first frame, the last two): the model sees which frames came first
    data = prepare_v2_data(real, window_size=3, stride=1, progress=False, parts=2)
    assert data.splits["train"].feats.shape[1:] == (2, 84, 24, 24)
    result = train_v2(data, epochs=1, batch_size=4, dim=8, progress=False)
    assert np.isfinite(result.metrics["test"]["pearson"])
    card = export_v2(result.model, tmp_path, result.metrics, "the study's 25 real frames")
    assert card.window_embedding == "map_of_part_means" and card.input.shape == ["batch", 2, 84, 24, 24]

    enc = FrameEncoder.load(tmp_path)
    assert (enc.dim, enc.parts, enc.feature_dim) == (8, 2, 4 * 21 * 24 * 24)
    per_frame = enc.encode(real.data[:3])
    x = enc.window_input(per_frame)
    np.testing.assert_allclose(x[: enc.feature_dim], per_frame[0], rtol=1e-6)
    np.testing.assert_allclose(x[enc.feature_dim :], per_frame[1:].mean(axis=0), rtol=1e-6)
    window = enc.encode_window(real.data[:3])
    with torch.no_grad():
        expected = result.model(torch.from_numpy(x.reshape(1, 2, 84, 24, 24).astype(np.float32))).numpy()[0]
    np.testing.assert_allclose(window, expected, atol=1e-4)
    # the same frames in reverse order make another window: v2.0's mean could not tell them apart
    assert np.abs(enc.encode_window(real.data[:3][::-1]) - window).max() > 1e-3


def test_v22_adds_a_conv_map_trains_on_part_filled_windows_and_exports(real: FrameSet, tmp_path: Path) -> None:
    from satwatch.services.training.encoder_v2 import WindowPartsConvEncoderNet

    data = prepare_v2_data(real, window_size=3, stride=1, progress=False, parts=2, part_filled=1.0)
    train = data.splits["train"]
    # every full training window also joins part-filled (its latest 2 frames), after the full ones
    assert len(train.feats) == 2 * len(train.windows) == len(train.sim)
    assert len(data.splits["valid"].feats) == len(data.splits["valid"].windows)
    result = train_v2(data, epochs=1, batch_size=4, dim=8, progress=False, arch="conv")
    assert isinstance(result.model, WindowPartsConvEncoderNet)
    assert np.isfinite(result.metrics["test"]["pearson"])
    card = export_v2(result.model, tmp_path, result.metrics, "the study's 25 real frames")
    assert card.version == "2.2.0" and card.window_embedding == "map_of_part_means"

    enc = FrameEncoder.load(tmp_path)
    assert (enc.dim, enc.parts) == (8, 2)
    for frames in (real.data[:3], real.data[:2]):  # a full window and a part-filled one
        x = enc.window_input(enc.encode(frames))
        with torch.no_grad():
            expected = result.model(torch.from_numpy(x.reshape(1, 2, 84, 24, 24).astype(np.float32))).numpy()[0]
        np.testing.assert_allclose(enc.encode_window(frames), expected, atol=1e-4)


def test_conv_map_starts_at_the_linear_map() -> None:
    from satwatch.services.training.encoder_v2 import WindowPartsConvEncoderNet

    net = WindowPartsConvEncoderNet(parts=2, dim=8)
    x = torch.rand(3, 2, 84, 24, 24)
    # the convolutional branch's head starts at zero: training begins at v2.1's map
    linear = net.proj(torch.sqrt(x).reshape(6, -1)).reshape(3, 8)
    torch.testing.assert_close(net(x), linear)


def test_dihedral_moves_every_cell_of_every_window_alike() -> None:
    from satwatch.services.training.encoder_v2 import dihedral

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 2, 84, 24, 24)).astype(np.float32))
    seen = set()
    for k in range(8):
        y = dihedral(x, k)
        assert y.shape == x.shape
        # each window's cells are only moved, and the cell-by-cell distance of two windows is unchanged
        torch.testing.assert_close(torch.sort(y.flatten(-2)).values, torch.sort(x.flatten(-2)).values)
        torch.testing.assert_close(torch.dist(y[0], y[1]), torch.dist(x[0], x[1]))
        seen.add(y[0, 0, 0].numpy().tobytes())
    assert len(seen) == 8


def test_pearson_loss_is_zero_when_distances_follow_the_metric_linearly() -> None:
    from satwatch.services.training.encoder_v2 import pearson_loss

    pos = torch.tensor([[0.0], [0.1], [0.35], [0.6], [1.0]], dtype=torch.float64)
    dist = (pos - pos.T).abs()
    sim = 1.0 - 0.5 * dist  # distance = 2 (1 - similarity)
    assert float(pearson_loss(pos, sim)) == pytest.approx(0.0, abs=1e-6)
    assert float(pearson_loss(pos, 1.0 - sim)) == pytest.approx(2.0, abs=1e-6)


def test_v22_with_one_part_maps_the_window_mean(real: FrameSet, tmp_path: Path) -> None:
    data = prepare_v2_data(real, window_size=3, stride=1, progress=False, parts=1, part_filled=0.5)
    result = train_v2(data, epochs=1, batch_size=4, dim=8, progress=False, arch="conv")
    card = export_v2(result.model, tmp_path, result.metrics, "the study's 25 real frames")
    # v2.0's input and card: a drop-in for the shipped map of the window mean
    assert card.version == "2.2.0" and card.input.shape == ["batch", 84, 24, 24]
    assert card.window_embedding == "map_of_mean"
    enc = FrameEncoder.load(tmp_path)
    assert (enc.dim, enc.parts) == (8, 1)
    per_frame = enc.encode(real.data[:3])
    with torch.no_grad():
        x = torch.from_numpy(per_frame.mean(axis=0).reshape(1, 1, 84, 24, 24))
        expected = result.model(x).numpy()[0]
    np.testing.assert_allclose(enc.encode_window(real.data[:3]), expected, atol=1e-4)
