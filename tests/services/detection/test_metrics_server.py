"""The metrics port: /metrics, /healthz and /readyz apart, 404 elsewhere; score buckets span the threshold."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer, PortBusyError, score_buckets


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_readiness_metrics_and_404() -> None:
    metrics = DetectorMetrics()
    state = {"ready": False}
    server = MetricsServer(metrics.registry, ready=lambda: state["ready"])
    try:
        base = server.base_url
        status, body = get(base + "/metrics")
        assert status == 200 and "satwatch_frames_consumed" in body
        assert get(base + "/healthz") == (200, "ok\n")
        assert get(base + "/readyz")[0] == 503
        state["ready"] = True
        assert get(base + "/readyz") == (200, "ready\n")
        for path in ("/", "/metricsx", "/admin", "/healthz/x"):
            status, body = get(base + path)
            assert status == 404 and "satwatch_" not in body, path
    finally:
        server.close()


def test_failing_readiness_check_is_not_ready() -> None:
    def broken() -> bool:
        raise RuntimeError("consumer gone")

    server = MetricsServer(DetectorMetrics().registry, ready=broken)
    try:
        assert get(server.base_url + "/readyz")[0] == 503
    finally:
        server.close()


def test_busy_port_is_one_line_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortBusyError) as err:
            MetricsServer(DetectorMetrics().registry, port=port)
    message = str(err.value)
    assert f"127.0.0.1:{port} is already in use" in message and "\n" not in message


def test_score_buckets_span_the_calibrated_threshold() -> None:
    threshold = 3.87734  # the shipped autoencoder card's calibrated threshold
    metrics = DetectorMetrics()
    metrics.calibrate(threshold)
    for score in (1.0, 3.9, 20.0):
        metrics.anomaly_scores.observe(score)
    buckets = score_buckets(threshold)
    assert buckets[0] < threshold / 2 and buckets[-1] > 4 * threshold and threshold in buckets
    bounds = [
        s.labels["le"]
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "satwatch_anomaly_score_distribution_bucket"
    ]
    assert len(bounds) == len(buckets) + 1 and bounds[-1] == "+Inf"
    assert metrics.anomaly_threshold._value.get() == threshold
    with pytest.raises(ValueError):
        score_buckets(float("nan"))


@pytest.mark.parametrize("threshold", [-0.45, 0.0, -3.0])
def test_a_threshold_of_zero_or_below_is_served_with_buckets_and_ratio_around_it(threshold: float) -> None:
    """COMS-1's v2 set scores real frames between -1.4 and -0.2, so a threshold set on them is negative: the
    score histogram spans it, and the ratio keeps 1 as the alert line and the scores' order."""
    from satwatch.services.detection.metrics import score_ratio

    metrics = DetectorMetrics()
    metrics.calibrate(threshold)
    buckets = score_buckets(threshold)
    assert list(buckets) == sorted(buckets) and threshold in buckets and buckets[0] < threshold < buckets[-1]
    assert score_ratio(threshold, threshold) == 1.0
    assert score_ratio(threshold - 0.1, threshold) < 1.0 < score_ratio(threshold + 0.1, threshold)
    assert score_ratio(-1.4, threshold) < score_ratio(-0.2, threshold)
    assert score_ratio(7.0, 3.5) == pytest.approx(2.0), "a positive threshold's ratio is score / threshold"
