"""A real Prometheus scrapes a real satwatch metrics endpoint and evaluates deploy/prometheus/rules.yml."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from satwatch.broker import free_port
from satwatch.services.detection.metrics import DetectorMetrics, MetricsServer
from tests.deploy.promql import DEPLOY
from tests.helpers import stop_process

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian: apt install prometheus)"
)

JOB = "satwatch-detector"


@pytest.fixture
def metrics() -> Iterator[tuple[DetectorMetrics, MetricsServer]]:
    m = DetectorMetrics()
    server = MetricsServer(m.registry)
    try:
        yield m, server
    finally:
        server.close()


@pytest.fixture
def prometheus(metrics: tuple[DetectorMetrics, MetricsServer], tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the metrics server every second, with the shipped rules; yields its base URL."""
    _, server = metrics
    port = free_port()
    config = (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - rules.yml\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.port}']\n"
    )
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(DEPLOY / "prometheus" / "rules.yml", tmp_path / "rules.yml")
    assert PROMETHEUS is not None
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/-/ready", raw=True) is not None and proc.poll() is None, "Prometheus ready")
        yield base
    finally:
        stop_process(proc, grace=15)
        log.close()
        if proc.returncode not in (0, -15):
            print((tmp_path / "prometheus.log").read_text()[-3000:])


def _get(url: str, raw: bool = False) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            body = r.read().decode()
    except OSError:
        return None
    return body if raw else json.loads(body)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def query(base: str, promql: str) -> list[dict[str, Any]]:
    doc = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    if not doc or doc.get("status") != "success":
        return []
    return list(doc["data"]["result"])


def test_prometheus_scrapes_detector_metrics_and_loads_rules(
    metrics: tuple[DetectorMetrics, MetricsServer], prometheus: str
) -> None:
    m, _ = metrics
    m.frames_consumed.labels("COMS-1").inc(7)
    m.frames_consumed.labels("GK-2A").inc(3)
    m.invalid_frames.labels("bad_shape").inc(2)
    m.index_size.set(42)
    m.last_processed.set(time.time())
    with m.stage("total"):
        pass

    def target_up() -> bool:
        doc = _get(f"{prometheus}/api/v1/targets")
        targets = doc["data"]["activeTargets"] if doc else []
        return any(t["labels"]["job"] == JOB and t["health"] == "up" for t in targets)

    wait_for(target_up, "the satwatch target to be up")

    def consumed() -> dict[str, float]:
        result = query(prometheus, "satwatch_frames_consumed_total")
        return {r["metric"]["satellite"]: float(r["value"][1]) for r in result}

    assert wait_for(lambda: consumed() == {"COMS-1": 7.0, "GK-2A": 3.0}, "the scraped counters")
    assert wait_for(lambda: query(prometheus, "satwatch_index_size"), "index size")[0]["value"][1] == "42"
    # Prometheus follows the live registry, not a one-off snapshot.
    m.frames_consumed.labels("COMS-1").inc(5)
    assert wait_for(lambda: consumed().get("COMS-1") == 12.0, "the updated counter")

    # The shipped rules loaded and evaluate without error against real satwatch series.
    rules = wait_for(lambda: _get(f"{prometheus}/api/v1/rules"), "the rules API")
    groups = {g["name"]: g for g in rules["data"]["groups"]}
    assert {"satwatch-recording", "satwatch-alerts"} <= groups.keys()

    def evaluated() -> bool:
        all_rules = [r for g in groups_now() for r in g["rules"]]
        return bool(all_rules) and all(r.get("health") == "ok" for r in all_rules)

    def groups_now() -> list[dict[str, Any]]:
        doc = _get(f"{prometheus}/api/v1/rules")
        return doc["data"]["groups"] if doc else []

    wait_for(evaluated, "every rule to evaluate healthy")
    # The invalid-frame ratio recording rule sees the refused frames once two scrapes give a rate.
    m.invalid_frames.labels("bad_shape").inc(2)
    m.frames_consumed.labels("COMS-1").inc(2)

    def ratio() -> list[dict[str, Any]]:
        result = query(prometheus, "satwatch:invalid_frames:ratio_rate15m")
        return [r for r in result if 0.0 < float(r["value"][1]) <= 1.0]

    recorded = wait_for(ratio, "a positive recorded invalid-frame ratio")
    assert recorded[0]["metric"]["job"] == JOB
    # Nothing stale: the detector processed a frame just now, so the stale-feed alert is not pending.
    alerts = _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    assert not [a for a in alerts if a["labels"]["alertname"] == "SatwatchStaleFeed"]
