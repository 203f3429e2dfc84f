"""Frame messages: versioned, validated metadata plus an inline or claim-check payload.

A message value is ``MAGIC | u32 header length | header JSON | payload``. Shrunk frames travel inline (raw
planes, zlib-compressed only when they would not fit under Kafka's 1 MB default); full-resolution frames
travel as a claim check: the archive URI plus the sha256 of what it points to.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote, unquote

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator

from satwatch.services.frames.frame import Frame

MAGIC = b"SWF1"
SCHEMA_VERSION = 1
#: Kafka's default max message size; inline payloads must stay below it with room for the header.
KAFKA_DEFAULT_MAX_BYTES = 1_000_000
INLINE_LIMIT = 900_000
#: Largest side and channel count a frame message may claim (a guard before any size arithmetic).
MAX_SIDE = 65_536
MAX_CHANNELS = 64


class Encoding(StrEnum):
    RAW = "raw"
    RAW_ZLIB = "raw+zlib"
    CLAIM_CHECK = "claim-check"


class FrameMeta(BaseModel):
    """Metadata that travels with every frame message."""

    schema_version: Literal[1] = 1
    satellite: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    time: datetime
    channels: tuple[str, ...] = Field(min_length=1, max_length=MAX_CHANNELS)
    shape: tuple[int, int, int]
    dtype: Literal["uint8"] = "uint8"
    encoding: Encoding
    checksum: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="sha256 of the raw planes")
    uri: str | None = Field(None, description="claim check: where the full-resolution frame lives")

    @field_validator("time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        try:
            return v.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 lies before the first representable UTC instant
            raise ValueError(f"time {v.isoformat()} is outside the representable UTC range") from None

    @field_validator("shape")
    @classmethod
    def _positive(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        channels, height, width = v
        if not 1 <= channels <= MAX_CHANNELS or not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
            raise ValueError(
                f"shape {list(v)} (channels, height, width) needs 1..{MAX_CHANNELS} channels and sides 1..{MAX_SIDE}"
            )
        return v

    @property
    def nbytes(self) -> int:
        """Bytes of the raw planes the shape describes."""
        channels, height, width = self.shape
        return channels * height * width


class InlineTooLargeError(ValueError):
    """A frame whose inline message would exceed :data:`INLINE_LIMIT` even compressed (``size`` bytes)."""

    def __init__(self, size: int, limit: int = INLINE_LIMIT) -> None:
        super().__init__(f"inline frame is {size} bytes, over the {limit} byte limit; shrink it or send a claim check")
        self.size = size
        self.limit = limit


class FrameDecodeError(ValueError):
    """A message that cannot be turned back into a valid frame. ``reason`` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def checksum(data: np.ndarray) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(data).data).hexdigest()  # hashed in place, not copied


def _meta(frame: Frame, encoding: Encoding, uri: str | None = None) -> FrameMeta:
    return FrameMeta(
        satellite=frame.satellite,
        time=frame.time,
        channels=frame.channels,
        shape=frame.data.shape,
        encoding=encoding,
        checksum=checksum(frame.data),
        uri=uri,
    )


def _pack(meta: FrameMeta, payload: bytes) -> bytes:
    header = meta.model_dump_json().encode()
    return MAGIC + struct.pack(">I", len(header)) + header + payload


def encode_inline(frame: Frame) -> bytes:
    """Encode a (shrunk) frame with its pixels inline; InlineTooLargeError if it would not fit in a Kafka message.

    Raw planes are sent as they are when they fit (compressing costs more CPU than the whole rest of the
    producer; Kafka's own ``compression_type`` can compress batches on the wire), zlib-compressed otherwise.
    """
    raw = np.ascontiguousarray(frame.data).tobytes()
    value = _pack(_meta(frame, Encoding.RAW), raw)
    if len(value) > INLINE_LIMIT:
        value = _pack(_meta(frame, Encoding.RAW_ZLIB), zlib.compress(raw, 1))
    if len(value) > INLINE_LIMIT:
        raise InlineTooLargeError(len(value))
    return value


def encode_claim_check(frame: Frame, uri: str) -> bytes:
    """Encode a reference to a full-resolution frame stored elsewhere (archive URI + checksum)."""
    return _pack(_meta(frame, Encoding.CLAIM_CHECK, uri), b"")


#: Longest metadata header accepted (a real one is a few hundred bytes).
MAX_HEADER_BYTES = 64 * 1024


def decode_meta(value: bytes | None) -> tuple[FrameMeta, bytes]:
    """Split and validate a message; the payload is returned undecoded.

    Anything that is not a well-formed frame message (no value at all, wrong magic, a header that runs past
    the message or does not validate) raises FrameDecodeError with a short reason.
    """
    if value is None:
        raise FrameDecodeError("null_value", "message has no value (a null record or tombstone), not a frame")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise FrameDecodeError("bad_envelope", f"message value is {type(value).__name__}, not bytes")
    value = bytes(value)
    if len(value) < 8 or value[:4] != MAGIC:
        raise FrameDecodeError("bad_envelope", "message is not a satwatch frame (missing SWF1 magic)")
    (n,) = struct.unpack(">I", value[4:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(value):
        raise FrameDecodeError(
            "bad_envelope", f"header length {n} runs past the {len(value)} byte message or the {MAX_HEADER_BYTES} cap"
        )
    try:
        meta = FrameMeta.model_validate_json(value[8 : 8 + n])
    except ValidationError as exc:  # one line: field and problem, without pydantic's links
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'header'}: {e['msg']}" for e in exc.errors())
        raise FrameDecodeError("bad_metadata", f"invalid frame metadata: {problems}") from exc
    except (ValueError, ArithmeticError) as exc:
        raise FrameDecodeError("bad_metadata", f"invalid frame metadata: {exc}") from exc
    return meta, value[8 + n :]


def inflate_bounded(payload: bytes, limit: int) -> bytes:
    """zlib-inflate at most ``limit`` bytes; a stream that would give more is refused before it is inflated.

    A small message can hold a "zlib bomb" that inflates to gigabytes; the output is capped at the frame size
    the metadata (checked against the satellite profile) announces, so memory stays bounded by one frame.
    """
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(payload, limit)
        if not inflater.eof and inflater.decompress(inflater.unconsumed_tail, 1):
            raise FrameDecodeError("too_large", f"payload inflates to more than the {limit} bytes its shape allows")
    except zlib.error as exc:
        raise FrameDecodeError("corrupt_payload", f"payload does not decompress: {exc}") from exc
    if not inflater.eof:
        raise FrameDecodeError("corrupt_payload", "payload is a truncated zlib stream")
    if inflater.unused_data:
        raise FrameDecodeError("corrupt_payload", f"{len(inflater.unused_data)} bytes follow the zlib stream")
    return raw


def frame_label(meta: FrameMeta) -> str:
    """How a refusal names the frame: satellite and observation time (UTC), as the detector's refusals do."""
    return f"{meta.satellite} {meta.time.astimezone(UTC):%Y-%m-%d %H:%M}"


def decode_inline(meta: FrameMeta, payload: bytes, expected_shape: tuple[int, int, int] | None = None) -> Frame:
    """Rebuild an inline frame, checking shape, size and checksum.

    ``expected_shape`` (the satellite profile's shrunk shape) is checked before anything is decompressed.
    """
    which = frame_label(meta)
    if expected_shape is not None and tuple(meta.shape) != tuple(expected_shape):
        raise FrameDecodeError("wrong_shape", f"{which}: shape {list(meta.shape)}, expected {list(expected_shape)}")
    expected = meta.nbytes
    if meta.encoding == Encoding.RAW:
        raw = payload
    elif meta.encoding == Encoding.RAW_ZLIB:
        try:
            raw = inflate_bounded(payload, expected)
        except FrameDecodeError as exc:
            raise FrameDecodeError(exc.reason, f"{which}: {exc}") from exc
    else:
        raise FrameDecodeError("unsupported_encoding", f"{which}: cannot decode {meta.encoding} inline")
    if len(raw) != expected:
        raise FrameDecodeError(
            "wrong_size", f"{which}: payload holds {len(raw)} bytes, shape {meta.shape} needs {expected}"
        )
    data = np.frombuffer(raw, dtype=np.uint8).reshape(meta.shape)
    if checksum(data) != meta.checksum:
        raise FrameDecodeError("checksum_mismatch", f"{which}: payload checksum does not match its metadata")
    return Frame(meta.satellite, meta.time, tuple(meta.channels), data.copy())


#: Claim checks name a frame in a folder of a satellite's images as
#: ``kma+file://<folder, absolute>#<YYYYMMDDHHMM>?area=<area>`` (see :func:`claim_check_uri`).
CLAIM_CHECK_SCHEME = "kma+file://"
#: The fragment: the frame's time, and the area (sector) it was read from; older producers wrote no area.
_CLAIM_CHECK_FRAGMENT = re.compile(r"(?P<stamp>\d{12})(?:\?area=(?P<area>[^?#&=]+))?")


class ClaimCheck(NamedTuple):
    """What a claim-check URI names: the folder, the frame's time (YYYYMMDDHHMM) and, from newer producers,
    the area (sector) the producer read; None for a URI an older producer wrote without one."""

    root: str
    stamp: str
    area: str | None = None


def claim_check_uri(archive_root: str | Path, time: datetime, area: str | None = None) -> str:
    """The claim-check URI of the frame observed at ``time``, of ``area``, in the folder ``archive_root``.

    ``kma+file://<folder>#<YYYYMMDDHHMM>?area=<area>``: the folder as it is (absolute, not percent-encoded, as
    before), the area percent-encoded after the time. A folder may hold several areas (KMA names its files
    ``{prefix}_{channel}_{area}_{stamp}``), and the reader needs the one the producer read to find the frame.
    The area rides in the fragment, after the time, rather than in a query before it, so that a detector from
    before areas (it reads the folder up to the first ``#`` and takes the time from the message's metadata)
    still reads these URIs as it read the old ones: producers and detectors can be upgraded in either order.
    Without ``area`` the URI is the old form.
    """
    uri = f"{CLAIM_CHECK_SCHEME}{Path(archive_root).resolve()}#{time.astimezone(UTC):%Y%m%d%H%M}"
    if area is None:
        return uri
    if not area:
        raise ValueError("a claim check's area cannot be empty")
    return f"{uri}?area={quote(area, safe='')}"


def parse_claim_check(uri: str) -> ClaimCheck:
    """(folder, YYYYMMDDHHMM, area or None) of a claim-check URI; FrameDecodeError ``bad_claim_check`` otherwise.

    The fragment starts at the last ``#`` (the area is percent-encoded, so holds none), so a folder whose name
    holds ``#``, ``?``, ``%`` or spaces comes back as it was written. A URI without ``?area=`` (written by a
    producer from before areas) gives area None.
    """
    root, sep, fragment = uri.removeprefix(CLAIM_CHECK_SCHEME).rpartition("#")
    match = _CLAIM_CHECK_FRAGMENT.fullmatch(fragment)
    if not uri.startswith(CLAIM_CHECK_SCHEME) or not sep or not root or match is None:
        raise FrameDecodeError(
            "bad_claim_check",
            f"unsupported claim-check URI {uri!r}: expected {CLAIM_CHECK_SCHEME}<folder>#<YYYYMMDDHHMM>[?area=<area>]",
        )
    area = match["area"]
    return ClaimCheck(root, match["stamp"], unquote(area) if area is not None else None)
