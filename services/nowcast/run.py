"""The nowcast use case: issue every asked method at a time, and verify forecasts where the truth is known.

``nowcast_at`` is what ``satwatch nowcast`` runs; ``hindcast`` repeats it over many issue times of held-out
data and accumulates scores (the benchmark's skill table). Analogs come from the exact metric over the past
source here (``analogs.exact_analogs``); a caller holding index search hits passes them in instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import numpy as np

from satwatch.services.frames.profiles import SatelliteProfile
from satwatch.services.frames.windows import window_ending
from satwatch.services.nowcast.analog import analog_cell_histograms, frame_at
from satwatch.services.nowcast.analogs import SignatureMemo, exact_analogs
from satwatch.services.nowcast.blend import BLEND_METHODS, BlendWeights
from satwatch.services.nowcast.forecast import (
    Analog,
    CachedSource,
    Forecast,
    FrameSource,
    NowcastInput,
    lead_times,
    load_shrunk,
)
from satwatch.services.nowcast.interface import ANALOG_METHODS, DEFAULT_METHODS, get_method
from satwatch.services.nowcast.verify import SCORED_CHANNEL, Scoreboard

#: The per-cell histogram composite, scored by cell similarity only (it predicts no field).
CELL_HISTOGRAMS = "analog_cells"


@dataclass(frozen=True)
class NowcastOptions:
    """What to issue: methods, analogs wanted, how far ahead."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    k: int = 5
    hours: float = 3.0
    cell_histograms: bool = False
    #: Weights of ``analog_blend`` per lead (``blend.BlendFit`` on a development period); None = its defaults.
    blend: BlendWeights | None = None
    #: The same for ``analog_flow_blend`` (fitted with the optical-flow forecast as the base).
    flow_blend: BlendWeights | None = None

    def __post_init__(self) -> None:
        for m in self.methods:
            get_method(m)  # a clear error for a misspelt method, before any work
        if self.k < 1:
            raise ValueError("k must be at least 1")


@dataclass
class NowcastRun:
    """The forecasts issued at one time, the analogs they used, and (``cells``) the histogram composite."""

    input: NowcastInput
    forecasts: dict[str, Forecast]
    analogs: list[Analog]
    cells: np.ndarray | None = None
    skipped: dict[str, str] = field(default_factory=dict)


class Nowcaster:
    """Issues nowcasts for one satellite from a source of recent frames and a source of past ones (the same
    source is fine: analogs must end, with what followed them, before the query window begins)."""

    def __init__(
        self,
        source: FrameSource,
        profile: SatelliteProfile,
        options: NowcastOptions,
        past: FrameSource | None = None,
    ) -> None:
        self.source = CachedSource(source)
        self.past = CachedSource(past) if past is not None else self.source
        self.profile = profile
        self.options = options
        self.leads = lead_times(options.hours, profile.cadence)
        self._query_sigs = SignatureMemo(source)
        self._past_sigs = self._query_sigs if self.past is self.source else SignatureMemo(self.past)

    def issue(self, at: datetime, analogs: Sequence[Analog] | None = None) -> NowcastRun:
        """Every method's forecast from the window ending at ``at`` (a frame time of the source)."""
        p = self.profile
        times = window_ending(self.source.times, at, p.window_frames, p.window_span)
        if not times or times[-1] != at:
            raise ValueError(f"no frame at {at:%Y-%m-%dT%H:%MZ} to issue a nowcast from")
        frames = np.stack([load_shrunk(self.source, t) for t in times])
        wants_analogs = any(m in ANALOG_METHODS for m in self.options.methods) or self.options.cell_histograms
        found: list[Analog] = list(analogs) if analogs is not None else []
        if analogs is None and wants_analogs:
            found = exact_analogs(
                self.past,
                times,
                [self._query_sigs(t) for t in times],
                k=self.options.k,
                horizon=timedelta(hours=self.options.hours),
                frames=p.window_frames,
                span=p.window_span,
                min_frames=max(2, p.window_frames // 2),
                past_signatures=self._past_sigs,
            )
        data = NowcastInput(times, frames, p.channels, self.leads, p.cadence, tuple(found), self.past)
        run = NowcastRun(data, {}, found)
        for name in self.options.methods:
            if name in ANALOG_METHODS and not found:
                run.skipped[name] = "no past window with what followed it before this one began"
                continue
            method = get_method(name)
            weights = self.options.flow_blend if name == "analog_flow_blend" else self.options.blend
            if name in BLEND_METHODS and weights is not None:
                method = partial(BLEND_METHODS[name], weights=weights)
            run.forecasts[name] = method(data)
        if self.options.cell_histograms and found:
            run.cells = analog_cell_histograms(data, self._query_sigs.spec)
        return run

    def verify(self, run: NowcastRun, board: Scoreboard) -> int:
        """Add every forecast of ``run`` whose lead has an observed frame in the source; returns how many."""
        ch = run.input.channels.index(SCORED_CHANNEL) if SCORED_CHANNEL in run.input.channels else 0
        added = 0
        for i, lead in enumerate(self.leads):
            t = frame_at(self.source, run.input.issued, lead, self.profile.cadence / 2)
            if t is None:
                continue
            observed = load_shrunk(self.source, t)[ch]
            for name, fc in run.forecasts.items():
                board.add(name, lead, fc.fields[i, ch], observed)
                added += 1
            if run.cells is not None:
                board.add_cells(CELL_HISTOGRAMS, lead, run.cells[i, ch], observed)
        return added


def hindcast(nowcaster: Nowcaster, issue_times: Sequence[datetime], board: Scoreboard | None = None) -> Scoreboard:
    """Issue at every time and verify against what the source holds after it: held-out skill by lead."""
    board = board or Scoreboard()
    for t in issue_times:
        nowcaster.verify(nowcaster.issue(t), board)
    return board


def issue_times(source: FrameSource, start: datetime, end: datetime | None, every: timedelta | None) -> list[datetime]:
    """Frame times from ``start`` to ``end`` (inclusive), at least ``every`` apart; just ``start`` alone when
    no ``end`` is given (it must be a frame time)."""
    if end is None:
        return [start]
    if every is None or every <= timedelta(0):
        raise ValueError("a range of issue times needs a positive interval (every)")
    out: list[datetime] = []
    for t in source.times:
        if start <= t <= end and (not out or t - out[-1] >= every):
            out.append(t)
    if not out:
        raise ValueError(f"no frame between {start:%Y-%m-%dT%H:%MZ} and {end:%Y-%m-%dT%H:%MZ}")
    return out


@dataclass
class NowcastReport:
    """What ``satwatch nowcast`` prints: the last run's forecasts and analogs (earlier runs are not kept: a
    run's fields are tens of MB), and scores over every issue time whose leads the source could verify
    (none when the source holds nothing after them)."""

    last: NowcastRun
    issued: int
    board: Scoreboard | None
    verified: int


def nowcast_report(
    source: FrameSource,
    profile: SatelliteProfile,
    options: NowcastOptions,
    start: datetime,
    end: datetime | None = None,
    every: timedelta | None = None,
    past: FrameSource | None = None,
    verify: bool = True,
    find_analogs: Callable[[datetime], Sequence[Analog]] | None = None,
) -> NowcastReport:
    """Issue at ``start`` (or every ``every`` up to ``end``) and verify against the source's later frames.
    ``find_analogs`` (e.g. ``indexed.IndexAnalogs``) replaces the exact scan over the past."""
    nowcaster = Nowcaster(source, profile, options, past)
    board = Scoreboard() if verify else None
    times = issue_times(source, start, end, every)
    verified = 0
    for t in times:
        run = nowcaster.issue(t, find_analogs(t) if find_analogs is not None else None)
        if board is not None:
            verified += nowcaster.verify(run, board)
    return NowcastReport(run, len(times), board, verified)
