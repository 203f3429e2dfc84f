"""Nowcasting: the next hours of a satellite's frames predicted from what it has seen.

Methods sit behind one registry (``interface``), as pysteps keeps its nowcasts: ``persistence`` (the last
frame repeated), ``optical_flow`` (pysteps motion + semi-Lagrangian extrapolation, an extra) and the analog
methods (what followed the most similar past windows). ``analogs`` finds those windows, ``verify`` scores
forecasts against what happened, ``run`` is the use case the command line and the benchmark call, and
``summary`` is the cheap digest an alert can carry.
"""
