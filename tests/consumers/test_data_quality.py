"""Data-quality faults through the broker: each raised once by its kind, and a restart raises nothing new.

The checks against the previous frames (calibration jumps, frozen frames) keep per-satellite state that a
restarted detector rebuilds from the frames it re-reads, as it refills its windows.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from satwatch.services.config import Settings
from satwatch.services.detection.alerts import alert_category, alert_from_json
from satwatch.services.frames.frame import Frame
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.topics import ensure_topics
from tests.consumers.running import run_detector
from tests.consumers.test_detector import publish
from tests.producers.test_publisher import read_topic

# Ten hours holding a calibration jump in ir01 (06:00-07:00); a frozen frame is added at 03:00.
STREAM = SimConfig(seed=3, days=10 / 24)


def test_faults_alert_by_kind_once_and_a_restart_adds_nothing(settings: Settings) -> None:
    sim = SceneSimulator(STREAM)
    (jump,) = [e for e in sim.events if e.start <= sim.times[-1]]
    assert jump.kind == "calibration_jump"
    frames = list(sim.frames())
    frozen = next(i for i, f in enumerate(frames) if f.time.hour == 3)
    frames[frozen] = Frame(
        frames[frozen].satellite, frames[frozen].time, frames[frozen].channels, frames[frozen - 1].data
    )
    ensure_topics(settings.kafka)
    publish(settings, frames)

    alerts = run_detector(settings, len(frames)).detector.store.all()
    faults = {(a.window_end, a.kind) for a in alerts if alert_category(a.kind) == "data_quality"}
    expected = {(frames[frozen].time, "frozen_frame")} | {
        (f.time, "calibration_jump") for f in frames if jump.active(f.time)
    }
    assert faults == expected
    assert all(a.kind == "anomaly" for a in alerts if (a.window_end, a.kind) not in expected)
    assert not [a for a in alerts if a.kind == "anomaly" and jump.start <= a.window_end <= jump.end]

    # A restart re-reads the last 20 messages (from 05:00): the checks' history is rebuilt from them, its
    # first frames raise nothing, and the jump is found again under the same alert ids.
    settings.detector.rebuild_messages = 20
    again = run_detector(settings, 20).detector.store.all()
    assert {a.id for a in again} == {a.id for a in alerts}
    on_topic = [alert_from_json(m.value).id for m in read_topic(settings, settings.kafka.alerts_topic, len(alerts))]
    assert Counter(on_topic) == Counter(a.id for a in alerts)
    assert jump.start - frames[-20].time >= timedelta(hours=1)  # 4 frames of history before the onset
