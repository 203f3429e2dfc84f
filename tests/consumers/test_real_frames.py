"""The study's 25 real COMS-1 frames through the real pipeline: producer, embedded broker, detector.

They are 1500 wide x 1300 high RGB PNGs with the title band and overlays, 2011-03-03 06:45 to 13:15 UTC at
15 minutes with 08:30 and 11:30 missing. Every one must be published and processed, none refused, and the
two missing times must be spanned by the window (a part-filled window), not restart it.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from satwatch.cli import main
from satwatch.consumers.detector import DetectorConsumer
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.producers.sources import DirectoryWatcher
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import alert_category
from satwatch.services.detection.detector import FrameOutcome, build_detector
from satwatch.services.detection.quality import MODEL_MISMATCH
from satwatch.services.detection.window import Admission
from satwatch.services.frames.codec import decode_meta
from satwatch.topics import ensure_topics
from tests.helpers import shared_data
from tests.producers.test_publisher import read_topic

FIRST = datetime(2011, 3, 3, 6, 45, tzinfo=UTC)
LAST = datetime(2011, 3, 3, 13, 15, tzinfo=UTC)


def _config(settings: Settings, path: Path) -> Path:
    k = settings.kafka
    path.write_text(
        f'[kafka]\nbootstrap_servers = "{k.bootstrap_servers}"\nframes_topic = "{k.frames_topic}"\n'
        f'alerts_topic = "{k.alerts_topic}"\ndead_letter_topic = "{k.dead_letter_topic}"\npartitions = 1\n'
        + (f'[detector]\nmodel_dir = "{settings.detector.model_dir}"\n' if settings.detector.model_dir else "")
    )
    return path


def _check_detector(settings: Settings) -> list[FrameOutcome]:
    outcomes: list[FrameOutcome] = []
    consumer = DetectorConsumer(settings, build_detector(settings), on_outcome=outcomes.append)
    worker = threading.Thread(target=consumer.run, kwargs={"max_idle_seconds": 15})
    worker.start()
    deadline = time.monotonic() + 120
    while len(outcomes) < 25 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    consumer.stop()
    worker.join(30)
    return outcomes


def test_produce_archive_and_detect_every_real_frame(settings: Settings, tmp_path: Path) -> None:
    raw = shared_data("study", "raw_images")
    config = _config(settings, tmp_path / "satwatch.toml")
    assert main(["produce", "archive", "--archive", str(raw), "--config", str(config)]) == 0
    messages = read_topic(settings, settings.kafka.frames_topic, expect=25)
    assert len(messages) == 25
    metas = [decode_meta(m.value)[0] for m in messages]
    assert {m.shape for m in metas} == {(4, 300, 375)} and metas[0].time == FIRST and metas[-1].time == LAST
    # No model folder named: the COMS-1 profile's own set, whose autoencoder (v2) was trained for real imagery.
    # (The root set, the fixture's, gives 25 operator alerts here: the next test.)
    settings.detector.model_dir = None
    outcomes = _check_detector(settings)
    assert len(outcomes) == 25, "every real frame is processed"
    # Ordinary weather on a healthy feed: no weather alert and no data-quality fault.
    assert [(o.time, o.alert.kind) for o in outcomes if o.alert is not None] == []
    assert read_topic(settings, settings.kafka.dead_letter_topic, expect=0) == []
    by_time = {o.time: o for o in outcomes}
    # The missing 08:30 and 11:30 leave gaps the window spans: nothing restarts, the window fills to 20.
    assert all(o.admission is Admission.APPENDED for o in outcomes)
    assert by_time[datetime(2011, 3, 3, 8, 45, tzinfo=UTC)].window_frames == 8
    assert by_time[datetime(2011, 3, 3, 12, 0, tzinfo=UTC)].window_frames == 20
    assert by_time[LAST].window_frames == 20


def test_procedural_model_set_on_real_frames_tells_operators_it_does_not_fit_instead_of_25_weather_alerts(
    settings: Settings, tmp_path: Path
) -> None:
    """The shipped root set (the ``settings`` fixture's) was trained on the procedural simulator. Served to real
    frames by mistake through the broker, it would alert on all 25 as weather; the typical-error check sends
    each to operators as ``model_mismatch`` instead, with what to run, and forecasters get nothing."""
    raw = shared_data("study", "raw_images")
    config = _config(settings, tmp_path / "satwatch.toml")
    assert main(["produce", "archive", "--archive", str(raw), "--config", str(config)]) == 0
    outcomes = _check_detector(settings)
    assert len(outcomes) == 25
    alerts = [o.alert for o in outcomes if o.alert is not None]
    assert len(alerts) == 25 and {a.kind for a in alerts} == {MODEL_MISMATCH}
    assert {alert_category(a.kind) for a in alerts} == {"data_quality"}
    assert all(o.score > o.threshold for o in outcomes), "the scores themselves stay what the model says"


def test_produce_archive_without_frames_exits_non_zero(settings: Settings, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = shared_data("study", "raw_images") / "201103030645_image"
    for f in src.iterdir():  # GK-2A would name its files differently: nothing here is a GK-2A frame
        shutil.copy(f, tmp_path / f.name)
    config = _config(settings, tmp_path / "satwatch.toml")
    # --claim-check: without it a GK-2A replay is refused before the archive is read (too large to go inline).
    argv = ["produce", "archive", "--archive", str(tmp_path), "--satellite", "GK-2A", "--claim-check"]
    code = main([*argv, "--config", str(config)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no complete GK-2A frame" in err and "gk2a_ami_le1b_{channel}" in err and "4 image files" in err


def test_watched_directory_publishes_real_frames_landing_in_kma_folders(settings: Settings, tmp_path: Path) -> None:
    raw = shared_data("study", "raw_images")
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka)
    publisher = FramePublisher(producer, settings.kafka, source="watch")
    watcher = DirectoryWatcher(tmp_path, "COMS-1", settle_seconds=0.0)
    folders = sorted(raw.iterdir())[:6]
    for folder in folders:  # KMA's YYYYMMDDHHMM_image/ folders land one by one
        shutil.copytree(folder, tmp_path / folder.name)
        for _ in range(2):
            for item in watcher.scan():
                publisher.publish(item)
    (tmp_path / "readme.txt").write_text("not a frame")
    (tmp_path / "coms_mi_le1b_ir01_fd040ps_201103030645.png").write_bytes(b"another area")
    for item in watcher.scan():
        publisher.publish(item)
    watcher.scan()
    publisher.flush()
    producer.close()
    messages = read_topic(settings, settings.kafka.frames_topic, expect=6)
    times = [decode_meta(m.value)[0].time for m in messages]
    assert times == [FIRST + i * timedelta(minutes=15) for i in range(6)]
    assert [p.name for p in watcher.unrecognised] == ["coms_mi_le1b_ir01_fd040ps_201103030645.png"]
    assert read_topic(settings, settings.kafka.dead_letter_topic, expect=0) == []
