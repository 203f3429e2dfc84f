"""Prometheus metrics of the incidents sink and the feed, in a registry of their own (served at the feed's
``/metrics``). Incident counts by status and category are read from the store at scrape time, so every feed
instance reports the same figures whichever process wrote them."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from satwatch.services.feed.store import IncidentStore


class _StoreCollector(Collector):
    def __init__(self, store: IncidentStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("satwatch_incidents", "Incidents in the store", labels=["status", "category"])
        for (status, category), n in sorted(self.store.counts().items()):
            g.add_metric([status, category], n)
        yield g


class FeedMetrics:
    """What the incidents sink and the feed report to operators."""

    def __init__(self, store: IncidentStore | None = None, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.alerts = Counter("satwatch_incident_alerts", "Alerts read by the incidents sink", ["outcome"], registry=r)
        self.changes = Counter(
            "satwatch_incident_changes",
            "Incident changes (opened, updated, resolved, reopened)",
            ["action", "category"],
            registry=r,
        )
        self.alertmanager_posts = Counter(
            "satwatch_alertmanager_posts", "Posts of data-quality incidents to Alertmanager", ["result"], registry=r
        )
        # Both results exported from the start at 0, so the first failed post is already an increase.
        for result in ("ok", "error"):
            self.alertmanager_posts.labels(result)
        self.acknowledgements = Counter(
            "satwatch_feed_acknowledgements", "Acknowledgements taken by the feed", registry=r
        )
        self.refused_writes = Counter(
            "satwatch_feed_refused_writes", "Writes refused for a missing or wrong token", registry=r
        )
        if store is not None:
            r.register(_StoreCollector(store))
