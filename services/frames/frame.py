"""The frame model: one satellite observation time with all its channels, plus shrinking to the study size."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

#: COMS Meteorological Imager channels the study used, in this fixed order everywhere.
CHANNELS: tuple[str, ...] = ("ir01", "ir02", "swir", "wv")
#: The study shrinks each image to the smallest size whose sides are both at least this.
MIN_SIDE = 300

_KMA_NAME = re.compile(
    r"^coms_mi_le1b_(?P<channel>[a-z0-9]+)_(?P<area>[a-z0-9]+)_(?P<stamp>\d{12})\.png$", re.IGNORECASE
)


@dataclass(frozen=True)
class KmaName:
    """The parts of a KMA file name ``coms_mi_le1b_{channel}_{area}_{YYYYMMDDHHMM}.png``."""

    channel: str
    area: str
    time: datetime

    @property
    def filename(self) -> str:
        return kma_filename(self.channel, self.area, self.time)


def kma_filename(channel: str, area: str, time: datetime) -> str:
    """Build KMA's file name for one channel image."""
    return f"coms_mi_le1b_{channel}_{area}_{time.astimezone(UTC):%Y%m%d%H%M}.png"


def parse_kma_filename(name: str) -> KmaName | None:
    """Parse a KMA file name; None when the name does not follow the convention."""
    m = _KMA_NAME.match(Path(name).name)
    if not m:
        return None
    time = datetime.strptime(m["stamp"], "%Y%m%d%H%M").replace(tzinfo=UTC)
    return KmaName(channel=m["channel"].lower(), area=m["area"].lower(), time=time)


@dataclass
class Frame:
    """All channels of one satellite at one observation time, as 8-bit grey images.

    ``data`` has shape (channels, height, width), dtype uint8, channel order as in ``channels``.
    """

    satellite: str
    time: datetime
    channels: tuple[str, ...]
    data: np.ndarray

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("frame time must be timezone-aware UTC")
        if self.data.ndim != 3 or self.data.shape[0] != len(self.channels):
            raise ValueError(f"frame data shape {self.data.shape} does not match channels {self.channels}")
        if self.data.dtype != np.uint8:
            raise ValueError(f"frame data must be uint8, got {self.data.dtype}")

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])


def shrink_size(width: int, height: int, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """Smallest (width, height) with the same aspect whose sides are both at least ``min_side``.

    Images already that small or smaller are left as they are.
    """
    scale = min_side / min(width, height)
    if scale >= 1.0:
        return width, height
    return max(min_side, math.ceil(width * scale - 1e-9)), max(min_side, math.ceil(height * scale - 1e-9))


def shrink(frame: Frame, min_side: int = MIN_SIDE) -> Frame:
    """Shrink every channel to the study size with area averaging (Pillow's BOX filter)."""
    size = shrink_size(frame.width, frame.height, min_side)
    if size == (frame.width, frame.height):
        return frame
    planes = [np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BOX)) for p in frame.data]
    return Frame(frame.satellite, frame.time, frame.channels, np.stack(planes))


def read_grey_png(path: str | Path) -> np.ndarray:
    """Read a PNG (grey or RGB) as an 8-bit grey image (ITU-R 601 luma, as Pillow computes it)."""
    with Image.open(path) as im:
        im.load()
        grey = im if im.mode == "L" else im.convert("RGB").convert("L")
        return np.asarray(grey, dtype=np.uint8)


def write_rgb_png(path: str | Path, grey: np.ndarray) -> None:
    """Write an 8-bit grey image as the RGB PNG KMA distributes (R = G = B)."""
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), mode="RGB").save(path, compress_level=1)
