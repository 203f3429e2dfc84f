"""The one window rule every part of satwatch uses: the detector, ``similarity --archive``, ``triplets``,
``index build`` and the exact re-rank.

A window ending at time t holds the latest ``frames`` frame times in the span (t - span, t]: 20 frames
within 6 hours for COMS-1. Where frames are missing (real archives miss some every day) the window still
reaches back at most ``span`` and holds fewer frames only when fewer exist in it: a part-filled window.
The study chose 20 of the up to 24 frames in its 6-hour spans (its ``video2image.txt`` lines skip ids);
taking the latest ones makes the rule deterministic and lets the detector update a window in O(1).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime, timedelta


def window_ending(times: Sequence[datetime], end: datetime, frames: int, span: timedelta) -> list[datetime]:
    """The window ending at ``end`` (which need not be a frame time) over sorted ``times``."""
    hi = bisect.bisect_right(times, end)
    lo = bisect.bisect_right(times, end - span)
    return list(times[max(lo, hi - frames) : hi])


def windows_over(
    times: Sequence[datetime], frames: int, span: timedelta, min_frames: int | None = None, stride: int = 1
) -> list[list[datetime]]:
    """Every ``stride``-th of the windows ending at a frame time that hold at least ``min_frames`` frames.

    ``min_frames`` defaults to ``frames`` (full windows only), as the study's protocol and the index builder
    want; pass a smaller value to keep part-filled windows.
    """
    need = frames if min_frames is None else min_frames
    kept = [w for w in (window_ending(times, t, frames, span) for t in times) if len(w) >= need]
    return kept[::stride]


def frames_after(times: Sequence[datetime], end: datetime, horizon: timedelta) -> list[datetime]:
    """The frame times that followed a window ending at ``end``: those in (end, end + horizon].

    Search shows them as "what came next" and the analog nowcast composites them; both use this rule so a
    lead time means the same thing everywhere.
    """
    lo = bisect.bisect_right(times, end)
    hi = bisect.bisect_right(times, end + horizon)
    return list(times[lo:hi])
