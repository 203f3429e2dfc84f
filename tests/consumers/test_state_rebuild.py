"""Damaged saved state is rebuilt from the stream: the whole retained topic is read again, once."""

from __future__ import annotations

import shutil
from pathlib import Path

from satwatch.services.config import Settings
from satwatch.services.retrieval.index import SimilarityIndex
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.topics import ensure_topics
from tests.consumers.running import run_detector
from tests.consumers.test_detector import publish
from tests.producers.test_publisher import read_topic


def test_a_lost_index_snapshot_is_rebuilt_from_the_whole_stream(settings: Settings) -> None:
    settings.detector.rebuild_messages = 4  # a normal restart re-reads only the last 4 messages
    frames = list(SceneSimulator(SimConfig(seed=3, days=30 / 96, events=False)).frames())
    ensure_topics(settings.kafka)
    publish(settings, frames)
    run_detector(settings, len(frames))
    index_dir = Path(settings.detector.state_dir) / "index"
    before = SimilarityIndex.load(index_dir)
    assert len(before) == len(frames) - 20 + 1  # one full window per frame from the 20th on
    alerts_before = len(read_topic(settings, settings.kafka.alerts_topic, expect=0))

    for snap in index_dir.glob("snap-*"):  # every snapshot damaged: no intact state is left on disk
        for f in snap.iterdir():
            if f.suffix == ".bin":
                f.write_bytes(b"\0" * 64)
    consumer = run_detector(settings, len(frames))  # the whole topic is read again, not 4 messages
    assert consumer.detector.metrics.errors.labels("state_rebuilt")._value.get() == 1
    after = SimilarityIndex.load(index_dir)
    assert sorted(r.window_id for r in after.records()) == sorted(r.window_id for r in before.records())
    assert len(read_topic(settings, settings.kafka.alerts_topic, expect=0)) == alerts_before  # none twice
    shutil.rmtree(index_dir)
