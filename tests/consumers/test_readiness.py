"""/readyz over the real broker: not ready until the detector's loop holds partitions, not ready once stopped."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from satwatch.consumers.detector import DetectorConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector
from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer
from satwatch.topics import ensure_topics


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_readyz_follows_partition_assignment(settings: Settings) -> None:
    ensure_topics(settings.kafka)
    metrics = DetectorMetrics()
    server = MetricsServer(metrics.registry)
    consumer = DetectorConsumer(settings, build_detector(settings, metrics))
    server.ready = consumer.ready
    readyz = server.base_url + "/readyz"
    try:
        assert status(readyz) == 503  # models loaded, but no partition yet
        assert status(server.base_url + "/healthz") == 200
        worker = threading.Thread(target=consumer.run)
        worker.start()
        deadline = time.monotonic() + 60
        while status(readyz) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status(readyz) == 200 and consumer.assigned
        consumer.stop()
        worker.join(30)
        assert status(readyz) == 503
    finally:
        consumer.stop()
        server.close()
