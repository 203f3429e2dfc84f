"""The nowcast methods by name, one registry as pysteps keeps its own (``pysteps.nowcasts.get_method``).

Every method is a function ``NowcastInput -> Forecast``; a new method is a module beside this one and a line
here. ``optical_flow`` needs pysteps (the ``[nowcast]`` extra); it is imported only when asked for.
"""

from __future__ import annotations

from functools import partial

from satwatch.services.nowcast.analog import analog, analog_change
from satwatch.services.nowcast.blend import analog_blend, analog_flow_blend
from satwatch.services.nowcast.forecast import Forecast, NowcastInput, NowcastMethod
from satwatch.services.nowcast.persistence import persistence


def _optical_flow(data: NowcastInput, motion_method: str = "lucaskanade") -> Forecast:
    from satwatch.services.nowcast.optical_flow import optical_flow

    return optical_flow(data, motion_method)


#: Name -> method. ``analog`` methods need ``NowcastInput.analogs`` and ``.past``; the others only frames.
METHODS: dict[str, NowcastMethod] = {
    "persistence": persistence,
    "optical_flow": _optical_flow,
    "optical_flow_darts": partial(_optical_flow, motion_method="darts"),
    "analog": analog,
    "analog_change": analog_change,
    "analog_blend": analog_blend,
    "analog_flow_blend": analog_flow_blend,
}
#: Methods that read similar past windows.
ANALOG_METHODS = frozenset({"analog", "analog_change", "analog_blend", "analog_flow_blend"})
#: What ``satwatch nowcast`` runs unless told otherwise: the analog methods beside both baselines.
DEFAULT_METHODS = ("persistence", "optical_flow", "analog", "analog_change", "analog_blend", "analog_flow_blend")


def get_method(name: str) -> NowcastMethod:
    """The method registered as ``name``; a ValueError that lists the names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown nowcast method {name!r}; choose from {', '.join(METHODS)}") from None
