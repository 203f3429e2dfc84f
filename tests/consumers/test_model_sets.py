"""One detector serving two satellites' model sets over the real broker; a third satellite has none."""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.services.config import Settings
from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer
from satwatch.services.detection.router import DetectorRouter, build_frame_detector
from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import load_profiles
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.topics import DLQ_REASON, ensure_topics
from tests.consumers.running import run_detector
from tests.producers.test_publisher import read_topic

SHIPPED = Path(__file__).resolve().parents[2] / "onnx_models"
TWIN, SPARE = "COMS-TWIN", "COMS-SPARE"


def _profiles_toml(path: Path) -> Path:
    """Two user profiles with COMS-1's geometry and channels but their own names (TOML, as a user adds one)."""
    fields = {
        "channels": ["ir01", "ir02", "swir", "wv"],
        "filename_patterns": [r"twin_(?P<channel>[a-z0-9]+)_(?P<area>[a-z0-9]+)_(?P<stamp>\d{12})\.png"],
        "filename_template": "twin_{channel}_{area}_{stamp}.png",
        "cadence_minutes": 15,
        "native_width": 1500,
        "native_height": 1300,
    }

    def value(v: object) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return f"'{v}'" if isinstance(v, str) else str(v)

    tables = [
        "[[profile]]\n" + f"name = '{name}'\n" + "".join(f"{k} = {value(v)}\n" for k, v in fields.items())
        for name in (TWIN, SPARE)
    ]
    path.write_text("\n".join(tables))
    return path


def _recard(dest: Path, profile: str) -> Path:
    """The shipped models, their cards naming another profile (same geometry, so the same models serve it)."""
    dest.mkdir()
    for name in ("encoder", "autoencoder"):
        shutil.copy(SHIPPED / f"{name}.onnx", dest / f"{name}.onnx")
        card = json.loads((SHIPPED / f"{name}.card.json").read_text())
        card["profile"] = profile
        (dest / f"{name}.card.json").write_text(json.dumps(card))
    return dest


def _metric(body: str, line_start: str) -> float:
    for line in body.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.slow
def test_one_detector_serves_two_profiles_and_refuses_a_third(settings: Settings, tmp_path: Path) -> None:
    frames = list(SceneSimulator(SimConfig(seed=7, days=7 / 24)).frames())
    twins = [replace(f, satellite=TWIN) for f in frames]
    spares = [replace(f, satellite=SPARE) for f in frames[:3]]
    d = settings.detector
    d.profiles_file = str(_profiles_toml(tmp_path / "profiles.toml"))
    d.model_dirs = {"COMS-1": str(SHIPPED), TWIN: str(_recard(tmp_path / "twin", TWIN))}
    load_profiles(d.profiles_file)  # the producer knows the profiles too (its config names the same file)
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="test")
    stream: list[Frame] = [f for pair in zip(frames, twins, strict=True) for f in pair] + spares
    for f in stream:
        publisher.publish(f)
    publisher.flush()
    producer.close()

    metrics = DetectorMetrics()
    server = MetricsServer(metrics.registry)
    detector = build_frame_detector(settings, metrics)
    assert isinstance(detector, DetectorRouter) and sorted(detector.routes) == ["COMS-1", TWIN]
    try:
        run_detector(settings, 2 * len(frames), detector=detector, timeout=180, exact=True)
        body = urllib.request.urlopen(server.url).read().decode()
    finally:
        server.close()

    # Per-satellite windows and indexes: each profile indexed its own full windows, under its own folder.
    full_windows = len(frames) - 19
    for name in ("COMS-1", TWIN):
        assert len(detector.routes[name].index) == full_windows
        assert (Path(d.state_dir) / name / "index").is_dir()
        assert _metric(body, f'satwatch_frames_consumed_total{{satellite="{name}"}}') == len(frames)
        assert _metric(body, f'satwatch_model_set_index_size{{profile="{name}"}}') == full_windows
        # Every scored frame lands in its satellite's score-over-threshold histogram.
        assert _metric(body, f'satwatch_anomaly_score_ratio_count{{satellite="{name}"}}') == len(frames)
    assert _metric(body, "satwatch_index_size") == 2 * full_windows
    # Searches stay within a profile: a twin's similar events are the twin's own past windows.
    alerts = detector.store.all()
    for alert in alerts:
        assert all(s.satellite == alert.satellite for s in alert.similar), alert.similar
    by_sat = {name: sorted(a.window_end for a in alerts if a.satellite == name) for name in ("COMS-1", TWIN)}
    assert by_sat["COMS-1"] == by_sat[TWIN]  # the same frames through the same models alert alike

    # The satellite with no model set: refused as no_model, counted, parked on the dead-letter topic.
    assert _metric(body, 'satwatch_invalid_frames_total{reason="no_model"}') == len(spares)
    parked = read_topic(settings, settings.kafka.dead_letter_topic, len(spares))
    reasons = [dict(m.headers)[DLQ_REASON].decode() for m in parked]
    assert reasons == ["no_model"] * len(spares)
    assert _metric(body, f'satwatch_frames_consumed_total{{satellite="{SPARE}"}}') == 0


def test_a_model_set_carded_for_another_profile_is_refused(settings: Settings, tmp_path: Path) -> None:
    """The shipped autoencoder's card names COMS-1: offering it for another profile fails naming both."""
    d = settings.detector
    d.profiles_file = str(_profiles_toml(tmp_path / "profiles.toml"))
    d.model_dirs = {TWIN: str(SHIPPED)}
    with pytest.raises(ValueError, match=f"trained for the COMS-1 profile, not {TWIN}"):
        build_frame_detector(settings)
