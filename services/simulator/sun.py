"""Where the sun stands over a pixel: what the 3.7 um channel's reflected sunlight depends on."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import numpy.typing as npt


def cos_solar_zenith(lat: npt.ArrayLike, lon: npt.ArrayLike, t: datetime) -> npt.NDArray[np.float64]:
    """Cosine of the solar zenith angle (0 when the sun is down) at latitude/longitude in degrees, time UTC.

    A declination that follows the day of the year and local solar time from longitude: good to about a
    degree, which is all a simulated channel needs.
    """
    doy = t.timetuple().tm_yday + t.hour / 24.0
    dec = math.radians(23.44) * math.sin(2 * math.pi * (doy - 81.0) / 365.0)
    hour_angle = np.radians((t.hour + t.minute / 60.0 + np.asarray(lon) / 15.0 - 12.0) * 15.0)
    latr = np.radians(lat)
    return np.maximum(np.sin(latr) * math.sin(dec) + np.cos(latr) * math.cos(dec) * np.cos(hour_angle), 0.0)
