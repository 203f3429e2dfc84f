"""The incidents sink and the feed beside the detector in one process: the wiring ``satwatch demo`` uses."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from satwatch.services.config import Settings
from satwatch.services.detection.detector import FrameOutcome
from satwatch.services.frames.frame import Frame


class LocalFeed:
    """The incidents sink and the feed run beside the detector in one process (``satwatch demo``), with each
    alert's pictures drawn from the frames as they pass."""

    def __init__(self, settings: Settings, state_dir: Path, config: str | None = None, port: int | None = None) -> None:
        import secrets

        from satwatch.consumers.incidents import IncidentsConsumer
        from satwatch.services.feed.app import create_app
        from satwatch.services.feed.config import load_feed_settings
        from satwatch.services.feed.pictures import AlertPictures
        from satwatch.services.feed.server import FeedServer
        from satwatch.services.feed.store import IncidentStore

        feed = load_feed_settings(config)
        feed.store = str(state_dir / "incidents.sqlite")
        feed.pictures_dir = str(state_dir / "pictures")
        feed.token = feed.token or secrets.token_urlsafe(12)
        feed.stream_clock_seconds = 0  # the detector runs in this process: on_outcome moves the clock
        if port is not None:
            feed.port = port
        self.feed = feed
        self.store = IncidentStore(feed.store)
        self.consumer = IncidentsConsumer(settings, feed, store=self.store)
        self.pictures = AlertPictures(feed.pictures_dir)
        app = create_app(self.store, feed, metrics=self.consumer.metrics)
        try:
            self.server = FeedServer(app, feed.host, feed.port)
        except OSError:  # the configured port is taken: any free one
            self.server = FeedServer(app, feed.host, 0)
        self._thread = threading.Thread(target=self.consumer.run, name="incidents", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> LocalFeed:
        self._thread.start()
        self.server.start()
        return self

    def on_frame(self, frame: Frame) -> None:
        self.pictures.on_frame(frame)

    def on_outcome(self, outcome: FrameOutcome) -> None:
        """Draw a new alert's pictures, and move the sink's stream clock to the processed frame."""
        self.pictures.on_outcome(outcome)
        self.consumer.advance(outcome.satellite, outcome.time)

    def drain(self, alerts: int, timeout: float = 20.0) -> None:
        """Wait until the sink has grouped ``alerts`` alerts (the detector's output) and its clock ticks."""
        deadline = time.monotonic() + timeout
        while self.consumer.sink.alerts_seen < alerts and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.1)
        time.sleep(0.5)

    def summary(self) -> str:
        incidents = self.store.query(limit=100_000)
        weather = sum(1 for i in incidents if i.category == "weather")
        n_alerts = sum(i.alert_count for i in incidents)
        ratio = f"{n_alerts / len(incidents):.1f}" if incidents else "n/a"
        faults = len(incidents) - weather
        return (
            f"{n_alerts} alerts -> {len(incidents)} incident{'' if len(incidents) == 1 else 's'} ({weather} "
            f"weather, {faults} instrument "
            f"fault{'' if faults == 1 else 's'}; {ratio} alerts an incident); incident store {self.feed.store}"
        )

    def stop(self) -> None:
        self.pictures.close()
        self.consumer.stop()
        self._thread.join(timeout=15)
        self.server.stop()
