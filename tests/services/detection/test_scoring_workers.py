"""Two scoring workers of one onnxruntime thread each decide exactly what one worker of two threads does."""

from pathlib import Path

import numpy as np

from satwatch.services.config import Settings
from satwatch.services.detection.detector import FrameOutcome, build_detector
from satwatch.services.simulator.scene import SceneSimulator, SimConfig


def _run(state: Path, workers: int) -> list[FrameOutcome]:
    s = Settings()
    s.detector.state_dir = str(state)
    s.detector.scoring_workers = workers
    detector = build_detector(s)
    frames = list(SceneSimulator(SimConfig(seed=11, days=40 / 96)).frames())
    batches = [frames[i : i + 13] for i in range(0, len(frames), 13)]
    out: list[FrameOutcome] = []
    ahead = detector.score_ahead(batches[0])
    for k, batch in enumerate(batches):  # one batch ahead, as the consumer scores them
        following = detector.score_ahead(batches[k + 1]) if k + 1 < len(batches) else None
        out += [o for o in detector.process_batch(batch, None, ahead) if isinstance(o, FrameOutcome)]
        ahead = following
    detector.close()
    return out


def test_two_workers_of_one_thread_give_the_same_outcomes(tmp_path: Path) -> None:
    one, two = _run(tmp_path / "one", 1), _run(tmp_path / "two", 2)
    assert len(one) == len(two) == 40
    for a, b in zip(one, two, strict=True):
        assert (a.time, a.score, a.window_frames) == (b.time, b.score, b.window_frames)
        assert np.array_equal(np.asarray(a.heatmap), np.asarray(b.heatmap))
        assert (a.alert is None) == (b.alert is None) and (a.alert is None or a.alert.kind == b.alert.kind)
        assert [(n.record.window_id, n.distance, n.similarity) for n in a.neighbours] == [
            (n.record.window_id, n.distance, n.similarity) for n in b.neighbours
        ]
    assert any(o.alert is not None for o in one) and any(o.neighbours for o in one)
