"""Faults reach a real Alertmanager with the right labels and resolve there; weather never goes there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from satwatch.services.feed.alertmanager import AlertmanagerRouter
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.sink import IncidentSink
from satwatch.services.feed.store import IncidentStore
from tests.services.feed.conftest import Alertmanager
from tests.services.feed.test_incidents import STEP, T0, make_alert


def test_fault_opens_and_resolves_weather_stays_out(tmp_path: Path, alertmanager: Alertmanager) -> None:
    router = AlertmanagerRouter(alertmanager.url, resend=60)
    sink = IncidentSink(IncidentStore(tmp_path / "i.sqlite"), FeedSettings(quiet_minutes=30), router=router)
    sink.handle([make_alert(1, kind="striping", score=0.9, hotspot=None), make_alert(1, kind="anomaly")])
    sink.handle([make_alert(2, kind="striping", score=0.5, hotspot=None), make_alert(2, kind="anomaly")])
    fault = next(i for i in sink.store.query() if i.kind == "striping")

    got = alertmanager.wait_for(lambda a: len(a) >= 1)
    assert len(got) == 1, got  # the weather anomaly is not there
    labels = got[0]["labels"]
    assert labels["alertname"] == "SatwatchDataQuality"
    assert labels["satellite"] == "COMS-1" and labels["kind"] == "striping"
    assert labels["incident_id"] == fault.id and labels["severity"] == "critical"  # 0.9 >= 2 x 0.4
    assert got[0]["status"]["state"] == "active"

    # the stream moves on past the quiet time: the fault resolves there too
    sink.advance("COMS-1", T0 + 2 * STEP + timedelta(minutes=31))
    assert sink.store.get(fault.id).status == "resolved"
    assert alertmanager.wait_for(lambda a: len(a) == 0) == []
    assert router.failures == 0 and not router.open


def test_unreachable_alertmanager_keeps_the_fault_for_the_next_try(tmp_path: Path) -> None:
    router = AlertmanagerRouter("http://127.0.0.1:9", resend=0, timeout=0.5)
    sink = IncidentSink(IncidentStore(tmp_path / "i.sqlite"), FeedSettings(), router=router)
    sink.handle([make_alert(1, kind="missing_lines", hotspot=None)])
    assert router.failures == 1 and len(router.open) == 1
    sink.tick()
    assert router.failures == 2
