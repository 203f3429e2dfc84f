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
    default_index_dir,
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


def test_a_change_of_encoder_gives_the_detector_its_own_index_beside_the_old(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    s = Settings()
    s.detector.state_dir = str(tmp_path)
    (tmp_path / "index").mkdir()
    old = {"encoder": "someone-elses", "encoder_sha256": "f" * 64, "window_size": 20}
    (tmp_path / "index" / BUILD_FILE).write_text(json.dumps(old))
    # no model folder: the shipped encoder's profile (COMS-1) serves its own encoder (encoder-v3)
    from satwatch.services.frames.profiles import get_profile
    from satwatch.services.models.locate import profile_model_dirs, shipped_profile

    served = FrameEncoder.load(profile_model_dirs(get_profile(str(shipped_profile()))).encoder).card
    mine = (served.name, served.sha256)
    own = tmp_path / "indexes" / f"{served.name}-{served.sha256[:12]}"
    assert default_index_dir(tmp_path) == tmp_path / "index"
    assert default_index_dir(tmp_path, mine) == own  # search and index build find the same folder
    # An upgrade whose profile names a new encoder starts that encoder's index instead of refusing to start,
    # says where and how to fill it, and leaves the old index as it was (switching back finds it).
    with caplog.at_level("WARNING"):
        detector = build_detector(s)
    detector.close()
    assert read_provenance(own) == IndexProvenance(served.name, served.sha256, 20)
    assert json.loads((tmp_path / "index" / BUILD_FILE).read_text()) == old
    assert f"keeps its own in {own}" in caplog.text and "satwatch index build" in caplog.text
    # The encoder that built the first index still opens it there.
    assert default_index_dir(tmp_path, ("someone-elses", "f" * 64)) == tmp_path / "index"
