"""Frame messages: versioned, validated metadata plus an inline or claim-check payload.

A message value is ``MAGIC | u32 header length | header JSON | payload``. Shrunk frames travel inline (raw
planes, zlib-compressed only when they would not fit under Kafka's 1 MB default); full-resolution frames
travel as a claim check: the archive URI plus the sha256 of what it points to.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator

from satwatch.services.frames.frame import Frame

MAGIC = b"SWF1"
SCHEMA_VERSION = 1
#: Kafka's default max message size; inline payloads must stay below it with room for the header.
KAFKA_DEFAULT_MAX_BYTES = 1_000_000
INLINE_LIMIT = 900_000


class Encoding(StrEnum):
    RAW = "raw"
    RAW_ZLIB = "raw+zlib"
    CLAIM_CHECK = "claim-check"


class FrameMeta(BaseModel):
    """Metadata that travels with every frame message."""

    schema_version: Literal[1] = 1
    satellite: str = Field(min_length=1, max_length=64)
    time: datetime
    channels: tuple[str, ...] = Field(min_length=1)
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
        return v.astimezone(UTC)


class FrameDecodeError(ValueError):
    """A message that cannot be turned back into a valid frame. ``reason`` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def checksum(data: np.ndarray) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()


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
    """Encode a (shrunk) frame with its pixels inline. Raises if it would not fit in a Kafka message.

    Raw planes are sent as they are when they fit (compressing costs more CPU than the whole rest of the
    producer; Kafka's own ``compression_type`` can compress batches on the wire), zlib-compressed otherwise.
    """
    raw = np.ascontiguousarray(frame.data).tobytes()
    value = _pack(_meta(frame, Encoding.RAW), raw)
    if len(value) > INLINE_LIMIT:
        value = _pack(_meta(frame, Encoding.RAW_ZLIB), zlib.compress(raw, 1))
    if len(value) > INLINE_LIMIT:
        raise ValueError(
            f"inline frame is {len(value)} bytes, over the {INLINE_LIMIT} byte limit; shrink it or send a claim check"
        )
    return value


def encode_claim_check(frame: Frame, uri: str) -> bytes:
    """Encode a reference to a full-resolution frame stored elsewhere (archive URI + checksum)."""
    return _pack(_meta(frame, Encoding.CLAIM_CHECK, uri), b"")


def decode_meta(value: bytes) -> tuple[FrameMeta, bytes]:
    """Split and validate a message; the payload is returned undecoded."""
    if len(value) < 8 or value[:4] != MAGIC:
        raise FrameDecodeError("bad_envelope", "message is not a satwatch frame (missing SWF1 magic)")
    (n,) = struct.unpack(">I", value[4:8])
    if 8 + n > len(value):
        raise FrameDecodeError("bad_envelope", f"header length {n} runs past the {len(value)} byte message")
    try:
        meta = FrameMeta.model_validate_json(value[8 : 8 + n])
    except ValueError as exc:
        raise FrameDecodeError("bad_metadata", f"invalid frame metadata: {exc}") from exc
    return meta, value[8 + n :]


def decode_inline(meta: FrameMeta, payload: bytes) -> Frame:
    """Rebuild an inline frame, checking size and checksum."""
    if meta.encoding == Encoding.RAW:
        raw = payload
    elif meta.encoding == Encoding.RAW_ZLIB:
        try:
            raw = zlib.decompress(payload)
        except zlib.error as exc:
            raise FrameDecodeError("corrupt_payload", f"payload does not decompress: {exc}") from exc
    else:
        raise FrameDecodeError("unsupported_encoding", f"cannot decode {meta.encoding} inline")
    expected = int(np.prod(meta.shape))
    if len(raw) != expected:
        raise FrameDecodeError("wrong_size", f"payload holds {len(raw)} bytes, shape {meta.shape} needs {expected}")
    data = np.frombuffer(raw, dtype=np.uint8).reshape(meta.shape)
    if checksum(data) != meta.checksum:
        raise FrameDecodeError("checksum_mismatch", "payload checksum does not match its metadata")
    return Frame(meta.satellite, meta.time, tuple(meta.channels), data.copy())
