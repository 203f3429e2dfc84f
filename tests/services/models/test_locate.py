"""--model-dir takes a folder holding either model; the other is the shipped one, and the log says so."""

import logging
import shutil
from pathlib import Path

import pytest

from satwatch.services.frames.profiles import get_profile
from satwatch.services.models.anomaly import AnomalyScorer
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.models.locate import ModelDirs, profile_model_dirs, resolve_model_dirs, shipped_profile
from satwatch.services.models.modelcard import packaged_model_dir


def _copy(folder: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(packaged_model_dir() / name, folder / name)
    return folder


def test_an_autoencoder_only_folder_takes_the_shipped_encoder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _copy(tmp_path / "ae", "autoencoder.onnx", "autoencoder.card.json")
    with caplog.at_level(logging.INFO, logger="satwatch.services.models.locate"):
        dirs = resolve_model_dirs(folder)
    assert dirs.encoder is None and dirs.autoencoder == folder
    assert f"model folder {folder} has no encoder: using the shipped encoder" in caplog.text
    assert FrameEncoder.load(dirs.encoder).dim == 128
    assert AnomalyScorer.load(dirs.autoencoder).card.kind == "autoencoder"


def test_an_encoder_only_folder_takes_the_shipped_autoencoder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _copy(tmp_path / "enc", "encoder.onnx", "encoder.card.json")
    with caplog.at_level(logging.INFO, logger="satwatch.services.models.locate"):
        dirs = resolve_model_dirs(folder)
    assert dirs.encoder == folder and dirs.autoencoder is None
    assert "has no autoencoder: using the shipped autoencoder" in caplog.text


def test_a_folder_with_neither_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds neither encoder.card.json nor autoencoder.card.json"):
        resolve_model_dirs(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model_dirs(tmp_path / "nope")
    assert resolve_model_dirs(None).encoder is None


def test_with_no_folder_named_a_profile_serves_the_models_it_names(tmp_path: Path) -> None:
    coms = get_profile("COMS-1")
    dirs = resolve_model_dirs(None, coms)
    assert dirs.encoder == packaged_model_dir() / "encoder-v3"
    assert dirs.autoencoder == packaged_model_dir() / "autoencoder-v2"
    assert AnomalyScorer.load(dirs.autoencoder).card.version.startswith("2."), "real COMS imagery: v2"
    assert FrameEncoder.load(dirs.encoder).card.version.startswith("3."), "real COMS imagery: the count sketch"
    assert shipped_profile() == "COMS-1"
    # A named folder wins over the profile's own models.
    assert resolve_model_dirs(packaged_model_dir(), coms).autoencoder == packaged_model_dir()
    # A profile naming none gets the shipped root set; one naming a folder of the user's, that folder.
    assert resolve_model_dirs(None, get_profile("GK-2A")) == resolve_model_dirs(None)
    own = _copy(tmp_path / "mine", "autoencoder.onnx", "autoencoder.card.json")
    mine = coms.model_copy(update={"autoencoder": str(own)})
    assert profile_model_dirs(mine).autoencoder == own


def test_a_profile_naming_a_model_folder_that_is_not_there_says_which_are_shipped() -> None:
    typo = get_profile("COMS-1").model_copy(update={"autoencoder": "autoencoder-v3"})
    with pytest.raises(FileNotFoundError, match=r"no model folder 'autoencoder-v3'.*'autoencoder-v2'"):
        profile_model_dirs(typo)


def test_a_shipped_set_is_named_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package or a container runs elsewhere than the repository: the shipped names still work."""
    monkeypatch.chdir(tmp_path)
    assert resolve_model_dirs("onnx_models") == ModelDirs(packaged_model_dir(), packaged_model_dir())
    assert resolve_model_dirs("autoencoder-v2").autoencoder == packaged_model_dir() / "autoencoder-v2"
    assert FrameEncoder.load("encoder-v2.2").dim == 256
    with pytest.raises(FileNotFoundError, match=r"shipped sets, usable by name: onnx_models, autoencoder-v2"):
        resolve_model_dirs("autoencoder-v9")
    (tmp_path / "onnx_models").mkdir()  # a folder of the user's by that name wins
    with pytest.raises(FileNotFoundError, match="holds neither"):
        resolve_model_dirs("onnx_models")


def test_an_archive_is_served_by_one_rule(tmp_path: Path) -> None:
    """``archive_models``, the rule of evaluate, index build, search and nowcast --index: a named folder; else a
    procedural simulated archive's own set (onnx_models); else the satellite profile's (COMS-1: v3 and v2)."""
    import json

    from satwatch.services.models.locate import archive_models

    coms = get_profile("COMS-1")
    procedural, texture, real = tmp_path / "procedural", tmp_path / "texture", tmp_path / "real"
    for folder, scene in ((procedural, "procedural"), (texture, "texture"), (real, None)):
        folder.mkdir()
        if scene is not None:
            (folder / "simulation.json").write_text(json.dumps({"config": {"scene": scene}}))
    sim = archive_models(procedural, coms)
    assert sim.dirs.encoder is not None and sim.dirs.autoencoder is not None
    assert sim.dirs.encoder.resolve() == sim.dirs.autoencoder.resolve() == packaged_model_dir().resolve()
    assert "procedural simulated archive" in sim.why
    assert FrameEncoder.load(sim.dirs.encoder).card.version.startswith("2.0")
    for folder in (texture, real):  # real cloud fields (the texture scene's too): the profile's set
        own = archive_models(folder, coms)
        assert own.dirs == profile_model_dirs(coms) and own.why == "no --model-dir: the COMS-1 profile's set"
    assert archive_models(procedural, coms, "encoder-v3").dirs.encoder == packaged_model_dir() / "encoder-v3"
    configured = archive_models(procedural, coms, None, "encoder-v3")
    assert configured.dirs.encoder == packaged_model_dir() / "encoder-v3" and "detector.model_dir" in configured.why
    assert archive_models(procedural, coms, "onnx_models", "encoder-v3").why == "--model-dir"
    # No archive (evaluate's simulated period) or a profile naming no model: the shipped root set.
    assert archive_models(None, None).dirs == ModelDirs(None, None)
    assert archive_models(real, get_profile("GK-2A")).dirs == ModelDirs(None, None)
    v3 = packaged_model_dir() / "encoder-v3"
    line = archive_models(real, coms).describe("encoder", "3.0.0")
    assert line == f"encoder v3.0.0 from {v3} (no --model-dir: the COMS-1 profile's set)"
