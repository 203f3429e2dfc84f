"""deploy/prometheus: promtool accepts the config and rules, the rule unit tests pass, and every metric exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.promql import DEPLOY, exposed_metric_names, recorded_series_in, satwatch_metrics_in

yaml = pytest.importorskip("yaml")

PROM = DEPLOY / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt install prometheus)"
)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def load_rules() -> list[dict]:  # type: ignore[type-arg]
    doc = yaml.safe_load((PROM / "rules.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


@needs_promtool
def test_promtool_check_rules() -> None:
    out = promtool("check", "rules", str(PROM / "rules.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@needs_promtool
def test_promtool_check_config(tmp_path: Path) -> None:
    # A copy with the compose service names replaced by loopback targets; rules.yml sits beside it as in the stack.
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            static["targets"] = [f"127.0.0.1:{t.rsplit(':', 1)[1]}" for t in static["targets"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROM / "rules.yml", tmp_path / "rules.yml")
    out = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rules found" in out.stdout


@needs_promtool
def test_promtool_rule_unit_tests_pass() -> None:
    out = promtool("test", "rules", "rules_test.yml", cwd=PROM)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@needs_promtool
def test_promtool_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests notice a broken rule: raise the stale-feed threshold and they must fail."""
    rules = (PROM / "rules.yml").read_text()
    assert "satwatch_last_processed_timestamp_seconds > 1800" in rules
    (tmp_path / "rules.yml").write_text(rules.replace("_timestamp_seconds > 1800", "_timestamp_seconds > 7200"))
    shutil.copy(PROM / "rules_test.yml", tmp_path / "rules_test.yml")
    out = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert out.returncode != 0
    assert "SatwatchStaleFeed" in out.stdout + out.stderr


def test_the_required_alerts_exist_with_operator_annotations() -> None:
    alerts = {r["alert"]: r for r in load_rules() if "alert" in r}
    required = {
        "SatwatchStaleFeed",
        "SatwatchConsumerLag",
        "SatwatchInvalidFrameRate",
        "SatwatchProcessingErrors",
        "SatwatchSlowProcessing",
        "SatwatchDetectorDown",
        # Faults reach operators only through the feed's posts to Alertmanager: watch that route.
        "SatwatchAlertmanagerPostErrors",
        "SatwatchFeedDown",
    }
    assert required <= alerts.keys()
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"]) > 80, name
    assert (
        'stage="total"' in alerts["SatwatchSlowProcessing"]["expr"]
        or "stage_seconds:p99" in alerts["SatwatchSlowProcessing"]["expr"]
    )


def test_every_metric_in_the_rules_is_exposed_by_satwatch() -> None:
    exposed = exposed_metric_names()
    rules = load_rules()
    recorded = {r["record"] for r in rules if "record" in r}
    used: set[str] = set()
    for rule in rules:
        used |= satwatch_metrics_in(rule["expr"])
        missing_records = recorded_series_in(rule["expr"]) - recorded
        assert not missing_records, f"{rule.get('alert') or rule.get('record')} uses undefined {missing_records}"
    assert used, "no satwatch metric found in the rules"
    assert used <= exposed, f"rules use metrics satwatch does not expose: {sorted(used - exposed)}"
    # The key signals are all watched.
    for name in (
        "satwatch_last_processed_timestamp_seconds",
        "satwatch_frame_age_seconds_bucket",
        "satwatch_invalid_frames_total",
        "satwatch_errors_total",
        "satwatch_stage_seconds_bucket",
        "satwatch_alertmanager_posts_total",
    ):
        assert name in used, name


def test_metric_name_check_catches_a_typo() -> None:
    assert satwatch_metrics_in("rate(satwatch_frames_consumd_total[5m])") - exposed_metric_names()
