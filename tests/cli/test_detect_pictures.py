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


def test_similar_events_older_than_memory_are_drawn_from_the_archive(settings: Settings, tmp_path: Path) -> None:
    from satwatch.producers.sources import archive_source
    from satwatch.services.frames.archive import Archive
    from satwatch.services.simulator.scene import SimConfig, write_archive

    root = write_archive(SimConfig(seed=7, days=1.0), tmp_path / "archive", progress=False)
    ensure_topics(settings.kafka)
    publish(settings, [f for f in archive_source(Archive(root)) if not isinstance(f, Exception)])  # type: ignore[misc]
    config = _config(settings, tmp_path / "satwatch.toml")
    state, pictures = tmp_path / "state", tmp_path / "pictures"
    argv = ["detect", "--config", str(config), "--state-dir", str(state), "--metrics-port", "0", "--group-id", "pa"]
    # Two frames in memory: every similar past event must come from the archive.
    extra = ["--pictures-dir", str(pictures), "--pictures-keep", "2", "--pictures-archive", str(root)]
    assert main([*argv, *extra, "--exit-when-idle", "8"]) == 0
    with_similar = [a for a in AlertStore(state / "alerts.sqlite").all() if a.similar]
    assert with_similar, "a later event finds an earlier, non-overlapping window"
    for alert in with_similar:
        for n in range(len(alert.similar)):
            with Image.open(pictures / alert.id / f"similar-{n}.png") as im:
                assert im.width > 200  # its window and the hours that followed, side by side
