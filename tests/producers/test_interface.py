import pytest

from satwatch.broker import free_port
from satwatch.cli import main
from satwatch.producers.interface import (
    SimulatorUnsendableError,
    archive_stream,
    get_source,
    require_simulator_sendable,
    source_names,
)
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


def test_the_simulator_source_renders_the_configured_scene() -> None:
    """``[simulator] scene = "texture"`` streams real cloud fields, not the procedural scene (it once did)."""
    import numpy as np

    from satwatch.services.simulator.scene import SceneSimulator, SimConfig
    from satwatch.services.simulator.scenes import open_scene
    from tests.helpers import shared_data

    settings = Settings()
    settings.simulator.scene = "texture"
    settings.simulator.textures = str(shared_data("study", "raw_images"))
    frame = next(get_source("simulator")(settings, ProducerMetrics(), days=0.05, seed=3).items)
    cfg = SimConfig.from_settings(settings.simulator, days=0.05, seed=3)
    assert np.array_equal(frame.data, next(open_scene(cfg).frames()).data)
    assert not np.array_equal(frame.data, next(SceneSimulator(cfg).frames()).data)


def test_an_empty_archive_says_what_it_looked_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoFramesError, match="no complete COMS-1 frame"):
        get_source("archive")(Settings(), ProducerMetrics(), archive=tmp_path)


@pytest.mark.parametrize("satellite", ["GK-2A", "Himawari-9", "MTSAT-2", "GMS-5"])
def test_a_simulator_set_to_a_satellite_of_other_channels_is_refused(satellite: str) -> None:
    """The simulator renders COMS-1's four channels whatever [simulator] satellite says: a GK-2A or Himawari
    simulator (whose real frames are too large to go inline) sends four-channel frames that fit inline but
    that the detector refuses, every one, as wrong_channels; refused at the start instead."""
    with pytest.raises(SimulatorUnsendableError, match=f"renders COMS-1's channels.*asked for is {satellite}"):
        require_simulator_sendable(satellite, 375, 300)
    settings = Settings()
    settings.simulator.satellite = satellite
    with pytest.raises(SimulatorUnsendableError, match="wrong_channels"):
        get_source("simulator")(settings, ProducerMetrics(), days=0.25, seed=3)


def test_a_simulated_frame_too_large_to_go_inline_is_refused() -> None:
    require_simulator_sendable("COMS-1", 375, 300)  # shrunk: 450,000 bytes
    require_simulator_sendable("COMS-1", 1500, 1300)  # native: shrunk on the way to the same
    with pytest.raises(SimulatorUnsendableError, match="4,000,000 bytes.*cannot send claim checks"):
        require_simulator_sendable("COMS-1", 1000, 1000)


def test_produce_simulator_for_gk2a_is_refused_before_kafka(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SATWATCH_SIMULATOR__SATELLITE", "GK-2A")
    nobody = f"127.0.0.1:{free_port()}"  # nobody listens: the refusal comes before Kafka is reached
    assert main(["produce", "simulator", "--days", "0.1", "--bootstrap-servers", nobody]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the simulator renders COMS-1's channels (ir01, ir02, swir, wv)") and "GK-2A" in err
