"""A damaged alert store is a one-line error naming the file, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from satwatch.services.detection.alerts import AlertStore


def test_damaged_store_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match=r"alert store .*alerts.sqlite is damaged .*move it aside") as err:
        AlertStore(path)
    assert "\n" not in str(err.value)
