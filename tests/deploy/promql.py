"""Helpers for the deploy tests: the metric names satwatch exposes and the ones a PromQL text uses."""

from __future__ import annotations

import re
from pathlib import Path

from satwatch.services.detection.metrics import DetectorMetrics, ProducerMetrics
from satwatch.services.feed.metrics import FeedMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

# Sample-name suffixes prometheus_client writes for each metric type.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}

_IDENT = re.compile(r"(?<![A-Za-z0-9_:\"'{.$])satwatch_[A-Za-z0-9_]*")
_RECORDED = re.compile(r"(?<![A-Za-z0-9_:\"'{.$])satwatch:[A-Za-z0-9_:]*")


def exposed_metric_names() -> set[str]:
    """Every sample name the detector, producer and feed registries can expose, labelled children or not."""
    names: set[str] = set()
    for metrics in (DetectorMetrics(), ProducerMetrics(), FeedMetrics()):
        for family in metrics.registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def satwatch_metrics_in(expr: str) -> set[str]:
    """Raw satwatch metric names (``satwatch_*``) a PromQL expression selects."""
    return set(_IDENT.findall(_strip_strings(expr)))


def recorded_series_in(expr: str) -> set[str]:
    """Recording-rule series (``satwatch:*``) a PromQL expression selects."""
    return set(_RECORDED.findall(_strip_strings(expr)))


def _strip_strings(expr: str) -> str:
    """Drop quoted label values so that, e.g., ``job="satwatch_x"`` is not taken for a metric."""
    return re.sub(r"\"[^\"]*\"|'[^']*'", '""', expr)
