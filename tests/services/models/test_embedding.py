import numpy as np
import pytest

from satwatch.services.models.embedding import FrameEncoder, window_embedding


@pytest.fixture(scope="module")
def encoder() -> FrameEncoder:
    return FrameEncoder.load()


def test_encode_shapes_and_dtype(encoder: FrameEncoder) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 4, 300, 375), dtype=np.uint8)
    emb = encoder.encode(frames)  # per-frame vectors the window averages
    assert emb.shape == (3, encoder.feature_dim) and emb.dtype == np.float32
    assert encoder.dim == 128
    assert np.isfinite(emb).all()
    assert encoder.embed_windows(emb).shape == (3, 128)
    # a single (4,H,W) frame is a batch of one and gives the same vector
    np.testing.assert_allclose(encoder.encode(frames[1])[0], emb[1], rtol=1e-5, atol=1e-5)


def test_encode_other_sizes_are_resized(encoder: FrameEncoder) -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 4, 150, 130), dtype=np.uint8)
    assert encoder.encode(frames).shape == (2, encoder.feature_dim)


def test_window_embedding_maps_the_mean_and_discriminates(encoder: FrameEncoder) -> None:
    dark = np.full((5, 4, 300, 375), 20, dtype=np.uint8)
    bright = np.full((5, 4, 300, 375), 230, dtype=np.uint8)
    dark2 = dark.copy()
    dark2[:, :, :10] = 30
    e_dark, e_bright, e_dark2 = (
        encoder.embed_windows(window_embedding(encoder.encode(f))[None])[0] for f in (dark, bright, dark2)
    )
    np.testing.assert_allclose(encoder.encode_window(dark), e_dark, rtol=1e-5, atol=1e-5)
    assert np.linalg.norm(e_dark - e_dark2) < np.linalg.norm(e_dark - e_bright)


def test_encode_rejects_wrong_channels(encoder: FrameEncoder) -> None:
    with pytest.raises(ValueError, match="channels"):
        encoder.encode(np.zeros((1, 3, 300, 375), dtype=np.uint8))


def test_shipped_v2_maps_the_windows_mean_histograms() -> None:
    import onnxruntime as ort

    from satwatch.services.metric.groundtruth import GridSpec, frame_signature
    from satwatch.services.models.embedding import hist_from_signature
    from satwatch.services.models.modelcard import packaged_model_dir

    enc = FrameEncoder.load()
    norm = enc.card.normalisation
    assert enc.card.window_embedding == "map_of_mean" and norm.front_end == "grid_hist"
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 300, 375), dtype=np.uint8)
    spec = GridSpec(n=norm.grid, bins=norm.bins, mode="general")
    mean = np.stack([hist_from_signature(frame_signature(f, spec)) for f in frames]).mean(axis=0)
    session = ort.InferenceSession(str(packaged_model_dir() / enc.card.file))
    direct = session.run(None, {enc.card.input.name: mean[None]})[0]
    np.testing.assert_allclose(enc.encode_window(frames), direct[0], rtol=1e-5, atol=1e-5)


def test_v12_stays_loadable_and_reads_the_metric_cdfs_outside_the_graph() -> None:
    import onnxruntime as ort

    from satwatch.services.metric.groundtruth import GridSpec, cdf_features
    from satwatch.services.models.modelcard import packaged_model_dir

    enc = FrameEncoder.load(packaged_model_dir() / "encoder-v1.2")
    assert enc.card.version == "1.2.0" and enc.card.window_embedding == "mean_of_frames"
    norm = enc.card.normalisation
    assert norm.front_end == "grid_cdf" and enc.card.input.shape[1:] == [4 * norm.bins, norm.grid, norm.grid]
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 300, 375), dtype=np.uint8)
    spec = GridSpec(n=norm.grid, bins=norm.bins, mode="general")
    x = np.stack([cdf_features(f, spec) for f in frames])
    session = ort.InferenceSession(str(packaged_model_dir() / "encoder-v1.2" / enc.card.file))
    direct = session.run(None, {enc.card.input.name: x})[0]
    np.testing.assert_allclose(enc.encode(frames), direct, rtol=1e-6, atol=1e-6)


def test_shipped_v2_window_input_is_the_window_mean(encoder: FrameEncoder) -> None:
    vecs = np.random.default_rng(2).random((7, encoder.feature_dim)).astype(np.float32)
    assert encoder.parts == 1
    np.testing.assert_allclose(encoder.window_input(vecs), vecs.mean(axis=0, dtype=np.float64), rtol=1e-6)


def test_part_bounds_cover_the_window_in_order() -> None:
    from satwatch.services.models.embedding import part_bounds, part_means

    assert part_bounds(20, 4) == [(0, 5), (5, 10), (10, 15), (15, 20)]
    assert part_bounds(20, 1) == [(0, 20)]
    for length in range(1, 25):
        bounds = part_bounds(length, 4)
        assert all(b > a for a, b in bounds) and bounds[0][0] == 0 and bounds[-1][1] == length
        if length >= 4:  # consecutive, no frame twice
            assert all(bounds[j][1] == bounds[j + 1][0] for j in range(3))
    v = np.arange(8, dtype=float)[:, None] * [1.0, 2.0]
    np.testing.assert_allclose(part_means(v, 2), [1.5, 3.0, 5.5, 11.0])
    np.testing.assert_allclose(part_means(v, 1), v.mean(axis=0))
    with pytest.raises(ValueError):
        part_bounds(0, 4)
