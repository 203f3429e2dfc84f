"""Optical-flow extrapolation with pysteps (the ``[nowcast]`` extra): motion from the latest frames of one
tracer channel (Lucas-Kanade, or DARTS), then every channel advected semi-Lagrangian to each lead.

Motion is measured per cadence step on the infrared window channel, where cloud edges are sharpest; all
channels move with it. Pixels advected in from outside the image have no value in pysteps (NaN); they are
filled with the latest frame (persistence), so scores cover the whole frame for every method.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io

import numpy as np
from scipy.ndimage import map_coordinates

from satwatch.services.nowcast.forecast import Forecast, NowcastInput

#: pysteps motion methods offered, by our name -> pysteps' name, and how many frames each reads.
MOTION = {"lucaskanade": ("LK", 3), "darts": ("DARTS", 6)}


def _pysteps() -> tuple[object, object]:
    """pysteps' motion and extrapolation modules (ModuleNotFoundError names the extra at the command line)."""
    with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints where it found its config on import
        from pysteps import extrapolation, motion
    return motion, extrapolation


def optical_flow(data: NowcastInput, motion_method: str = "lucaskanade", tracer: str = "ir01") -> Forecast:
    """Advect the latest frame along the motion of the last frames of ``tracer`` (falls back to channel 0)."""
    if motion_method not in MOTION:
        raise ValueError(f"unknown motion method {motion_method!r}; choose from {', '.join(MOTION)}")
    motion, extrapolation = _pysteps()
    if motion_method == "lucaskanade" and importlib.util.find_spec("cv2") is None:
        # pysteps raises its own error deep inside; this one names the extra at the command line
        raise ModuleNotFoundError("Lucas-Kanade motion needs OpenCV", name="cv2")
    name, need = MOTION[motion_method]
    ch = data.channels.index(tracer) if tracer in data.channels else 0
    recent = data.frames[-need:, ch].astype(np.float64)
    last = data.frames[-1].astype(np.float64)
    if len(recent) < 2:  # no motion measurable: persistence, said so
        fields = np.broadcast_to(last, (len(data.leads), *last.shape)).astype(np.float32)
        return Forecast("optical_flow", data.issued, data.leads, fields, {"motion": "none (one frame)"})
    kwargs = {}
    if name == "DARTS" and len(recent) < need:  # DARTS fits N_t < T - 1 temporal modes (4 by default)
        if len(recent) < 3:
            raise ValueError("DARTS motion needs at least 3 frames")
        kwargs["N_t"] = len(recent) - 2
    with contextlib.redirect_stdout(io.StringIO()):
        velocity = motion.get_method(name)(recent, **kwargs)  # type: ignore[attr-defined]
        advect = extrapolation.get_method("semilagrangian")  # type: ignore[attr-defined]
    fields = np.empty((len(data.leads), *last.shape), dtype=np.float32)
    grid = np.mgrid[0 : last.shape[1], 0 : last.shape[2]].astype(np.float64)  # (row, column)
    displacement, done = None, 0.0
    for i, lead in enumerate(data.leads):
        # One displacement per lead, carried on from the previous lead as pysteps' own nowcasts do, then
        # every channel warped with it (pysteps' semi-Lagrangian scheme, order-1 interpolation).
        step = lead / data.cadence
        _, displacement = advect(
            None, velocity, [step - done], displacement_prev=displacement, return_displacement=True
        )
        done = step
        coords = [grid[0] + displacement[1], grid[1] + displacement[0]]
        for c in range(last.shape[0]):
            moved = map_coordinates(last[c], coords, mode="constant", cval=np.nan, order=1, prefilter=False)
            fields[i, c] = np.where(np.isfinite(moved), moved, last[c])
    speed = float(np.hypot(velocity[0], velocity[1]).mean())
    return Forecast("optical_flow", data.issued, data.leads, fields, {"motion": name, "mean_speed_px": speed})
