"""``satwatch detect`` and ``satwatch feed`` take the service options alike, and they land in the settings."""

from __future__ import annotations

import pytest

from satwatch.cli import build_parser
from satwatch.cli._common import settings_from_args


@pytest.mark.parametrize("command", ["detect", "feed"])
def test_service_options_reach_the_settings(command: str) -> None:
    argv = [command, "--bootstrap-servers", "10.0.0.5:9093", "--frames-topic", "f2", "--alerts-topic", "a2"]
    settings = settings_from_args(build_parser().parse_args(argv))
    k = settings.kafka
    assert (k.bootstrap_servers, k.frames_topic, k.alerts_topic) == ("10.0.0.5:9093", "f2", "a2")


def test_without_flags_the_configured_topics_stand() -> None:
    settings = settings_from_args(build_parser().parse_args(["detect"]))
    assert (settings.kafka.frames_topic, settings.kafka.alerts_topic) == ("frames", "alerts")


def test_detect_takes_a_negative_threshold_and_refuses_one_that_is_not_a_number(capsys) -> None:  # type: ignore[no-untyped-def]
    from satwatch.cli import build_parser

    assert build_parser().parse_args(["detect", "--threshold", "-0.45"]).threshold == -0.45
    assert build_parser().parse_args(["detect", "--threshold", "0"]).threshold == 0.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["detect", "--threshold", "nan"])
    assert "must be a finite number" in capsys.readouterr().err
