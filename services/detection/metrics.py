"""Prometheus metrics. Each pipeline instance owns a registry, so several can live in one process (tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Stage latency buckets: sub-millisecond to a few seconds.
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_AGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400)
_SCORE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class DetectorMetrics:
    """What the detector reports to operators."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_consumed = Counter(
            "satwatch_frames_consumed", "Frames taken off the frames topic", ["satellite"], registry=r
        )
        self.frame_age = Histogram(
            "satwatch_frame_age_seconds",
            "Wall-clock time between a frame's publication and the end of its processing",
            ["satellite"],
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "satwatch_stage_seconds",
            "Processing time per pipeline stage",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.anomaly_score = Gauge("satwatch_anomaly_score", "Latest anomaly score", ["satellite"], registry=r)
        self.anomaly_scores = Histogram(
            "satwatch_anomaly_score_distribution", "Anomaly scores seen", buckets=_SCORE_BUCKETS, registry=r
        )
        self.anomaly_threshold = Gauge("satwatch_anomaly_threshold", "Alert threshold in force", registry=r)
        self.alerts = Counter("satwatch_alerts", "Alerts fired (new ids only)", ["satellite", "kind"], registry=r)
        self.invalid_frames = Counter(
            "satwatch_invalid_frames", "Frames refused and sent to the dead-letter topic", ["reason"], registry=r
        )
        self.window_fill = Gauge(
            "satwatch_window_fill", "Frames in the rolling window / window size", ["satellite"], registry=r
        )
        self.window_restarts = Counter(
            "satwatch_window_restarts",
            "Windows restarted after a gap longer than the cadence allows",
            ["satellite"],
            registry=r,
        )
        self.index_size = Gauge("satwatch_index_size", "Windows in the similarity index", registry=r)
        self.last_frame_time = Gauge(
            "satwatch_last_frame_timestamp_seconds",
            "Observation time of the newest processed frame",
            ["satellite"],
            registry=r,
        )
        self.last_processed = Gauge(
            "satwatch_last_processed_timestamp_seconds",
            "Wall-clock time the last frame finished processing",
            registry=r,
        )
        self.errors = Counter("satwatch_errors", "Unexpected processing errors", ["stage"], registry=r)
        #: Called with (stage, seconds) for every timed block; benchmarks use it for exact percentiles.
        self.stage_listeners: list[Callable[[str, float], None]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a block into ``satwatch_stage_seconds{stage=name}``."""
        t0 = perf_counter()
        try:
            yield
        finally:
            dt = perf_counter() - t0
            self.stage_seconds.labels(name).observe(dt)
            for listener in self.stage_listeners:
                listener(name, dt)


class ProducerMetrics:
    """What a producer reports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.published = Counter(
            "satwatch_frames_published", "Frames published to the frames topic", ["satellite", "source"], registry=r
        )
        self.publish_errors = Counter(
            "satwatch_publish_errors", "Frames that could not be published", ["reason"], registry=r
        )
        self.unrecognised_files = Counter(
            "satwatch_unrecognised_files",
            "Image files a frame source found but could not place (naming, channel or area)",
            ["satellite"],
            registry=r,
        )
        self.message_bytes = Histogram(
            "satwatch_message_bytes",
            "Size of published frame messages",
            buckets=(1e4, 5e4, 1e5, 2e5, 5e5, 1e6),
            registry=r,
        )


class MetricsServer:
    """Serves one registry at ``http://host:port/metrics`` in a background thread."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> None:
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.host = host
        self.port = int(server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
