"""The stores' SQLite files: made durable (WAL, synchronous FULL), schema applied, damage reported."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from satwatch.services.sqlite import open_db


def test_a_new_file_is_made_with_its_folder_schema_and_durable_settings(tmp_path: Path) -> None:
    db = open_db(tmp_path / "deep" / "x.sqlite", "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.execute("INSERT INTO t VALUES ('a')")
    db.commit()
    db.close()
    again = open_db(tmp_path / "deep" / "x.sqlite", "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);")
    assert again.execute("SELECT k FROM t").fetchall() == [("a",)]


def test_a_damaged_file_raises_database_error(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"this is not a database, " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        open_db(path, "CREATE TABLE IF NOT EXISTS t (k TEXT);")
