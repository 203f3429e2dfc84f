"""Alerts and their durable store. An alert's id derives from satellite, window end and kind, so a replay
or restart that recomputes the same alert writes nothing new."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from satwatch.services.detection.scores import FrameScore
from satwatch.services.sqlite import open_db

Category = Literal["data_quality", "weather"]

#: Instrument and feed faults: they go to operators. The simulator labels these today; the data-quality
#: checks add their own kinds here.
DATA_QUALITY_KINDS: frozenset[str] = frozenset(
    {
        "calibration_jump",
        "frozen_frame",
        "saturated_block",
        "striping",
        "missing_lines",
        "data_quality",
        "stale_feed",
        "gap",
        "corrupt_frame",
        "model_mismatch",
    }
)


def alert_category(kind: str) -> Category:
    """Where an alert of this kind goes: ``data_quality`` (operators) or ``weather`` (forecasters).

    Kinds named ``dq:...`` or ``data_quality...`` are faults too, so new checks route without a code change."""
    k = kind.lower()
    if k in DATA_QUALITY_KINDS or k.startswith(("dq:", "dq_", "data_quality")):
        return "data_quality"
    return "weather"


class SimilarEvent(BaseModel):
    """A past window similar to the alert's window."""

    window_id: str
    satellite: str
    start: datetime
    end: datetime
    distance: float = Field(description="embedding distance (smaller is more similar)")
    similarity: float | None = Field(None, description="exact ground-truth similarity, when re-ranked")
    frames_compared: int | None = Field(
        None, description="frame pairs the exact similarity compared (fewer than 20 when a window is part-filled)"
    )
    following: list[datetime] = Field(
        default_factory=list,
        description="times of the frames that followed this past window (the next 6 hours, as the index saw them)",
    )


class Alert(BaseModel):
    """One alert on one window."""

    id: str
    kind: str = "anomaly"
    satellite: str
    window_start: datetime
    window_end: datetime
    frames_in_window: int
    score: float
    threshold: float
    hotspot: tuple[float, float] | None = Field(None, description="(x, y) of the peak error, as image fractions")
    similar: list[SimilarEvent] = Field(default_factory=list)
    created: datetime
    nowcast: dict[str, Any] | None = Field(
        None,
        description="analog nowcast from what followed the similar events (services.nowcast.summary), when the "
        "detector runs with --nowcast and still holds those frames",
    )

    def summary(self) -> str:
        """One human line for logs and the terminal."""
        head = f"ALERT {self.satellite} {self.window_end:%Y-%m-%d %H:%M}Z {self.kind}"
        if alert_category(self.kind) == "data_quality":
            # Raised by the data-quality checks, not by the score: say so, and give the score for what it is.
            head += f" (data quality, for operators; weather score {self.score:.4f}, threshold {self.threshold:.4f})"
        else:
            above = ">" if self.score > self.threshold else "<="
            head += f" score {self.score:.4f} {above} threshold {self.threshold:.4f}"
        parts = [head]
        for ev in self.similar:
            sim = f" gt-sim {ev.similarity:.3f}" if ev.similarity is not None else ""
            if (
                ev.similarity is not None
                and ev.frames_compared is not None
                and ev.frames_compared < self.frames_in_window
            ):
                sim += f" (on {ev.frames_compared} frames: part-filled window)"
            parts.append(f"    like {ev.start:%Y-%m-%d %H:%M}..{ev.end:%H:%M}Z dist {ev.distance:.3f}{sim}")
        if not self.similar:
            parts.append("    no similar past window in the index yet")
        if self.nowcast and self.nowcast.get("text"):
            parts.append(f"    {self.nowcast['text']}")
        return "\n".join(parts)


def alert_id(satellite: str, window_end: datetime, kind: str) -> str:
    """Deterministic id: the same satellite, window end and kind always give the same id."""
    key = f"{satellite}|{window_end.isoformat()}|{kind}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class AlertStore:
    """SQLite-backed alert store; ``put`` is idempotent on the alert id."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_db(
                self.path,
                "CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, satellite TEXT, window_end TEXT, "
                "kind TEXT, body TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0, "
                "acknowledged INTEGER NOT NULL DEFAULT 0, comment TEXT);"
                # Every frame's score and terms (not only alerts), for a researcher's own curves; a replay
                # rewrites a frame's row with the same values.
                "CREATE TABLE IF NOT EXISTS scores (satellite TEXT NOT NULL, time TEXT NOT NULL, score REAL, "
                "pixel REAL, consistency REAL, lines REAL, threshold REAL, alert TEXT, texture REAL DEFAULT 0, "
                "novelty REAL DEFAULT 0, PRIMARY KEY (satellite, time));",
            )
            # A store written before the texture (or novelty) term existed gains its column (0 for its rows).
            have = {row[1] for row in self._db.execute("PRAGMA table_info(scores)")}
            for column in ("texture", "novelty"):
                if column not in have:
                    with self._db:
                        self._db.execute(f"ALTER TABLE scores ADD COLUMN {column} REAL DEFAULT 0")
        except sqlite3.DatabaseError as exc:  # a damaged file: say which, and what to do, in one line
            raise ValueError(
                f"alert store {self.path} is damaged ({exc}); move it aside and start again: alerts already on "
                "the alerts topic are not published twice"
            ) from None

    def put(self, alert: Alert, *, commit: bool = True) -> bool:
        """Store the alert; True when it is new, False when its id was already stored.

        ``commit=False`` leaves it in the open transaction until :meth:`commit` (or any committing write): one
        fsync'd commit per poll batch instead of one per alert. The caller must commit before it publishes
        the alert or commits the offsets of the frame that raised it.
        """
        with self._lock, self._db if commit else contextlib.nullcontext():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO alerts (id, satellite, window_end, kind, body) VALUES (?, ?, ?, ?, ?)",
                (alert.id, alert.satellite, alert.window_end.isoformat(), alert.kind, alert.model_dump_json()),
            )
            return cur.rowcount == 1

    def amend(self, alert: Alert, *, commit: bool = True) -> None:
        """Rewrite a stored alert's body (what a hook added after it was stored, such as its nowcast), so that a
        republication after a crash sends what the first publication would have. ``commit`` as for :meth:`put`."""
        with self._lock, self._db if commit else contextlib.nullcontext():
            self._db.execute("UPDATE alerts SET body = ? WHERE id = ?", (alert.model_dump_json(), alert.id))

    def commit(self) -> None:
        """Make everything written with ``commit=False`` durable (one fsync'd commit; nothing to do if none)."""
        with self._lock:
            self._db.commit()

    def put_scores(self, rows: list[FrameScore]) -> None:
        """Store frames' scores durably in one transaction (idempotent per satellite and time)."""
        if not rows:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores (satellite, time, score, pixel, consistency, lines, threshold, alert, "
                "texture, novelty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.satellite,
                        r.time.isoformat(),
                        r.score,
                        r.pixel,
                        r.consistency,
                        r.lines,
                        r.threshold,
                        r.alert,
                        r.texture,
                        r.novelty,
                    )
                    for r in rows
                ],
            )

    def scores(self, satellite: str | None = None) -> list[FrameScore]:
        """Stored frame scores in time order (of one satellite, or all)."""
        sql = "SELECT satellite, time, score, pixel, consistency, lines, threshold, alert, texture, novelty FROM scores"
        args: tuple[str, ...] = ()
        if satellite is not None:
            sql, args = sql + " WHERE satellite = ?", (satellite,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY time, satellite", args).fetchall()
        return [
            FrameScore(
                r[0],
                datetime.fromisoformat(r[1]),
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7] or "",
                texture=r[8] or 0.0,
                novelty=r[9] or 0.0,
            )
            for r in rows
        ]

    def mark_published(self, alert_ids: list[str]) -> None:
        with self._lock, self._db:
            self._db.executemany("UPDATE alerts SET published = 1 WHERE id = ?", [(i,) for i in alert_ids])

    def unpublished(self) -> list[Alert]:
        """Alerts stored but not yet confirmed on the alerts topic (a crash between the two)."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM alerts WHERE published = 0 ORDER BY window_end").fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def acknowledge(self, alert_id: str, comment: str = "") -> bool:
        with self._lock, self._db:
            cur = self._db.execute("UPDATE alerts SET acknowledged = 1, comment = ? WHERE id = ?", (comment, alert_id))
            return cur.rowcount == 1

    def get(self, alert_id: str) -> Alert | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def all(self) -> list[Alert]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM alerts ORDER BY window_end, satellite, kind").fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def alert_to_json(alert: Alert) -> bytes:
    return alert.model_dump_json().encode()


def alert_from_json(data: bytes) -> Alert:
    return Alert.model_validate(json.loads(data))
