"""The detector's hook that puts an analog nowcast on each new alert (``satwatch detect --nowcast``).

It keeps the scored channel of the frames the detector has seen (one plane per frame, about 45 MB for four
days of one satellite at the study size) and, when a frame raises a new alert, turns the alert's similar
events into analogs and the frames that followed them into :class:`~satwatch.services.nowcast.summary.
NowcastSummary`, set on the alert as ``alert.nowcast`` before it is published. Each lead's cover is the
analogs' pulled towards today's by ``analog_blend``'s fitted weight (the digest that erred least on held-out
data). Optional and cheap: no motion field, no model, a few array reductions per alert; events older than
the frames kept get no say, and an alert with none left goes out without a nowcast.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from satwatch.services.detection.detector import FrameOutcome
from satwatch.services.frames.frame import Frame, shrink
from satwatch.services.frames.profiles import get_profile
from satwatch.services.nowcast.analogs import analogs_from_events
from satwatch.services.nowcast.blend import DEFAULT_BLEND, BlendWeights
from satwatch.services.nowcast.summary import alert_summary
from satwatch.services.nowcast.verify import SCORED_CHANNEL


class _Recent:
    """One satellite's recent frames, the scored channel only, oldest dropped past ``keep``."""

    def __init__(self, satellite: str, keep: int) -> None:
        self.satellite = satellite
        self.keep = keep
        self._frames: OrderedDict[datetime, Frame] = OrderedDict()
        self.times: list[datetime] = []

    def add(self, frame: Frame) -> None:
        ch = frame.channels.index(SCORED_CHANNEL) if SCORED_CHANNEL in frame.channels else 0
        plane = shrink(frame).data[ch : ch + 1].copy()
        self._frames[frame.time] = Frame(frame.satellite, frame.time, (frame.channels[ch],), plane)
        if len(self._frames) > self.keep:
            self._frames.popitem(last=False)
        self.times = sorted(self._frames)

    def load(self, time: datetime) -> Frame:
        return self._frames[time]


class AlertNowcast:
    """Hook ``on_frame`` and ``on_outcome`` into the detector consumer (before the alert is published)."""

    def __init__(self, keep: int = 400, blend: BlendWeights | None = DEFAULT_BLEND) -> None:
        self.keep = keep
        #: Pulls each lead's cover from the analogs' towards today's (None: the analogs' cover alone).
        self.blend = blend
        self._recent: dict[str, _Recent] = {}

    def on_frame(self, frame: Frame) -> None:
        recent = self._recent.get(frame.satellite)
        if recent is None:
            recent = self._recent[frame.satellite] = _Recent(frame.satellite, self.keep)
        recent.add(frame)

    def on_outcome(self, outcome: FrameOutcome) -> None:
        alert = outcome.alert
        recent = self._recent.get(outcome.satellite)
        if alert is None or recent is None or alert.window_end not in recent.times:
            return
        events = [e for e in alert.similar if e.satellite == alert.satellite]
        latest = recent.load(alert.window_end)
        summary = alert_summary(
            latest.data,
            latest.channels,
            alert.window_end,
            analogs_from_events(events),
            recent,
            get_profile(alert.satellite).cadence,
            blend=self.blend,
        )
        if summary is not None:
            alert.nowcast = summary.to_dict()
