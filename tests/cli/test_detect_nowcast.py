"""``satwatch detect --nowcast``: alerts published with similar events carry the analog nowcast."""

from __future__ import annotations

from pathlib import Path

from satwatch.cli import main
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import AlertStore, alert_from_json
from satwatch.topics import ensure_topics
from tests.consumers.test_detector import publish
from tests.consumers.test_real_frames import _config
from tests.producers.test_publisher import read_topic


def test_published_alerts_carry_a_nowcast_from_their_similar_events(settings: Settings, tmp_path: Path) -> None:
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    frames = list(SceneSimulator(SimConfig(seed=7, days=1.0)).frames())
    ensure_topics(settings.kafka)
    publish(settings, frames)
    config = _config(settings, tmp_path / "satwatch.toml")
    state = tmp_path / "state"
    argv = ["detect", "--config", str(config), "--state-dir", str(state), "--metrics-port", "0", "--group-id", "nc"]
    assert main([*argv, "--nowcast", "--exit-when-idle", "8"]) == 0
    stored = AlertStore(state / "alerts.sqlite").all()
    published = [alert_from_json(m.value) for m in read_topic(settings, settings.kafka.alerts_topic, len(stored))]
    assert len(published) == len(stored)
    with_nowcast = [a for a in published if a.nowcast is not None]
    assert with_nowcast, f"none of {len(published)} published alerts has a nowcast"
    stored_by_id = {a.id: a for a in stored}
    for a in with_nowcast:
        assert a.similar and 1 <= a.nowcast["analogs"] <= len(a.similar)
        # The store holds what was published, so a republication after a crash carries the nowcast too.
        assert stored_by_id[a.id].nowcast == a.nowcast
        assert all(0.0 <= o["cold_fraction"] <= 1.0 for o in a.nowcast["outlook"])
