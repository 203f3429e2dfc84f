"""``satwatch feed`` as a user runs it: a process reading the alerts topic of the embedded broker and serving
the page; the token comes from the environment; Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from satwatch.services.config import Settings
from satwatch.topics import ensure_topics
from tests.consumers.test_incidents import publish
from tests.services.feed.test_app import call
from tests.services.feed.test_incidents import make_alert


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_feed_command(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings.kafka)
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "SATWATCH_FEED__TOKEN": "from-env",
        "SATWATCH_FEED__GROUP_ID": f"inc-{tag}",
        "SATWATCH_FEED__INCIDENTS_TOPIC": f"incidents-{tag}",
    }
    env.pop("SATWATCH_CONFIG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "satwatch",
            "feed",
            "--bootstrap-servers",
            settings.kafka.bootstrap_servers,
            "--alerts-topic",
            settings.kafka.alerts_topic,
            "--store",
            str(tmp_path / "i.sqlite"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("feed http"):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "satwatch feed exited early"
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and "writes need the token" in line
        assert get(f"{url}/healthz") == {"status": "ok"}
        deadline = time.monotonic() + 30
        while not call(f"{url}/readyz")[1]["ready"] and time.monotonic() < deadline:  # the sink joins its group
            time.sleep(0.2)
        assert call(f"{url}/readyz")[1]["ready"]
        publish(settings, [make_alert(1, kind="missing_lines", hotspot=None)])
        while not get(f"{url}/api/incidents")["incidents"] and time.monotonic() < deadline:
            time.sleep(0.1)
        (inc,) = get(f"{url}/api/incidents")["incidents"]
        assert inc["category"] == "data_quality" and inc["alert_count"] == 1
        assert (
            call(
                f"{url}/api/incidents/{inc['id']}/ack", {"who": "op", "comment": "ok"}, {"X-Satwatch-Token": "from-env"}
            )[0]
            == 201
        )
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'satwatch_incidents{category="data_quality",status="open"} 1.0' in metrics
        assert 'satwatch_incident_alerts_total{outcome="grouped"} 1.0' in metrics
        assert 'satwatch_incident_changes_total{action="opened",category="data_quality"} 1.0' in metrics
        assert "satwatch_feed_acknowledgements_total 1.0" in metrics
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130), out


def test_the_feed_exits_non_zero_when_its_incidents_consumer_dies(
    settings: Settings, tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    """A feed whose sink died would serve a page that no longer moves and route no fault to Alertmanager, with
    /healthz still ok: it stops with status 1 instead, so a supervisor (compose's restart policy) restarts it."""
    from satwatch.cli import main
    from satwatch.consumers import incidents

    ensure_topics(settings.kafka)

    def broken(self: Any, max_idle_seconds: float | None = None) -> None:
        raise RuntimeError("KafkaTimeoutError: flush timed out")

    monkeypatch.setattr(incidents.IncidentsConsumer, "run", broken)
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("SATWATCH_FEED__GROUP_ID", f"inc-{tag}")
    monkeypatch.setenv("SATWATCH_FEED__INCIDENTS_TOPIC", f"incidents-{tag}")
    monkeypatch.delenv("SATWATCH_CONFIG", raising=False)
    argv = ["feed", "--bootstrap-servers", settings.kafka.bootstrap_servers, "--alerts-topic"]
    argv += [settings.kafka.alerts_topic, "--store", str(tmp_path / "i.sqlite"), "--port", "0"]
    assert main(argv) == 1
    assert "the incidents consumer stopped (KafkaTimeoutError: flush timed out)" in caplog.text
