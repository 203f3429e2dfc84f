import numpy as np
import pytest

from satwatch.services.models.embedding import FrameEncoder, window_embedding


@pytest.fixture(scope="module")
def encoder() -> FrameEncoder:
    return FrameEncoder.load()


def test_encode_shapes_and_dtype(encoder: FrameEncoder) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 4, 300, 375), dtype=np.uint8)
    emb = encoder.encode(frames)
    assert emb.shape == (3, encoder.dim) and emb.dtype == np.float32
    assert encoder.dim == 128
    assert np.isfinite(emb).all()
    # a single (4,H,W) frame is a batch of one and gives the same vector
    np.testing.assert_allclose(encoder.encode(frames[1])[0], emb[1], rtol=1e-5, atol=1e-5)


def test_encode_other_sizes_are_resized(encoder: FrameEncoder) -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 4, 150, 130), dtype=np.uint8)
    assert encoder.encode(frames).shape == (2, encoder.dim)


def test_window_embedding_is_mean_and_discriminates(encoder: FrameEncoder) -> None:
    dark = np.full((5, 4, 300, 375), 20, dtype=np.uint8)
    bright = np.full((5, 4, 300, 375), 230, dtype=np.uint8)
    dark2 = dark.copy()
    dark2[:, :, :10] = 30
    e_dark, e_bright, e_dark2 = (window_embedding(encoder.encode(f)) for f in (dark, bright, dark2))
    np.testing.assert_allclose(encoder.encode_window(dark), e_dark, rtol=1e-5, atol=1e-5)
    assert np.linalg.norm(e_dark - e_dark2) < np.linalg.norm(e_dark - e_bright)


def test_encode_rejects_wrong_channels(encoder: FrameEncoder) -> None:
    with pytest.raises(ValueError, match="channels"):
        encoder.encode(np.zeros((1, 3, 300, 375), dtype=np.uint8))


def test_shipped_encoder_reads_the_metric_cdfs_outside_the_graph() -> None:
    import onnxruntime as ort

    from satwatch.services.metric.groundtruth import GridSpec, cdf_features
    from satwatch.services.models.modelcard import packaged_model_dir

    enc = FrameEncoder.load()
    norm = enc.card.normalisation
    assert norm.front_end == "grid_cdf" and enc.card.input.shape[1:] == [4 * norm.bins, norm.grid, norm.grid]
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 300, 375), dtype=np.uint8)
    spec = GridSpec(n=norm.grid, bins=norm.bins, mode="general")
    x = np.stack([cdf_features(f, spec) for f in frames])
    session = ort.InferenceSession(str(packaged_model_dir() / enc.card.file))
    direct = session.run(None, {enc.card.input.name: x})[0]
    np.testing.assert_allclose(enc.encode(frames), direct, rtol=1e-6, atol=1e-6)
