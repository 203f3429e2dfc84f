import pytest

from satwatch.producers.interface import archive_stream, get_source, source_names
from satwatch.services.config import Settings
from satwatch.services.detection.metrics import ProducerMetrics
from satwatch.services.frames.archive import NoFramesError


def test_sources_are_found_by_name_and_unknown_ones_named() -> None:
    assert source_names() == ["archive", "simulator", "watch"]
    assert get_source("archive") is archive_stream
    with pytest.raises(ValueError, match="unknown frame source 'kafka'; known: archive, simulator, watch"):
        get_source("kafka")


def test_the_simulator_source_knows_its_length() -> None:
    stream = get_source("simulator")(Settings(), ProducerMetrics(), days=0.25, seed=3)
    assert stream.total == 24 and not stream.live and stream.claim_check_root is None
    assert next(stream.items).satellite == "COMS-1"


def test_an_empty_archive_says_what_it_looked_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoFramesError, match="no complete COMS-1 frame"):
        get_source("archive")(Settings(), ProducerMetrics(), archive=tmp_path)
