import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.models.modelcard import (
    ModelCardError,
    Normalisation,
    file_sha256,
    load_card,
    normalise,
    packaged_model_dir,
    verify,
)


@pytest.fixture
def encoder_copy(tmp_path: Path) -> Path:
    src = packaged_model_dir()
    for name in ("encoder.onnx", "encoder.card.json"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def test_packaged_cards_verify() -> None:
    folder = packaged_model_dir()
    for stem in ("encoder", "autoencoder"):
        card = load_card(folder / f"{stem}.card.json")
        assert card.sha256 == file_sha256(folder / card.file)
        verify(card, folder / card.file)


def test_verify_rejects_tampered_file(encoder_copy: Path) -> None:
    card = load_card(encoder_copy / "encoder.card.json")
    with open(encoder_copy / "encoder.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelCardError, match="sha256"):
        verify(card, encoder_copy / "encoder.onnx")


def test_verify_rejects_wrong_input_shape(encoder_copy: Path) -> None:
    card = load_card(encoder_copy / "encoder.card.json")
    wrong = card.model_copy(update={"input": card.input.model_copy(update={"shape": ["batch", 4, 64, 64]})})
    with pytest.raises(ModelCardError, match="inputs") as info:
        verify(wrong, encoder_copy / "encoder.onnx")
    real = str(card.input.shape[1:]).strip("[]")  # the graph's actual input shape is named in the message
    assert "64, 64" in str(info.value) and real in str(info.value)


def test_verify_rejects_wrong_output_name(encoder_copy: Path) -> None:
    card = load_card(encoder_copy / "encoder.card.json")
    out = [card.outputs[0].model_copy(update={"name": "features"})]
    with pytest.raises(ModelCardError, match="outputs"):
        verify(card.model_copy(update={"outputs": out}), encoder_copy / "encoder.onnx")


def test_verify_rejects_scoring_that_names_a_missing_output(tmp_path: Path) -> None:
    src = packaged_model_dir()
    for name in ("autoencoder.onnx", "autoencoder.card.json"):
        shutil.copy(src / name, tmp_path / name)
    card = load_card(tmp_path / "autoencoder.card.json")
    assert card.scoring is not None
    wrong = card.model_copy(update={"scoring": card.scoring.model_copy(update={"lines_output": "stripes"})})
    with pytest.raises(ModelCardError, match="stripes"):
        verify(wrong, tmp_path / "autoencoder.onnx")


def test_load_card_reports_bad_json(tmp_path: Path) -> None:
    p = tmp_path / "x.card.json"
    p.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelCardError, match="not valid"):
        load_card(p)
    with pytest.raises(ModelCardError, match="does not exist"):
        load_card(tmp_path / "missing.json")


def test_normalise_resizes_and_scales() -> None:
    norm = Normalisation(channels=["a", "b"], height=4, width=2, scale=[2.0, 1.0], offset=[1.0, -1.0])
    frames = np.full((3, 2, 8, 4), 10, dtype=np.uint8)
    x = normalise(frames, norm)
    assert x.shape == (3, 2, 4, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], 21.0)
    np.testing.assert_allclose(x[:, 1], 9.0)
    with pytest.raises(ValueError, match="channels"):
        normalise(np.zeros((1, 3, 4, 2), dtype=np.uint8), norm)


def test_normalise_adds_spread_planes_and_keeps_bilinear() -> None:
    norm = Normalisation(
        channels=["a"], height=1, width=1, scale=[1.0], offset=[0.0], features=["mean", "std"], std_scale=0.5
    )
    frames = np.array([[[[0, 10], [10, 0]]]], dtype=np.uint8)  # one cell, mean 5, spread 5
    np.testing.assert_allclose(normalise(frames, norm)[0, :, 0, 0], [5.0, 2.5])
    same_size = normalise(frames, norm.model_copy(update={"height": 2, "width": 2}))
    np.testing.assert_allclose(same_size[0, 1], 0.0)  # a pixel has no spread of its own
    bilinear = Normalisation(channels=["a"], height=2, width=2, resample="bilinear", scale=[1.0], offset=[0.0])
    assert normalise(np.full((1, 1, 4, 4), 8, np.uint8), bilinear).shape == (1, 1, 2, 2)


def test_spread_feature_needs_box_resampling() -> None:
    with pytest.raises(ValueError, match="needs resample 'box'"):
        Normalisation(
            channels=["a"], height=2, width=2, resample="bilinear", scale=[1.0], offset=[0.0], features=["mean", "std"]
        )
