"""Opening the SQLite files the stores keep (alerts, incidents), the one durable way they all need."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str, timeout: float = 5.0) -> sqlite3.Connection:
    """Connect to the file at ``path`` (its folder made) and apply ``schema`` (``CREATE ... IF NOT EXISTS``).

    WAL with ``synchronous=FULL``: a committed write survives a crash or power loss, and readers in other
    processes (the feed's page) never block the writer. The connection may be used from several threads;
    the caller serialises them with a lock. A damaged file raises ``sqlite3.DatabaseError``, the connection
    closed, so the store can say which file and what to do.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=timeout)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        db.commit()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
