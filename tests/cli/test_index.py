"""Tests of ``satwatch index build|info`` on a tiny simulated archive with a tiny stand-in encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from satwatch.cli import build_parser, main

SIM_W, SIM_H = 40, 48


def make_tiny_encoder(folder: Path, dim: int = 8) -> Path:
    """A real ONNX encoder + model card: per-channel means and standard deviations, mixed linearly.

    Stands in for the trained encoder so CLI tests run fast and do not depend on the packaged model.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from satwatch.services.models.modelcard import ModelCard, Normalisation, TensorSpec, file_sha256

    folder.mkdir(parents=True, exist_ok=True)
    weights = np.random.default_rng(3).normal(size=(8, dim)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["frames", "axes"], ["mean4"], keepdims=0),
        helper.make_node("Mul", ["frames", "frames"], ["sq"]),
        helper.make_node("ReduceMean", ["sq", "axes"], ["sqmean4"], keepdims=0),
        helper.make_node("Concat", ["mean4", "sqmean4"], ["feat"], axis=1),
        helper.make_node("MatMul", ["feat", "w"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_encoder",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["batch", 4, SIM_H, SIM_W])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        initializer=[
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
            numpy_helper.from_array(weights, "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(folder / "encoder.onnx"))
    card = ModelCard(
        name="tiny-test-encoder",
        kind="encoder",
        version="0",
        file="encoder.onnx",
        sha256=file_sha256(folder / "encoder.onnx"),
        input=TensorSpec(name="frames", shape=["batch", 4, SIM_H, SIM_W]),
        outputs=[TensorSpec(name="embedding", shape=["batch", dim])],
        normalisation=Normalisation(
            channels=["ir01", "ir02", "swir", "wv"], height=SIM_H, width=SIM_W, scale=[1 / 255] * 4, offset=[0.0] * 4
        ),
    )
    card.save(folder / "encoder.card.json")
    return folder


def make_sim_archive(folder: Path, days: float = 0.5) -> Path:
    sim = pytest.importorskip("satwatch.services.simulator.scene")
    sim.write_archive(sim.SimConfig(width=SIM_W, height=SIM_H, days=days, events=False), folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("index_cli")
    paths = {"model": make_tiny_encoder(root / "model"), "archive": make_sim_archive(root / "archive")}
    paths["index"] = root / "index"
    argv = ["index", "build", "--archive", str(paths["archive"]), "--out", str(paths["index"])]
    assert main([*argv, "--model-dir", str(paths["model"]), "--workers", "2", "--quiet"]) == 0
    return paths


def test_help_explains_every_option() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    index = sub.choices["index"]  # type: ignore[attr-defined]
    actions = next(a for a in index._actions if a.dest == "index_command").choices  # type: ignore[attr-defined]
    for name in ("build", "info"):
        for action in actions[name]._actions:
            assert action.help, f"index {name} {action.option_strings} lacks help"


def test_build_indexes_every_window(built: dict[str, Path]) -> None:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.retrieval.index import SimilarityIndex

    archive = Archive(built["archive"])
    index = SimilarityIndex.load(built["index"])
    assert len(archive) == 48 and len(index) == len(archive) - 19
    first = next(index.records())
    assert first.frame_times == tuple(archive.times[:20]) and first.satellite == "COMS-1"
    from satwatch.services.config import DetectorSettings

    defaults = DetectorSettings()
    assert (index.m, index.ef) == (defaults.index_m, defaults.index_ef)  # the configured defaults


def test_window_vector_is_mean_of_frame_embeddings(built: dict[str, Path]) -> None:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.retrieval.index import SimilarityIndex, window_id

    archive = Archive(built["archive"])
    enc = FrameEncoder.load(built["model"])
    times = archive.times[5:25]
    expected = enc.encode(np.stack([archive.load(t).data for t in times])).mean(axis=0)
    got = SimilarityIndex.load(built["index"]).vector(window_id("COMS-1", times[-1]))
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_rerun_is_resumable_and_adds_nothing(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["index", "build", "--archive", str(built["archive"]), "--out", str(built["index"])]
    assert main([*argv, "--model-dir", str(built["model"]), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "29 already indexed, 0 to add" in out and "encoded 0 frames, added 0 windows" in out


def test_interrupted_build_resumes(tmp_path: Path, built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from satwatch.services.retrieval.index import SimilarityIndex

    out = tmp_path / "ix"
    base = ["index", "build", "--archive", str(built["archive"]), "--out", str(out), "--model-dir", str(built["model"])]
    assert main([*base, "--stride", "4", "--quiet"]) == 0  # a partial index: every 4th window
    partial = len(SimilarityIndex.load(out))
    assert partial == 8
    capsys.readouterr()
    assert main([*base, "--quiet"]) == 0
    text = capsys.readouterr().out
    # Frames of the first pass were cached: only the rest are encoded; the missing windows are added.
    assert f"{partial} already indexed, {29 - partial} to add" in text and "encoded 0 frames" in text
    assert len(SimilarityIndex.load(out)) == 29


def test_build_refuses_another_encoder(
    tmp_path: Path, built: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ix").mkdir()
    (tmp_path / "ix" / "build.json").write_text(json.dumps({"encoder": "old", "encoder_sha256": "0" * 64}))
    argv = ["index", "build", "--archive", str(built["archive"]), "--out", str(tmp_path / "ix")]
    assert main([*argv, "--model-dir", str(built["model"]), "--quiet"]) == 2
    assert "do not mix" in capsys.readouterr().err


def test_info_prints_size_and_parameters(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "info", "--index", str(built["index"])]) == 0
    text = capsys.readouterr().out
    assert "29" in text and "M=16" in text and "2024-07-01" in text and "MiB" in text
    assert main(["index", "info", "--index", str(built["index"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size"] == 29 and info["dim"] == 8 and info["build"]["encoder"] == "tiny-test-encoder"
    assert info["first_start"].startswith("2024-07-01T00:00") and info["disk_bytes"] > 0


def test_info_on_missing_index_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "info", "--index", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no saved index" in err and "satwatch index build --archive" in err


def test_info_on_a_running_detectors_unsaved_index_says_when_it_is_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A running detector keeps new windows in its journal and snapshots every index_save_every windows and
    at shutdown: until then the operator is told so, not that there is no index."""
    index = tmp_path / "state" / "index"
    index.mkdir(parents=True)
    (index / "journal.jsonl").write_text('{"window_id": "a"}\n{"window_id": "b"}\n')
    assert main(["index", "info", "--index", str(index)]) == 2
    err = capsys.readouterr().err
    assert "no index snapshot" in err and "2 window(s) in its journal" in err
    assert "every 200 new windows" in err and "when it stops" in err and "missing CURRENT" not in err


def test_info_counts_journal_windows_beside_the_snapshot(
    tmp_path: Path, built: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    index = tmp_path / "index"
    shutil.copytree(built["index"], index)
    (index / "journal.jsonl").write_text('{"window_id": "a"}\n')
    assert main(["index", "info", "--index", str(index)]) == 0
    assert "journal:        1 window(s) added since this snapshot" in capsys.readouterr().out
    assert main(["index", "info", "--index", str(index), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["journal_windows"] == 1


def test_default_index_dir_comes_from_config(
    tmp_path: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.copytree(built["index"], tmp_path / "state" / "index")
    monkeypatch.setenv("SATWATCH_DETECTOR__STATE_DIR", str(tmp_path / "state"))
    assert main(["index", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 29


def test_build_keeps_every_frames_signature_for_the_rerank(built: dict[str, Path]) -> None:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.metric.groundtruth import GridSpec, frame_signature
    from satwatch.services.retrieval.signature_store import FrameSignatureStore, signature_store_dir

    spec = GridSpec(n=24, bins=20, mode="general")
    archive = Archive(built["archive"])
    store = FrameSignatureStore(signature_store_dir(built["index"], spec), spec)
    assert len(store) == len(archive)  # signed while decoded for the encoder: a search decodes none
    t = archive.times[7]
    got = store.get("COMS-1", t)
    assert got is not None and np.array_equal(got.cum, frame_signature(archive.load(t).data, spec).cum)


def test_build_and_search_with_a_parts_encoder(
    tmp_path: Path, built: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Encoder v2.1 (the means of a window's 2 parts, untrained here): ``index build`` maps the part means of
    each window's stored frame vectors and ``search`` answers with the same map of the query's."""
    pytest.importorskip("torch")
    from satwatch.services.frames.archive import Archive
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.retrieval.index import SimilarityIndex, window_id
    from satwatch.services.training.encoder_v2 import WindowPartsEncoderNet, export_v2

    model = tmp_path / "v21"
    export_v2(WindowPartsEncoderNet(parts=2, dim=8), model, {}, "untrained, for a test")
    out = tmp_path / "index"
    argv = ["index", "build", "--archive", str(built["archive"]), "--out", str(out), "--model-dir", str(model)]
    assert main([*argv, "--quiet"]) == 0
    archive, enc = Archive(built["archive"]), FrameEncoder.load(model)
    times = archive.times[5:25]
    per_frame = enc.encode(np.stack([archive.load(t).data for t in times]))
    want = enc.embed_windows(enc.window_input(per_frame)[None])[0]
    index = SimilarityIndex.load(out)
    assert len(index) == len(archive) - 19
    np.testing.assert_allclose(index.vector(window_id("COMS-1", times[-1])), want, rtol=1e-4, atol=1e-5)
    argv = ["search", "--index", str(out), "--archive", str(built["archive"]), "--model-dir", str(model)]
    capsys.readouterr()
    assert main([*argv, "--time", str(archive.times[-1].strftime("%Y-%m-%dT%H:%MZ")), "--json", "--k", "2"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["matches"] and all(m["distance"] >= 0.0 for m in found["matches"])
