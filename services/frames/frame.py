"""The frame model: one satellite observation time with all its channels; reading and shrinking channel images."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from satwatch.services.frames.profiles import ProfileError, SatelliteProfile, get_profile

#: COMS Meteorological Imager channels the study used (the COMS-1 profile's), in this fixed order.
CHANNELS: tuple[str, ...] = get_profile("COMS-1").channels


def kma_filename(channel: str, area: str, time: datetime) -> str:
    """KMA's file name for one COMS-1 channel image: the COMS-1 profile's naming, the one source of it."""
    return get_profile("COMS-1").filename(channel, time, area)


@dataclass
class Frame:
    """All channels of one satellite at one observation time, as 8-bit grey images.

    ``data`` has shape (channels, height, width), dtype uint8, channel order as in ``channels``.
    """

    satellite: str
    time: datetime
    channels: tuple[str, ...]
    data: np.ndarray
    #: Where the frame was read from (its files), for log lines and dead letters; empty for frames made in memory.
    origin: str = field(default="", compare=False, repr=False)
    #: The area (sector) of the files it was read from, which a claim check must name; None for frames not
    #: read from files (the simulator's, frames made in memory).
    area: str | None = field(default=None, compare=False, repr=False)

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


def shrink(frame: Frame, profile: SatelliteProfile | None = None) -> Frame:
    """The frame with the study's crop, grey and block mean applied to every plane, if it is at native size.

    A frame at any other size is taken as already preprocessed and returned as it is (the detector refuses
    sizes other than the profile's shrunk one; the publisher refuses one too large to travel inline). Other
    sizes are not resampled, not even at the profile's aspect: a resized image would only approximate the
    study's preprocessing of the native one, which the models and the exact metric assume. Grey planes count
    as R = G = B, so a grey level v becomes about 0.9999 v before truncation, exactly as the study's
    preprocessing treats a grey RGB image.
    """
    p = profile or get_profile(frame.satellite)
    if (frame.width, frame.height) != (p.native_width, p.native_height):
        return frame
    planes = [p.shrink_plane(plane) for plane in frame.data]
    return Frame(frame.satellite, frame.time, frame.channels, np.stack(planes), frame.origin, frame.area)


def read_image(path: str | Path, bit_depth: int = 8) -> np.ndarray:
    """A channel image as stored: (H, W, 3) RGB or (H, W) grey, uint8 or uint16 (deeper than 8 bits).

    Samples above the declared ``bit_depth`` are refused rather than clipped.
    """
    with Image.open(path) as im:
        im.load()
        if im.mode.startswith("I"):  # 16-bit grey PNGs open as I;16 or I (32-bit signed)
            arr = np.asarray(im)
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
                raise ProfileError(f"{Path(path).name}: samples outside 0..65535")
            arr = arr.astype(np.uint16)
        elif im.mode in ("RGB", "L"):
            arr = np.asarray(im)
        else:
            arr = np.asarray(im.convert("RGB"))
    top = 2**bit_depth - 1
    if int(arr.max(initial=0)) > top:
        raise ProfileError(
            f"{Path(path).name}: samples reach {int(arr.max())}, above the {bit_depth}-bit range the profile "
            f"declares; set the profile's bit_depth to the files' depth"
        )
    return arr


class ChannelSizeError(ValueError):
    """A frame whose channel files are not all one size: a shape fault (``wrong_shape``), not a corrupt file."""


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header alone."""
    with Image.open(path) as im:
        return im.size


def check_channel_sizes(paths: Mapping[str, str | Path], profile: SatelliteProfile) -> None:
    """Raise :class:`ChannelSizeError` naming each channel file whose size differs from the others'.

    Read from the files' headers before any is decoded, so the message gives the sizes as stored (width x
    height), against the size the other channels share and the profile's native size.
    """
    sizes = {c: image_size(p) for c, p in paths.items()}
    if len(set(sizes.values())) <= 1:
        return
    native = (profile.native_width, profile.native_height)
    shrunk = (profile.shrunk_width, profile.shrunk_height)
    counts = Counter(sizes.values())
    (common, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:  # no size most channels share: take the profile's native size, if any has it
        common = native if native in counts else common
    odd = [c for c, size in sizes.items() if size != common]

    def named(c: str) -> str:
        return f"{c} ({Path(paths[c]).name}) is {sizes[c][0]} wide x {sizes[c][1]} high"

    what = {native: f"the {profile.name} native size", shrunk: f"the {profile.name} shrunk size"}.get(
        common, f"not the {profile.name} native size {native[0]} x {native[1]}"
    )
    others = "the other channels" if n > 1 else "another channel"
    raise ChannelSizeError(
        f"{'; '.join(named(c) for c in odd)}; expected {common[0]} x {common[1]} like {others} ({what})"
    )


def load_plane(path: str | Path, profile: SatelliteProfile) -> np.ndarray:
    """One channel file as the 8-bit grey plane the detector sees.

    A file at the profile's native size gets the study's preprocessing (:meth:`SatelliteProfile.shrink_plane`);
    an 8-bit file of any other size (a shrunk or simulated archive) is taken as already preprocessed and only
    turned to grey. The detector still refuses frames whose size is not the profile's shrunk size.
    """
    image = read_image(path, profile.bit_depth)
    if image.shape[:2] == (profile.native_height, profile.native_width):
        return profile.shrink_plane(image)
    if image.dtype != np.uint8:
        raise ProfileError(
            f"{Path(path).name}: a {image.dtype} image of {image.shape[1]} x {image.shape[0]} is not at the "
            f"{profile.name} native size {profile.native_width} x {profile.native_height}, so it must be 8-bit"
        )
    if image.ndim == 2:
        return image
    return np.asarray(Image.fromarray(image[..., :3]).convert("L"), dtype=np.uint8)


def write_rgb_png(path: str | Path, grey: np.ndarray) -> None:
    """Write an 8-bit grey image as the RGB PNG KMA distributes (R = G = B)."""
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), mode="RGB").save(path, compress_level=1)
