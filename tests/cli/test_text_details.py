"""Small wording details operators read: times written like everywhere else, plurals, metric help."""

from __future__ import annotations

from datetime import UTC, datetime

from satwatch.cli.produce import _when
from satwatch.services.detection.metrics import DetectorMetrics


def test_producer_log_times_end_in_z() -> None:
    assert _when(datetime(2011, 3, 3, 6, 45, tzinfo=UTC)) == "2011-03-03 06:45Z"
    assert _when(None) == "(time unknown)"


def test_frames_consumed_help_says_refused_messages_are_not_counted() -> None:
    (family,) = [m for m in DetectorMetrics().registry.collect() if m.name == "satwatch_frames_consumed"]
    assert "Valid frames" in family.documentation and "satwatch_invalid_frames_total" in family.documentation
