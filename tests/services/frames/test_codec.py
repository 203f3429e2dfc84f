from datetime import UTC, datetime

import numpy as np
import pytest

from satwatch.services.frames.codec import (
    INLINE_LIMIT,
    Encoding,
    FrameDecodeError,
    decode_inline,
    decode_meta,
    encode_claim_check,
    encode_inline,
)
from satwatch.services.frames.frame import CHANNELS, Frame, kma_filename, shrink
from satwatch.services.frames.profiles import get_profile
from tests.helpers import T0, make_frame


def test_full_size_frame_shrinks_and_fits_inline() -> None:
    rng = np.random.default_rng(0)
    frame = Frame("COMS-1", T0, CHANNELS, rng.integers(0, 256, (4, 1300, 1500), dtype=np.uint8))
    small = shrink(frame)
    assert small.data.shape == (4, 300, 375)
    value = encode_inline(small)
    assert len(value) < INLINE_LIMIT  # even incompressible noise stays under Kafka's 1 MB default
    meta, payload = decode_meta(value)
    assert meta.encoding is Encoding.RAW and meta.shape == (4, 300, 375)
    back = decode_inline(meta, payload)
    np.testing.assert_array_equal(back.data, small.data)
    assert back.time == T0 and back.channels == CHANNELS


def test_full_resolution_inline_is_refused_and_claim_check_is_small() -> None:
    rng = np.random.default_rng(1)
    frame = Frame("COMS-1", T0, CHANNELS, rng.integers(0, 256, (4, 1300, 1500), dtype=np.uint8))
    with pytest.raises(ValueError, match="claim check"):
        encode_inline(frame)
    value = encode_claim_check(frame, "kma+file://archive#202407010000")
    meta, payload = decode_meta(value)
    assert meta.encoding is Encoding.CLAIM_CHECK and payload == b"" and len(value) < 2000


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda v: b"XXXX" + v[4:], "bad_envelope"),
        (lambda v: v[:12], "bad_envelope"),
        (lambda v: v[:-50] + bytes(50), "checksum_mismatch"),
        (lambda v: v[:-50], "wrong_size"),
    ],
)
def test_corrupt_messages_raise_with_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    value = mutate(encode_inline(make_frame(T0)))
    with pytest.raises(FrameDecodeError) as err:
        meta, payload = decode_meta(value)
        decode_inline(meta, payload)
    assert err.value.reason == reason
    if reason in ("checksum_mismatch", "wrong_size"):  # the refusal names the frame, as the detector's do
        assert str(err.value).startswith(f"{make_frame(T0).satellite} {T0:%Y-%m-%d %H:%M}: ")


def test_checksum_mismatch_is_detected() -> None:
    frame = make_frame(T0)
    meta, _ = decode_meta(encode_inline(frame))
    other = (frame.data ^ 1).tobytes()
    with pytest.raises(FrameDecodeError) as err:
        decode_inline(meta, other)
    assert err.value.reason == "checksum_mismatch"


def test_metadata_requires_utc_time() -> None:
    with pytest.raises(ValueError):
        Frame("COMS-1", datetime(2024, 1, 1), CHANNELS, np.zeros((4, 2, 2), np.uint8))


def test_kma_names_round_trip_through_the_coms1_profile() -> None:
    t = datetime(2011, 3, 3, 6, 45, tzinfo=UTC)
    name = kma_filename("ir01", "ea040ps", t)
    assert name == "coms_mi_le1b_ir01_ea040ps_201103030645.png"
    parsed = get_profile("COMS-1").parse_filename(name)
    assert parsed is not None and parsed.channel == "ir01" and parsed.time == t and parsed.area == "ea040ps"
    assert get_profile("COMS-1").parse_filename("notes.txt") is None


def test_frames_too_big_raw_are_compressed_and_corruption_detected() -> None:
    big = Frame("GK-2A", T0, CHANNELS, np.full((4, 600, 500), 120, np.uint8))  # 1.2 MB raw
    value = encode_inline(big)
    meta, payload = decode_meta(value)
    assert meta.encoding is Encoding.RAW_ZLIB and len(value) < INLINE_LIMIT
    np.testing.assert_array_equal(decode_inline(meta, payload).data, big.data)
    with pytest.raises(FrameDecodeError) as err:
        decode_inline(meta, payload[:10] + b"garbage" + payload[17:])
    assert err.value.reason == "corrupt_payload"


def _with_header(value: bytes, **changes: object) -> bytes:
    """A message whose JSON header has some fields replaced (the payload kept as it is)."""
    import json
    import struct

    (n,) = struct.unpack(">I", value[4:8])
    header = json.loads(value[8 : 8 + n])
    header.update(changes)
    raw = json.dumps(header).encode()
    return value[:4] + struct.pack(">I", len(raw)) + raw + value[8 + n :]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null_value"),
        (b"", "bad_envelope"),
        (b"SWF1" + (2**31).to_bytes(4, "big") + b"{}", "bad_envelope"),
        (b"SWF1\x00\x00\x00\x02{]", "bad_metadata"),
    ],
)
def test_null_and_malformed_envelopes_raise_with_reason(value, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrameDecodeError) as err:
        decode_meta(value)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "changes",
    [
        {"time": "0001-01-01T00:00:00+01:00"},  # OverflowError when turned to UTC
        {"time": "9999-12-31T23:59:00-01:00"},  # past the last representable UTC instant
        {"time": "2024-07-01T00:00:00"},  # no offset
        {"shape": [4, 0, 0]},  # ZeroDivisionError further on
        {"shape": [4, -300, 375]},
        {"shape": [4, 10**9, 10**9]},
        {"satellite": "COMS-1\n2024 fake log line"},
        {"schema_version": 2},
        {"dtype": "float64"},
        {"encoding": "raw+bz2"},
    ],
)
def test_out_of_range_metadata_is_bad_metadata(changes) -> None:  # type: ignore[no-untyped-def]
    value = _with_header(encode_inline(make_frame(T0)), **changes)
    with pytest.raises(FrameDecodeError) as err:
        decode_meta(value)
    assert err.value.reason == "bad_metadata"


def test_zlib_bomb_is_refused_without_inflating_it() -> None:
    import zlib

    frame = make_frame(T0)
    bomb = zlib.compress(bytes(300_000_000), 9)  # 300 MB of zeros in about 300 KB
    value = _with_header(encode_inline(frame), encoding="raw+zlib")
    meta, _ = decode_meta(value)
    with pytest.raises(FrameDecodeError) as err:
        decode_inline(meta, bomb)
    assert err.value.reason == "too_large"
    good = zlib.compress(frame.data.tobytes())
    np.testing.assert_array_equal(decode_inline(meta, good).data, frame.data)
    for damaged in (good[:-4], good + b"tail"):
        with pytest.raises(FrameDecodeError) as err:
            decode_inline(meta, damaged)
        assert err.value.reason == "corrupt_payload"


def test_expected_shape_is_checked_before_decoding() -> None:
    meta, payload = decode_meta(encode_inline(make_frame(T0, shape=(30, 40))))
    with pytest.raises(FrameDecodeError) as err:
        decode_inline(meta, payload, expected_shape=(4, 300, 375))
    assert err.value.reason == "wrong_shape"
    assert decode_inline(meta, payload, expected_shape=(4, 30, 40)).data.shape == (4, 30, 40)


def test_claim_check_uri_is_built_and_parsed_in_one_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from satwatch.services.frames.codec import claim_check_uri, parse_claim_check

    uri = claim_check_uri(tmp_path, T0, "ea040ps")
    assert uri == f"kma+file://{tmp_path.resolve()}#202407010000?area=ea040ps"
    claim = parse_claim_check(uri)
    assert claim == (str(tmp_path.resolve()), "202407010000", "ea040ps") and claim.area == "ea040ps"
    # A detector from before areas took the folder up to the first '#' (and the time from the metadata): it
    # still finds the folder, so producers and detectors can be upgraded in either order.
    assert uri.removeprefix("kma+file://").split("#", 1)[0] == str(tmp_path.resolve())
    with pytest.raises(FrameDecodeError) as err:
        parse_claim_check("s3://bucket/frame")
    assert err.value.reason == "bad_claim_check"


def test_a_claim_check_without_an_area_is_the_old_form_and_parses_as_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Messages already on a topic, from producers before areas: no area, and the reader opens the folder as
    it always did."""
    from satwatch.services.frames.codec import claim_check_uri, parse_claim_check

    uri = claim_check_uri(tmp_path, T0)
    assert uri == f"kma+file://{tmp_path.resolve()}#202407010000"
    assert parse_claim_check(uri) == (str(tmp_path.resolve()), "202407010000", None)
    assert parse_claim_check("kma+file:///archive/coms#201103030645") == ("/archive/coms", "201103030645", None)


@pytest.mark.parametrize(
    "folder",
    [
        "plain",
        "with space",
        "hash#201103030645",  # a '#' and what looks like a stamp, in the folder's name
        "query?area=fd",  # what looks like an area, in the folder's name
        "per%20cent",  # a literal percent sign: folders are written as they are, never percent-decoded
        "ampersand&equals=",
        "ünïcode-기상",
    ],
)
@pytest.mark.parametrize("area", [None, "ea040ps", "fd", "EA 040#ps?x=y&z", "%2F", "구역/1"])
def test_claim_check_uri_round_trips_odd_folders_and_areas(tmp_path, folder: str, area: str | None) -> None:  # type: ignore[no-untyped-def]
    from satwatch.services.frames.codec import claim_check_uri, parse_claim_check

    root = tmp_path / folder / "nested"
    when = datetime(2011, 3, 3, 15, 45, tzinfo=UTC).astimezone()  # any offset: the stamp is UTC
    uri = claim_check_uri(root, when, area)
    assert uri.startswith(f"kma+file://{root.resolve()}#201103031545")
    assert parse_claim_check(uri) == (str(root.resolve()), "201103031545", area)


@pytest.mark.parametrize(
    "uri",
    [
        "kma+file:///archive",  # no fragment
        "kma+file://#202407010000",  # no folder
        "kma+file:///archive#2024070100",  # not a whole stamp
        "kma+file:///archive#202407010000?area=",  # an empty area
        "kma+file:///archive#202407010000?area=a&b=c",  # something besides the area
        "kma+file:///archive#202407010000?zone=ea",
        "file:///archive#202407010000",
    ],
)
def test_malformed_claim_checks_are_bad_claim_checks(uri: str) -> None:
    from satwatch.services.frames.codec import parse_claim_check

    with pytest.raises(FrameDecodeError) as err:
        parse_claim_check(uri)
    assert err.value.reason == "bad_claim_check" and "expected kma+file://<folder>#<YYYYMMDDHHMM>" in str(err.value)


def test_an_empty_area_is_not_written() -> None:
    from satwatch.services.frames.codec import claim_check_uri

    with pytest.raises(ValueError, match="area cannot be empty"):
        claim_check_uri("/archive", T0, "")
