"""A scene made of real weather: COMS cloud and moisture fields, moved, deformed, grown and faded.

The procedural scene only proves what it simulates. This one takes its clouds from real frames (a
:class:`~satwatch.services.simulator.texturebank.TextureBank`): the weather is a sequence of *episodes*, each
one real frame's departure from clear sky, shifted to a new place, carried by its own smooth, slowly turning
flow (displacement grows with time from the episode's anchor), and brightened or thinned by slowly changing
gain fields (growth and decay). Consecutive episodes hand over pixel by pixel along a smooth random front over
an hour or two, so at any moment most of the frame shows one coherent real cloud field, and over a day the
whole field is replaced. Under the clouds: the real clear-sky background with its day-night swing; the 3.7 um
channel from the other three plus the sun (so dawn sweeps across it); then KMA's coastlines, grid and title
band drawn on top where the real frames have them. Events (convection, vortex, instrument faults) are the
same kinds, planned by the same planner, as the procedural scene's.

Two scales: ``cfg.width x cfg.height`` of 375 x 300 gives shrunk frames directly (what the detector sees;
overlays composited by their block-mean footprint, as the study's block mean would see them), 1500 x 1300
gives native RGB frames with the title band, for archives at the real geometry.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from satwatch.services.frames.frame import CHANNELS, Frame
from satwatch.services.frames.profiles import get_profile
from satwatch.services.simulator.event import EventContext, SimEvent
from satwatch.services.simulator.interface import WEATHER_KINDS, get_event_kind
from satwatch.services.simulator.scene import SimConfig, kelvin_to_count, plan_events
from satwatch.services.simulator.sun import cos_solar_zenith
from satwatch.services.simulator.texturebank import TEXTURE_CHANNELS, TextureBank
from satwatch.services.simulator.titleband import BAND_ROWS, title_text

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: Bumped whenever the pixels a seed produces change.
TEXTURE_GENERATOR_VERSION = 1
#: Strength of the unsharp mask that restores the fine texture interpolation smooths away.
SHARPEN = 0.6
#: Native kilometres per pixel across the East-Asia sector (5800 km over 1500 pixels).
KM_PER_NATIVE_PX = 5800.0 / 1500.0


@dataclass
class Episode:
    """One real cloud field on its way through the scene."""

    anchor: datetime  # when it is shown unmoved (at its offset); it takes over before and hands over after
    source: int  # index of the bank frame
    offset: tuple[float, float]  # (dx, dy) native pixels
    velocity: tuple[F32, F32]  # (u, v) native pixels per hour on the bank's grid
    gain: tuple[F32, F32, float]  # two smooth fields and the period (h) of their slow alternation
    front: F32  # takeover order in [0, 1]: where this episode replaces the previous one first


class TextureSimulator:
    """Frames of one :class:`SimConfig` with ``scene = "texture"`` from a texture bank, in time order."""

    def __init__(self, cfg: SimConfig, bank: TextureBank) -> None:
        prof = get_profile(cfg.satellite)
        native = (cfg.width, cfg.height) == (prof.native_width, prof.native_height)
        shrunk = (cfg.width, cfg.height) == (prof.shrunk_width, prof.shrunk_height)
        if not (native or shrunk):
            raise ValueError(
                f"the texture scene renders {prof.name} frames at {prof.native_width} x {prof.native_height} (native) "
                f"or {prof.shrunk_width} x {prof.shrunk_height} (shrunk), not {cfg.width} x {cfg.height}"
            )
        want = 1 if native else prof.block
        if bank.factor != want:
            raise ValueError(
                f"a {cfg.width} x {cfg.height} scene needs a bank built at factor {want}, not {bank.factor}"
            )
        self.cfg = cfg
        self.bank = bank
        self.native = native
        self.block = prof.block
        self.crop_top = prof.crop_top
        step = timedelta(minutes=cfg.cadence_minutes)
        self.times: list[datetime] = [cfg.start + i * step for i in range(cfg.n_frames)]
        h, w = bank.shape
        self._h, self._w = h, w
        self._lat, self._lon = bank.lat_lon()
        self._yy, self._xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._stacks: dict[int, npt.NDArray[np.int16]] = {}
        rng = np.random.default_rng([cfg.seed, 5])
        self.episodes = self._plan_episodes(rng)
        self._anchors = [e.anchor for e in self.episodes]
        self._overlay = bank.overlay_cover > 0.5
        self._noise_seed = int(rng.integers(0, 2**63 - 1))
        # Events live on the shrunk grid (as the procedural scene's do), so one seed means the same events at
        # either scale; native rendering maps them up.
        sw, sh = prof.shrunk_width, prof.shrunk_height
        self._shrunk_size = (sw, sh)
        ctx = EventContext(sw, sh, 1.0, cfg.satellite, KM_PER_NATIVE_PX * prof.block, self._pad_box)
        self.events: list[SimEvent] = plan_events(cfg.seed, self.times, cfg.cadence_minutes, ctx) if cfg.events else []

    # ------------------------------------------------------------------ planning
    def _smooth(self, rng: np.random.Generator, cells: int) -> F32:
        """A smooth random field, zero mean and unit spread, with about ``cells`` features across."""
        ch, cw = max(2, round(cells * self._h / self._w)), max(2, cells)
        coarse = rng.standard_normal((ch + 2, cw + 2)).astype(np.float32)
        field = _resize(coarse, self._h, self._w)
        return ((field - field.mean()) / (field.std() + 1e-6)).astype(np.float32)

    def _plan_episodes(self, rng: np.random.Generator) -> list[Episode]:
        first, last = self.times[0], self.times[-1]
        t = first - timedelta(hours=float(rng.uniform(0.0, 12.0)))
        px_per_native = 1.0 / self.bank.factor
        episodes: list[Episode] = []
        while True:
            source = int(rng.integers(0, len(self.bank.times)))
            offset = (float(rng.uniform(-150, 150)), float(rng.uniform(-90, 90)))
            # A steering flow (mostly westerly, 20-50 km/h) plus three large eddies of 10-30 km/h.
            speed = rng.uniform(20.0, 50.0) / KM_PER_NATIVE_PX
            ang = rng.uniform(-0.45, 0.45)
            u = np.full((self._h, self._w), speed * math.cos(ang), dtype=np.float32)
            v = np.full((self._h, self._w), speed * math.sin(ang), dtype=np.float32)
            for _ in range(3):
                amp = rng.uniform(10.0, 30.0) / KM_PER_NATIVE_PX
                wavelength = rng.uniform(500.0, 1500.0) * px_per_native
                theta = rng.uniform(0, 2 * math.pi)
                kx, ky = math.cos(theta) * 2 * math.pi / wavelength, math.sin(theta) * 2 * math.pi / wavelength
                arg = kx * self._xx + ky * self._yy + rng.uniform(0, 2 * math.pi)
                # Stream function sin(arg): u = d/dy, v = -d/dx keeps the eddies non-divergent.
                c = np.cos(arg) * amp
                u += c * (ky / math.hypot(kx, ky))
                v -= c * (kx / math.hypot(kx, ky))
            gain = (self._smooth(rng, 12), self._smooth(rng, 12), float(rng.uniform(3.0, 8.0)))
            front = self._smooth(rng, 5)
            # Ranks make the front uniform on [0, 1], so a takeover sweeps at an even pace.
            order = np.empty(front.size, dtype=np.float32)
            order[np.argsort(front, axis=None)] = np.linspace(0, 1, front.size, dtype=np.float32)
            episodes.append(
                Episode(t, source, offset, (u * px_per_native, v * px_per_native), gain, order.reshape(front.shape))
            )
            if t > last:
                break
            t += timedelta(hours=float(rng.uniform(6.0, 12.0)))
        if len(episodes) < 2:
            episodes.append(episodes[0])
        return episodes

    def _pad_box(self, region: list[int]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = region
        sw, sh = self._shrunk_size
        return (max(0, x0 - 2), max(0, y0 - 2), min(sw, x1 + 2), min(sh, y1 + 2))

    def labels_at(self, t: datetime) -> list[SimEvent]:
        """Events active at time ``t``."""
        return [e for e in self.events if e.active(t)]

    # ------------------------------------------------------------------ rendering
    def _episode_field(self, ep: Episode, t: datetime) -> dict[str, F32]:
        hours = (t - ep.anchor).total_seconds() / 3600.0
        scale = 1.0 / self.bank.factor
        xs = self._xx - ep.offset[0] * scale - ep.velocity[0] * hours
        ys = self._yy - ep.offset[1] * scale - ep.velocity[1] * hours
        g1, g2, period = ep.gain
        phase = 2 * math.pi * hours / period
        gain = (1.0 + 0.25 * (g1 * math.cos(phase) + g2 * math.sin(phase))).astype(np.float32)
        # One gather fetches all three channels (stored interleaved), sampled once per episode and frame.
        moved = _bilinear_reflect(self._interleaved(ep.source), ys, xs)
        out = {}
        for i, c in enumerate(TEXTURE_CHANNELS):
            m = moved[..., i]
            # Bilinear sampling at fractional positions blurs the finest scales; give them back.
            m = m + SHARPEN * (m - ndimage.uniform_filter(m, 3, mode="nearest"))
            out[c] = m * gain
        return out

    def _interleaved(self, source: int) -> npt.NDArray[np.int16]:
        cached = self._stacks.get(source)
        if cached is None:
            cached = np.stack([self.bank.departures[c][source] for c in TEXTURE_CHANNELS], axis=-1)
            if len(self._stacks) > 4:
                self._stacks.pop(next(iter(self._stacks)))
            self._stacks[source] = cached
        return cached

    def weather(self, t: datetime) -> dict[str, F32]:
        """The four channels' grey levels at ``t`` before overlays, events and quantisation."""
        eps = self.episodes
        i = max(0, min(len(eps) - 2, bisect.bisect_right(self._anchors, t) - 1))
        old, new = eps[i], eps[i + 1]
        span = (new.anchor - old.anchor).total_seconds()
        p = min(1.0, max(0.0, (t - old.anchor).total_seconds() / span))
        w_new = np.clip(((-0.2 + 1.4 * p) - new.front) / 0.2 + 0.5, 0.0, 1.0).astype(np.float32)
        if w_new.max() <= 0.0:
            dep = self._episode_field(old, t)
        elif w_new.min() >= 1.0:
            dep = self._episode_field(new, t)
        else:
            a, b = self._episode_field(old, t), self._episode_field(new, t)
            dep = {c: a[c] * (1 - w_new) + b[c] * w_new for c in TEXTURE_CHANNELS}
        lst = (t.hour + t.minute / 60.0 + self._lon / 15.0) % 24.0
        cos_lst = np.cos(2 * np.pi * (lst - 13.5) / 24.0).astype(np.float32)
        out = {c: self.bank.background[c] + self.bank.diurnal[c] * cos_lst + dep[c] for c in TEXTURE_CHANNELS}
        mu0 = cos_solar_zenith(self._lat, self._lon, t).astype(np.float32)
        out["swir"] = self.bank.swir(out["ir01"], out["ir02"], out["wv"], mu0)
        return out

    def _apply_weather_events(self, grey: dict[str, F32], t: datetime) -> None:
        f = self.bank.factor
        for ev in self.events:
            if ev.kind not in WEATHER_KINDS or not ev.active(t):
                continue
            frac = (t - ev.start).total_seconds() / max((ev.end - ev.start).total_seconds(), 1.0)
            x0, y0, x1, y1 = ev.params["region"]
            # The region in this scale's pixels, and each pixel's position on the shrunk grid the event uses.
            off = 0 if f != 1 else self.crop_top
            r0, r1 = y0 * self.block // f + off, y1 * self.block // f + off
            c0, c1 = x0 * self.block // f, x1 * self.block // f
            yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
            scale = f / self.block
            cover, cold, clear = get_event_kind(ev.kind).shape(
                ev, frac, (xx + 0.5) * scale - 0.5, (yy - off + 0.5) * scale - 0.5
            )
            for c in CHANNELS:
                g = grey[c][r0:r1, c0:c1]
                target = kelvin_to_count(cold, c).astype(np.float32)
                g += cover * np.maximum(target - g, 0.0)
                if c in TEXTURE_CHANNELS:
                    bg = self.bank.background[c][r0:r1, c0:c1]
                    g += clear * (bg - g)

    def _apply_faults(self, counts: F32, t: datetime) -> None:
        """Instrument faults on the shrunk grid; at native scale each shrunk pixel's change covers its block."""
        faults = [ev for ev in self.events if ev.kind not in WEATHER_KINDS and ev.active(t)]
        if not faults:
            return
        if not self.native:
            for ev in faults:
                get_event_kind(ev.kind).apply(ev, counts, [CHANNELS.index(c) for c in ev.channels], 1.0)
            return
        b, top = self.block, self.crop_top
        sw, sh = self._shrunk_size
        area = counts[:, top : top + sh * b, : sw * b]
        probe = area[:, ::b, ::b].copy()
        before = probe.copy()
        for ev in faults:
            get_event_kind(ev.kind).apply(ev, probe, [CHANNELS.index(c) for c in ev.channels], 1.0)
        changed = probe != before
        if not changed.any():
            return
        delta = np.repeat(np.repeat(probe - before, b, axis=1), b, axis=2)
        hard = np.repeat(np.repeat(changed & ((probe <= 0) | (probe >= 255)), b, axis=1), b, axis=2)
        fill = np.repeat(np.repeat(probe, b, axis=1), b, axis=2)
        area += np.where(hard, 0.0, delta)
        area[...] = np.where(hard, fill, area)

    def _counts(self, t: datetime, noise: np.random.Generator) -> F32:
        grey = self.weather(t)
        self._apply_weather_events(grey, t)
        sd = 1.0 if self.native else 0.25
        counts = np.stack([grey[c] for c in CHANNELS]).astype(np.float32)
        counts += noise.standard_normal(counts.shape, dtype=np.float32) * sd
        np.clip(counts, 1.0, 254.0, out=counts)
        self._apply_faults(counts, t)
        return np.clip(counts, 0.0, 255.0, out=counts)

    def frames(self) -> Iterator[Frame]:
        """Frames in time order: shrunk frames as the detector sees them (native frames are shrunk)."""
        prof = get_profile(self.cfg.satellite)
        noise = np.random.default_rng(self._noise_seed)
        for t in self.times:
            counts = self._counts(t, noise)
            if self.native:
                planes = [prof.shrink_plane(self._rgb(counts[i], c, t)) for i, c in enumerate(CHANNELS)]
                data = np.stack(planes)
            else:
                cover, ov = self.bank.overlay_cover, self.bank.overlay_grey
                # The study's block mean of a grey pixel v is 0.9999 v; overlays add their own share.
                data = np.floor(counts * (1.0 - cover) * 0.9999 + ov).astype(np.uint8)
            yield Frame(self.cfg.satellite, t, CHANNELS, data)

    def native_frames(self) -> Iterator[tuple[datetime, dict[str, U8]]]:
        """(time, channel -> RGB image 1300 x 1500 x 3) as KMA distributes them; native scale only."""
        if not self.native:
            raise ValueError("native frames need a scene at the native size")
        noise = np.random.default_rng(self._noise_seed)
        for t in self.times:
            counts = self._counts(t, noise)
            yield t, {c: self._rgb(counts[i], c, t) for i, c in enumerate(CHANNELS)}

    def _rgb(self, grey: F32, channel: str, t: datetime) -> U8:
        g = np.rint(grey).astype(np.uint8)
        rgb = np.repeat(g[:, :, None], 3, axis=2)
        rgb[self._overlay] = self.bank.overlay_rgb[self._overlay]
        rgb[:BAND_ROWS] = self.bank.atlas.render(title_text(channel, t), rgb.shape[1])
        return rgb


def _resize(coarse: F32, h: int, w: int) -> F32:
    """Bilinear resize of a small grid to h x w (corner to corner)."""
    ch, cw = coarse.shape
    ys = np.linspace(0, ch - 1, h, dtype=np.float32)
    xs = np.linspace(0, cw - 1, w, dtype=np.float32)
    return _bilinear_reflect(coarse, ys[:, None] + 0 * xs[None, :], xs[None, :] + 0 * ys[:, None])


def _bilinear_reflect(img: npt.NDArray[np.generic], ys: F32, xs: F32) -> F32:
    """Sample ``img`` (H, W) or (H, W, C) at fractional positions; positions outside are mirrored back in."""
    h, w = img.shape[:2]
    ys = _mirror(ys, h)
    xs = _mirror(xs, w)
    y0 = np.minimum(ys.astype(np.int32), h - 2)
    x0 = np.minimum(xs.astype(np.int32), w - 2)
    fy = (ys - y0).astype(np.float32)
    fx = (xs - x0).astype(np.float32)
    if img.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    flat = img.reshape(h * w, *img.shape[2:])
    i00 = y0 * w + x0
    a = flat[i00].astype(np.float32)
    b = flat[i00 + 1].astype(np.float32)
    top = a + (b - a) * fx
    a = flat[i00 + w].astype(np.float32)
    b = flat[i00 + w + 1].astype(np.float32)
    bot = a + (b - a) * fx
    return (top + (bot - top) * fy).astype(np.float32)


def _mirror(pos: F32, n: int) -> F32:
    period = 2.0 * (n - 1)
    p = pos - period * np.floor(pos / period)
    return np.where(p > n - 1, period - p, p).astype(np.float32)
