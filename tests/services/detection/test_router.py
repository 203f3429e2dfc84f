"""Which model set serves which satellite when no model folder is configured: the profiles' own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from satwatch.services.config import Settings
from satwatch.services.detection.detector import Detector
from satwatch.services.detection.router import DetectorRouter, build_frame_detector
from satwatch.services.frames import profiles
from satwatch.services.models.modelcard import packaged_model_dir


def _own_set(dest: Path, profile: str) -> Path:
    """A user's satellite's models: the shipped root ones, their cards naming that profile."""
    dest.mkdir()
    for name in ("encoder", "autoencoder"):
        shutil.copy(packaged_model_dir() / f"{name}.onnx", dest / f"{name}.onnx")
        card = json.loads((packaged_model_dir() / f"{name}.card.json").read_text())
        card["profile"] = profile
        (dest / f"{name}.card.json").write_text(json.dumps(card))
    return dest


def _settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.detector.state_dir = str(tmp_path / "state")
    return s


def test_with_no_model_folder_coms1_alone_is_one_detector_served_by_its_profiles_set(tmp_path: Path) -> None:
    detector = build_frame_detector(_settings(tmp_path))
    try:
        assert isinstance(detector, Detector)  # state directly under state_dir, as before
        v2 = json.loads((packaged_model_dir() / "autoencoder-v2" / "autoencoder.card.json").read_text())
        assert detector.threshold == pytest.approx(v2["thresholds"]["anomaly"])
    finally:
        detector.close()


def test_a_user_profile_naming_its_models_gets_a_route_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = str(_own_set(tmp_path / "mysat", "MY-SAT"))
    mine = profiles.get_profile("COMS-1").model_copy(update={"name": "MY-SAT", "encoder": own, "autoencoder": own})
    monkeypatch.setitem(profiles._REGISTRY, "MY-SAT", mine)
    detector = build_frame_detector(_settings(tmp_path))
    try:
        assert isinstance(detector, DetectorRouter) and set(detector.routes) == {"COMS-1", "MY-SAT"}
        root = json.loads((packaged_model_dir() / "autoencoder.card.json").read_text())
        v2 = json.loads((packaged_model_dir() / "autoencoder-v2" / "autoencoder.card.json").read_text())
        assert detector.thresholds == {
            "COMS-1": pytest.approx(v2["thresholds"]["anomaly"]),
            "MY-SAT": pytest.approx(root["thresholds"]["anomaly"]),
        }
    finally:
        detector.close()


def test_a_profile_naming_a_missing_model_folder_is_refused_at_start_naming_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = profiles.get_profile("COMS-1").model_copy(update={"name": "MY-SAT", "autoencoder": "autoencoder-v3"})
    monkeypatch.setitem(profiles._REGISTRY, "MY-SAT", typo)
    with pytest.raises(FileNotFoundError, match=r"satellite profile MY-SAT: no model folder 'autoencoder-v3'"):
        build_frame_detector(_settings(tmp_path))


def test_archive_route_follows_the_detectors_model_dirs_and_its_state_folder(tmp_path: Path) -> None:
    """``index build`` / ``search`` read the models and the state folder the detector routes a profile to."""
    from satwatch.services.detection.router import archive_route

    s = _settings(tmp_path)
    coms, gk2a = profiles.get_profile("COMS-1"), profiles.get_profile("GK-2A")
    plain = archive_route(s.detector, tmp_path, coms, None)  # one detector: state directly under state_dir
    assert plain.state_dir == tmp_path / "state" and "COMS-1 profile's set" in plain.choice.why

    s.detector.model_dirs = {"COMS-1": "encoder-v2.2"}
    routed = archive_route(s.detector, tmp_path, coms, None)
    assert routed.state_dir == tmp_path / "state" / "COMS-1"
    assert routed.choice.dirs.encoder == packaged_model_dir() / "encoder-v2.2"
    assert routed.choice.why == 'detector.model_dirs["COMS-1"] of the config'
    named = archive_route(s.detector, tmp_path, coms, "encoder-v3")  # --model-dir still wins
    assert named.choice.why == "--model-dir" and named.state_dir == tmp_path / "state" / "COMS-1"

    with pytest.raises(ValueError, match=r'serves no GK-2A frames: .*add "GK-2A"'):
        archive_route(s.detector, tmp_path, gk2a, None)
    assert archive_route(s.detector, tmp_path, gk2a, "onnx_models", index_named=True).choice.why == "--model-dir"
