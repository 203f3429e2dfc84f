"""The incident store: SQLite, the same style as the alert store. It holds incidents (one row each, the latest
version), which alert went to which incident, acknowledgements (who, when, comment) and an audit trail of
every change. The audit trail's sequence number is the change feed the web page follows."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from satwatch.services.feed.incidents import Change, Incident
from satwatch.services.sqlite import open_db


class Acknowledgement(BaseModel):
    incident_id: str
    who: str
    at: datetime
    comment: str


class AuditEntry(BaseModel):
    seq: int
    at: datetime
    incident_id: str
    action: str
    actor: str
    detail: str


class IncidentStore:
    """SQLite-backed incident store; safe to share between threads, and between processes (WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(
            self.path,
            "CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, satellite TEXT, kind TEXT, category TEXT, "
            "status TEXT, start TEXT, last_window_end TEXT, version INTEGER, body TEXT NOT NULL, "
            "published INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE IF NOT EXISTS incident_alerts (alert_id TEXT PRIMARY KEY, incident_id TEXT, "
            "window_end TEXT, body TEXT);"
            "CREATE TABLE IF NOT EXISTS acknowledgements (n INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT, "
            "who TEXT, at TEXT, comment TEXT);"
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, incident_id TEXT, "
            "action TEXT, actor TEXT, detail TEXT);"
            "CREATE TABLE IF NOT EXISTS retired (id TEXT PRIMARY KEY, into_id TEXT, sent INTEGER NOT NULL DEFAULT 0);"
            "CREATE INDEX IF NOT EXISTS incidents_last ON incidents (last_window_end);"
            "CREATE INDEX IF NOT EXISTS acks_incident ON acknowledgements (incident_id);",
            timeout=30,
        )

    # -- writes ---------------------------------------------------------------------------------------
    def apply(self, changes: list[Change], alert_bodies: dict[str, str] | None = None) -> None:
        """Store the tracker's changes in one transaction, with their audit entries. Idempotent: a change
        whose incident version is not newer than the stored one writes nothing."""
        now = datetime.now(UTC).isoformat()
        with self._lock, self._db:
            for ch in changes:
                inc = ch.incident
                if ch.action == "merged" and ch.into is not None:
                    self._merge(inc.id, ch.into, now)
                    continue
                row = self._db.execute("SELECT version FROM incidents WHERE id = ?", (inc.id,)).fetchone()
                if row is not None and int(row[0]) >= inc.version:
                    continue
                self._db.execute(
                    "INSERT INTO incidents (id, satellite, kind, category, status, start, last_window_end, version, "
                    "body, published) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(id) DO UPDATE SET "
                    "status = excluded.status, start = excluded.start, last_window_end = excluded.last_window_end, "
                    "version = excluded.version, body = excluded.body, published = 0",
                    _row(inc),
                )
                # the id lives again (the sink drops it from the batch's retired ones too): no tombstone for it
                self._db.execute("DELETE FROM retired WHERE id = ?", (inc.id,))
                if ch.alert_id is not None:
                    body = (alert_bodies or {}).get(ch.alert_id)
                    self._db.execute(
                        "INSERT OR IGNORE INTO incident_alerts (alert_id, incident_id, window_end, body) "
                        "VALUES (?, ?, ?, ?)",
                        (ch.alert_id, inc.id, inc.last_window_end.isoformat(), body),
                    )
                detail = f"v{inc.version} alerts {inc.alert_count} peak {inc.peak_score:.4f}"
                if ch.alert_id:
                    detail += f" alert {ch.alert_id}"
                self._db.execute(
                    "INSERT INTO audit (at, incident_id, action, actor, detail) VALUES (?, ?, ?, ?, ?)",
                    (now, inc.id, ch.action, "incidents-sink", detail),
                )

    def _merge(self, old: str, into: str, now: str) -> None:
        """Retire incident ``old``, merged into ``into``: its alerts and acknowledgements move over, its row goes,
        the audit trail says so under both ids. Called inside ``apply``'s transaction, after ``into`` is written.
        ``old`` is recorded as retired, its tombstone not yet sent: ``restore`` will not bring it back from the
        topic, and ``unsent_tombstones`` lists it until ``mark_tombstoned``."""
        self._db.execute("UPDATE incident_alerts SET incident_id = ? WHERE incident_id = ?", (into, old))
        self._db.execute("UPDATE acknowledgements SET incident_id = ? WHERE incident_id = ?", (into, old))
        self._db.execute("DELETE FROM incidents WHERE id = ?", (old,))
        self._db.execute(
            "INSERT OR REPLACE INTO retired (id, into_id, sent) VALUES (?, ?, 0)",
            (old, into),
        )
        self._db.executemany(
            "INSERT INTO audit (at, incident_id, action, actor, detail) VALUES (?, ?, ?, ?, ?)",
            [
                (now, old, "merged", "incidents-sink", f"into {into}"),
                (now, into, "merged", "incidents-sink", f"from {old}"),
            ],
        )

    def restore(self, incidents: list[Incident]) -> int:
        """Load incidents read back from the incidents topic into an empty or partial store (a lost cache):
        each at the version the topic holds, with its alerts, marked published. Returns how many were new.
        Incidents this store merged into another are skipped: the topic may still hold them when their tombstone
        was not sent (``unsent_tombstones``)."""
        now = datetime.now(UTC).isoformat()
        n = 0
        with self._lock, self._db:
            for inc in incidents:
                if self._db.execute("SELECT 1 FROM retired WHERE id = ?", (inc.id,)).fetchone() is not None:
                    continue
                row = self._db.execute("SELECT version FROM incidents WHERE id = ?", (inc.id,)).fetchone()
                if row is not None and int(row[0]) >= inc.version:
                    continue
                self._db.execute(
                    "INSERT OR REPLACE INTO incidents (id, satellite, kind, category, status, start, last_window_end, "
                    "version, body, published) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    _row(inc),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO incident_alerts (alert_id, incident_id, window_end, body) "
                    "VALUES (?, ?, NULL, NULL)",
                    [(aid, inc.id) for aid in inc.alert_ids],
                )
                self._db.execute(
                    "INSERT INTO audit (at, incident_id, action, actor, detail) VALUES (?, ?, ?, ?, ?)",
                    (now, inc.id, "restored", "incidents-sink", f"v{inc.version} from the incidents topic"),
                )
                n += 1
        return n

    def acknowledge(self, incident_id: str, who: str, comment: str) -> Acknowledgement | None:
        """Record an acknowledgement; None when no such incident exists."""
        at = datetime.now(UTC)
        with self._lock, self._db:
            if self._db.execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone() is None:
                return None
            self._db.execute(
                "INSERT INTO acknowledgements (incident_id, who, at, comment) VALUES (?, ?, ?, ?)",
                (incident_id, who, at.isoformat(), comment),
            )
            self._db.execute(
                "INSERT INTO audit (at, incident_id, action, actor, detail) VALUES (?, ?, ?, ?, ?)",
                (at.isoformat(), incident_id, "acknowledged", who, comment),
            )
        return Acknowledgement(incident_id=incident_id, who=who, at=at, comment=comment)

    def mark_published(self, versions: dict[str, int]) -> None:
        """Mark incidents as on the incidents topic, at the version that was sent."""
        with self._lock, self._db:
            self._db.executemany(
                "UPDATE incidents SET published = 1 WHERE id = ? AND version = ?", list(versions.items())
            )

    def mark_tombstoned(self, ids: list[str]) -> None:
        """Mark retired incidents' tombstones as on the incidents topic."""
        with self._lock, self._db:
            self._db.executemany("UPDATE retired SET sent = 1 WHERE id = ?", [(i,) for i in ids])

    # -- reads ----------------------------------------------------------------------------------------
    def unpublished(self) -> list[Incident]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM incidents WHERE published = 0 ORDER BY last_window_end"
            ).fetchall()
        return [Incident.model_validate_json(r[0]) for r in rows]

    def unsent_tombstones(self) -> list[str]:
        """Ids of incidents merged into another whose tombstone is not confirmed on the topic."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM retired WHERE sent = 0 ORDER BY id").fetchall()
        return [str(r[0]) for r in rows]

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return Incident.model_validate_json(row[0]) if row else None

    def incident_of(self, alert_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT incident_id FROM incident_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return str(row[0]) if row else None

    def active(self, since: datetime | None = None) -> list[Incident]:
        """Open incidents, and resolved ones whose last frame is at or after ``since`` (the tracker restores
        these after a restart)."""
        q = "SELECT body FROM incidents WHERE status = 'open'"
        args: tuple[Any, ...] = ()
        if since is not None:
            q += " OR last_window_end >= ?"
            args = (since.isoformat(),)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY last_window_end, id", args).fetchall()
        return [Incident.model_validate_json(r[0]) for r in rows]

    def around(self, satellite: str, kind: str, start: datetime, end: datetime) -> list[Incident]:
        """Incidents of ``satellite`` and ``kind`` whose alerts span reaches into ``start``..``end``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM incidents WHERE satellite = ? AND kind = ? AND last_window_end >= ? "
                "AND start <= ? ORDER BY last_window_end, id",
                (satellite, kind, start.isoformat(), end.isoformat()),
            ).fetchall()
        found = [Incident.model_validate_json(r[0]) for r in rows]
        return [i for i in found if i.first_window_end <= end]

    def query(
        self,
        satellite: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        category: str | None = None,
        day: str | None = None,
        limit: int = 500,
    ) -> list[Incident]:
        """Incidents newest first, filtered; ``day`` (YYYY-MM-DD) keeps those active on that UTC day."""
        where, args = [], []
        for col, val in (("satellite", satellite), ("kind", kind), ("status", status), ("category", category)):
            if val:
                where.append(f"{col} = ?")
                args.append(val)
        if day:
            where.append("substr(start, 1, 10) <= ? AND substr(last_window_end, 1, 10) >= ?")
            args += [day, day]
        q = "SELECT body FROM incidents" + (" WHERE " + " AND ".join(where) if where else "")
        q += " ORDER BY last_window_end DESC, id LIMIT ?"
        with self._lock:
            rows = self._db.execute(q, (*args, limit)).fetchall()
        return [Incident.model_validate_json(r[0]) for r in rows]

    def newest_window_end(self) -> datetime | None:
        """The latest frame any stored incident covers."""
        with self._lock:
            row = self._db.execute("SELECT body FROM incidents ORDER BY last_window_end DESC LIMIT 1").fetchone()
        return Incident.model_validate_json(row[0]).last_window_end if row else None

    def acknowledgements(self, incident_id: str) -> list[Acknowledgement]:
        with self._lock:
            rows = self._db.execute(
                "SELECT incident_id, who, at, comment FROM acknowledgements WHERE incident_id = ? ORDER BY n",
                (incident_id,),
            ).fetchall()
        return [Acknowledgement(incident_id=r[0], who=r[1], at=r[2], comment=r[3]) for r in rows]

    def audit(self, incident_id: str | None = None, since: int = 0, limit: int = 1000) -> list[AuditEntry]:
        q = "SELECT seq, at, incident_id, action, actor, detail FROM audit WHERE seq > ?"
        args: list[Any] = [since]
        if incident_id is not None:
            q += " AND incident_id = ?"
            args.append(incident_id)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return [AuditEntry(seq=r[0], at=r[1], incident_id=r[2], action=r[3], actor=r[4], detail=r[5]) for r in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()
        return int(row[0])

    def alert_body(self, alert_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM incident_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def counts(self) -> dict[tuple[str, str], int]:
        """Incidents by (status, category)."""
        with self._lock:
            rows = self._db.execute("SELECT status, category, COUNT(*) FROM incidents GROUP BY status, category")
            return {(str(r[0]), str(r[1])): int(r[2]) for r in rows.fetchall()}

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(inc: Incident) -> tuple[str, str, str, str, str, str, str, int, str]:
    """An incident's columns, in the order both writes (update and restore) list them."""
    return (
        inc.id,
        inc.satellite,
        inc.kind,
        inc.category,
        inc.status,
        inc.start.isoformat(),
        inc.last_window_end.isoformat(),
        inc.version,
        inc.model_dump_json(),
    )
