"""``index build``, ``search`` and ``nowcast --index`` pick the encoder by one rule (``archive_models``): a
procedural simulated archive gets the set trained on that simulator, the one ``satwatch simulate`` tells the
detector to serve, so the index built without ``--model-dir`` is the one a search without it (or with
``--model-dir onnx_models``, as the simulator suggests) finds; the real frames still get COMS-1's encoder v3."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from satwatch.cli import main


def test_a_procedural_archive_is_indexed_and_searched_with_the_simulators_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.retrieval.provenance import read_provenance

    state, archive = tmp_path / "state", tmp_path / "sim"
    monkeypatch.setenv("SATWATCH_DETECTOR__STATE_DIR", str(state))
    monkeypatch.delenv("SATWATCH_DETECTOR__MODEL_DIR", raising=False)
    assert main(["simulate", "--days", "0.25", "--out", str(archive), "--quiet"]) == 0
    assert "--model-dir onnx_models" in capsys.readouterr().out
    why = "(no --model-dir: a procedural simulated archive, served by the set trained on that simulator)"
    root = FrameEncoder.load(None).card

    assert main(["index", "build", "--archive", str(archive), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"encoder v{root.version} from " in out and why in out
    built = read_provenance(state / "index")
    assert built is not None and built.encoder_sha256 == root.sha256, "the root set's encoder, not COMS-1's v3"

    last = "2024-07-01T05:45Z"  # the archive's last frame: 24 frames from midnight
    for extra in ([], ["--model-dir", "onnx_models"]):  # as the index was built; as the simulator suggests
        assert main(["search", "--archive", str(archive), "--time", last, "--json", *extra]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["query"] == "COMS-1:20240701T0545Z"
        assert f"encoder v{root.version} from " in captured.err
        assert (why if not extra else "(--model-dir)") in captured.err

    argv = ["nowcast", "--archive", str(archive), "--index", str(state / "index"), "--time", "2024-07-01T05:00Z"]
    assert main([*argv, "--hours", "0.5", "--k", "1", "--methods", "persistence,analog"]) == 0
    out = capsys.readouterr().out
    assert why in out and "analog: not issued (no past window" in out, "the index opened with its own encoder"


def test_the_real_frames_are_indexed_with_coms1_encoder_v3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.models.modelcard import packaged_model_dir
    from satwatch.services.retrieval.provenance import read_provenance
    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    monkeypatch.setenv("SATWATCH_DETECTOR__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SATWATCH_DETECTOR__MODEL_DIR", raising=False)
    index = tmp_path / "index"
    assert main(["index", "build", "--archive", str(raw), "--out", str(index), "--min-frames", "19", "--quiet"]) == 0
    v3 = packaged_model_dir() / "encoder-v3"
    card = FrameEncoder.load(v3).card
    line = f"encoder v{card.version} from {v3} (no --model-dir: the COMS-1 profile's set)"
    assert card.version.startswith("3.") and line in capsys.readouterr().out
    built = read_provenance(index)
    assert built is not None and built.encoder_sha256 == card.sha256
    assert main(["search", "--archive", str(raw), "--index", str(index), "--time", "2011-03-03T13:15Z"]) == 0
    assert line in capsys.readouterr().out


def test_an_index_built_under_model_dirs_is_the_one_the_routed_detector_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``detector.model_dirs``, the detector keeps COMS-1's index under ``state_dir/COMS-1`` with the
    encoder named there: ``index build`` without ``--out`` fills that index with that encoder, the detector
    built from the same config opens it, and ``search`` without ``--index`` reads it (the real frames)."""
    from satwatch.services.config import load_settings
    from satwatch.services.detection.router import DetectorRouter, build_frame_detector
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.models.modelcard import packaged_model_dir
    from satwatch.services.retrieval.provenance import read_provenance
    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    state = tmp_path / "state"
    config = tmp_path / "satwatch.toml"
    config.write_text(f'[detector]\nstate_dir = "{state}"\n\n[detector.model_dirs]\n"COMS-1" = "encoder-v2.2"\n')
    monkeypatch.delenv("SATWATCH_DETECTOR__MODEL_DIR", raising=False)
    monkeypatch.delenv("SATWATCH_DETECTOR__STATE_DIR", raising=False)
    card = FrameEncoder.load(packaged_model_dir() / "encoder-v2.2").card
    argv = ["--archive", str(raw), "--config", str(config)]
    assert main(["index", "build", *argv, "--min-frames", "19", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"encoder v{card.version} from " in out and '(detector.model_dirs["COMS-1"] of the config)' in out
    built = read_provenance(state / "COMS-1" / "index")
    assert built is not None and built.encoder_sha256 == card.sha256
    held = int(re.search(r"now holds (\d+) windows", out).group(1))  # type: ignore[union-attr]

    detector = build_frame_detector(load_settings(config))
    try:
        assert isinstance(detector, DetectorRouter)
        opened = detector.routes["COMS-1"].index
        assert len(opened) == held > 0, "the routed detector opened the index that index build filled"
    finally:
        detector.close()
    assert main(["search", *argv, "--time", "2011-03-03T13:15Z", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["query"] == "COMS-1:20110303T1315Z"
