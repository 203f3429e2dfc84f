"""Incidents: the alerts of one event grouped into one record that opens, updates while the event lasts and
resolves after a quiet time in stream time.

Alerts of one satellite and kind join an incident when their window end falls within ``quiet`` of an alert
already in it and, where both carry a hotspot, the hotspots lie within ``radius`` (image fractions) of each
other. An incident's id derives from satellite, kind and its first alert's window end, so a replay or a
restart builds the same incidents. Time here is stream time (window ends), never the wall clock.

Grouping does not depend on the order alerts arrive in (a topic's partitions interleaved, a replay, a late alert),
as long as an event's hotspots lie within ``radius`` of each other: an alert is compared with an incident's hotspot
box as it grows, so where hotspots jump about, which alerts came first can still decide whether two parts of an
event are joined. An alert earlier than an incident's first alert, but within the quiet time of it, joins the
incident and becomes its first alert; an alert that closes the gap between two incidents of one event (spans apart
in time, hotspot boxes within the radius) joins them into one. The id always follows the first window end, so in
both cases the incident gets the id the time-ordered stream gives it; the incidents it replaces are reported as
``merged`` changes (``into`` names the new id) and the caller retires them (the store moves their alerts and
acknowledgements over; the compacted topic gets a tombstone).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from satwatch.services.detection.alerts import Alert, Category, SimilarEvent, alert_category
from satwatch.services.detection.metrics import score_ratio


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
        """The peak score against its threshold (1 = the alert line), for any finite threshold."""
        try:
            return score_ratio(self.peak_score, self.peak_threshold)
        except ValueError:  # a threshold that is not a finite number
            return math.inf


class Change(BaseModel):
    """What one step of the tracker did to one incident."""

    action: Literal["opened", "updated", "resolved", "reopened", "merged"]
    incident: Incident
    alert_id: str | None = None
    into: str | None = Field(None, description="for 'merged': the id of the incident that replaces this one")


Box = tuple[float, float, float, float]


def _box_gap(a: Box, b: Box) -> float:
    """The distance between two boxes (x0, y0, x1, y1) in image fractions; 0 where they overlap."""
    dx = max(a[0] - b[2], 0.0, b[0] - a[2])
    dy = max(a[1] - b[3], 0.0, b[1] - a[3])
    return math.hypot(dx, dy)


def _near(a: tuple[float, float] | None, inc: Incident, radius: float) -> bool:
    if a is None or inc.hotspot is None:
        return True
    return _box_gap((*a, *a), inc.extent or (*inc.hotspot, *inc.hotspot)) <= radius


def _boxes_near(a: Incident, b: Incident, radius: float) -> bool:
    """Whether two incidents' hotspot boxes lie within ``radius`` of each other (true where either has none)."""
    if a.extent is None or b.extent is None:
        return True
    return _box_gap(a.extent, b.extent) <= radius


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

    def recall(self, incidents: list[Incident]) -> None:
        """Take back incidents the tracker let go (resolved long ago; the caller read them from its store) so a
        late alert can still join them. Incidents it holds, or has merged away, are left as they are."""
        for inc in incidents:
            if inc.id in self.incidents or any(self.seen.get(a, inc.id) != inc.id for a in inc.alert_ids):
                continue
            self.incidents[inc.id] = inc
            for aid in inc.alert_ids:
                self.seen[aid] = inc.id

    def add(self, alert: Alert) -> list[Change]:
        """Group one alert; returns the changes (resolutions the alert's time brings first, then its own)."""
        if alert.id in self.seen:
            return []
        end = alert.window_end
        clock = self.clock.get(alert.satellite)
        # A late alert leaves the clock where it is (and keeps what ``recall`` took back for it).
        changes = self.advance(alert.satellite, end) if clock is None or end > clock else []
        candidates = [
            inc
            for inc in self.incidents.values()
            if inc.satellite == alert.satellite
            and inc.kind == alert.kind
            and inc.first_window_end - self.quiet <= end <= inc.last_window_end + self.quiet
            and _near(alert.hotspot, inc, self.radius)
        ]
        if not candidates:
            inc = self._open(alert)
            changes.append(Change(action="opened", incident=inc, alert_id=alert.id))
            self.seen[alert.id] = inc.id
            return changes
        primary = min(candidates, key=lambda i: (abs((end - i.last_window_end).total_seconds()), i.id))
        # Incidents apart in time from the primary that this alert bridges were one event split by the order
        # alerts came in: in time order the alert would have chained them. Concurrent ones (spans that overlap,
        # kept apart by their hotspots) stay apart.
        bridged = [
            i
            for i in candidates
            if i.id != primary.id
            and (i.last_window_end < primary.first_window_end or i.first_window_end > primary.last_window_end)
            and _boxes_near(i, primary, self.radius)
        ]
        was_open = any(i.status == "open" for i in (primary, *bridged))
        inc = self._join(primary, alert)
        for other in sorted(bridged, key=lambda i: (i.first_window_end, i.id)):
            inc = _absorb(inc, other)
        new_id = incident_id(inc.satellite, inc.kind, inc.first_window_end)
        inc = inc.model_copy(
            update={"id": new_id, "version": max(i.version for i in (primary, *bridged)) + 1, **self._status(inc)}
        )
        retired = [i for i in (primary, *bridged) if i.id != new_id]
        for old in retired:
            self.incidents.pop(old.id, None)
        self.incidents[new_id] = inc
        for aid in inc.alert_ids:
            self.seen[aid] = new_id
        action: Literal["updated", "reopened"] = "reopened" if inc.status == "open" and not was_open else "updated"
        changes.append(Change(action=action, incident=inc, alert_id=alert.id))
        changes += [Change(action="merged", incident=old, into=new_id) for old in retired]
        return changes

    def _status(self, inc: Incident) -> dict[str, object]:
        """Open, or resolved when the satellite's clock is already past the quiet time after its last alert
        (a late alert that changes nothing about when the event ended does not reopen it)."""
        t = self.clock.get(inc.satellite)
        if t is not None and t > inc.last_window_end + self.quiet:
            return {"status": "resolved", "resolved_at": inc.last_window_end + self.quiet}
        return {"status": "open", "resolved_at": None}

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
        inc = inc.model_copy(update=self._status(inc))  # a late alert of an event long over opens it resolved
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
        if alert.window_end < inc.first_window_end:
            upd["first_window_end"] = alert.window_end
        if (alert.score, alert.window_end) > (inc.peak_score, inc.peak_window_end):
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


def _absorb(inc: Incident, other: Incident) -> Incident:
    """``inc`` and ``other`` as one incident (fields as though their alerts had come to one incident)."""
    later = other if other.last_window_end > inc.last_window_end else inc
    peak = other if (other.peak_score, other.peak_window_end) > (inc.peak_score, inc.peak_window_end) else inc
    ids = [*inc.alert_ids, *(a for a in other.alert_ids if a not in inc.alert_ids)]
    extent = inc.extent
    if other.extent is not None:
        x0, y0, x1, y1 = other.extent
        extent = (
            (min(x0, extent[0]), min(y0, extent[1]), max(x1, extent[2]), max(y1, extent[3])) if extent else other.extent
        )
    return inc.model_copy(
        update={
            "start": min(inc.start, other.start),
            "first_window_end": min(inc.first_window_end, other.first_window_end),
            "last_window_end": later.last_window_end,
            "latest_alert_id": later.latest_alert_id,
            "latest_score": later.latest_score,
            "hotspot": later.hotspot or inc.hotspot or other.hotspot,
            "nowcast": later.nowcast or inc.nowcast or other.nowcast,
            "alert_ids": ids,
            "alert_count": len(ids),
            "scores": sorted(set(inc.scores) | set(other.scores)),
            "peak_score": peak.peak_score,
            "peak_threshold": peak.peak_threshold,
            "peak_alert_id": peak.peak_alert_id,
            "peak_window_end": peak.peak_window_end,
            "similar": peak.similar,
            "extent": extent,
        }
    )
