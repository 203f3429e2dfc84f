"""``satwatch detect --pictures-dir``: each new alert's pictures are written for the feed by the detector."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from satwatch.cli import main
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import AlertStore
from satwatch.topics import ensure_topics
from tests.consumers.test_detector import STREAM, publish
from tests.consumers.test_real_frames import _config


def test_detect_writes_each_alerts_heat_map_and_window_strip(settings: Settings, tmp_path: Path) -> None:
    from satwatch.services.simulator.scene import SceneSimulator

    frames = list(SceneSimulator(STREAM).frames())
    ensure_topics(settings.kafka)
    publish(settings, frames)
    config = _config(settings, tmp_path / "satwatch.toml")
    state, pictures = tmp_path / "state", tmp_path / "pictures"
    argv = ["detect", "--config", str(config), "--state-dir", str(state), "--metrics-port", "0"]
    assert main([*argv, "--group-id", "pictures-test", "--pictures-dir", str(pictures), "--exit-when-idle", "8"]) == 0
    alerts = AlertStore(state / "alerts.sqlite").all()
    assert alerts, "the stream's labelled event raises alerts"
    for alert in alerts:
        folder = pictures / alert.id
        with Image.open(folder / "heatmap.png") as heat, Image.open(folder / "strip.png") as strip:
            assert heat.width > 100 and strip.width > heat.width  # the window's frames side by side
