"""Synthetic geostationary infrared scenes: a multi-day, 4-channel COMS-like stream with labelled events.

The simulator works in brightness temperature (kelvin) and turns it into 8-bit grey levels the way COMS
counts behave: a count is linear in Planck radiance at the channel's central wavelength,
``count = G0 * (1 - B(lambda, T) / B(lambda, T_hot))`` (fitted to the COMS IR1 and WV calibration tables to
within 0.1 and 0.5 counts). So cold cloud tops are bright and warm ground is dark, as KMA displays them.

Weather is a cloud field that is advected by a smooth, slowly varying wind, relaxed towards evolving
fractal (spectral) noise so clouds grow and decay, over a fixed land/sea background with a diurnal cycle.
Events (convection, vortex, sensor faults) are overlays computed from time alone, so a run with events
and the same run without them share every pixel outside the events.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from satwatch.services.frames.frame import CHANNELS, Frame, write_rgb_png
from satwatch.services.frames.profiles import SatelliteProfile, get_profile
from satwatch.services.simulator.event import EventContext, SimEvent, _iso, _parse_time
from satwatch.services.simulator.interface import EVENT_KINDS, WEATHER_KINDS, get_event_kind
from satwatch.services.simulator.sun import cos_solar_zenith

if TYPE_CHECKING:
    from satwatch.services.config import SimulatorSettings

F32 = npt.NDArray[np.float32]

#: Bumped whenever the pixels a seed produces change.
GENERATOR_VERSION = 1
#: The scenes a simulation can render: synthetic fields, or real COMS cloud fields (services.simulator.texture).
SCENES = ("procedural", "texture")

# Central wavelength (um), temperature of count 0 (K) and full-scale count of each channel's grey mapping.
# ir01 and wv are fitted to the COMS IDF tables. ir02 (no table here) is shown with the ir01 curve, so equal
# temperatures give equal grey and the split-window difference shows directly; swir follows the same scheme
# at 3.75 um.
CHANNEL_MAPPING: dict[str, tuple[float, float, float]] = {
    "ir01": (10.8, 347.5, 237.7),
    "ir02": (10.8, 347.5, 237.7),
    "swir": (3.75, 350.0, 237.7),
    "wv": (6.7, 341.0, 236.9),
}
_C1 = 1.191042e8  # 2 h c^2 in W m^-2 sr^-1 um^4
_C2 = 1.4387769e4  # h c / k in um K
#: Solar radiance reflected by a white Lambertian surface at 3.75 um, sun overhead (W m^-2 sr^-1 um^-1).
_SOLAR_375 = 11.9 / math.pi

# Geometry of the simulated sector (the study's ea040ps East-Asia frame, treated as lat/lon linear).
LON_WEST, LON_EAST = 100.0, 158.0
LAT_NORTH, LAT_SOUTH = 55.0, 0.0
SUBSATELLITE_LON = 128.2
#: Sector width in km, used to turn winds into pixels per frame.
SECTOR_KM = 5800.0
#: Length scales below are given for this reference width and scaled with the frame.
REF_WIDTH = 375


def planck(wavelength_um: float, kelvin: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Planck spectral radiance (W m^-2 sr^-1 um^-1)."""
    t = np.maximum(np.asarray(kelvin, dtype=np.float64), 1.0)
    return np.asarray(_C1 / (wavelength_um**5 * np.expm1(_C2 / (wavelength_um * t))))


def kelvin_to_count(kelvin: npt.ArrayLike, channel: str) -> npt.NDArray[np.float64]:
    """Brightness temperature to (unrounded) grey level with the stated COMS-like mapping."""
    lam, t_hot, g0 = CHANNEL_MAPPING[channel]
    return np.asarray(g0 * (1.0 - planck(lam, kelvin) / planck(lam, t_hot)))


def count_to_kelvin(count: npt.ArrayLike, channel: str) -> npt.NDArray[np.float64]:
    """Inverse of :func:`kelvin_to_count`; grey levels at or above full scale have no temperature (NaN)."""
    lam, t_hot, g0 = CHANNEL_MAPPING[channel]
    c = np.asarray(count, dtype=np.float64)
    radiance = (1.0 - c / g0) * planck(lam, t_hot)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _C2 / (lam * np.log1p(_C1 / (lam**5 * radiance)))
    return np.where(radiance > 0, t, np.nan)


def _radiance_to_count(radiance: npt.NDArray[Any], channel: str) -> npt.NDArray[Any]:
    lam, t_hot, g0 = CHANNEL_MAPPING[channel]
    return g0 * (1.0 - radiance / float(planck(lam, t_hot)))


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated stream; the same config always gives the same bytes."""

    seed: int = 7
    width: int = 375
    height: int = 300
    start: datetime = datetime(2024, 7, 1, tzinfo=UTC)
    cadence_minutes: int = 15
    days: float = 2.0
    events: bool = True
    satellite: str = "COMS-1"
    area: str = "ea040ps"
    #: Seed of the land mask and terrain. A real satellite always looks at the same coastline, so runs meant
    #: as one satellite's history share it; None draws it from ``seed`` (each seed its own coastline).
    geography: int | None = None
    #: ``procedural`` (synthetic fields) or ``texture`` (real COMS cloud fields moved and evolved).
    scene: str = "procedural"
    #: Folder of real frames the texture scene takes its clouds from.
    textures: str = "../shared/data/study/raw_images"

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f"frame size {self.width}x{self.height} is too small; use at least 32x32")
        if self.cadence_minutes <= 0:
            raise ValueError("cadence_minutes must be positive")
        if self.days <= 0:
            raise ValueError("days must be positive")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware UTC")
        if self.scene not in SCENES:
            raise ValueError(f"unknown scene {self.scene!r}; known: {', '.join(SCENES)}")

    @classmethod
    def from_settings(cls, s: SimulatorSettings, **overrides: Any) -> SimConfig:
        """Build from the ``[simulator]`` settings section; keyword overrides win (None is ignored)."""
        values: dict[str, Any] = {
            "seed": s.seed,
            "width": s.width,
            "height": s.height,
            "start": _parse_time(s.start),
            "cadence_minutes": s.cadence_minutes,
            "days": s.days,
            "events": s.events,
            "satellite": s.satellite,
            "area": s.area,
            "geography": s.geography,
            "scene": s.scene,
            "textures": s.textures,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values["start"], str):
            values["start"] = _parse_time(values["start"])
        return cls(**values)

    @property
    def n_frames(self) -> int:
        return max(1, int(math.floor(self.days * 24 * 60 / self.cadence_minutes + 1e-9)))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = _iso(self.start)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SimConfig:
        keys = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in d.items() if k in keys}
        values["start"] = _parse_time(values["start"])
        return cls(**values)


class SceneSimulator:
    """Generates the frames of one :class:`SimConfig` in time order; state advances frame by frame."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        w, h = cfg.width, cfg.height
        self.scale = w / REF_WIDTH
        step = timedelta(minutes=cfg.cadence_minutes)
        self.times: list[datetime] = [cfg.start.astimezone(UTC) + i * step for i in range(cfg.n_frames)]
        self._dt_h = cfg.cadence_minutes / 60.0
        self._km_per_px = SECTOR_KM / w
        rng = np.random.default_rng([cfg.seed, 1])
        self._rng_seed = cfg.seed

        # Pixel geography (1-D, broadcast where needed).
        self.lon = np.linspace(LON_WEST, LON_EAST, w, dtype=np.float32)
        self.lat = np.linspace(LAT_NORTH, LAT_SOUTH, h, dtype=np.float32)
        self._land, self._elev = self._make_land(rng)
        if cfg.geography is not None and cfg.geography != cfg.seed:
            # The seed's own draw above is kept (and discarded) so the weather stays that of ``seed``.
            self._land, self._elev = self._make_land(np.random.default_rng([cfg.geography, 1]))

        # Spectral cloud forcing on a padded periodic domain so the wrap-around never shows.
        self._ph, self._pw = _fast_len(int(h * 1.3) + 8), _fast_len(int(w * 1.3) + 8)
        ky = np.fft.fftfreq(self._ph).astype(np.float32)[:, None]
        kx = np.fft.rfftfreq(self._pw).astype(np.float32)[None, :]
        k_ref = np.sqrt(kx**2 + ky**2) * self.scale  # cycles per reference-frame pixel
        amp = (k_ref + 1.0 / 200.0) ** -1.75
        amp[0, 0] = 0.0
        # Small scales live shorter (eddy turnover ~ wavelength^(2/3)); 12 h at 50 reference pixels.
        wavelength = 1.0 / np.maximum(k_ref, 1e-3)
        lifetime_h = 12.0 * (wavelength / 50.0) ** (2.0 / 3.0)
        omega = rng.standard_normal(amp.shape).astype(np.float32) * (2 * np.pi / lifetime_h)
        # Steering wind (px per frame) moves the whole forcing field; local winds act on the state.
        ang = rng.uniform(-0.35, 0.35)
        speed_kmh = rng.uniform(35.0, 60.0)  # westerly steering flow
        self._steer = (
            speed_kmh * math.cos(ang) * self._dt_h / self._km_per_px,
            speed_kmh * math.sin(ang) * self._dt_h / self._km_per_px,
        )
        shift = -2 * np.pi * (kx * self._steer[0] + ky * self._steer[1])
        phase0 = rng.uniform(0, 2 * np.pi, amp.shape).astype(np.float32)
        self._spec = (amp * np.exp(1j * phase0)).astype(np.complex64)
        self._rot = np.exp(1j * (omega * self._dt_h + shift)).astype(np.complex64)

        # Wind perturbation: a few large stream-function modes with slowly varying amplitudes.
        n_modes = 5
        self._modes = [
            (
                rng.uniform(-1, 1) * 2 * np.pi / (rng.uniform(150, 500) * self.scale),
                rng.uniform(-1, 1) * 2 * np.pi / (rng.uniform(150, 500) * self.scale),
                rng.uniform(0, 2 * np.pi),
                rng.uniform(0.3, 0.9),
                2 * np.pi / rng.uniform(24.0, 96.0),
                rng.uniform(0, 2 * np.pi),
            )
            for _ in range(n_modes)
        ]
        # Slow cloud-cover modulation (hours) so cover is not the same every frame.
        self._cover_phase = rng.uniform(0, 2 * np.pi, 2)
        # Upper-level moisture: a coarse spectral field of its own.
        self._block = max(2, int(round(3 * self.scale)))
        ch, cw = h // self._block, w // self._block
        self._mh, self._mw = _fast_len(int(ch * 1.3) + 4), _fast_len(int(cw * 1.3) + 4)
        mky = np.fft.fftfreq(self._mh).astype(np.float32)[:, None]
        mkx = np.fft.rfftfreq(self._mw).astype(np.float32)[None, :]
        mk = np.sqrt(mkx**2 + mky**2) * self.scale * self._block
        mamp = (mk + 1.0 / 100.0) ** -1.8
        mamp[0, 0] = 0.0
        mshift = -2 * np.pi * (mkx * self._steer[0] + mky * self._steer[1]) / self._block
        momega = rng.standard_normal(mamp.shape).astype(np.float32) * (2 * np.pi / 30.0)
        self._mspec = (mamp * np.exp(1j * rng.uniform(0, 2 * np.pi, mamp.shape))).astype(np.complex64)
        self._mrot = np.exp(1j * (momega * self._dt_h + mshift)).astype(np.complex64)

        self._noise_seed = int(rng.integers(0, 2**63 - 1))
        self.events: list[SimEvent] = self._plan_events() if cfg.events else []

    # ------------------------------------------------------------------ geography
    def _make_land(self, rng: np.random.Generator) -> tuple[F32, F32]:
        h, w = self.cfg.height, self.cfg.width
        field_ = _spectral_noise(rng, h, w, self.scale, slope=1.7)
        x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        # A continent to the west and north-west, open ocean to the south-east, islands between.
        score = field_ + 2.6 * (0.42 - x) + 1.0 * (0.45 - y)
        land = (score > 0).astype(np.float32)
        elev = np.clip(score, 0, None) * 1.2 * land  # km, rough
        return land, elev.astype(np.float32)

    # ------------------------------------------------------------------ events
    def _plan_events(self) -> list[SimEvent]:
        ctx = EventContext(
            self.cfg.width, self.cfg.height, self.scale, self.cfg.satellite, self._km_per_px, self._pad_box
        )
        return plan_events(self.cfg.seed, self.times, self.cfg.cadence_minutes, ctx)

    def _pad_box(self, region: list[int]) -> tuple[int, int, int, int]:
        # The label box covers where pixels change: the coarse water-vapour grid spreads an event this far.
        pad = 2 * self._block
        x0, y0, x1, y1 = region
        return (max(0, x0 - pad), max(0, y0 - pad), min(self.cfg.width, x1 + pad), min(self.cfg.height, y1 + pad))

    def labels_at(self, t: datetime) -> list[SimEvent]:
        """Events active at time ``t``."""
        return [e for e in self.events if e.active(t)]

    # ------------------------------------------------------------------ weather
    def _wind_displacement(self, hours: float) -> tuple[F32, F32]:
        """(u, v) in pixels per frame on a coarse grid, upsampled to the frame."""
        h, w = self.cfg.height, self.cfg.width
        b = self._block * 2
        yc = np.arange(0, h + b, b, dtype=np.float32)[:, None]
        xc = np.arange(0, w + b, b, dtype=np.float32)[None, :]
        u = np.full((yc.shape[0], xc.shape[1]), self._steer[0], dtype=np.float32)
        v = np.full_like(u, self._steer[1])
        px_per_frame = 40.0 * self._dt_h / self._km_per_px  # a 40 km/h perturbation, in px per frame
        for kx, ky, ph, a, nu, nph in self._modes:
            amp = a * math.cos(nu * hours + nph) * px_per_frame
            arg = kx * xc + ky * yc + ph
            # Stream function psi = sin(arg)/|k|: u = dpsi/dy, v = -dpsi/dx keeps the flow non-divergent.
            kn = math.hypot(kx, ky)
            c = np.cos(arg) / kn
            u += (amp * ky) * c
            v -= (amp * kx) * c
        return _upsample(u, h, w, b), _upsample(v, h, w, b)

    def _forcing(self, spec: npt.NDArray[np.complex64]) -> F32:
        h, w = self.cfg.height, self.cfg.width
        f = np.fft.irfft2(spec, s=(self._ph, self._pw))[:h, :w].astype(np.float32)
        f -= f.mean()
        f /= f.std() + 1e-6
        return f

    def frames(self) -> Iterator[Frame]:
        """Frames in time order (lazy)."""
        cfg = self.cfg
        h, w = cfg.height, cfg.width
        noise_rng = np.random.default_rng(self._noise_seed)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        # Spectra are copied so each call of frames() restarts from the first frame.
        spec, mspec = self._spec.copy(), self._mspec.copy()
        q = self._forcing(spec)
        alpha = 0.18  # relaxation per frame towards the forcing: clouds grow and decay over a few hours
        for i, t in enumerate(self.times):
            hours = i * self._dt_h
            if i > 0:
                spec *= self._rot
                mspec *= self._mrot
                u, v = self._wind_displacement(hours)
                q = _bilinear(q, yy - v, xx - u)
                q = (1 - alpha) * q + alpha * self._forcing(spec)
                q -= q.mean()
                q /= q.std() + 1e-6
            counts = self._render(q, mspec, t, noise_rng)
            data = self._apply_faults(counts, t)
            yield Frame(cfg.satellite, t, CHANNELS, data)

    def _render(self, q: F32, mspec: npt.NDArray[np.complex64], t: datetime, noise_rng: np.random.Generator) -> F32:
        cfg = self.cfg
        h, w = cfg.height, cfg.width
        lat = self.lat[:, None]
        lon = self.lon[None, :]
        doy = t.timetuple().tm_yday + t.hour / 24.0
        winter = math.cos(2 * math.pi * (doy - 15.0) / 365.25)  # +1 mid-January, -1 mid-July
        # Surface: warm tropics, colder north, more so in winter; land swings with the sun.
        t_sea = 299.0 - (lat / 10.0) ** 2 * (0.55 + 0.45 * winter)
        lst = (t.hour + t.minute / 60.0 + lon / 15.0) % 24.0
        diurnal = np.cos(2 * np.pi * (lst - 13.5) / 24.0)
        land_amp = 7.0 + 3.0 * (1 - abs(winter))
        land_cold = 4.0 * winter * np.clip(lat / 40.0, 0, None)
        t_air = t_sea - self._land * (land_cold + 6.5 * self._elev)
        t_sfc = t_air + self._land * land_amp * diurnal

        # Clouds: cover varies slowly; more cloud along the storm track and ITCZ.
        hours = (t - self.times[0]).total_seconds() / 3600.0
        cover = 0.25 + 0.2 * math.sin(2 * math.pi * hours / 31.0 + self._cover_phase[0])
        lat_mod = 0.35 * np.exp(-(((lat - 38.0) / 8.0) ** 2)) + 0.3 * np.exp(-(((lat - 8.0) / 6.0) ** 2))
        depth = np.maximum(q + (cover - 0.55) + lat_mod, 0.0)
        eps = -np.expm1(-3.0 * depth)
        z_top = 1.5 + 11.0 * np.minimum(depth / 2.2, 1.0) ** 0.8
        t_top = np.maximum(t_air - 6.5 * z_top, 199.0)
        eps, t_top = self._apply_weather_events(eps, t_top, t_sfc, t)

        t1 = eps * t_top + (1 - eps) * t_sfc
        # Split window: moist warm clear air and thin (semi-transparent) cloud absorb more at 12 um.
        d_clear = np.clip(0.6 + 3.0 * (t_sfc - 275.0) / 30.0, 0.3, 4.0)
        d_split = (1 - eps) * d_clear + 10.0 * eps * (1 - eps) + 0.3 * eps
        t2 = t1 - d_split

        # SWIR: thermal part plus reflected sunlight (water clouds reflect far more than ice or sea).
        mu0 = cos_solar_zenith(lat, lon, t)
        low = np.clip((t_top - 235.0) / 30.0, 0.0, 1.0)
        rho_cloud = 0.04 + 0.2 * low
        rho = (1 - eps) * (0.03 + 0.09 * self._land) + eps * rho_cloud
        t3 = t1 + 1.0 * (1 - eps) - 2.5 * eps * low
        lam3 = CHANNEL_MAPPING["swir"][0]
        rad3 = planck(lam3, t3) + _SOLAR_375 * mu0 * rho

        t_wv = self._water_vapour(mspec, eps, t_top, lat, winter)

        noise_sd = {"ir01": 0.5, "ir02": 0.6, "swir": 1.2, "wv": 0.4}
        out = np.empty((4, h, w), dtype=np.float32)
        out[0] = kelvin_to_count(t1, "ir01")
        out[1] = kelvin_to_count(t2, "ir02")
        out[2] = _radiance_to_count(rad3, "swir")
        out[3] = kelvin_to_count(t_wv, "wv")
        for c, name in enumerate(CHANNELS):
            out[c] += noise_rng.standard_normal((h, w), dtype=np.float32) * noise_sd[name]
        return out

    def _water_vapour(self, mspec: npt.NDArray[np.complex64], eps: F32, t_top: F32, lat: F32, winter: float) -> F32:
        """6.7 um: upper-level moisture and high cloud, on a coarse grid (the channel is smoother)."""
        h, w = self.cfg.height, self.cfg.width
        b = self._block
        ch, cw = h // b, w // b
        m = np.fft.irfft2(mspec, s=(self._mh, self._mw))[:ch, :cw].astype(np.float32)
        m = (m - m.mean()) / (m.std() + 1e-6)
        e = eps[: ch * b, : cw * b].reshape(ch, b, cw, b).mean(axis=(1, 3))
        tt = t_top[: ch * b, : cw * b].reshape(ch, b, cw, b).mean(axis=(1, 3))
        latc = lat[: ch * b].reshape(ch, b, 1).mean(axis=1)
        # Clear air: moist (cloudy) regions look colder; higher latitudes colder in winter.
        moist = 0.6 * m + 0.9 * (e - 0.5)
        t_clear = 241.5 - 9.0 * moist - 0.15 * np.clip(latc - 25.0, 0, None) * (1 + winter)
        high = e * np.clip((t_clear - tt) / 10.0, 0.0, 1.0)
        coarse = (1 - high) * t_clear + high * (tt + 2.0)
        return _upsample(coarse.astype(np.float32), h, w, b)

    def _apply_weather_events(self, eps: F32, t_top: F32, t_sfc: F32, t: datetime) -> tuple[F32, F32]:
        for ev in self.events:
            if ev.kind not in WEATHER_KINDS or not ev.active(t):
                continue
            frac = (t - ev.start).total_seconds() / max((ev.end - ev.start).total_seconds(), 1.0)
            x0, y0, x1, y1 = ev.params["region"]
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            cover, cold, clear = get_event_kind(ev.kind).shape(ev, frac, xx, yy)
            sl = (slice(y0, y1), slice(x0, x1))
            e = eps[sl]
            tt = t_top[sl]
            tt[...] = np.where(cover > 0, np.minimum(tt, cold) * cover + tt * (1 - cover), tt)
            e[...] = (e + (1 - e) * cover) * (1 - clear)
        return eps, t_top

    def _apply_faults(self, counts: F32, t: datetime) -> npt.NDArray[np.uint8]:
        # Count 0 is reserved (space / missing data), so valid weather never quantises to it.
        np.clip(np.rint(counts), 1, 254, out=counts)
        s = max(1.0, self.cfg.height / 300.0)
        for ev in self.events:
            if ev.kind in WEATHER_KINDS or not ev.active(t):
                continue
            get_event_kind(ev.kind).apply(ev, counts, [CHANNELS.index(c) for c in ev.channels], s)
        return np.clip(counts, 0, 255).astype(np.uint8)


def _align(t: datetime, first: datetime, cad: timedelta) -> datetime:
    """Round ``t`` to the frame grid."""
    n = round((t - first) / cad)
    return first + n * cad


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (FFT friendly)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < 2 * n:
        p35 = p5
        while p35 < 2 * n:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _spectral_noise(rng: np.random.Generator, h: int, w: int, scale: float, slope: float) -> F32:
    ph, pw = _fast_len(int(h * 1.3) + 8), _fast_len(int(w * 1.3) + 8)
    ky = np.fft.fftfreq(ph)[:, None]
    kx = np.fft.rfftfreq(pw)[None, :]
    k = np.sqrt(kx**2 + ky**2) * scale
    amp = (k + 1.0 / 150.0) ** -slope
    amp[0, 0] = 0
    spec = amp * np.exp(1j * rng.uniform(0, 2 * np.pi, amp.shape))
    f = np.fft.irfft2(spec, s=(ph, pw))[:h, :w]
    return ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)


def _upsample(coarse: F32, h: int, w: int, block: int) -> F32:
    """Separable linear interpolation of a grid whose node j sits at pixel ``j * block`` (or block centres)."""
    ch, cw = coarse.shape
    ys = np.clip((np.arange(h, dtype=np.float32) + 0.5) / block - 0.5, 0, ch - 1)
    xs = np.clip((np.arange(w, dtype=np.float32) + 0.5) / block - 0.5, 0, cw - 1)
    y0 = np.minimum(ys.astype(np.int64), ch - 2) if ch > 1 else np.zeros(h, dtype=np.int64)
    x0 = np.minimum(xs.astype(np.int64), cw - 2) if cw > 1 else np.zeros(w, dtype=np.int64)
    wy = (ys - y0)[:, None] if ch > 1 else np.zeros((h, 1), dtype=np.float32)
    wx = (xs - x0)[None, :] if cw > 1 else np.zeros((1, w), dtype=np.float32)
    y1 = np.minimum(y0 + 1, ch - 1)
    x1 = np.minimum(x0 + 1, cw - 1)
    rows = coarse[y0] * (1 - wy) + coarse[y1] * wy
    return (rows[:, x0] * (1 - wx) + rows[:, x1] * wx).astype(np.float32)


def _bilinear(img: F32, ys: F32, xs: F32) -> F32:
    """Sample ``img`` at fractional coordinates, clamping at the edges (inflow repeats the border)."""
    h, w = img.shape
    ys = np.clip(ys, 0, h - 1.001)
    xs = np.clip(xs, 0, w - 1.001)
    y0 = ys.astype(np.int32)
    x0 = xs.astype(np.int32)
    fy = ys - y0
    fx = xs - x0
    flat = img.ravel()
    i00 = y0 * w + x0
    a = flat[i00]
    b = flat[i00 + 1]
    c = flat[i00 + w]
    d = flat[i00 + w + 1]
    top = a + (b - a) * fx
    bot = c + (d - c) * fx
    return (top + (bot - top) * fy).astype(np.float32)


def plan_events(seed: int, times: list[datetime], cadence_minutes: int, ctx: EventContext) -> list[SimEvent]:
    """Events over ``times``, one at a time, every kind once per cycle, drawn from ``seed`` alone.

    The first six hours stay quiet so a 20-frame window of normal weather exists before any event; 2-5 quiet
    hours follow each event. Every scene (procedural or from real textures) plans its events here, so a seed
    means the same events whichever scene renders them.
    """
    rng = np.random.default_rng([seed, 2])
    first, last = times[0], times[-1]
    cad = timedelta(minutes=cadence_minutes)
    events: list[SimEvent] = []
    t = first + timedelta(hours=6)
    order: list[str] = []
    n = 0
    while True:
        if not order:
            order = list(rng.permutation(EVENT_KINDS))
        kind = str(order.pop())
        # Every kind draws its duration on every turn, in registry order: that order is part of the seed.
        dur_h = {k: get_event_kind(k).duration(rng) for k in EVENT_KINDS}[kind]
        start = _align(t, first, cad)
        end = _align(start + timedelta(hours=dur_h), first, cad)
        if end > last:
            break
        n += 1
        chan = str(rng.choice(CHANNELS))
        events.append(get_event_kind(kind).plan(rng, ctx, f"sim-{seed}-{n:03d}-{kind}", start, end, chan))
        t = end + timedelta(hours=float(rng.uniform(2.0, 5.0)))
    return events


#: The shipped model set trained on the procedural scene (a name ``--model-dir`` takes from any directory).
PROCEDURAL_MODELS = "onnx_models"


def procedural_hint(satellite: str) -> str:
    """What to serve a procedural stream with: COMS-1's own set knows real cloud fields, not this scene."""
    return (
        f"procedural scene of {satellite}: serve it with `satwatch detect --model-dir {PROCEDURAL_MODELS}` (the set "
        "trained on this simulator; the profile's own set is for real imagery)"
    )


def archive_scene(root: str | Path) -> str | None:
    """The scene an archive written by :func:`write_archive` was simulated with (None: not a simulated one)."""
    meta = Path(root) / "simulation.json"
    try:
        scene = json.loads(meta.read_text()).get("config", {}).get("scene", "procedural")
    except (OSError, ValueError, AttributeError):
        return None
    return str(scene)


def frame_dir(out_dir: Path, t: datetime) -> Path:
    """Day folder of a frame inside an archive written by :func:`write_archive`."""
    return out_dir / f"{t:%Y%m%d}"


class UnsimulatedSatelliteError(ValueError):
    """A satellite whose channels the simulator does not render."""


def require_simulated_channels(satellite: str) -> SatelliteProfile:
    """The satellite's profile, when its channels are the four the simulator renders (COMS-1's).

    The simulator renders ir01, ir02, swir and wv whatever satellite it is told: frames of a satellite of other
    channels (GK-2A's 16, Himawari-8/9's 14, MTSAT's and GMS-5's own names) would each be refused by the
    detector as wrong_channels, and an archive of them would hold no frame of that satellite.
    """
    profile = get_profile(satellite)
    if profile.channels != CHANNELS:
        raise UnsimulatedSatelliteError(
            f"the simulator renders COMS-1's channels ({', '.join(CHANNELS)}), and the satellite asked for is "
            f"{profile.name}, whose profile has {len(profile.channels)} channels ({', '.join(profile.channels)}): "
            "the detector would refuse every frame as wrong_channels. Simulate COMS-1 (or a profile with "
            f"those four channels), or use real {profile.name} images (produce archive or produce watch)"
        )
    return profile


def write_archive(cfg: SimConfig, out_dir: str | Path, progress: bool = True) -> Path:
    """Write every frame as KMA-named PNGs under ``out_dir/YYYYMMDD/``, plus labels.json and simulation.json.

    Shrunk-size scenes are written as grey RGB PNGs; a texture scene at the native size is written as KMA
    distributes frames (RGB, coastlines, grid and title band), ready for the study's preprocessing.
    """
    from tqdm import tqdm

    from satwatch.services.simulator.scenes import open_scene

    profile = require_simulated_channels(cfg.satellite)  # files named as that satellite's, read back as it
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = open_scene(cfg)
    meta = {
        "generator": f"satwatch.services.simulator ({cfg.scene} scene)",
        "generator_version": GENERATOR_VERSION,
        "config": cfg.to_json(),
        "n_frames": len(sim.times),
        "first": _iso(sim.times[0]),
        "last": _iso(sim.times[-1]),
        "channels": list(CHANNELS),
        "grey_mapping": {
            c: {"wavelength_um": lam, "t_count0_k": th, "full_scale": g} for c, (lam, th, g) in CHANNEL_MAPPING.items()
        },
        "n_events": len(sim.events),
    }
    (out / "simulation.json").write_text(json.dumps(meta, indent=2) + "\n")
    save_labels(sim.events, out / "labels.json")
    bar = {"total": len(sim.times), "desc": "simulate", "unit": "frame", "disable": None if progress else True}
    from satwatch.services.simulator.texture import TextureSimulator

    if isinstance(sim, TextureSimulator) and sim.native:
        for t, images in tqdm(sim.native_frames(), **bar):
            d = frame_dir(out, t)
            d.mkdir(exist_ok=True)
            for name, rgb in images.items():
                Image.fromarray(rgb, mode="RGB").save(d / profile.filename(name, t, cfg.area), compress_level=1)
        return out
    for frame in tqdm(sim.frames(), **bar):
        d = frame_dir(out, frame.time)
        d.mkdir(exist_ok=True)
        for c, name in enumerate(frame.channels):
            write_rgb_png(d / profile.filename(name, frame.time, cfg.area), frame.data[c])
    return out


def save_labels(events: list[SimEvent], path: str | Path) -> None:
    """Write events as a JSON list."""
    Path(path).write_text(json.dumps([e.to_json() for e in events], indent=2) + "\n")


def load_labels(path: str | Path) -> list[SimEvent]:
    """Read a labels file written by :func:`write_archive` (a JSON list of events)."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        data = data.get("events", [])
    return [SimEvent.from_json(d) for d in data]
