"""Data-quality incidents to Alertmanager through its HTTP API v2, so operators route, group, silence and
inhibit them with the tool they know. Weather incidents never go there.

Alertmanager ends an alert by itself ``resolve_timeout`` after the last post that carried no ``endsAt``, so
open incidents are posted again every ``resend`` seconds; a resolved incident is posted with ``endsAt``.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from satwatch.services.feed.incidents import Incident

if TYPE_CHECKING:
    from satwatch.services.feed.metrics import FeedMetrics

log = logging.getLogger(__name__)

ALERTNAME = "SatwatchDataQuality"


def severity(inc: Incident) -> str:
    """critical when the peak is at least twice the threshold, warning otherwise."""
    return "critical" if inc.ratio >= 2.0 else "warning"


def am_alert(inc: Incident, feed_url: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The Alertmanager v2 alert for one incident."""
    now = now or datetime.now(UTC)
    starts = min(inc.first_window_end, now)
    body: dict[str, Any] = {
        "labels": {
            "alertname": ALERTNAME,
            "satellite": inc.satellite,
            "kind": inc.kind,
            "severity": severity(inc),
            "incident_id": inc.id,
            "category": inc.category,
        },
        "annotations": {
            "summary": f"{inc.kind} on {inc.satellite} since {inc.start:%Y-%m-%d %H:%M}Z",
            "description": (
                f"{inc.alert_count} alerts, latest frame {inc.last_window_end:%Y-%m-%d %H:%M}Z, "
                f"peak score {inc.peak_score:.4f} vs threshold {inc.peak_threshold:.4f}"
            ),
        },
        "startsAt": starts.isoformat(),
    }
    if feed_url:
        body["generatorURL"] = f"{feed_url.rstrip('/')}/?incident={inc.id}"
    if inc.status == "resolved":
        body["endsAt"] = max(now, starts).isoformat()
    return body


class AlertmanagerRouter:
    """Posts data-quality incidents to Alertmanager; keeps the open ones alive by re-posting them."""

    def __init__(self, url: str, resend: float = 60.0, feed_url: str | None = None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.resend = resend
        self.feed_url = feed_url
        self.timeout = timeout
        self.open: dict[str, Incident] = {}
        self._last_resend = time.monotonic()
        self.posted = 0
        self.failures = 0
        self.metrics: FeedMetrics | None = None

    def route(self, incidents: list[Incident]) -> None:
        """Post the data-quality incidents among ``incidents`` (latest state of each)."""
        mine = [i for i in incidents if i.category == "data_quality"]
        for inc in mine:
            if inc.status == "open":
                self.open[inc.id] = inc
            else:
                self.open.pop(inc.id, None)
        if mine:
            self._post(mine)

    def tick(self) -> None:
        """Re-post open incidents when ``resend`` seconds have passed."""
        if self.open and time.monotonic() - self._last_resend >= self.resend:
            self._post(list(self.open.values()))

    def _post(self, incidents: list[Incident]) -> None:
        self._last_resend = time.monotonic()
        data = json.dumps([am_alert(i, self.feed_url) for i in incidents]).encode()
        req = urllib.request.Request(self.url, data=data, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
            self.posted += len(incidents)
            if self.metrics is not None:
                self.metrics.alertmanager_posts.labels("ok").inc()
            for inc in incidents:
                if inc.status == "resolved":
                    self.open.pop(inc.id, None)
        except (urllib.error.URLError, OSError) as exc:
            # The incidents stay open here, so the next resend tries again; a resolution is kept for it too.
            self.failures += 1
            if self.metrics is not None:
                self.metrics.alertmanager_posts.labels("error").inc()
            for inc in incidents:
                self.open.setdefault(inc.id, inc)
            log.warning("cannot post %d incidents to Alertmanager at %s: %s", len(incidents), self.url, exc)
