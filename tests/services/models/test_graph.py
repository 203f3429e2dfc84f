"""The load-time graph rewrite: fewer convolutions, and the shipped autoencoders' outputs bit for bit unchanged."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnx
import pytest

from satwatch.services.frames.frame import Frame
from satwatch.services.models.anomaly import AUTOENCODER_CARD, AnomalyScorer, time_features
from satwatch.services.models.graph import merge_sibling_convs
from satwatch.services.models.modelcard import load_card, open_session, packaged_model_dir

SHIPPED = [packaged_model_dir(), packaged_model_dir() / "autoencoder-v2"]


def _convs(model: onnx.ModelProto) -> int:
    return sum(n.op_type == "Conv" for n in model.graph.node)


@pytest.mark.parametrize("folder", SHIPPED, ids=["v1.6", "v2"])
def test_merged_graph_gives_the_shipped_outputs_bit_for_bit(folder: Path) -> None:
    card = load_card(folder / AUTOENCODER_CARD)
    path = folder / card.file
    merged = merge_sibling_convs(path)
    assert merged is not None, "the autoencoder's two output convolutions read one map"
    assert _convs(onnx.load_from_string(merged)) == _convs(onnx.load(str(path))) - 1
    plain, fused = open_session(path, threads=2, fuse=False), open_session(path, threads=2)
    outputs = [o.name for o in plain.get_outputs()]
    rng = np.random.default_rng(17)
    _, channels, height, width = card.input.shape
    for batch in (1, 4):
        feeds = {
            card.input.name: rng.random((batch, int(channels), int(height), int(width)), dtype=np.float32),
            "time": time_features([datetime(2024, 7, 1, 6, tzinfo=UTC) + timedelta(hours=5 * i) for i in range(batch)]),
        }
        for name, a, b in zip(outputs, plain.run(outputs, feeds), fused.run(outputs, feeds), strict=True):
            assert np.array_equal(a, b), f"{folder.name}: output {name} differs"


def test_scores_of_simulated_frames_unchanged_by_the_rewrite() -> None:
    """The scorer as the detector loads it (rewritten graph) against the graph as shipped, on real frames."""
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    frames: list[Frame] = list(SceneSimulator(SimConfig(seed=31, days=6 / 96)).frames())
    scorer = AnomalyScorer.load(threads=2)
    card = scorer.card
    plain = AnomalyScorer(card, open_session(packaged_model_dir() / card.file, threads=2, fuse=False))
    for a, b in zip(scorer.score_batch(frames), plain.score_batch(frames), strict=True):
        assert a.score == b.score and np.array_equal(a.heatmap, b.heatmap)


def test_nothing_to_merge_gives_none() -> None:
    # The encoder is one projection: no sibling convolutions.
    assert merge_sibling_convs(packaged_model_dir() / "encoder.onnx") is None
