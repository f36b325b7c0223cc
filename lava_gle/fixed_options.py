"""The ``fixed_point:`` options of a network description and their validation.

Network level (``fixed_point:`` at the top of the description):

- ``input_range`` (number > 0, default 2.0): largest |x| of the input stream; sets the
  input payload format (signed 8 bit).
- ``weight_headroom`` (number >= 1, default 2.0 with learning on, 1.0 with it off):
  factor by which learned weights may outgrow the largest initial weight before they
  saturate (sets the weight exponents).
- ``signal_growth`` (number >= 1, default 8.0): factor by which the drives, errors and
  error traces may outgrow their estimates from the initial weights (sets the state,
  rate and error-trace formats).
- ``weight_range`` (number >= 0, default 4.0 with learning on, 0 with it off): weights up
  to at least this magnitude are representable whatever the initial weights (biases: a
  quarter of it).
- ``seed`` (integer >= 0, default 0): seed of the counter-based stochastic rounding.
- ``rounding`` (``per_synapse`` or ``shared``, default ``per_synapse``): one rounding number
  per synapse and step, or one per projection and step as Lava's LearningDense draws it.

Layer level (``layers[i].fixed_point:``):

- ``weight_exp``, ``bias_exp`` (integers -24..8): W = w * 2**weight_exp, b = wb * 2**bias_exp.
- ``u_bits``, ``error_bits`` (integers 0..23): fraction bits of the potential and error formats.
- ``rate_bits`` (integer -8..16): fraction bits of the 8-bit rate payload (on the output
  layer, which sends 24-bit payloads: the range, as if it were 8 bit).
- ``error_trace_range`` (number > 0): the least error magnitude that maps to the largest
  learning trace (63); larger errors are clipped (counted). A small learning gain can
  make the trace coarser still (``docs/fixed-point.md``, section 3).

Defaults are derived from the float description by :func:`lava_gle.quantize.quantize_network`;
``docs/fixed-point.md`` explains each format.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lava_gle.errors import NetworkSpecError

#: key -> (kind, minimum, maximum); kind "int" or "number"; None = unbounded.
NETWORK_OPTIONS: dict[str, tuple[str, float | None, float | None]] = {
    "input_range": ("number", 0.0, None),
    "weight_headroom": ("number", 1.0, None),
    "signal_growth": ("number", 1.0, None),
    "weight_range": ("number", 0.0, None),
    "seed": ("int", 0, None),
    "rounding": ("choice", None, None),
}
#: Allowed values of "choice" options.
CHOICES = {"rounding": ("per_synapse", "shared")}
LAYER_OPTIONS: dict[str, tuple[str, float | None, float | None]] = {
    "weight_exp": ("int", -24, 8),
    "bias_exp": ("int", -24, 8),
    "u_bits": ("int", 0, 23),
    "error_bits": ("int", 0, 23),
    "rate_bits": ("int", -8, 16),
    "error_trace_range": ("number", 0.0, None),
}


def check_fixed_point(raw: Mapping, path: str, level: str,
                      source: str | None = None) -> dict[str, Any]:
    """Validate a ``fixed_point`` mapping of ``level`` ``"network"`` or ``"layer"``.

    Returns a plain dict of checked values; raises :class:`NetworkSpecError` naming
    ``path.key`` for an unknown key, a wrong type or a value out of range.
    """
    allowed = NETWORK_OPTIONS if level == "network" else LAYER_OPTIONS
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key not in allowed:
            raise NetworkSpecError(where, f"unknown fixed-point option; allowed here are "
                                          f"{sorted(allowed)}", source)
        kind, lo, hi = allowed[key]
        if kind == "choice":
            if value not in CHOICES[key]:
                raise NetworkSpecError(where, f"must be one of {list(CHOICES[key])}, got "
                                              f"{value!r}", source)
            out[key] = value
            continue
        if isinstance(value, (bool, np.bool_)) or \
                not isinstance(value, (int, float, np.integer, np.floating)):
            raise NetworkSpecError(where, f"must be {'an integer' if kind == 'int' else 'a number'}"
                                          f", got {value!r}", source)
        if kind == "int":
            if isinstance(value, (float, np.floating)) and not float(value).is_integer():
                raise NetworkSpecError(where, f"must be an integer, got {value!r}", source)
            value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise NetworkSpecError(where, f"must be finite, got {value!r}", source)
        if kind == "number" and lo is not None and value <= lo and lo == 0.0:
            raise NetworkSpecError(where, f"must be > 0, got {value:g}", source)
        if lo is not None and value < lo:
            raise NetworkSpecError(where, f"must be >= {lo:g}, got {value:g}", source)
        if hi is not None and value > hi:
            raise NetworkSpecError(where, f"must be <= {hi:g}, got {value:g}", source)
        out[key] = value
    return out
