import numpy as np

from satwatch.services.detection.journal import IndexJournal
from tests.helpers import T0


def test_journal_replays_complete_entries_and_skips_torn_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    j = IndexJournal(tmp_path / "j.jsonl")
    j.append("a", "COMS-1", (T0,), np.ones(3))
    j.append("b", "COMS-1", (T0,), np.zeros(3))
    j.close()
    with open(tmp_path / "j.jsonl", "a") as fh:
        fh.write('{"window_id": "c", "sat')  # crash mid-write
    rows = list(IndexJournal(tmp_path / "j.jsonl").replay())
    assert [r[0] for r in rows] == ["a", "b"]
    np.testing.assert_array_equal(rows[0][3], np.ones(3, np.float32))
    j2 = IndexJournal(tmp_path / "j.jsonl")
    j2.truncate()
    assert list(j2.replay()) == []
