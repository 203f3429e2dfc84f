"""Real COMS frames taken apart into what a texture scene is made of.

From a folder of real frames (the study's ``raw_images``: KMA-named RGB PNGs, 1500 x 1300) the bank keeps,
per channel, a clear-sky background, its day-night swing, and every frame's departure from that background
(the clouds and moisture that the scene will move, grow and fade). The yellow coastlines and grid are lifted
off first (filled from their neighbours) and kept apart, to be drawn back on top exactly where KMA draws
them; the title band's glyphs are kept to print each simulated frame's own time. The 3.7 um channel is not
stored as texture: by night it follows the other three channels closely (R^2 about 0.98 on the study's
frames), and by day it adds sunlight reflected by cloud, so it is modelled from them and the sun's height.

A bank is built at one of two scales: ``factor`` 1 (native pixels, for frames written at the real geometry)
or the profile's block (4 for COMS-1: the study's crop of 100 rows and 4 x 4 block mean, for the shrunk
frames the detector sees). Building reads every PNG (about half a minute); the result is cached as ``.npz``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from satwatch.services.frames.frame import read_image
from satwatch.services.frames.profiles import GREY_WEIGHTS, SatelliteProfile, get_profile
from satwatch.services.simulator.sun import cos_solar_zenith
from satwatch.services.simulator.titleband import BAND_ROWS, GlyphAtlas, title_text

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
#: Bumped whenever what a bank holds changes, so stale caches are rebuilt.
BANK_VERSION = 1
#: Channels kept as moving texture; swir is modelled from them (see module docstring).
TEXTURE_CHANNELS = ("ir01", "ir02", "wv")
#: Geography of the image area (below the cropped rows), as the procedural scene treats it.
LON_WEST, LON_EAST = 100.0, 158.0
LAT_NORTH, LAT_SOUTH = 55.0, 0.0


class TextureError(RuntimeError):
    """The folder holds no usable real frames for a texture bank."""


@dataclass
class TextureBank:
    """Textures, backgrounds and overlays of real frames at one scale (``factor`` native pixels per pixel)."""

    factor: int
    times: list[datetime]
    background: dict[str, F32]  # clear-sky level per channel (grey, 0..255)
    diurnal: dict[str, F32]  # amplitude a of background + a * cos(2 pi (local solar time - 13.5) / 24)
    departures: dict[str, npt.NDArray[np.int16]]  # (frames, H, W): frame minus background, rounded
    overlay_cover: F32  # fraction of each pixel covered by coastlines/grid (0 or 1 at factor 1)
    overlay_grey: F32  # grey the overlay adds where it covers (already weighted by its cover)
    overlay_rgb: npt.NDArray[np.uint8]  # (H, W, 3) overlay colours at factor 1 (zeros elsewhere)
    swir_night: npt.NDArray[np.float64]  # coefficients of swir from ir01, ir02, wv by night
    swir_sun: npt.NDArray[np.float64]  # coefficients of the sunlit part, times cos(solar zenith)
    atlas: GlyphAtlas
    crop_top: int  # native rows above the bank's first row

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.background["ir01"].shape
        return h, w

    def lat_lon(self) -> tuple[F32, F32]:
        """Latitude (column vector) and longitude (row vector) of the bank's pixels."""
        h, w = self.shape
        return lat_lon(h, w, self.factor, self.crop_top)

    def swir(self, ir01: F32, ir02: F32, wv: F32, mu0: npt.ArrayLike) -> F32:
        """The 3.7 um channel from the other three and the sun's height (mu0 = cos of the zenith angle)."""
        c = self.swir_sun
        sun = np.asarray(mu0, dtype=np.float32) * (c[0] + c[1] * ir01 + c[2] * ir01**2)
        return (_apply_terms(self.swir_night, ir01, ir02, wv) + sun).astype(np.float32)


def lat_lon(h: int, w: int, factor: int, crop_top: int) -> tuple[F32, F32]:
    """Latitude (column) and longitude (row) of an h x w grid of ``factor``-pixel blocks below ``crop_top``.

    The image area (native rows 100-1299) is taken as lat/lon linear, 55-0 N and 100-158 E, as the
    procedural scene does: plenty for the sun's height.
    """
    rows = (np.arange(h, dtype=np.float32) + 0.5) * factor + crop_top - 100.0
    lat = LAT_NORTH + (LAT_SOUTH - LAT_NORTH) * rows / 1200.0
    lon = np.linspace(LON_WEST, LON_EAST, w, dtype=np.float32)
    return lat.astype(np.float32)[:, None], lon[None, :]


def _apply_terms(c: npt.NDArray[np.float64], ir01: F32, ir02: F32, wv: F32) -> F32:
    return (c[0] * ir01 + c[1] * ir02 + c[2] * wv + c[3] + c[4] * ir01**2 + c[5] * ir01 * ir02).astype(np.float32)


def _swir_terms(ir01: F32, ir02: F32, wv: F32) -> npt.NDArray[np.float64]:
    return np.stack([ir01, ir02, wv, np.ones_like(ir01), ir01**2, ir01 * ir02], axis=-1).astype(np.float64)


def _frame_folders(root: Path, profile: SatelliteProfile) -> dict[datetime, dict[str, Path]]:
    found: dict[datetime, dict[str, Path]] = {}
    for path in sorted(root.rglob(f"*.{profile.image_format}")):
        parsed = profile.parse_filename(path.name)
        if parsed is None:
            continue
        found.setdefault(parsed.time, {})[parsed.channel] = path
    return {t: files for t, files in sorted(found.items()) if all(c in files for c in (*TEXTURE_CHANNELS, "swir"))}


def _fill(grey: F32, valid: npt.NDArray[np.bool_], sigma: float) -> F32:
    """Pixels outside ``valid`` filled by a normalised Gaussian average of valid neighbours."""
    num = ndimage.gaussian_filter(np.where(valid, grey, 0.0).astype(np.float32), sigma)
    den = ndimage.gaussian_filter(valid.astype(np.float32), sigma)
    filled = num / np.maximum(den, 1e-6)
    return np.where(valid, grey, filled).astype(np.float32)


def _pool(a: F32, factor: int, crop_top: int) -> F32:
    a = a[crop_top:]
    h, w = a.shape[0] // factor, a.shape[1] // factor
    return a[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3)).astype(np.float32)


def _cache_key(files: dict[datetime, dict[str, Path]], factor: int) -> str:
    h = hashlib.sha256(f"v{BANK_VERSION}-f{factor}".encode())
    for t, chans in files.items():
        for c, p in sorted(chans.items()):
            h.update(f"{t.isoformat()}{c}{p.name}{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def build_bank(
    root: str | Path, factor: int = 4, cache_dir: str | Path | None = None, profile: str = "COMS-1"
) -> TextureBank:
    """The texture bank of the real frames under ``root`` at ``factor`` (1 native, else the profile's block)."""
    prof = get_profile(profile)
    if factor not in (1, prof.block):
        raise ValueError(f"factor must be 1 (native) or {prof.block} (the {prof.name} shrunk scale), not {factor}")
    root = Path(root)
    if not root.is_dir():
        raise TextureError(f"no folder of real frames at {root}: point simulator.textures at one (KMA-named PNGs)")
    files = _frame_folders(root, prof)
    if len(files) < 2:
        raise TextureError(
            f"{root} holds {len(files)} complete real {prof.name} frame(s); a texture bank needs two or more"
        )
    cache: Path | None = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"texturebank-{prof.name}-{_cache_key(files, factor)}.npz"
        if cache.exists():
            try:
                return _load(cache)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("texture bank cache %s unreadable (%s); rebuilding", cache, exc)
    bank = _build(files, factor, prof)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        _save(bank, tmp)
        tmp.replace(cache)
    return bank


def _build(files: dict[datetime, dict[str, Path]], factor: int, prof: SatelliteProfile) -> TextureBank:
    times = list(files)
    crop = 0 if factor == 1 else prof.crop_top
    first = read_image(files[times[0]]["ir01"]).astype(np.int16)
    if first.ndim != 3 or first.shape[:2] != (prof.native_height, prof.native_width):
        raise TextureError(
            f"texture frames must be {prof.name} native RGB ({prof.native_width} x {prof.native_height})"
        )
    # Coastlines and grid are the pixels that are not grey; the title band is its own thing.
    overlay = (first[..., 0] != first[..., 2]) | (first[..., 1] != first[..., 2])
    overlay[:BAND_ROWS] = False
    valid = ~overlay
    valid[:BAND_ROWS] = False
    weights = np.asarray(GREY_WEIGHTS, dtype=np.float32)
    overlay_rgb = np.where(overlay[..., None], first, 0).astype(np.uint8)
    overlay_grey_native = (overlay_rgb.astype(np.float32) @ weights) * overlay
    atlas = GlyphAtlas()
    grey: dict[str, list[F32]] = {c: [] for c in (*TEXTURE_CHANNELS, "swir")}
    for t, chans in files.items():
        for c in grey:
            rgb = read_image(chans[c])
            atlas.learn(rgb, title_text(c, t))
            # Grey pixels have R = G = B, so the red sample is the grey level.
            g = _fill(rgb[..., 0].astype(np.float32), valid, sigma=2.0)
            grey[c].append(g if factor == 1 else _pool(g, factor, crop))
    stacks = {c: np.stack(v) for c, v in grey.items()}
    nh, nw = stacks["ir01"].shape[1:]
    lat, lon = lat_lon(nh, nw, factor, crop)
    sigma = 3.0 / factor if factor == 1 else 1.0
    background: dict[str, F32] = {}
    diurnal: dict[str, F32] = {}
    departures: dict[str, npt.NDArray[np.int16]] = {}
    lst_cos = [np.cos(2 * np.pi * (((t.hour + t.minute / 60.0 + lon / 15.0) % 24.0) - 13.5) / 24.0) for t in times]
    n_part = max(1, len(times) // 4)
    for c in TEXTURE_CHANNELS:
        s = stacks[c]
        if c == "wv":
            # Water vapour has no clear-sky floor to speak of: its background is the smooth mean field.
            b0 = ndimage.gaussian_filter(s.mean(axis=0), 40.0 / factor).astype(np.float32)
            amp = np.zeros_like(b0)
        else:
            # Colder is brighter, so the warmest (darkest) look of a pixel is its clear sky; early and late
            # floors give the day-night swing of the surface under it (land cools after sunset, sea hardly).
            early = ndimage.gaussian_filter(np.percentile(s[:n_part], 10, axis=0), sigma * 4)
            late = ndimage.gaussian_filter(np.percentile(s[-n_part:], 10, axis=0), sigma * 4)
            c_early = np.mean(lst_cos[:n_part], axis=0)
            c_late = np.mean(lst_cos[-n_part:], axis=0)
            step = c_late - c_early
            amp = np.where(np.abs(step) > 0.2, (late - early) / np.where(np.abs(step) > 0.2, step, 1.0), 0.0)
            amp = np.clip(ndimage.gaussian_filter(amp, sigma * 8), -30.0, 0.0).astype(np.float32)
            floor = ndimage.gaussian_filter(np.percentile(s, 10, axis=0), sigma).astype(np.float32)
            mean_cos = np.mean(lst_cos, axis=0)
            b0 = (floor - amp * mean_cos).astype(np.float32)
        background[c] = b0
        diurnal[c] = amp.astype(np.float32)
        deps = [np.rint(s[i] - (b0 + amp * lst_cos[i])) for i in range(len(times))]
        departures[c] = np.stack(deps).astype(np.int16)
    swir_night, swir_sun = _fit_swir(stacks, times, lat, lon)
    if factor == 1:
        cover = overlay.astype(np.float32)
        ov_grey = overlay_grey_native.astype(np.float32)
    else:
        cover = _pool(overlay.astype(np.float32), factor, crop)
        ov_grey = _pool(overlay_grey_native.astype(np.float32), factor, crop)
    return TextureBank(
        factor,
        times,
        background,
        diurnal,
        departures,
        cover,
        ov_grey,
        overlay_rgb if factor == 1 else np.zeros((1, 1, 3), np.uint8),
        swir_night,
        swir_sun,
        atlas,
        crop,
    )


def _fit_swir(
    stacks: dict[str, npt.NDArray[np.float32]], times: list[datetime], lat: F32, lon: F32
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Least-squares swir = f(ir01, ir02, wv) where the sun is down, then the sunlit residual against mu0."""
    rng = np.random.default_rng(0)
    h, w = stacks["ir01"].shape[1:]
    pick = rng.integers(0, h * w, size=min(h * w, 40_000))
    rows: list[npt.NDArray[np.float64]] = []
    target: list[npt.NDArray[np.float64]] = []
    mus: list[npt.NDArray[np.float64]] = []
    for i, t in enumerate(times):
        mu0 = np.broadcast_to(cos_solar_zenith(lat, lon, t), (h, w)).ravel()[pick]
        x = _swir_terms(*(stacks[c][i].ravel()[pick] for c in TEXTURE_CHANNELS))
        rows.append(x)
        target.append(stacks["swir"][i].ravel()[pick].astype(np.float64))
        mus.append(mu0)
    x_all, y_all, mu_all = np.concatenate(rows), np.concatenate(target), np.concatenate(mus)
    night = mu_all < 0.01
    if night.sum() < 1000:
        raise TextureError("the texture frames hold too little night to model the 3.7 um channel; add night frames")
    night_coef = np.linalg.lstsq(x_all[night], y_all[night], rcond=None)[0]
    day = mu_all >= 0.05
    if day.sum() >= 1000:
        resid = y_all[day] - x_all[day] @ night_coef
        ir = x_all[day, 0]
        design = mu_all[day, None] * np.stack([np.ones_like(ir), ir, ir**2], axis=1)
        sun_coef = np.linalg.lstsq(design, resid, rcond=None)[0]
    else:
        sun_coef = np.zeros(3)
    return np.asarray(night_coef, dtype=np.float64), np.asarray(sun_coef, dtype=np.float64)


def _save(bank: TextureBank, path: Path) -> None:
    chars, glyphs = bank.atlas.to_array()
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "factor": np.asarray(bank.factor),
        "crop_top": np.asarray(bank.crop_top),
        "times": np.asarray([t.isoformat() for t in bank.times]),
        "overlay_cover": bank.overlay_cover,
        "overlay_grey": bank.overlay_grey,
        "overlay_rgb": bank.overlay_rgb,
        "swir_night": bank.swir_night,
        "swir_sun": bank.swir_sun,
        "glyph_chars": np.asarray(chars),
        "glyphs": glyphs,
    }
    for c in TEXTURE_CHANNELS:
        arrays[f"background_{c}"] = bank.background[c]
        arrays[f"diurnal_{c}"] = bank.diurnal[c]
        arrays[f"departures_{c}"] = bank.departures[c]
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def _load(path: Path) -> TextureBank:
    with np.load(path) as z:
        return TextureBank(
            factor=int(z["factor"]),
            times=[datetime.fromisoformat(str(s)) for s in z["times"]],
            background={c: z[f"background_{c}"] for c in TEXTURE_CHANNELS},
            diurnal={c: z[f"diurnal_{c}"] for c in TEXTURE_CHANNELS},
            departures={c: z[f"departures_{c}"] for c in TEXTURE_CHANNELS},
            overlay_cover=z["overlay_cover"],
            overlay_grey=z["overlay_grey"],
            overlay_rgb=z["overlay_rgb"],
            swir_night=z["swir_night"],
            swir_sun=z["swir_sun"],
            atlas=GlyphAtlas.from_array(str(z["glyph_chars"]), z["glyphs"]),
            crop_top=int(z["crop_top"]),
        )
