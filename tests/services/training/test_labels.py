"""The researcher's labels formats: TSV and JSON, region optional, the simulator's labels.json as is."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from satwatch.services.simulator.scene import SceneSimulator, SimConfig, save_labels
from satwatch.services.training.labels import LabelsError, default_labels, kinds_at, load_labels


def test_tsv_with_and_without_a_region(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv"
    path.write_text(
        "# my storms\n"
        "kind\tstart\tend\tx0\ty0\tx1\ty1\n"
        "fog\t2024-07-01T06:00Z\t2024-07-01T07:00\n"
        "\n"
        "squall_line\t2024-07-01T06:30:00+00:00\t2024-07-01T09:00Z\t10\t20\t110\t90\n"
    )
    fog, squall = load_labels(path)
    assert (fog.kind, fog.region) == ("fog", None)
    assert fog.end == datetime(2024, 7, 1, 7, tzinfo=UTC)  # no zone: UTC
    assert squall.region == (10, 20, 110, 90)
    times = [datetime(2024, 7, 1, h, m, tzinfo=UTC) for h, m in ((5, 45), (6, 0), (6, 45), (7, 15), (9, 0))]
    assert kinds_at([fog, squall], times) == [(), ("fog",), ("fog", "squall_line"), ("squall_line",), ("squall_line",)]


def test_json_region_optional(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(
        '{"events": [{"kind": "fog", "start": "2024-07-01T06:00Z", "end": "2024-07-01T07:00Z"},'
        ' {"kind": "dust", "start": "2024-07-02T00:00Z", "end": "2024-07-02T03:00Z", "region": [0, 0, 50, 40]}]}'
    )
    fog, dust = load_labels(path)
    assert fog.region is None and dust.region == (0, 0, 50, 40)
    assert default_labels(tmp_path) == path


def test_the_simulators_labels_read_as_they_are(tmp_path: Path) -> None:
    sim = SceneSimulator(SimConfig(seed=4001, days=1.5, geography=7))
    save_labels(sim.events, tmp_path / "labels.json")
    labels = load_labels(tmp_path / "labels.json")
    assert [(e.kind, e.start, e.end, e.region) for e in labels] == [
        (e.kind, e.start, e.end, e.bbox) for e in sim.events
    ]
    assert labels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fog\t2024-07-01T06:00Z\n", "line 1: expected 3"),
        ("fog\tyesterday\t2024-07-01T06:00Z\n", "line 1: start and end must be ISO 8601"),
        ("fog\t2024-07-01T06:00Z\t2024-07-01T05:00Z\n", "before start"),
        ("fog\t2024-07-01T06:00Z\t2024-07-01T07:00Z\t5\t5\t1\t9\n", "x1 > x0"),
    ],
)
def test_bad_tsv_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text(text)
    with pytest.raises(LabelsError, match=message):
        load_labels(path)


def test_bad_json_names_the_event(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text('[{"kind": "fog", "start": "2024-07-01T06:00Z"}]')
    with pytest.raises(LabelsError, match="event 1: each event needs kind, start and end"):
        load_labels(path)
