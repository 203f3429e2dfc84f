"""Simulated event kinds by name, one registry (pysteps' ``interface.get_method`` is the model)."""

from __future__ import annotations

from satwatch.services.simulator.event import EventKind
from satwatch.services.simulator.kinds.calibration_jump import CalibrationJump
from satwatch.services.simulator.kinds.convection import Convection
from satwatch.services.simulator.kinds.missing_lines import MissingLines
from satwatch.services.simulator.kinds.saturated_block import SaturatedBlock
from satwatch.services.simulator.kinds.striping import Striping
from satwatch.services.simulator.kinds.vortex import Vortex

_KINDS: dict[str, EventKind] = {
    k.name: k for k in (Convection(), Vortex(), Striping(), MissingLines(), SaturatedBlock(), CalibrationJump())
}
#: The kinds in the order the planner draws them (their order is part of what a seed means).
EVENT_KINDS: tuple[str, ...] = tuple(_KINDS)
WEATHER_KINDS: tuple[str, ...] = tuple(k for k, v in _KINDS.items() if v.weather)
FAULT_KINDS: tuple[str, ...] = tuple(k for k, v in _KINDS.items() if not v.weather)


def get_event_kind(name: str) -> EventKind:
    """The kind of event called ``name``."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown event kind {name!r}; known: {', '.join(EVENT_KINDS)}") from None
