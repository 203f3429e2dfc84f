"""A fuzz corpus of poison messages over the real embedded broker: no message can stop a partition.

Each bad message kind goes onto the frames topic between valid frames. The detector must park every bad
message on the dead-letter topic (a bounded copy with its reason), count it, log it and move its offset on,
and still process every valid frame and raise the same alerts as a run over the clean stream.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from satwatch.consumers.detector import DetectorConsumer
from satwatch.consumers.sinks import DEAD_LETTER_MAX_BYTES, DEAD_LETTER_MAX_KEY, DLQ_TRUNCATED
from satwatch.services.config import Settings
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.frames.codec import encode_claim_check, encode_inline
from satwatch.services.frames.frame import CHANNELS, Frame, kma_filename, write_rgb_png
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.topics import DLQ_ERROR, DLQ_REASON, ensure_topics
from tests.consumers.running import run_detector
from tests.producers.test_publisher import read_topic

# Ten hours of simulated stream holding one labelled event (as tests/consumers/test_detector.py uses).
STREAM = SimConfig(seed=7, days=10.25 / 24)
UNKNOWN_SATELLITES = 40


@dataclass
class Bad:
    """One poison message: its kind, Kafka key and value, and the dead-letter reason it must end with."""

    kind: str
    key: bytes | None
    value: bytes | None
    reason: str


def with_header(value: bytes, **changes: object) -> bytes:
    """A message whose JSON header has some fields replaced (the payload kept as it is)."""
    (n,) = struct.unpack(">I", value[4:8])
    header = json.loads(value[8 : 8 + n])
    header.update(changes)
    raw = json.dumps(header).encode()
    return value[:4] + struct.pack(">I", len(raw)) + raw + value[8 + n :]


def with_payload(value: bytes, payload: bytes, **changes: object) -> bytes:
    (n,) = struct.unpack(">I", value[4:8])
    return with_header(value[: 8 + n], **changes) + payload


@functools.cache
def zlib_bomb(size: int = 512 << 20) -> bytes:
    """``size`` zero bytes deflated (about 1000:1), built in pieces so the test itself never holds them."""
    deflater = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [deflater.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + deflater.flush()


def corpus(new: Frame, old: Frame, archive: Path) -> list[Bad]:
    """Every bad message kind, each built from ``new``, the valid frame that comes next, so that each breaks
    exactly one thing (``old`` is the frame just before, for duplicates and order)."""
    good = encode_inline(new)
    sat = b"COMS-1"
    iso = new.time.isoformat()
    stamp = f"{new.time:%Y%m%d%H%M}"
    claim = encode_claim_check(new, f"kma+file://{archive}#{stamp}")
    return [
        Bad("null value", sat, None, "null_value"),
        Bad("empty value", sat, b"", "bad_envelope"),
        Bad("not a frame", sat, b"\x89PNG\r\n\x1a\n not a frame", "bad_envelope"),
        Bad("header length past the end", sat, b"SWF1\xff\xff\xff\xff{}", "bad_envelope"),
        Bad("header not JSON", sat, b"SWF1\x00\x00\x00\x03{]}" + bytes(10), "bad_metadata"),
        Bad("header missing fields", sat, b"SWF1\x00\x00\x00\x02{}", "bad_metadata"),
        Bad("over 1 MB", sat, good + bytes(1_500_000), "wrong_size"),
        Bad("zlib bomb", sat, with_payload(good, zlib_bomb(), encoding="raw+zlib"), "too_large"),
        Bad("corrupt zlib", sat, with_payload(good, b"x\x9c garbage", encoding="raw+zlib"), "corrupt_payload"),
        Bad(
            "truncated zlib",
            sat,
            with_payload(good, zlib.compress(new.data.tobytes())[:-100], encoding="raw+zlib"),
            "corrupt_payload",
        ),
        Bad("time 0001-01-01T00:00+01:00", sat, with_header(good, time="0001-01-01T00:00:00+01:00"), "bad_metadata"),
        Bad("time 9999-12-31T23:59-01:00", sat, with_header(good, time="9999-12-31T23:59:00-01:00"), "bad_metadata"),
        Bad("time year 10000", sat, with_header(good, time="10000-01-01T00:00:00Z"), "bad_metadata"),
        Bad("time without offset", sat, with_header(good, time=iso[:19]), "bad_metadata"),
        Bad("time as huge number", sat, with_header(good, time=1e20), "bad_metadata"),
        Bad("time far future", sat, with_header(good, time="2999-01-01T00:00:00Z"), "time_out_of_range"),
        Bad("time before 1990", sat, with_header(good, time="1970-01-01T00:00:00Z"), "time_out_of_range"),
        Bad("shape [4,0,0]", sat, with_header(good, shape=[4, 0, 0]), "bad_metadata"),
        Bad("negative shape", sat, with_header(good, shape=[4, -300, 375]), "bad_metadata"),
        Bad("huge shape", sat, with_header(good, shape=[4, 10**9, 10**9]), "bad_metadata"),
        Bad("transposed shape", sat, with_header(good, shape=[4, 375, 300]), "wrong_shape"),
        Bad("claim check rooted at /", sat, with_header(claim, uri=f"kma+file:///#{stamp}"), "claim_check_refused"),
        Bad(
            "claim check escaping its root",
            sat,
            with_header(claim, uri=f"kma+file://{archive}/../..#{stamp}"),
            "claim_check_refused",
        ),
        Bad(
            "claim check to a missing directory",
            sat,
            with_header(claim, uri=f"kma+file://{archive}/missing#{stamp}"),
            "claim_check_unreadable",
        ),
        Bad(
            "claim check to an archive without that time",
            sat,
            with_header(claim, uri=f"kma+file://{archive}/empty#{stamp}"),
            "claim_check_unreadable",
        ),
        Bad("claim check whose shape is not the file's", sat, with_header(claim, shape=[4, 1300, 1500]), "wrong_shape"),
        Bad("claim check without a URI", sat, with_header(claim, uri=None), "bad_claim_check"),
        Bad("key differs from satellite", b"GK-2A", good, "key_mismatch"),
        Bad("no key", None, good, "key_mismatch"),
        Bad("100 KB key", b"K" * 100_000, good, "key_mismatch"),
        Bad("control characters in satellite", b"COMS-1\n", with_header(good, satellite="COMS-1\n"), "bad_metadata"),
        Bad("satellite over 64 characters", b"S" * 65, with_header(good, satellite="S" * 65), "bad_metadata"),
        Bad("wrong channels", sat, with_header(good, channels=["ir01", "ir02", "swir", "vis"]), "wrong_channels"),
        Bad("corrupted pixels", sat, good[:-40] + bytes(40), "checksum_mismatch"),
        Bad("schema version 2", sat, with_header(good, schema_version=2), "bad_metadata"),
        Bad("float pixels", sat, with_header(good, dtype="float64"), "bad_metadata"),
        Bad("unknown encoding", sat, with_header(good, encoding="raw+bz2"), "bad_metadata"),
        Bad("duplicate", sat, encode_inline(old), "duplicate"),
        Bad(
            "out of order",
            sat,
            encode_inline(Frame("COMS-1", old.time - timedelta(minutes=7), CHANNELS, old.data)),
            "out_of_order",
        ),
    ]


def unknown_satellites(frame: Frame) -> list[Bad]:
    """Many made-up satellite names: refused by profile, one metric label value whatever the name."""
    good = encode_inline(frame)
    names = [f"SAT-{i:04d}" for i in range(UNKNOWN_SATELLITES)]
    return [Bad("unknown satellite", n.encode(), with_header(good, satellite=n), "unknown_satellite") for n in names]


@pytest.fixture(scope="module")
def stream() -> list[Frame]:
    return list(SceneSimulator(STREAM).frames())


def write_archive(root: Path, frames: list[Frame]) -> Path:
    """An archive folder of the frames at the shrunk size (the archive passes such files through), plus an
    empty sub-folder."""
    (root / "empty").mkdir(parents=True)
    for frame in frames:
        for i, c in enumerate(CHANNELS):
            write_rgb_png(root / kma_filename(c, "ea040ps", frame.time), frame.data[i])
    return root


def send_all(settings: Settings, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    # A producer that lets through what a careless or hostile one would send (over 1 MB, any key).
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, max_request_size=8 << 20)
    for key, value in messages:
        producer.send(settings.kafka.frames_topic, key=key, value=value)
    producer.flush()
    producer.close()


def committed_to_end(settings: Settings) -> tuple[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=settings.kafka.group_id)
    tp = TopicPartition(settings.kafka.frames_topic, 0)
    try:
        return consumer.committed(tp) or 0, consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def test_no_message_stops_a_partition(settings: Settings, stream: list[Frame], tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    frames = stream
    archive = write_archive(tmp_path / "archive", frames)
    settings.detector.claim_check_roots = [str(tmp_path / "archive")]

    # Reference: the clean stream.
    clean = settings.model_copy(deep=True)
    clean.kafka.frames_topic += "-clean"
    clean.kafka.alerts_topic += "-clean"
    clean.kafka.dead_letter_topic += "-clean"
    clean.kafka.group_id += "-clean"
    clean.detector.state_dir = str(tmp_path / "clean")
    ensure_topics(clean.kafka)
    send_all(clean, [(f.satellite.encode(), encode_inline(f)) for f in frames])
    reference = run_detector(clean, len(frames), DetectorMetrics(), timeout=180, exact=True)
    expected_alerts = {a.id for a in reference.detector.store.all()}
    assert expected_alerts

    # The same stream with every bad kind after a valid frame (the unknown satellites together).
    kinds = len(corpus(frames[1], frames[0], archive))
    groups = [[corpus(frames[i + 1], frames[i], archive)[i]] for i in range(kinds)]
    groups.append(unknown_satellites(frames[kinds + 1]))
    bads = [b for g in groups for b in g]
    assert len(groups) < len(frames)
    messages: list[tuple[bytes | None, bytes | None]] = []
    for i, f in enumerate(frames):
        messages.append((f.satellite.encode(), encode_inline(f)))
        for bad in groups[i] if i < len(groups) else []:
            messages.append((bad.key, bad.value))
    ensure_topics(settings.kafka)
    send_all(settings, messages)

    metrics = DetectorMetrics()
    with caplog.at_level(logging.WARNING):
        consumer = run_detector(settings, len(frames), metrics, timeout=180, exact=True)

    # Every valid frame processed and the same alerts raised as over the clean stream.
    assert metrics.frames_consumed.labels("COMS-1")._value.get() == len(frames)
    assert {a.id for a in consumer.detector.store.all()} == expected_alerts
    assert consumer.detector.window("COMS-1").end == frames[-1].time
    # Every bad message parked once with its reason, counted, logged; no copy over the bound.
    expected = Counter(b.reason for b in bads)
    n_bad = sum(expected.values())
    dead = read_topic(settings, settings.kafka.dead_letter_topic, n_bad, timeout=30)
    reasons = Counter(dict(m.headers)[DLQ_REASON].decode() for m in dead)
    assert reasons == expected
    for reason, n in expected.items():
        assert metrics.invalid_frames.labels(reason)._value.get() == n, reason
    assert all(len(m.value or b"") <= DEAD_LETTER_MAX_BYTES for m in dead)
    assert all(len(m.key or b"") <= DEAD_LETTER_MAX_KEY for m in dead)
    truncated = sorted(int(dict(m.headers)[DLQ_TRUNCATED]) for m in dead if DLQ_TRUNCATED in dict(m.headers))
    assert truncated == sorted(len(b.value or b"") for b in bads if len(b.value or b"") > DEAD_LETTER_MAX_BYTES)
    assert len(truncated) == 1  # the message over 1 MB
    assert caplog.text.count("invalid frame at") == n_bad
    # No unexpected error, and unknown satellites did not become metric series.
    assert not [s for m in metrics.errors.collect() for s in m.samples if s.value]
    series = [s for m in metrics.registry.collect() for s in m.samples]
    assert not [s for s in series if any("SAT-" in v for v in s.labels.values())]
    # The offsets moved on past everything.
    committed, end = committed_to_end(settings)
    assert committed == end == len(messages)


def test_dead_letter_send_failure_never_escapes(settings: Settings, caplog) -> None:  # type: ignore[no-untyped-def]
    """A dead-letter send that raises (e.g. MessageSizeTooLargeError) is logged and counted, not raised."""
    from types import SimpleNamespace

    from kafka.errors import MessageSizeTooLargeError

    class Refusing:
        def send(self, *args: object, **kwargs: object) -> None:
            raise MessageSizeTooLargeError("too large")

    metrics = DetectorMetrics()
    consumer = DetectorConsumer(settings, SimpleNamespace(metrics=metrics, threshold=1.0, store=None))  # type: ignore[arg-type]
    consumer.producer.close()
    consumer.consumer.close()
    consumer.producer = Refusing()  # type: ignore[assignment]
    record = SimpleNamespace(topic="frames", partition=0, offset=7, key=b"COMS-1", value=bytes(2_000_000))
    with caplog.at_level(logging.ERROR):
        consumer.dead_letters.add(record, "wrong_size", "too big", "frames:0:7")  # type: ignore[arg-type]
    assert metrics.errors.labels("dead_letter")._value.get() == 1
    assert metrics.invalid_frames.labels("wrong_size")._value.get() == 1
    assert "could not park frames:0:7" in caplog.text


def test_claim_checks_are_refused_without_configured_roots(settings: Settings) -> None:
    from satwatch.services.frames.claimcheck import allowed_claim_check_root
    from satwatch.services.frames.codec import FrameDecodeError

    assert settings.detector.claim_check_roots == []
    with pytest.raises(FrameDecodeError, match="no detector.claim_check_roots") as err:
        allowed_claim_check_root("/", settings.detector.claim_check_roots)
    assert err.value.reason == "claim_check_refused"


def test_a_corrupt_copy_of_a_processed_frame_is_refused_for_its_corruption(
    settings: Settings, stream: list[Frame]
) -> None:
    """A replayed or retried message whose time was already processed, but whose payload is damaged, is
    parked for the damage (``checksum_mismatch``, ``wrong_size``), naming the frame, not as a harmless
    ``duplicate``; an intact copy still is a duplicate."""
    frames = stream[:4]
    old = encode_inline(frames[1])
    bad = [old[:-40] + bytes(40), old[: len(old) // 2], old]
    messages = [(b"COMS-1", encode_inline(f)) for f in frames[:3]]
    messages += [(b"COMS-1", v) for v in bad] + [(b"COMS-1", encode_inline(frames[3]))]
    ensure_topics(settings.kafka)
    send_all(settings, messages)
    run_detector(settings, len(frames), DetectorMetrics(), timeout=120, exact=True)
    dead = read_topic(settings, settings.kafka.dead_letter_topic, len(bad), timeout=30)
    assert [dict(m.headers)[DLQ_REASON].decode() for m in dead] == ["checksum_mismatch", "wrong_size", "duplicate"]
    named = f"COMS-1 {frames[1].time:%Y-%m-%d %H:%M}: "
    assert all(dict(m.headers)[DLQ_ERROR].decode().startswith(named) for m in dead)
