"""Satellite profiles: what a satellite's frames look like, as configuration rather than code.

A profile names the satellite's channels, how its files are named, its cadence, native size and bit depth,
how a frame is shrunk before it travels (the study's crop, grey and block mean), and how a window is cut.
Built-in profiles cover COMS-1, GK-2A, Himawari-8/9, MTSAT-1R/2 and GMS-5; a user adds one in TOML
(``[[profile]]`` tables, see :func:`load_profiles`) without code. Profiles are looked up by satellite name
through one registry (:func:`get_profile`), the pattern every pluggable concern here follows.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: ITU-R 601 luma weights, as the study's notebook and reference program apply them to RGB.
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


class ProfileError(ValueError):
    """A profile that is missing, malformed or does not fit the frame at hand."""


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, flags=re.IGNORECASE)


@dataclass(frozen=True)
class ParsedName:
    """What a file name says: channel, area and observation time (UTC)."""

    channel: str
    area: str
    time: datetime


class SatelliteProfile(BaseModel):
    """One satellite's frame geometry, naming, cadence, preprocessing and window rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="satellite name, the Kafka key, e.g. COMS-1")
    channels: tuple[str, ...] = Field(min_length=1, description="channel names, in the order frames carry them")
    filename_patterns: tuple[str, ...] = Field(
        min_length=1,
        description="regular expressions with named groups channel, stamp (YYYYMMDDHHMM) and optionally area",
    )
    filename_template: str = Field(
        description="how satwatch names a file it writes: {channel}, {area} and {stamp} are filled in"
    )
    default_area: str = "fd"
    cadence_minutes: float = Field(gt=0, description="nominal time between frames")
    native_width: int = Field(gt=0)
    native_height: int = Field(gt=0)
    bit_depth: int = Field(8, ge=1, le=16, description="bits per sample of the native files")
    image_format: str = Field("png", description="file format of the native images (png or gif)")
    crop_top: int = Field(100, ge=0, description="rows dropped from the top before shrinking (title band)")
    min_side: int = Field(300, gt=0, description="the block size k is the largest with min(H, W) // k >= this")
    window_hours: float = Field(6.0, gt=0, description="a window covers at most this many hours")
    window_frames: int = Field(20, ge=1, description="frames in a full window (the latest ones in its span)")
    encoder: str | None = Field(
        None,
        description="folder (or name of a shipped one) of the encoder serving this satellite's embedding when "
        "no detector.model_dir is set; none: the shipped root encoder",
    )
    autoencoder: str | None = Field(
        None,
        description="folder (or name of a shipped one, e.g. autoencoder-v2) of the autoencoder serving its anomaly "
        "score when no detector.model_dir is set; none: the shipped root autoencoder",
    )
    description: str = ""

    @field_validator("filename_patterns")
    @classmethod
    def _patterns_compile(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            try:
                groups = re.compile(p).groupindex
            except re.error as exc:
                raise ValueError(f"file-name pattern {p!r} does not compile: {exc}") from exc
            if "channel" not in groups or "stamp" not in groups:
                raise ValueError(f"file-name pattern {p!r} needs the named groups 'channel' and 'stamp'")
        return v

    @model_validator(mode="after")
    def _fits(self) -> SatelliteProfile:
        if self.crop_top >= self.native_height:
            raise ValueError(f"crop_top {self.crop_top} removes the whole {self.native_height}-row frame")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels repeat: {self.channels}")
        return self

    # -- geometry -------------------------------------------------------------------------------------
    @property
    def block(self) -> int:
        """The study's k: the largest integer with min(native height, width) // k >= min_side (at least 1)."""
        return block_size(self.native_width, self.native_height, self.min_side)

    @property
    def shrunk_width(self) -> int:
        return self.native_width // self.block

    @property
    def shrunk_height(self) -> int:
        return (self.native_height - self.crop_top) // self.block

    @property
    def shrunk_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of a shrunk frame as it travels and as the detector expects it."""
        return (len(self.channels), self.shrunk_height, self.shrunk_width)

    @property
    def cadence(self) -> timedelta:
        return timedelta(minutes=self.cadence_minutes)

    @property
    def window_span(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    # -- naming ---------------------------------------------------------------------------------------
    def parse_filename(self, name: str) -> ParsedName | None:
        """Channel, area and time from a file name in this satellite's naming; None if it is not one."""
        base = Path(name).name if "/" in name or "\\" in name else name
        for pattern in self.filename_patterns:
            m = _compiled(pattern).fullmatch(base)
            if m is None:
                continue
            st = m["stamp"]  # 12 digits (the patterns say so); strptime costs 10x more over a large archive
            try:
                time = datetime(int(st[:4]), int(st[4:6]), int(st[6:8]), int(st[8:10]), int(st[10:12]), tzinfo=UTC)
            except ValueError:
                return None
            groups = m.groupdict()
            area = (groups.get("area") or self.default_area).lower()
            return ParsedName(channel=m["channel"].lower(), area=area, time=time)
        return None

    def filename(self, channel: str, time: datetime, area: str | None = None) -> str:
        """The file name satwatch writes for one channel image of this satellite."""
        stamp = f"{time.astimezone(UTC):%Y%m%d%H%M}"
        return self.filename_template.format(channel=channel, area=area or self.default_area, stamp=stamp)

    # -- preprocessing --------------------------------------------------------------------------------
    def shrink_plane(self, image: np.ndarray) -> np.ndarray:
        """The study's preprocessing of one native channel image to the shrunk 8-bit grey plane.

        ``image`` is (H, W, 3) RGB or (H, W) grey, 8-bit or up to the profile's bit depth. Samples are
        scaled to [0, 1] by the declared depth, the top ``crop_top`` rows dropped, RGB turned to grey as
        0.2989 R + 0.5870 G + 0.1140 B (grey input counts as R = G = B), mean-pooled in k x k blocks (a
        partial block at the right or bottom edge is dropped), multiplied by 255 and truncated to uint8.
        This reproduces the study's own output byte for byte.
        """
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ProfileError(f"{self.name}: a channel image must be (H, W) grey or (H, W, 3) RGB, got {image.shape}")
        h, w = image.shape[:2]
        if (w, h) != (self.native_width, self.native_height):
            raise ProfileError(
                f"{self.name}: image is {w} wide x {h} high; the profile expects "
                f"{self.native_width} x {self.native_height} (width x height)"
            )
        return study_shrink(image, self.bit_depth, self.crop_top, self.block)


def block_size(width: int, height: int, min_side: int) -> int:
    """Largest k with min(height, width) // k >= min_side; 1 when the image is already that small."""
    return max(1, min(width, height) // min_side)


def study_shrink(image: np.ndarray, bit_depth: int = 8, crop_top: int = 100, block: int = 4) -> np.ndarray:
    """Crop, grey, k-block mean and truncation exactly as the study's notebook does (see SatelliteProfile)."""
    top = 2**bit_depth - 1
    if image.dtype.kind not in "ui":
        raise ProfileError(f"image samples must be integers, got {image.dtype}")
    if int(image.max(initial=0)) > top:
        raise ProfileError(f"image holds values up to {int(image.max())}, above the declared {bit_depth}-bit range")
    cropped = image[crop_top:]
    # Each term w * (v / top) takes one of 2**bit_depth values: look them up instead of converting the whole
    # image to float64 (about 5x faster); the sum runs in the same order, so the result is bit for bit the same.
    levels = np.arange(top + 1, dtype=np.float64) / top
    if cropped.ndim == 3:
        luts = [w * levels for w in GREY_WEIGHTS]
        grey = luts[0][cropped[..., 0]] + luts[1][cropped[..., 1]] + luts[2][cropped[..., 2]]
    else:
        grey = levels[cropped] * sum(GREY_WEIGHTS)
    h, w = grey.shape
    hk, wk = h // block, w // block
    if hk == 0 or wk == 0:
        raise ProfileError(f"image of {w} x {h} after cropping is smaller than one {block}-pixel block")
    pooled = grey[: hk * block, : wk * block].reshape(hk, block, wk, block).mean(axis=(1, 3))
    return (pooled * 255).astype(np.uint8)


def _kma(prefix: str, ext: str = "png") -> str:
    return rf"{prefix}_(?P<channel>[a-z0-9]+)_(?P<area>[a-z0-9]+)_(?P<stamp>\d{{12}})\.{ext}"


def _kma_style(
    name: str,
    prefix: str,
    channels: tuple[str, ...],
    cadence: float,
    area: str,
    description: str,
    height: int = 1300,
    extra_patterns: tuple[str, ...] = (),
    autoencoder: str | None = None,
    encoder: str | None = None,
) -> SatelliteProfile:
    """A satellite distributed as KMA-style PNGs ``{prefix}_{channel}_{area}_{stamp}.png``, 1500 pixels wide."""
    return SatelliteProfile(
        name=name,
        channels=channels,
        filename_patterns=(_kma(prefix), *extra_patterns),
        filename_template=f"{prefix}_{{channel}}_{{area}}_{{stamp}}.png",
        default_area=area,
        cadence_minutes=cadence,
        native_width=1500,
        native_height=height,
        encoder=encoder,
        autoencoder=autoencoder,
        description=description,
    )


def _himawari(number: int, years: str) -> SatelliteProfile:
    """Himawari-8 and -9 differ only in name and naming: the AHI's 16 bands, 14 of them as the study lists."""
    jma = rf"hs_h{number:02d}_(?P<stamp>\d{{12}})_(?P<channel>b\d{{2}})_(?P<area>[a-z0-9]+)\.png"
    bands = tuple(f"b{b:02d}" for b in range(1, 15))
    text = f"Himawari-{number} Advanced Himawari Imager (14 of its 16 bands as the study lists), {years}"
    return _kma_style(f"Himawari-{number}", f"himawari{number}_ahi", bands, 10, "ea", text, extra_patterns=(jma,))


def _mtsat(name: str, years: str) -> SatelliteProfile:
    """MTSAT-1R and -2 share the imager: IR1 10.8, IR2 12.0, IR3 6.8 (water vapour) and IR4 3.7 um."""
    text = f"{name} imager, IR1 10.8, IR2 12.0, IR3 6.8 (water vapour), IR4 3.7 um; {years}"
    prefix = name.lower().replace("-", "") + "_imager"
    return _kma_style(name, prefix, ("ir1", "ir2", "ir3", "ir4"), 30, "ea", text)


#: GEO-KOMPSAT-2A's 16 AMI channels.
GK2A_CHANNELS = tuple(
    "vi004 vi005 vi006 vi008 nr013 nr016 sw038 wv063 wv069 wv073 ir087 ir096 ir105 ir112 ir123 ir133".split()
)


#: Built-in profiles, from the study's facts (DESIGN.md section 2) and the operators' public documentation.
BUILTIN_PROFILES: tuple[SatelliteProfile, ...] = (
    _kma_style(
        "COMS-1",
        "coms_mi_le1b",
        ("ir01", "ir02", "swir", "wv"),
        15,
        "ea040ps",
        "COMS Meteorological Imager, KMA's RGB PNG products (the study's data), 2010-2020",
        # Trained on real COMS cloud fields (the texture scene); the root set knows only the procedural scene.
        autoencoder="autoencoder-v2",
        # A count sketch (nothing learned) of the windows' part-mean histograms: on real-texture and real windows
        # it tracks the metric better than the root encoder v2.0 (BENCHMARKS.md, "Encoder v3").
        encoder="encoder-v3",
    ),
    _kma_style(
        "GK-2A",
        "gk2a_ami_le1b",
        GK2A_CHANNELS,
        10,
        "ea020lc",
        "GEO-KOMPSAT-2A Advanced Meteorological Imager, 16 channels every 10 minutes, 2019-",
        height=1332,
    ),
    _himawari(8, "2015-2022"),
    _himawari(9, "2022-"),
    _mtsat("MTSAT-1R", "2005-2010"),
    _mtsat("MTSAT-2", "2010-2015"),
    SatelliteProfile(
        name="GMS-5",
        channels=("ir1", "ir2", "wv"),
        filename_patterns=(r"gms5_vissr_(?P<channel>[a-z0-9]+)_(?P<area>[a-z0-9]+)_(?P<stamp>\d{12})\.gif",),
        filename_template="gms5_vissr_{channel}_{area}_{stamp}.gif",
        default_area="fd",
        cadence_minutes=180,
        native_width=512,
        native_height=512,
        image_format="gif",
        crop_top=0,
        min_side=256,
        window_hours=24.0,
        window_frames=8,
        description="GMS-5 VISSR, 3 channels 3-hourly as 512 x 512 GIF (1995-2003); a window is one day",
    ),
)

_REGISTRY: dict[str, SatelliteProfile] = {p.name: p for p in BUILTIN_PROFILES}


def register_profile(profile: SatelliteProfile) -> None:
    """Add or replace a profile (a user's TOML profile replaces a built-in of the same name)."""
    _REGISTRY[profile.name] = profile


def get_profile(name: str) -> SatelliteProfile:
    """The profile of a satellite; a clear error naming the known ones when there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ProfileError(
            f"no satellite profile named {name!r} (known: {known}); add one in a profiles TOML file"
        ) from None


def profile_names() -> list[str]:
    return sorted(_REGISTRY)


def load_profiles(path: str | Path) -> list[SatelliteProfile]:
    """Read ``[[profile]]`` tables from a TOML file and register them; unknown keys are refused."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{p}: {exc}") from exc
    unknown = set(data) - {"profile"}
    if unknown:
        raise ProfileError(f"{p}: unknown top-level keys {sorted(unknown)}; profiles go in [[profile]] tables")
    out = []
    for i, table in enumerate(data.get("profile", [])):
        try:
            profile = SatelliteProfile.model_validate(table)
        except ValueError as exc:
            raise ProfileError(f"{p}: profile {i + 1}: {exc}") from exc
        register_profile(profile)
        out.append(profile)
    return out


def recognise(name: str, profiles: list[SatelliteProfile] | None = None) -> tuple[SatelliteProfile, ParsedName] | None:
    """Which profile's naming a file name follows (first match wins); None when none does."""
    for profile in profiles if profiles is not None else list(_REGISTRY.values()):
        parsed = profile.parse_filename(name)
        if parsed is not None:
            return profile, parsed
    return None
