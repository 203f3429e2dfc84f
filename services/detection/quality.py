"""Data-quality checks: instrument and feed faults, kept apart from the weather anomaly model.

Deterministic checks on the shrunk frame, for the faults operational imagers and their ground segments
suffer (docs/quality.md lists them, with the operators' and the literature's accounts):

* ``missing_lines``: rows that arrived empty. COMS counts reserve 0 for space and missing data, and the
  study's East-Asia sector holds no space, so a row mostly 0 is data lost in transmission or processing
  (the scan-line drop-outs every GEO imager's ground segment reports). Mostly, not all: KMA's coastlines
  and grid are drawn over the hole (on the texture scene a lost row is 80-98% zeros; no real row is over
  17%).
* ``saturated_block``: a block of pixels pinned at the top count, with a hard edge (a detector or
  processing fault). The top is 254 once an RGB frame is turned to grey (the weights sum to 0.9999), and
  the coldest real cloud tops do reach it, but they fade into bright cloud around them (the pixels touching
  them have a median of 252 on the study's frames) where a stuck block sits in ordinary scene (58-67 on
  the texture scene, 118-223 on the procedural one).
* ``striping``: rows of one channel offset against the rows around them (a detector of a multi-detector
  scan drifting, the stripes every imager's operators report), beyond what the other channels show.

The autoencoder's frame-level terms no longer raise faults of their own (they still count in its score): on
the texture scene its channel-consistency term crossed the threshold alone on 32 frames of a vortex
(weather sent to operators) and on stripes, and saw neither swir jump, where the step check below sees
every simulated jump; the shipped v1.6's scan-line term crossed it alone on every one of the study's 25 real
frames (a model outside its training data calling them striped). Faults are the deterministic checks' call.

And checks of each frame against the previous frames of the same satellite (:class:`FrameHistory`, a few
numbers per channel per frame):

* ``calibration_jump``: one channel's whole-frame grey-level distribution steps, every decile by about the
  same amount, between two consecutive frames while the other channels hold still (operators report such
  steps after blackbody calibration changes, decontamination and calibration-table updates). The channel
  stays in fault, its offset tracked, until a step back or ``CALIBRATION_HOLD`` later (a lasting change
  is then taken as the new level).
* ``frozen_frame``: a channel (or the whole frame) byte for byte the same as the previous frame, sent again
  under a new time (a stuck ground-segment buffer); real imagery never repeats exactly.

A frame with a finding raises a ``data_quality`` alert of that kind for operators instead of a weather
anomaly alert for forecasters, so a fault never masquerades as weather.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numba
import numpy as np

from satwatch.services.frames.frame import Frame

#: Striping: at least this many rows of one channel whose mean is offset by more than STRIPE_OFFSET grey
#: levels from the running median of the STRIPE_SPAN rows around it, beyond the other channels' same offset
#: (normal frames: at most 1 row on the real frames, 5 on the texture scene; stripes: 13 rows or more).
STRIPED_ROWS = 9
STRIPE_OFFSET = 6.0
STRIPE_SPAN = 9
#: A row counts as missing when at least this fraction of its pixels is 0 in any channel.
MISSING_ROW_FRACTION = 0.6
#: Side of the square tiles (shrunk-frame pixels) checked for saturation ...
SATURATED_TILE = 8
#: ... a tile at least this full of the top count (254: white after the RGB-to-grey weights) ...
SATURATED_COUNT = 254
SATURATED_FILL = 0.9
#: ... and a hard edge: the pixels just outside the top-count pixels around it (3 x 3 tiles) have a median
#: below this. A real cold cloud top fades out (252 on the study's frames); the simulators' stuck blocks
#: sit in scene of 58-223.
SATURATED_EDGE = 240
#: The kinds these checks raise (the feed routes them to operators).
QUALITY_KINDS = ("missing_lines", "saturated_block", "calibration_jump", "striping", "frozen_frame")


@dataclass(frozen=True)
class QualityFinding:
    """One fault in one frame: its kind, what was seen, and where (fractions of width and height)."""

    kind: str
    detail: str
    bbox: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1)


@dataclass(frozen=True)
class PixelStats:
    """What every check reads of a frame's pixels, gathered in one compiled pass over them (0.2 ms a frame
    where the checks' own numpy passes took about 1.5 ms): per channel and row the count of zeros and the sum,
    per channel the top-count pixels of the part that whole saturation tiles cover, and the histogram of every
    second row and column (the deciles')."""

    zeros: np.ndarray  # (C, H) int64
    row_sums: np.ndarray  # (C, H) int64
    top: np.ndarray  # (C,) int64
    hist: np.ndarray  # (C, 256) int64


@numba.njit(cache=True, nogil=True)
def _pixel_stats(
    data: np.ndarray, crop_h: int, crop_w: int, top_count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    nc, h, w = data.shape
    zeros = np.zeros((nc, h), np.int64)
    sums = np.zeros((nc, h), np.int64)
    top = np.zeros(nc, np.int64)
    hist = np.zeros((nc, 256), np.int64)
    for c in range(nc):
        for y in range(h):
            row = data[c, y]
            z = 0
            t = 0
            total = 0
            for x in range(w):
                v = row[x]
                total += v
                if v == 0:
                    z += 1
                if v >= top_count and x < crop_w:
                    t += 1
            zeros[c, y] = z
            sums[c, y] = total
            if y < crop_h:
                top[c] += t
            if y % 2 == 0:
                for x in range(0, w, 2):
                    hist[c, row[x]] += 1
    return zeros, sums, top, hist


def pixel_stats(data: np.ndarray) -> PixelStats:
    """:class:`PixelStats` of a (C, H, W) uint8 frame."""
    _, h, w = data.shape
    t = SATURATED_TILE
    zeros, sums, top, hist = _pixel_stats(
        np.ascontiguousarray(data, dtype=np.uint8), h // t * t, w // t * t, SATURATED_COUNT
    )
    return PixelStats(zeros, sums, top, hist)


#: The operators' alert for frames the model set does not fit (see :func:`model_mismatch`).
MODEL_MISMATCH = "model_mismatch"


def model_mismatch(ratio: float) -> QualityFinding:
    """The finding for a frame whose typical reconstruction error is ``ratio`` times what normal frames reach.

    Such a score says nothing about the weather (a model trained on the procedural simulator, fed real
    frames, scores every one hundreds of times over its threshold), so it goes to operators, not forecasters.
    """
    return QualityFinding(
        MODEL_MISMATCH,
        f"the frame's typical reconstruction error is {ratio:.1f}x the most any normal calibration frame reached: "
        "the autoencoder was not trained on imagery like this, so its score is not a weather signal. Serve this "
        "satellite with a model set trained on its imagery (real COMS-1 frames: onnx_models/autoencoder-v2, the "
        "COMS-1 profile's own; the procedural simulator: onnx_models; see docs/models.md, 'Which model set')",
    )


def check_pixels(
    data: np.ndarray, channels: Sequence[str] | None = None, stats: PixelStats | None = None
) -> list[QualityFinding]:
    """Missing lines, saturated blocks and striping in a (C, H, W) uint8 frame (``channels`` name them);
    ``stats``: the frame's :func:`pixel_stats`, when the caller has them already."""
    _, h, w = data.shape
    st = stats if stats is not None else pixel_stats(data)
    found: list[QualityFinding] = []
    empty_rows = np.flatnonzero((st.zeros >= MISSING_ROW_FRACTION * w).any(axis=0))
    if empty_rows.size:
        found.append(
            QualityFinding(
                "missing_lines",
                f"{empty_rows.size} of {h} rows empty (rows {empty_rows[0]}..{empty_rows[-1]})",
                (0.0, float(empty_rows[0]) / h, 1.0, float(empty_rows[-1] + 1) / h),
            )
        )
    t = SATURATED_TILE
    hk, wk = h // t, w // t
    if hk and wk:
        need = SATURATED_FILL * t * t
        hits = []
        # Only channels holding a tile's worth of top-count pixels are tiled (most frames hold none).
        for c in np.flatnonzero(st.top >= need):
            top = data[c, : hk * t, : wk * t] >= SATURATED_COUNT
            tiles = top.reshape(hk, t, wk, t).sum(axis=(1, 3), dtype=np.uint16) >= need
            for ty, tx in np.argwhere(tiles):
                around = data[c, max(0, (ty - 1) * t) : (ty + 2) * t, max(0, (tx - 1) * t) : (tx + 2) * t]
                if _rim(around) < SATURATED_EDGE:
                    hits.append((ty, tx))
        if hits:
            ys, xs = np.array(hits).T
            found.append(
                QualityFinding(
                    "saturated_block",
                    f"{len(set(hits))} blocks of {t} x {t} pixels at the top count, with a hard edge",
                    (xs.min() * t / w, ys.min() * t / h, (xs.max() + 1) * t / w, (ys.max() + 1) * t / h),
                )
            )
    stripes = striped_rows(data, st)
    worst = int(np.argmax(stripes))
    if stripes[worst] >= STRIPED_ROWS:
        found.append(
            QualityFinding(
                "striping",
                f"{stripes[worst]} rows of {channels[worst] if channels else f'channel {worst}'} offset against "
                "their neighbours and the other channels",
            )
        )
    return found


def striped_rows(data: np.ndarray, stats: PixelStats | None = None) -> np.ndarray:
    """Per channel, the rows whose mean stands out from the rows around it by more than the other channels'.

    A row's mean less the running median of the 9 rows around it; the other channels' median of the same
    takes off what every channel shares (KMA's latitude lines, a cloud edge along a row).
    """
    sums = stats.row_sums if stats is not None else data.sum(axis=2, dtype=np.uint32)
    rows = sums.astype(np.float32) / data.shape[2]  # (C, H) row means
    half = STRIPE_SPAN // 2
    padded = np.pad(rows, ((0, 0), (half, half)), mode="edge")
    local = rows - _median(np.lib.stride_tricks.sliding_window_view(padded, STRIPE_SPAN, axis=1), axis=2)
    nc = len(data)
    if nc == 1:
        return np.count_nonzero(np.abs(local) > STRIPE_OFFSET, axis=1)
    # Each channel against the median of the others, all channels in one call: (C, C - 1, H).
    others = _median(local[[[o for o in range(nc) if o != c] for c in range(nc)]], axis=1)
    return np.count_nonzero(np.abs(local - others) > STRIPE_OFFSET, axis=1).astype(np.int64)


def _median(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.median`` along ``axis``; for an odd count its middle value by a partition alone (the same number,
    without np.median's checks and copies, which cost more than the checks they serve here)."""
    n = a.shape[axis]
    if n % 2 == 0:
        return np.median(a, axis=axis)
    return np.take(np.partition(a, n // 2, axis=axis), n // 2, axis=axis)


def _rim(around: np.ndarray) -> float:
    """Median of the pixels that touch a top-count pixel without being one (255 when there are none)."""
    top = around >= SATURATED_COUNT
    grown = top.copy()
    grown[1:] |= top[:-1]
    grown[:-1] |= top[1:]
    grown[:, 1:] |= top[:, :-1]
    grown[:, :-1] |= top[:, 1:]
    rim = around[grown & ~top]
    return float(np.median(rim)) if rim.size else 255.0


#: The levels a channel's whole-frame distribution is followed by: its deciles. Counts 0 and 255 stay in:
#: an offset pushes pixels there, and leaving them out would move every decile back.
DECILES = np.arange(1, 10) / 10
#: A calibration step: one channel's median decile shift between consecutive frames, beyond its recent
#: drift, is at least this many grey levels (normal 15-minute shifts: at most 1 on the real frames, 2 in the
#: IR channels on the texture scene, 5 in its swir at dawn, all deciles together; simulated jumps 15-30) ...
CALIBRATION_STEP = 8.0
#: ... its deciles move together (their median absolute deviation from that shift at most this fraction of
#: it: weather moves the cloudy deciles, not the clear ones) ...
CALIBRATION_SPREAD = 0.3
#: ... and every other channel's median shift stays under this fraction of it (weather moves them all).
CALIBRATION_OTHERS = 0.35
#: Consecutive frames of one satellite a history needs before it raises a calibration jump, after a start,
#: a restart or a gap: a step among its first frames is followed (so a rebuild that begins just before an
#: onset still knows the fault, and its end) but raised only from then on.
MIN_HISTORY = 4
#: Frames further apart than this are not compared: the history starts again.
MAX_GAP = timedelta(hours=1)
#: A channel offset for this long is taken as its new level (a lasting recalibration), and stops alerting.
CALIBRATION_HOLD = timedelta(hours=6)


def channel_levels(data: np.ndarray, stats: PixelStats | None = None) -> np.ndarray:
    """(C, 9) deciles of each channel of a (C, H, W) uint8 frame (``stats``: its :func:`pixel_stats`).

    Read off every second row and column (a quarter of the pixels: the deciles move by well under a grey
    level, the cost falls from 1.6 to 0.6 ms a frame).
    """
    out = np.empty((len(data), len(DECILES)))
    for c, chan in enumerate(data):
        counts = stats.hist[c] if stats is not None else np.bincount(chan[::2, ::2].ravel(), minlength=256)
        cum = np.cumsum(counts)
        out[c] = np.searchsorted(cum, DECILES * cum[-1])
    return out


def channel_digests(data: np.ndarray) -> tuple[int, ...]:
    """CRC-32 of each channel's bytes (0.3 ms a frame): equal with equal deciles means a channel repeated."""
    return tuple(zlib.crc32(np.ascontiguousarray(chan).data) for chan in data)


@dataclass
class _SatelliteHistory:
    """What one satellite's next frame is compared with: a few numbers per channel of the last frame."""

    time: datetime | None = None
    levels: np.ndarray | None = None  # (C, 9) deciles of the last frame, its tracked offsets taken off
    raw: np.ndarray | None = None  # (C, 9) the last frame's deciles as they were
    digests: tuple[int, ...] = ()
    frames: int = 0  # consecutive frames compared so far
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C,) tracked calibration offsets
    trend: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C,) each channel's recent drift a frame
    since: list[datetime | None] = field(default_factory=list)  # when each channel's offset began


class FrameHistory:
    """Checks of each frame against the previous frames of its satellite: calibration jumps, frozen frames.

    State is a few numbers per channel per satellite, rebuilt from the frames the detector re-reads on a
    start or rebalance (as its windows are); until ``MIN_HISTORY`` consecutive frames are in, a calibration
    step is followed but not raised, so a rebuild raises no alert its first run did not (the one exception,
    a rebuild that begins inside an offset, is in docs/quality.md). Costs about 1 ms a frame.
    """

    def __init__(self) -> None:
        self._states: dict[str, _SatelliteHistory] = {}

    def reset(self, satellite: str | None = None) -> None:
        """Forget one satellite's history (or all)."""
        if satellite is None:
            self._states.clear()
        else:
            self._states.pop(satellite, None)

    def check(
        self,
        satellite: str,
        time: datetime,
        data: np.ndarray,
        channels: Sequence[str] | None = None,
        stats: PixelStats | None = None,
    ) -> list[QualityFinding]:
        """Findings for one (C, H, W) uint8 frame, given in stream order; updates the satellite's history.
        ``stats``: the frame's :func:`pixel_stats`, when the caller has them already."""
        names = list(channels) if channels is not None else [f"channel {c}" for c in range(len(data))]
        st = self._states.get(satellite)
        if st is None or st.time is None or not st.time < time <= st.time + MAX_GAP or len(st.digests) != len(data):
            st = self._states[satellite] = _SatelliteHistory(
                offsets=np.zeros(len(data)), trend=np.zeros(len(data)), since=[None] * len(data)
            )
        levels, digests = channel_levels(data, stats), channel_digests(data)
        found: list[QualityFinding] = []
        if st.levels is not None and st.raw is not None:
            same = [c for c in range(len(data)) if digests[c] == st.digests[c] and np.array_equal(levels[c], st.raw[c])]
            if same:
                what = "every channel" if len(same) == len(data) else ", ".join(names[c] for c in same)
                found.append(
                    QualityFinding(
                        "frozen_frame", f"{what} byte for byte the same as the frame of {st.time:%Y-%m-%d %H:%M}"
                    )
                )
            corrected = levels - st.offsets[:, None]
            if not same:
                self._steps(st, levels, corrected, time)
            for c in np.flatnonzero(st.offsets):
                began = st.since[c]
                if began is not None and time - began > CALIBRATION_HOLD:
                    corrected[c] = levels[c]  # a lasting change: its level is the channel's level from now on
                    st.offsets[c], st.since[c] = 0.0, None
                    continue
                if st.frames < MIN_HISTORY:
                    continue  # followed, not yet raised
                found.append(
                    QualityFinding(
                        "calibration_jump",
                        f"{names[c]} offset {st.offsets[c]:+.0f} grey levels against the other channels "
                        f"since {began:%Y-%m-%d %H:%M}",
                        (0.0, 0.0, 1.0, 1.0),
                    )
                )
            st.levels = corrected
        else:
            st.levels = levels
        st.frames += 1
        st.time, st.digests, st.raw = time, digests, levels
        return found

    @staticmethod
    def _steps(st: _SatelliteHistory, levels: np.ndarray, corrected: np.ndarray, time: datetime) -> None:
        """Follow each channel's drift; find one channel stepping alone (a fault's onset or end), track its offset.

        The step is taken beyond the channel's recent drift (at dawn the sun moves swir's deciles 4-5 grey
        levels a frame, all together, on the texture scene), so only a change of pace counts.
        """
        assert st.levels is not None
        shift = corrected - st.levels
        step = np.median(shift, axis=1)
        spread = np.median(np.abs(shift - step[:, None]), axis=1)
        excess = step - st.trend
        for c in range(len(step)):
            size = abs(excess[c])
            others = np.delete(np.abs(excess), c)
            if size < CALIBRATION_STEP or spread[c] > CALIBRATION_SPREAD * size:
                continue
            if others.size and others.max() > CALIBRATION_OTHERS * size:
                continue
            if st.offsets[c] and np.sign(excess[c]) != np.sign(st.offsets[c]) and size >= abs(st.offsets[c]) / 2:
                # Stepped back (by about as much: the deciles clip at the ends): the fault is over.
                st.offsets[c], st.since[c] = 0.0, None
                corrected[c] = levels[c]
            else:
                st.offsets[c] += excess[c]
                corrected[c] -= excess[c]
                st.since[c] = st.since[c] or time
            step[c] = st.trend[c]
        st.trend = (st.trend + np.clip(step, -CALIBRATION_STEP / 2, CALIBRATION_STEP / 2)) / 2


def frame_findings(history: FrameHistory, frame: Frame) -> list[QualityFinding]:
    """Every data-quality check the detector runs on a frame (given in stream order), the first finding per kind.

    The checks against the satellite's previous frames (a channel offset explains the saturated pixels it
    causes, so it comes first), then the pixel checks; the detector raises the first as the frame's alert.
    ``satwatch evaluate`` calls this too, so it scores what the detector decides.
    """
    stats = pixel_stats(frame.data)  # one pass over the pixels for every check
    found = history.check(frame.satellite, frame.time, frame.data, frame.channels, stats) + check_pixels(
        frame.data, frame.channels, stats
    )
    first: dict[str, QualityFinding] = {}
    for f in found:
        first.setdefault(f.kind, f)
    return list(first.values())
