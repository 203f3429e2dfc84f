"""The incidents sink without Kafka: alerts in; incidents grouped, stored, routed and handed to a publisher."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from satwatch.services.detection.alerts import Alert
from satwatch.services.feed.alertmanager import AlertmanagerRouter
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import Change, Incident, IncidentTracker
from satwatch.services.feed.metrics import FeedMetrics
from satwatch.services.feed.store import IncidentStore

log = logging.getLogger(__name__)


class IncidentSink:
    """Feeds alerts to the tracker, stores the changes, routes faults to Alertmanager and publishes the
    incidents' latest versions through ``publish`` (the Kafka consumer passes its producer's send)."""

    def __init__(
        self,
        store: IncidentStore,
        settings: FeedSettings,
        router: AlertmanagerRouter | None = None,
        publish: Callable[[list[Incident]], None] | None = None,
        on_change: Callable[[Change], None] | None = None,
        metrics: FeedMetrics | None = None,
        retire: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.quiet = timedelta(minutes=settings.quiet_minutes)
        self.tracker = IncidentTracker(self.quiet, settings.overlap_radius)
        self.router = router
        self.publish = publish
        #: Takes the ids of incidents merged into another (the Kafka consumer writes their tombstones).
        self.retire = retire
        self.on_change = on_change
        self.alerts_seen = 0
        self.metrics = metrics
        if router is not None and metrics is not None:
            router.metrics = metrics
        self.restore()

    def restore(self) -> None:
        """Reload open and recently resolved incidents, so a restart neither splits nor duplicates them."""
        newest = self.store.newest_window_end()
        recent = self.store.active(since=newest - 4 * self.quiet) if newest is not None else []
        self.tracker.restore(recent)
        if self.router is not None:
            self.router.open.update({i.id: i for i in recent if i.category == "data_quality" and i.status == "open"})

    def handle(self, alerts: list[Alert]) -> list[Incident]:
        """Group a batch of alerts; returns the incidents that changed (latest version of each).

        The batch is grouped in (satellite, window end) order, whatever order the topic's partitions gave it in;
        an alert older than what came before it still joins its incident (see ``IncidentTracker.add``)."""
        changes: list[Change] = []
        bodies: dict[str, str] = {}
        for alert in sorted(alerts, key=lambda a: (a.satellite, a.window_end, a.kind, a.id)):
            self.alerts_seen += 1
            if alert.id in self.tracker.seen or self.store.incident_of(alert.id) is not None:
                if self.metrics is not None:
                    self.metrics.alerts.labels("duplicate").inc()
                continue  # a replayed alert: already in its incident
            if self.metrics is not None:
                self.metrics.alerts.labels("grouped").inc()
            clock = self.tracker.clock.get(alert.satellite)
            if clock is not None and alert.window_end < clock:
                # Late: the incident it belongs to may be one the tracker has already let go (the store has it).
                # The batch is in time order, so anything this late was stored by an earlier batch.
                self.tracker.recall(
                    self.store.around(
                        alert.satellite, alert.kind, alert.window_end - self.quiet, alert.window_end + self.quiet
                    )
                )
            bodies[alert.id] = alert.model_dump_json()
            changes += self.tracker.add(alert)
        return self._commit(changes, bodies)

    def advance(self, satellite: str, now: datetime) -> list[Incident]:
        """Move one satellite's stream clock (a frame was processed with no alert); resolves quiet incidents."""
        return self._commit(self.tracker.advance(satellite, now), {})

    def _commit(self, changes: list[Change], bodies: dict[str, str]) -> list[Incident]:
        if not changes:
            return []
        self.store.apply(changes, bodies)
        latest: dict[str, Incident] = {}
        retired: dict[str, Incident] = {}
        for ch in changes:
            if ch.action == "merged":
                latest.pop(ch.incident.id, None)
                retired[ch.incident.id] = ch.incident
                log.info("incident %s merged into %s (an earlier or bridging alert came late)", ch.incident.id, ch.into)
                if self.on_change is not None:
                    self.on_change(ch)
                if self.metrics is not None:
                    self.metrics.changes.labels(ch.action, ch.incident.category).inc()
                continue
            latest[ch.incident.id] = ch.incident
            retired.pop(ch.incident.id, None)
            log.log(
                logging.DEBUG if ch.action == "updated" else logging.INFO,
                "incident %s %s: %s %s alerts %d peak %.4f",
                ch.incident.id,
                ch.action,
                ch.incident.satellite,
                ch.incident.kind,
                ch.incident.alert_count,
                ch.incident.peak_score,
            )
            if self.on_change is not None:
                self.on_change(ch)
            if self.metrics is not None:
                self.metrics.changes.labels(ch.action, ch.incident.category).inc()
        incidents = list(latest.values())
        if self.router is not None:
            # An open fault incident that was merged ends in Alertmanager; its successor carries on.
            gone = [
                i.model_copy(update={"status": "resolved", "resolved_at": i.last_window_end})
                for i in retired.values()
                if i.id in self.router.open
            ]
            self.router.route([*incidents, *gone])
        if self.publish is not None:
            self.publish(incidents)
            self.store.mark_published({i.id: i.version for i in incidents})
        if self.retire is not None and retired:
            self.retire(list(retired))
            self.store.mark_tombstoned(list(retired))
        return incidents

    def republish(self) -> None:
        """Publish incidents stored but not yet confirmed on the topic (a crash between the two), then the
        tombstones of merged incidents not confirmed either (their successors are on the topic first)."""
        pending = self.store.unpublished()
        if pending and self.publish is not None:
            self.publish(pending)
            self.store.mark_published({i.id: i.version for i in pending})
        gone = self.store.unsent_tombstones()
        if gone and self.retire is not None:
            self.retire(gone)
            self.store.mark_tombstoned(gone)

    def tick(self) -> None:
        if self.router is not None:
            self.router.tick()
