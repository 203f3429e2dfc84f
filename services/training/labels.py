"""A researcher's event labels for an archive: which kind of event was under way from when to when.

Two file formats, both documented in README.md and docs/models.md, so that labels written by hand or by
another tool need no code:

* **TSV** (any name not ending in ``.json``): one event a line, tab-separated ``kind``, ``start``, ``end``
  and optionally a region ``x0``, ``y0``, ``x1``, ``y1``; blank lines, lines starting with ``#`` and a
  header line whose first field is ``kind`` are skipped.
* **JSON**: a list of objects (or ``{"events": [...]}``) with ``kind``, ``start``, ``end`` and optionally
  ``region`` ``[x0, y0, x1, y1]``. The simulator's ``labels.json`` is read as is (its ``bbox`` is the region;
  its other keys are ignored).

Times are ISO 8601 (``2024-07-01T06:00Z``; a time without a zone is UTC); an event is active on frames
with ``start <= t <= end``. The region, a pixel box ``[x0, x1) x [y0, y1)`` of the frames as the archive
holds them, is optional and kept for reference: the scores are per frame, so a frame is an event frame when
any event is active at its time, wherever it lies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Files an archive's labels are looked for in when none is named.
DEFAULT_LABEL_FILES = ("labels.json", "labels.tsv")

Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class EventLabel:
    """One labelled event: its kind, first and last time (inclusive), and an optional pixel region."""

    kind: str
    start: datetime
    end: datetime
    region: Region | None = None

    def active(self, t: datetime) -> bool:
        return self.start <= t <= self.end


class LabelsError(ValueError):
    """A labels file that cannot be read; the message names the file and the line or entry."""


def parse_time(text: str) -> datetime:
    """ISO 8601 time as aware UTC; a trailing ``Z`` is accepted and a time without a zone is taken as UTC."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).astimezone(UTC)


def _label(kind: Any, start: Any, end: Any, region: Any, where: str) -> EventLabel:
    if not isinstance(kind, str) or not kind.strip():
        raise LabelsError(f"{where}: kind must be a non-empty name, got {kind!r}")
    try:
        t0, t1 = parse_time(str(start)), parse_time(str(end))
    except ValueError as exc:
        raise LabelsError(f"{where}: start and end must be ISO 8601 times ({exc})") from None
    if t1 < t0:
        raise LabelsError(f"{where}: end {t1.isoformat()} is before start {t0.isoformat()}")
    box: Region | None = None
    if region is not None:
        try:
            values = [int(v) for v in region]
        except (TypeError, ValueError):
            raise LabelsError(f"{where}: region must be four integers x0, y0, x1, y1, got {region!r}") from None
        if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
            raise LabelsError(f"{where}: region must be x0, y0, x1, y1 with x1 > x0 and y1 > y0, got {region!r}")
        box = (values[0], values[1], values[2], values[3])
    return EventLabel(kind.strip(), t0, t1, box)


def _from_json(path: Path) -> list[EventLabel]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LabelsError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("events")
    if not isinstance(data, list):
        raise LabelsError(f'{path}: expected a list of events (or {{"events": [...]}})')
    out = []
    for i, d in enumerate(data):
        where = f"{path} event {i + 1}"
        if not isinstance(d, dict) or not {"kind", "start", "end"} <= set(d):
            raise LabelsError(f"{where}: each event needs kind, start and end")
        out.append(_label(d["kind"], d["start"], d["end"], d.get("region", d.get("bbox")), where))
    return out


def _from_tsv(path: Path) -> list[EventLabel]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if fields[0].lower() == "kind":
            continue  # a header
        where = f"{path} line {n}"
        if len(fields) not in (3, 7):
            raise LabelsError(
                f"{where}: expected 3 tab-separated fields (kind, start, end) or 7 (plus x0, y0, x1, y1), "
                f"got {len(fields)}"
            )
        out.append(_label(fields[0], fields[1], fields[2], fields[3:] if len(fields) == 7 else None, where))
    return out


def load_labels(path: str | Path) -> list[EventLabel]:
    """Read a labels file, JSON (``.json``) or TSV (anything else); raises LabelsError naming the bad entry."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labels file {p} does not exist")
    return _from_json(p) if p.suffix.lower() == ".json" else _from_tsv(p)


def default_labels(archive: str | Path) -> Path | None:
    """The archive's own labels file (``labels.json`` or ``labels.tsv`` at its top), if it has one."""
    for name in DEFAULT_LABEL_FILES:
        if (Path(archive) / name).is_file():
            return Path(archive) / name
    return None


def kinds_at(labels: Sequence[EventLabel], times: Sequence[datetime]) -> list[tuple[str, ...]]:
    """The event kinds active at each time (sorted; empty for a normal frame)."""
    return [tuple(sorted({e.kind for e in labels if e.active(t)})) for t in times]
