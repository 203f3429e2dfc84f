"""Every frame's anomaly score and its terms, kept so a researcher can compute their own curves.

Alerts keep only the frames that crossed the threshold; ROC curves, other thresholds or a score by time of
day need every frame's score. The detector writes them to the ``scores`` table of its alert store, and
``satwatch detect`` and ``satwatch evaluate`` write them as TSV with ``--scores-out``: one row per frame.
The terms add up to the score: ``pixel`` (the heat map's worst pixels, standardised where the card says so)
plus ``consistency`` and ``lines`` (the channel-consistency and scan-line checks beyond their gates). For a v2
set, ``texture`` and ``novelty`` say which weather term ``pixel`` took (the largest of them and the
reconstruction term beyond its gate).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from satwatch.services.models.anomaly import AnomalyResult


@dataclass(frozen=True)
class FrameScore:
    """One frame's score, its terms, the threshold in force, the alert it raised and its labels, if known."""

    satellite: str
    time: datetime
    score: float
    pixel: float
    consistency: float
    lines: float
    threshold: float
    #: The alert kind the frame raised (``anomaly`` or a data-quality fault); empty when none.
    alert: str = ""
    #: Labelled event kinds active at the frame, comma-separated (``satwatch evaluate``); empty otherwise.
    labels: str = ""
    #: The standardised patch-texture term (v2 models; 0 for models without it). ``pixel`` is the weather part
    #: of the score: the larger of this and what the standardised reconstruction term has beyond its gate.
    texture: float = 0.0
    #: The standardised temporal-novelty term (v2.1 models): the frame's patches against the same patches in
    #: the frames just before it; 0 for models without it and for a frame with no earlier frame in reach.
    novelty: float = 0.0

    @classmethod
    def of(
        cls, satellite: str, time: datetime, result: AnomalyResult, threshold: float, alert: str = "", labels: str = ""
    ) -> FrameScore:
        """From a scorer's result: the pixel term is what the frame-level terms leave of the score."""
        pixel = result.score - result.consistency_excess - result.lines_excess
        return cls(
            satellite,
            time,
            float(result.score),
            float(pixel),
            float(result.consistency_excess),
            float(result.lines_excess),
            float(threshold),
            alert,
            labels,
            float(result.texture),
            float(result.novelty or 0.0),
        )


log = logging.getLogger(__name__)

#: Column names of the TSV file, in order (the dataclass's fields).
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(FrameScore))


def _cells(row: FrameScore, take: tuple[int, ...] | None = None) -> list[str]:
    """A row's cells; ``take``: positions of a file's own columns in ``COLUMNS`` (None: all of them)."""
    out = []
    values = astuple(row)
    for value in values if take is None else (values[i] for i in take):
        if isinstance(value, datetime):
            out.append(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif isinstance(value, float):
            out.append(f"{value:.7g}")
        else:
            out.append(str(value).replace("\t", " "))
    return out


class ScoresFile:
    """A TSV file of frame scores with a header line, appended one row per frame and flushed at once.

    ``append``: keep what the file holds (a detector restarting continues its file); otherwise start it afresh
    (an evaluation run twice into one file must not list every frame twice).
    """

    def __init__(self, path: str | Path, append: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        fresh = not append or not self.path.is_file() or self.path.stat().st_size == 0
        #: The file's own columns: a file begun by an older version keeps its header (newer terms left out).
        self.columns = COLUMNS if fresh else self._header()
        self._take = None if self.columns == COLUMNS else tuple(COLUMNS.index(c) for c in self.columns)
        self._file: TextIO = self.path.open("a" if append else "w", encoding="utf-8")
        if fresh:
            self._file.write("\t".join(COLUMNS) + "\n")

    def _header(self) -> tuple[str, ...]:
        with self.path.open(encoding="utf-8") as fh:
            header = tuple(fh.readline().rstrip("\n").split("\t"))
        unknown = [c for c in header if c not in COLUMNS]
        if unknown:
            raise ValueError(f"{self.path}: not a scores file (columns {unknown} unknown); name another file")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            log.warning("%s was begun without the columns %s: appending without them (name a new file to get them)",
                        self.path, missing)  # fmt: skip
        return header

    def write(self, rows: Iterable[FrameScore]) -> None:
        with self._lock:
            for row in rows:
                self._file.write("\t".join(_cells(row, self._take)) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> ScoresFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_scores(path: str | Path) -> list[dict[str, str]]:
    """The rows of a scores TSV as dicts keyed by column name (for tests and quick analyses)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]
