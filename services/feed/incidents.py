"""Incidents: the alerts of one event grouped into one record that opens, updates while the event lasts and
resolves after a quiet time in stream time.

Alerts of one satellite and kind join an incident when their window end falls within ``quiet`` of an alert
already in it and, where both carry a hotspot, the hotspots lie within ``radius`` (image fractions) of each
other. An incident's id derives from satellite, kind and its first alert's window end, so a replay or a
restart that sees the same alerts in the same order builds the same incidents. Time here is stream time
(window ends), never the wall clock.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from satwatch.services.detection.alerts import Alert, Category, SimilarEvent, alert_category


def incident_id(satellite: str, kind: str, first_window_end: datetime) -> str:
    """Deterministic id: the same satellite, kind and first window end always give the same id."""
    key = f"incident|{satellite}|{kind}|{first_window_end.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class Incident(BaseModel):
    """One event: the alerts of one satellite and kind that follow each other (and overlap in space)."""

    id: str
    satellite: str
    kind: str
    category: Category
    status: Literal["open", "resolved"] = "open"
    start: datetime = Field(description="window start of the first alert")
    first_window_end: datetime
    last_window_end: datetime = Field(description="the latest frame an alert of this incident covers")
    resolved_at: datetime | None = Field(None, description="stream time at which the quiet time had passed")
    alert_count: int = 1
    alert_ids: list[str] = Field(default_factory=list)
    peak_score: float
    peak_threshold: float
    peak_alert_id: str
    peak_window_end: datetime
    latest_alert_id: str
    latest_score: float
    hotspot: tuple[float, float] | None = Field(None, description="latest hotspot (x, y) as image fractions")
    extent: tuple[float, float, float, float] | None = Field(None, description="hotspots' box x0, y0, x1, y1")
    scores: list[tuple[datetime, float]] = Field(default_factory=list, description="window end and score")
    similar: list[SimilarEvent] = Field(default_factory=list, description="similar past events at the peak")
    nowcast: dict[str, Any] | None = Field(
        None,
        description="analog nowcast (services.nowcast.summary) of the latest alert that carried one: cold-cloud "
        "cover now and at +1/+2/+3 h from what followed the similar events",
    )
    version: int = 1

    @property
    def ratio(self) -> float:
        return self.peak_score / self.peak_threshold if self.peak_threshold > 0 else math.inf


class Change(BaseModel):
    """What one step of the tracker did to one incident."""

    action: Literal["opened", "updated", "resolved", "reopened"]
    incident: Incident
    alert_id: str | None = None


def _near(a: tuple[float, float] | None, inc: Incident, radius: float) -> bool:
    if a is None or inc.hotspot is None:
        return True
    x0, y0, x1, y1 = inc.extent or (*inc.hotspot, *inc.hotspot)
    dx = max(x0 - a[0], 0.0, a[0] - x1)
    dy = max(y0 - a[1], 0.0, a[1] - y1)
    return math.hypot(dx, dy) <= radius


class IncidentTracker:
    """Groups alerts into incidents. Pure: no I/O; the caller persists the changes it returns.

    ``seen`` holds the alert ids already grouped, so feeding an alert twice changes nothing."""

    def __init__(self, quiet: timedelta = timedelta(minutes=120), radius: float = 0.75) -> None:
        if quiet <= timedelta(0):
            raise ValueError("quiet time must be positive")
        self.quiet = quiet
        self.radius = radius
        self.incidents: dict[str, Incident] = {}
        self.seen: dict[str, str] = {}
        self.clock: dict[str, datetime] = {}

    def restore(self, incidents: list[Incident]) -> None:
        """Load incidents (open and recently resolved) from a store after a restart."""
        for inc in incidents:
            self.incidents[inc.id] = inc
            for aid in inc.alert_ids:
                self.seen[aid] = inc.id
            t = self.clock.get(inc.satellite)
            latest = inc.resolved_at or inc.last_window_end
            if t is None or latest > t:
                self.clock[inc.satellite] = latest

    def add(self, alert: Alert) -> list[Change]:
        """Group one alert; returns the changes (resolutions the alert's time brings first, then its own)."""
        if alert.id in self.seen:
            return []
        changes = self.advance(alert.satellite, alert.window_end)
        end = alert.window_end
        candidates = [
            inc
            for inc in self.incidents.values()
            if inc.satellite == alert.satellite
            and inc.kind == alert.kind
            and inc.first_window_end - self.quiet <= end <= inc.last_window_end + self.quiet
            and _near(alert.hotspot, inc, self.radius)
        ]
        if candidates:
            inc = min(candidates, key=lambda i: (abs((end - i.last_window_end).total_seconds()), i.id))
            action: Literal["updated", "reopened"] = "reopened" if inc.status == "resolved" else "updated"
            changes.append(Change(action=action, incident=self._join(inc, alert), alert_id=alert.id))
        else:
            inc = self._open(alert)
            changes.append(Change(action="opened", incident=inc, alert_id=alert.id))
        self.seen[alert.id] = changes[-1].incident.id
        return changes

    def advance(self, satellite: str, now: datetime) -> list[Change]:
        """Move the satellite's stream clock to ``now``; resolve incidents quiet for longer than the quiet
        time. Incidents resolved well before ``now`` are forgotten (the store keeps them)."""
        t = self.clock.get(satellite)
        if t is None or now > t:
            self.clock[satellite] = t = now
        changes: list[Change] = []
        for inc in sorted(self.incidents.values(), key=lambda i: (i.last_window_end, i.id)):
            if inc.satellite != satellite:
                continue
            if inc.status == "open" and t > inc.last_window_end + self.quiet:
                inc = inc.model_copy(
                    update={
                        "status": "resolved",
                        "resolved_at": inc.last_window_end + self.quiet,
                        "version": inc.version + 1,
                    }
                )
                self.incidents[inc.id] = inc
                changes.append(Change(action="resolved", incident=inc))
            elif inc.status == "resolved" and t > inc.last_window_end + 4 * self.quiet:
                del self.incidents[inc.id]
        return changes

    def _open(self, alert: Alert) -> Incident:
        inc = Incident(
            id=incident_id(alert.satellite, alert.kind, alert.window_end),
            satellite=alert.satellite,
            kind=alert.kind,
            category=alert_category(alert.kind),
            start=alert.window_start,
            first_window_end=alert.window_end,
            last_window_end=alert.window_end,
            alert_ids=[alert.id],
            peak_score=alert.score,
            peak_threshold=alert.threshold,
            peak_alert_id=alert.id,
            peak_window_end=alert.window_end,
            latest_alert_id=alert.id,
            latest_score=alert.score,
            hotspot=alert.hotspot,
            extent=(*alert.hotspot, *alert.hotspot) if alert.hotspot else None,
            scores=[(alert.window_end, alert.score)],
            similar=list(alert.similar),
            nowcast=alert.nowcast,
        )
        self.incidents[inc.id] = inc
        return inc

    def _join(self, inc: Incident, alert: Alert) -> Incident:
        upd: dict[str, object] = {
            "status": "open",
            "resolved_at": None,
            "alert_count": inc.alert_count + 1,
            "alert_ids": [*inc.alert_ids, alert.id],
            "scores": sorted([*inc.scores, (alert.window_end, alert.score)]),
            "version": inc.version + 1,
        }
        if alert.window_end >= inc.last_window_end:
            upd.update(
                last_window_end=alert.window_end,
                latest_alert_id=alert.id,
                latest_score=alert.score,
                hotspot=alert.hotspot or inc.hotspot,
            )
            if alert.nowcast:
                upd["nowcast"] = alert.nowcast
        if alert.window_start < inc.start:
            upd["start"] = alert.window_start
        if alert.score > inc.peak_score:
            upd.update(
                peak_score=alert.score,
                peak_threshold=alert.threshold,
                peak_alert_id=alert.id,
                peak_window_end=alert.window_end,
                similar=list(alert.similar) or inc.similar,
            )
        if alert.hotspot is not None:
            x, y = alert.hotspot
            x0, y0, x1, y1 = inc.extent or (x, y, x, y)
            upd["extent"] = (min(x0, x), min(y0, y), max(x1, x), max(y1, y))
        new = inc.model_copy(update=upd)
        self.incidents[new.id] = new
        return new
