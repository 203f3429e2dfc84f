"""deploy/grafana: the dashboard parses, queries only metrics satwatch exposes, and the provisioning fits it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.promql import DEPLOY, exposed_metric_names, satwatch_metrics_in

GRAFANA = DEPLOY / "grafana"


def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "satwatch.json").read_text())


def exprs(dash: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dash["panels"] for t in p.get("targets", []) if t.get("expr")]
    found += [v["definition"] for v in dash.get("templating", {}).get("list", []) if v.get("definition")]
    return found


def test_dashboard_queries_only_exposed_metrics() -> None:
    used = set().union(*(satwatch_metrics_in(e) for e in exprs(dashboard())))
    exposed = exposed_metric_names()
    assert used <= exposed, f"dashboard queries unknown metrics: {sorted(used - exposed)}"


def test_dashboard_has_the_operator_panels() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"]
    used = set().union(*(satwatch_metrics_in(e) for e in exprs(dash)))
    for name in (
        "satwatch_frames_consumed_total",
        "satwatch_frame_age_seconds_bucket",
        "satwatch_stage_seconds_bucket",
        "satwatch_anomaly_score",
        "satwatch_anomaly_threshold",
        "satwatch_alerts_total",
        "satwatch_invalid_frames_total",
        "satwatch_window_fill",
        "satwatch_index_size",
    ):
        assert name in used, f"no panel shows {name}"
    titles = " | ".join(p["title"].lower() for p in dash["panels"])
    for words in (
        "by satellite",
        "frame age",
        "p50",
        "p99",
        "threshold",
        "alerts",
        "by reason",
        "window fill",
        "index",
    ):
        assert words in titles, words
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]


def test_panels_use_the_provisioned_datasource() -> None:
    yaml = pytest.importorskip("yaml")
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    uids = {d["uid"] for d in ds if d["type"] == "prometheus"}
    assert any(d["url"] == "http://prometheus:9090" for d in ds)
    for p in dashboard()["panels"]:
        assert p["datasource"]["uid"] in uids, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] in uids, p["title"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "satwatch.yml").read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/etc/grafana/dashboards"]


def test_metric_check_rejects_an_unknown_name() -> None:
    assert satwatch_metrics_in('sum(rate(satwatch_frame_consumed_total{job=~"$job"}[5m]))') - exposed_metric_names()
