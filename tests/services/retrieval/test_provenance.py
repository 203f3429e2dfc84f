import json
from pathlib import Path

import pytest

from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.retrieval.provenance import (
    BUILD_FILE,
    IndexMismatchError,
    IndexProvenance,
    check_provenance,
    read_provenance,
)

MINE = IndexProvenance("enc-a", "a" * 64, 20)


def test_first_open_records_and_later_opens_check(tmp_path: Path) -> None:
    check_provenance(tmp_path / "ix", MINE)
    assert read_provenance(tmp_path / "ix") == MINE
    check_provenance(tmp_path / "ix", MINE)  # the same models: fine
    with pytest.raises(IndexMismatchError, match=r"built by encoder enc-a \(sha256 aaaaaaaaaaaa\).*enc-b"):
        check_provenance(tmp_path / "ix", IndexProvenance("enc-b", "b" * 64, 20))
    with pytest.raises(IndexMismatchError, match="windows of 20 frames, but windows of 12"):
        check_provenance(tmp_path / "ix", IndexProvenance("enc-a", "a" * 64, 12))


def test_a_damaged_record_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / BUILD_FILE).write_text(json.dumps({"encoder": "x"}))
    with pytest.raises(IndexMismatchError, match="damaged"):
        check_provenance(tmp_path, MINE)


def test_the_detector_refuses_an_index_built_by_another_encoder(tmp_path: Path) -> None:
    s = Settings()
    s.detector.state_dir = str(tmp_path)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / BUILD_FILE).write_text(
        json.dumps({"encoder": "someone-elses", "encoder_sha256": "f" * 64, "window_size": 20})
    )
    # no model folder: the shipped encoder's profile (COMS-1) serves its own encoder (encoder-v3)
    from satwatch.services.frames.profiles import get_profile
    from satwatch.services.models.locate import profile_model_dirs, shipped_profile

    served = FrameEncoder.load(profile_model_dirs(get_profile(str(shipped_profile()))).encoder).card
    with pytest.raises(IndexMismatchError, match=f"someone-elses.*{served.name}.*{served.sha256[:12]}"):
        build_detector(s)
