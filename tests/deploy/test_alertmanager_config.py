"""deploy/alertmanager: amtool accepts the shipped config, and a real Alertmanager started on it takes the feed's
data-quality faults and routes them to the operators' receiver."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from satwatch.services.feed.alertmanager import ALERTNAME, AlertmanagerRouter
from satwatch.services.feed.incidents import Incident
from tests.deploy.promql import DEPLOY
from tests.helpers import running_alertmanager

yaml = pytest.importorskip("yaml")

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
AMTOOL = shutil.which("amtool")


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (Debian: apt install prometheus-alertmanager)")
def test_amtool_accepts_the_shipped_config() -> None:
    assert AMTOOL is not None
    out = subprocess.run([AMTOOL, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_route_names_a_defined_receiver() -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"] for r in cfg["receivers"]}

    def walk(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield route
        for child in route.get("routes", []):
            yield from walk(child)

    named = {r["receiver"] for r in walk(cfg["route"]) if "receiver" in r}
    assert cfg["route"]["receiver"] in receivers
    assert named <= receivers, named - receivers


@pytest.fixture
def shipped_alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on the shipped config; yields its base URL."""
    with running_alertmanager(CONFIG, tmp_path) as url:
        yield url


def test_a_fault_from_the_feed_reaches_the_operators_receiver(shipped_alertmanager: str) -> None:
    t = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    fault = Incident(
        id="f1",
        satellite="COMS-1",
        kind="striping",
        category="data_quality",
        status="open",
        start=t,
        first_window_end=t,
        last_window_end=t,
        peak_score=3.0,
        peak_threshold=1.0,
        peak_alert_id="a1",
        peak_window_end=t,
        latest_alert_id="a2",
        latest_score=2.0,
        alert_count=2,
    )
    router = AlertmanagerRouter(shipped_alertmanager, resend=60)
    router.route([fault])
    assert router.failures == 0 and router.posted == 1
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"{shipped_alertmanager}/api/v2/alerts", timeout=5) as resp:
            got = json.loads(resp.read())
        if got or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [a["labels"]["alertname"] for a in got] == [ALERTNAME]
    assert got[0]["labels"]["severity"] == "critical"
    assert [r["name"] for r in got[0]["receivers"]] == ["operators"]
