"""phi and phi' of a layer in integers: exact piecewise-linear kinds or lookup tables."""
from __future__ import annotations

import math

import numpy as np

from lava_gle.numerics import fixed as X
from lava_gle.numerics.activations import phi as float_phi, phi_prime as float_phi_prime
from lava_gle.quantize.formats import (
    SIGNED_PAYLOAD, UNSIGNED_PAYLOAD, QuantizationError, ceil_log2,
)

#: Largest lookup table (entries) for phi and phi'.
MAX_TABLE = 8192
#: Table step (fraction bits of the potential) of the output layer's interpolated phi.
WIDE_TABLE_BITS = 7
#: Activations with signed rates (payloads -127..127).
SIGNED_PHI = {"linear", "tanh"}
#: Activations whose rate range is known exactly.
BOUNDED_PHI = {"sigmoid": 1.0, "hard_sigmoid": 1.0, "tanh": 1.0}
#: Activations read from a table, and their largest slope.
TABLE_SLOPE = {"sigmoid": 0.25, "tanh": 1.0, "softplus": 1.0}


def fixed_activation(phi: str, u_bits: int, rate_bits: int, signed: bool, wide: bool,
                     layer: str) -> tuple[X.FixedActivation, float]:
    """phi of one layer and its largest error (rate units) over the payload range.

    8-bit payloads read a table whose step keeps them exact to the LSB; the 24-bit
    payloads of the output layer (``wide``) interpolate a table with step
    ``2**-WIDE_TABLE_BITS``. Tables of bounded phi hold payloads within range; softplus
    entries beyond it are clipped (and counted) when read. Piecewise-linear phi
    (linear, relu, hard_sigmoid) need no table.
    """
    if wide:
        p_min, p_max = (-X.STATE_MAX if signed else 0), X.STATE_MAX
    else:
        p_min, p_max = SIGNED_PAYLOAD if signed else UNSIGNED_PAYLOAD
    if phi not in TABLE_SLOPE:
        act = X.FixedActivation(kind=phi, u_bits=u_bits, rate_bits=rate_bits,
                                p_min=p_min, p_max=p_max)
        lo, hi = -4.0, 4.0
    else:
        k = WIDE_TABLE_BITS if wide else rate_bits + ceil_log2(TABLE_SLOPE[phi]) + 1
        k = min(k, u_bits)
        half = math.ceil((max(rate_bits, 0) + 2) * math.log(2.0))
        n = 2 * half * 2 ** k + 1
        if n > MAX_TABLE:
            raise QuantizationError(f"layer {layer!r}: the {phi} table would need {n} entries "
                                    f"(max {MAX_TABLE}); lower rate_bits ({rate_bits})")
        xs = (np.arange(n) - half * 2 ** k) * 2.0 ** -k
        # softplus keeps its entries beyond the payload range (clipped when read)
        table, _ = X.to_fixed(float_phi(phi)(xs), rate_bits,
                              *((p_min, p_max) if phi in BOUNDED_PHI else ()),
                              what=f"layer {layer!r}: {phi} table")
        gates, _ = X.to_fixed(float_phi_prime(phi)(xs), X.GATE_BITS, 0, X.GATE_ONE,
                              what=f"layer {layer!r}: {phi}' table")
        act = X.FixedActivation(kind="table", u_bits=u_bits, rate_bits=rate_bits,
                                p_min=p_min, p_max=p_max, table_bits=k,
                                table_lo=-half * 2 ** k, phi_table=table, gate_table=gates,
                                linear_above=(phi == "softplus"), interpolate=wide)
        lo, hi = -half - 1.0, half + 1.0
    # worst-case error of phi within the payload range, on a grid 8x finer than the table
    # (and at most 2**-16: the interpolated error is smooth between entries)
    step = 2.0 ** -(min(u_bits, max(act.table_bits, rate_bits) + 3, 16))
    u = np.arange(lo, hi, step)
    p, _, _ = act(X.to_fixed(u, u_bits)[0])
    ref = np.clip(float_phi(phi)(u), p_min * 2.0 ** -rate_bits, p_max * 2.0 ** -rate_bits)
    return act, float(np.max(np.abs(p * 2.0 ** -rate_bits - ref)))
