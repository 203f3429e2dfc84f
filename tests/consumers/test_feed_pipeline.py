"""The whole path as the demo runs it: simulated frames -> embedded broker -> the real detector (shipped ONNX
models) -> alerts topic -> incidents sink -> feed page in a headless chromium. One labelled event (a saturated
block, 06:00-06:30, an instrument fault the detector names as such) becomes one data-quality incident on the
page, with its window strip and heat map, and resolves once the stream has moved past the quiet time."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from satwatch.consumers.detector import DetectorConsumer
from satwatch.localfeed import LocalFeed
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.detector import build_detector
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.topics import ensure_topics
from tests.consumers.test_detector import publish
from tests.services.feed.test_browser import browser  # noqa: F401 - the fixture

STREAM = SimConfig(seed=7, days=10.25 / 24)


@pytest.mark.slow
def test_frames_to_page(settings: Settings, tmp_path: Path, browser: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    monkeypatch.delenv("SATWATCH_CONFIG", raising=False)
    monkeypatch.setenv("SATWATCH_FEED__GROUP_ID", f"inc-{tag}")
    monkeypatch.setenv("SATWATCH_FEED__INCIDENTS_TOPIC", f"incidents-{tag}")
    monkeypatch.setenv("SATWATCH_FEED__POLL_SECONDS", "0.1")
    ensure_topics(settings.kafka)
    sim = SceneSimulator(STREAM)
    frames = list(sim.frames())
    (event,) = [e for e in sim.events if e.start <= sim.times[-1]]

    feed = LocalFeed(settings, tmp_path / "feed", port=0).start()
    detector = build_detector(settings)
    consumer = DetectorConsumer(settings, detector, on_outcome=feed.on_outcome)
    worker = threading.Thread(target=consumer.run, daemon=True)
    worker.start()
    page = browser.new_page()
    published: dict[Any, float] = {}
    try:
        assert feed.consumer.ready.wait(30)
        # The event is an instrument fault (a saturated block): the feed shows faults only when asked.
        page.goto(feed.url + "/?faults=1")
        page.wait_for_selector("#live.on", timeout=10_000)
        shown: float | None = None
        for f in frames:
            feed.on_frame(f)
            published[f.time] = time.monotonic()
            publish(settings, [f])
            time.sleep(0.05)
            if shown is None and page.locator("[data-testid=incident]").count():
                shown = time.monotonic()
        page.wait_for_selector("[data-testid=incident]", timeout=30_000)
        shown = shown or time.monotonic()
        inc = feed.store.query()[0]
        took = shown - published[inc.first_window_end]
        print(f"frame {inc.first_window_end:%H:%M} published -> its incident on the page: {took:.2f} s or less")
        # the stream runs on to 10:15, past 06:30 + the 120-minute quiet time: resolved, on the page too
        page.wait_for_selector("[data-testid=incident][data-status=resolved]", timeout=60_000)
        # the window's frames and the heat map were drawn for the latest alert, and the page shows them
        feed.pictures.close()  # rendered in the background: let it finish
        page.reload()
        page.wait_for_selector("[data-testid=incident]")
        assert page.locator("img[alt='anomaly heat map']").count() == 1
        assert page.locator("img[alt='the 6-hour window as pictures']").count() == 1
        assert page.locator("[data-testid^=placeholder]").count() == 0
    finally:
        consumer.stop()
        worker.join(30)
        feed.stop()
    alerts = AlertStore(Path(settings.detector.state_dir) / "alerts.sqlite").all()
    (inc,) = feed.store.query()
    assert alerts and inc.alert_count == len(alerts) and set(inc.alert_ids) == {a.id for a in alerts}
    assert event.start <= inc.first_window_end <= event.end and inc.status == "resolved"


@pytest.mark.slow
def test_split_deployment_resolves_from_the_detectors_progress(settings: Settings, tmp_path: Path) -> None:
    """The sink in its own consumer, nothing in-process: it learns stream time from the detector group's
    committed offsets, so the incident resolves once the detector is past the quiet time, with no later alert."""
    from satwatch.consumers.incidents import IncidentsConsumer
    from satwatch.services.feed.config import FeedSettings

    ensure_topics(settings.kafka)
    tag = uuid.uuid4().hex[:8]
    feed = FeedSettings(
        store=str(tmp_path / "i.sqlite"),
        group_id=f"inc-{tag}",
        incidents_topic=f"incidents-{tag}",
        stream_clock_seconds=0.5,
    )
    sink = IncidentsConsumer(settings, feed)
    sink_thread = threading.Thread(target=sink.run, daemon=True)
    sink_thread.start()
    consumer = DetectorConsumer(settings, build_detector(settings))
    worker = threading.Thread(target=consumer.run, daemon=True)
    worker.start()
    try:
        publish(settings, list(SceneSimulator(STREAM).frames()))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            got = sink.store.query()
            if got and all(i.status == "resolved" for i in got):
                break
            time.sleep(0.2)
    finally:
        consumer.stop()
        worker.join(30)
        sink.stop()
        sink_thread.join(15)
    (inc,) = sink.store.query()
    alerts = AlertStore(Path(settings.detector.state_dir) / "alerts.sqlite").all()
    assert inc.status == "resolved" and inc.alert_count == len(alerts)
    assert [e.action for e in sink.store.audit(inc.id)][-1] == "resolved"
