"""Persistence: the last frame repeated at every lead. The baseline any nowcast must beat."""

from __future__ import annotations

import numpy as np

from satwatch.services.nowcast.forecast import Forecast, NowcastInput


def persistence(data: NowcastInput) -> Forecast:
    """The latest frame, unchanged, at every lead time."""
    last = data.frames[-1].astype(np.float32)
    fields = np.broadcast_to(last, (len(data.leads), *last.shape)).copy()
    return Forecast("persistence", data.issued, data.leads, fields)
