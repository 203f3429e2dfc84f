"""Prometheus metrics. Each pipeline instance owns a registry, so several can live in one process (tests)."""

from __future__ import annotations

import errno
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from time import perf_counter
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

#: Stage latency buckets: sub-millisecond to a few seconds.
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_AGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400)
#: Score buckets as multiples of the calibrated threshold, so they span it whatever the model's scale.
SCORE_BUCKET_FACTORS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0, 8.0)


def threshold_scale(threshold: float) -> float:
    """The unit scores are measured in against a threshold: the threshold itself when positive; else (a model
    whose normal scores are negative, and a threshold set on them) its size, at least 1; 1 for a threshold that
    is not a number a score can cross (a scorer that never alerts holds an infinite one)."""
    if math.isnan(threshold):
        raise ValueError("an anomaly threshold must be a number, got nan")
    if math.isinf(threshold):
        return 1.0
    return threshold if threshold > 0 else max(abs(threshold), 1.0)


def score_ratio(score: float, threshold: float) -> float:
    """A score against the threshold on one scale for every model set: 1 is the alert line, above 1 alerts.

    ``score / threshold`` for a positive threshold; for any other, ``1 + (score - threshold) / scale`` (the same
    formula, with :func:`threshold_scale`), so a negative or zero threshold keeps the order and the alert line.
    """
    return 1.0 + (score - threshold) / threshold_scale(threshold)


def score_buckets(threshold: float) -> tuple[float, ...]:
    """Histogram buckets from 0.25x to 8x the threshold (the model card's calibrated one, or the override);
    for a threshold <= 0, the scores whose :func:`score_ratio` is 0.25 to 8, which span it the same way."""
    if math.isinf(threshold) and threshold > 0:
        threshold = 1.0  # a scorer that never alerts: the buckets of a unit threshold
    scale = threshold_scale(threshold)
    return tuple(float(f"{threshold + (f - 1.0) * scale:.6g}") for f in SCORE_BUCKET_FACTORS)


class DetectorMetrics:
    """What the detector reports to operators."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_consumed = Counter(
            "satwatch_frames_consumed",
            "Valid frames taken off the frames topic and processed; refused messages are counted in "
            "satwatch_invalid_frames_total instead",
            ["satellite"],
            registry=r,
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
        self.anomaly_scores = self._score_histogram(score_buckets(1.0))
        self.anomaly_threshold = Gauge("satwatch_anomaly_threshold", "Alert threshold in force", registry=r)
        # Scores over the threshold of the model set that scored them: one scale for every satellite, however
        # many model sets (each with its own threshold) one detector serves.
        self.anomaly_score_ratio = Histogram(
            "satwatch_anomaly_score_ratio",
            "Anomaly score divided by the alert threshold in force for the satellite's model set (1 = alert line)",
            ["satellite"],
            buckets=SCORE_BUCKET_FACTORS,
            registry=r,
        )
        self.alerts = Counter("satwatch_alerts", "Alerts fired (new ids only)", ["satellite", "kind"], registry=r)
        self.quality_faults = Counter(
            "satwatch_data_quality_faults",
            "Frames with an instrument or feed fault, by kind (the operators' route, not weather)",
            ["kind"],
            registry=r,
        )
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
        self.model_sets = Gauge(
            "satwatch_model_set_index_size",
            "Windows in each model set's similarity index, by the satellite profile it serves (several per detector)",
            ["profile"],
            registry=r,
        )
        self.model_set_threshold = Gauge(
            "satwatch_model_set_anomaly_threshold",
            "Alert threshold in force for each model set, by the satellite profile it serves",
            ["profile"],
            registry=r,
        )
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

    def _score_histogram(self, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(
            "satwatch_anomaly_score_distribution",
            "Anomaly scores seen (buckets 0.25x to 8x the threshold in force)",
            buckets=buckets,
            registry=self.registry,
        )

    def calibrate(self, threshold: float) -> None:
        """Set the threshold in force and span the score histogram's buckets around it.

        Call before scores are observed (the detector consumer does when it starts): re-bucketing drops the
        counts seen so far.
        """
        self.anomaly_threshold.set(threshold)
        self.registry.unregister(self.anomaly_scores)
        self.anomaly_scores = self._score_histogram(score_buckets(threshold))

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


class PortBusyError(OSError):
    """The port asked for is taken; the message is one line an operator can act on."""

    def __str__(self) -> str:
        return str(self.strerror)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class MetricsServer:
    """Serves one registry in a background thread: ``/metrics``, ``/healthz`` and ``/readyz``; 404 elsewhere.

    ``/healthz`` answers 200 while the process serves at all. ``/readyz`` answers 200 only when ``ready()``
    says so (the detector consumer's: models loaded and partitions assigned), 503 otherwise; set ``ready``
    once the thing being served can tell.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = 0,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.ready: Callable[[], bool] = ready or (lambda: False)
        self._metrics_app = make_wsgi_app(registry)
        try:
            server = make_server(host, port, self._app, _Server, handler_class=_QuietHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortBusyError(
                    exc.errno, f"metrics port {host}:{port} is already in use; choose another with --metrics-port"
                ) from None
            raise
        self._server: WSGIServer = server
        self._thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        self.host = host
        self.port = int(server.server_address[1])

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            return self._text(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            try:
                ready = bool(self.ready())
            except Exception:  # noqa: BLE001 - a failing readiness check means not ready
                ready = False
            return self._text(
                start_response, "200 OK" if ready else "503 Service Unavailable", "ready\n" if ready else "not ready\n"
            )
        return self._text(start_response, "404 Not Found", "not found: try /metrics, /healthz or /readyz\n")

    @staticmethod
    def _text(start_response: Callable[..., Any], status: str, body: str) -> list[bytes]:
        data = body.encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
        return [data]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
