"""Past events rather than past windows: sliding windows of one event overlap and rank together, so a list of
the ten nearest windows is often ten copies of two events. Folding keeps the best-ranked window of each
event; the detector and ``satwatch search`` fold by this one rule."""

from __future__ import annotations

from collections.abc import Sequence

from satwatch.services.retrieval.index import Neighbour, WindowRecord


def overlapping(a: WindowRecord, b: WindowRecord) -> bool:
    """Whether two windows are of one event: the same satellite and at least one instant in common."""
    return a.satellite == b.satellite and not (a.end < b.start or b.end < a.start)


def distinct_events(ranked: Sequence[Neighbour], k: int) -> list[Neighbour]:
    """The first ``k`` of ``ranked`` neighbours such that no two overlap in time on the same satellite: each
    kept window stands for the lower-ranked windows overlapping it."""
    chosen: list[Neighbour] = []
    for n in ranked:
        if all(not overlapping(c.record, n.record) for c in chosen):
            chosen.append(n)
            if len(chosen) == k:
                break
    return chosen

