"""Bit formats, exponents and factors from value bounds (the first quantisation pass).

A format is a number of fraction bits: ``x`` is held as ``round(x * 2**bits)``. Rates are
8-bit payloads (the output layer's 24 bit), states 24-bit signed, factors 12-bit
mantissas with a shift, weights and biases 8-bit mantissas with an exponent.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from lava_gle.numerics import fixed as X
from lava_gle.errors import LavaGleError, LavaGleWarning

#: Largest relative error tolerated when a factor is rounded to its mantissa.
FACTOR_TOLERANCE = 0.01
#: Payload ranges of rates.
UNSIGNED_PAYLOAD, SIGNED_PAYLOAD = X.UNSIGNED_PAYLOAD, X.SIGNED_PAYLOAD
#: A leaky integration whose rounding dead zone exceeds this share of its signal warns.
DEAD_ZONE_TOLERANCE = 0.01
#: A learning layer with gains warns when ``gain_max`` times its weight LSB exceeds this:
#: one LSB of an input weight may then move a neuron's gained payload (unit RMS) by more
#: than its RMS per unit of input. MNIST-1D's integers at 1.6-3.1 (cap 100, h0 exponents
#: -6 and -5): 1.5 points lower over eight draws, one collapsed in its last epoch; at 0.31
#: (cap 10) none collapsed (docs/experiments-log.md, "Session 24").
GAIN_LSB_TOLERANCE = 1.0


class QuantizationError(LavaGleError, ValueError):
    """A setting of the float description has no faithful fixed-point form.

    Attributes
    ----------
    layer : str | None
        The layer whose setting it is, where the error is about one layer.
    field : str | None
        The ``fixed_point`` option that would mend it, where there is one (e.g.
        ``"bias_exp"``).
    """

    def __init__(self, message: str, layer: str | None = None, field: str | None = None):
        super().__init__(message)
        self.layer = layer
        self.field = field


class QuantizationWarning(LavaGleWarning):
    """A fixed-point setting loses accuracy (saturating weights, approximate gains)."""


class BiasTraceWarning(QuantizationWarning):
    """A layer's biases learn too slowly for the learning engine's smallest bias rule, so
    the layer's error trace is made coarser for them (and its weights learn from that
    trace too); ``layer``: the layer's name. A finer bias format (``field``,
    ``bias_exp``) would avoid it where the biases fit."""

    field = "bias_exp"

    def __init__(self, message: str, layer: str):
        super().__init__(message)
        self.layer = layer


def ceil_log2(x: float) -> int:
    """Smallest integer ``k`` with ``2**k >= x`` (``x > 0``)."""
    return int(math.ceil(math.log2(x)))


def payload_max(signed: bool) -> int:
    """Largest 8-bit rate payload: 127 signed, 255 unsigned."""
    return SIGNED_PAYLOAD[1] if signed else UNSIGNED_PAYLOAD[1]


def rate_bits_for(r_max: float, signed: bool) -> int:
    """Fraction bits so that ``r_max`` rounded up to a power of two fits the payload."""
    r_range = 2.0 ** ceil_log2(max(r_max, 2.0 ** -16))
    return int(math.floor(math.log2((payload_max(signed) + 1) / r_range)))


def wide_rate_bits(rate_bits: int, signed: bool) -> int:
    """The output layer's 24-bit rate format: twice the range of the 8-bit format
    ``rate_bits`` (so that targets of exactly +-1 fit a tanh output) and 14 (signed 15)
    fraction bits more."""
    return rate_bits + (X.STATE_BITS - 2) - int(math.log2(payload_max(signed) + 1))


def state_bits_for(bound: float, width: int = X.STATE_BITS, least: int = 0) -> int:
    """Fraction bits (``least`` or more) of a signed ``width``-bit value (default: the
    24-bit state) that holds ``+-bound``."""
    top = min(width, X.STATE_BITS) - 1
    return int(min(top, max(least, top - ceil_log2(max(bound, 2.0 ** -16)))))


#: Fewest fraction bits of an error format. Errors can outgrow the 24-bit state at one
#: fraction bit: every layer with a gain (``gain_decay``) multiplies the error it passes
#: down by its gain, so a layer's error may be ~10**9 (measured on MNIST-1D); an error
#: format with negative fraction bits (an LSB of 2**-bits) holds it. -16 holds +-2**39.
ERROR_BITS_MIN = -16


def error_bits_for(bound: float, width: int = X.STATE_BITS) -> int:
    """Fraction bits of an error format (at least :data:`ERROR_BITS_MIN`) whose signed
    ``width``-bit values hold ``+-bound``."""
    return state_bits_for(bound, width, ERROR_BITS_MIN)


def sent_error_bits_for(bound: float, acc_bits: int) -> int:
    """Fraction bits of the error format of a layer whose error from above, ``W^T e``, is
    bounded by ``bound``: the ``acc_bits``-wide dendritic accumulator holds it with its
    guard bit (:func:`lava_gle.numerics.fixed.backward_error`)."""
    return error_bits_for(bound, acc_bits - X.BACKWARD_GUARD_BITS)


def quantize_factor(values, what: str, layer: str, scale: bool = False) -> X.Factor:
    """A Factor with 12-bit mantissas for ``values`` (> 0), common shift.

    Raises QuantizationError when a value is >= 4096 (the mantissa cannot hold it; a
    format conversion, ``scale=True``, then uses a left shift instead) or when a value
    is rounded by more than 1 % (too small next to the largest one).
    """
    v = np.atleast_1d(np.asarray(values, np.float64))
    top = float(v.max())
    if top >= 2 ** X.FACTOR_BITS and not scale:
        raise QuantizationError(f"layer {layer!r}: {what} = {top:g} does not fit the 12-bit "
                                f"factor mantissa (max {2 ** X.FACTOR_BITS - 1}); bring the "
                                "time constants closer together")
    shift = X.factor_shift(top, allow_left=scale)
    mant, _ = X.to_fixed(v, shift, 0, 2 ** X.FACTOR_BITS - 1,
                         what=f"layer {layer!r}: {what}")
    rel = np.abs(mant * 2.0 ** -shift / v - 1.0)
    worst = int(np.argmax(rel))
    if rel[worst] > FACTOR_TOLERANCE:
        raise QuantizationError(f"layer {layer!r}: {what} = {v[worst]:g} (neuron {worst}) is "
                                f"rounded to {mant[worst] * 2.0 ** -shift:g} "
                                f"({100 * rel[worst]:.1f}% off) by the 12-bit factor format; "
                                f"its ratio to the largest value {top:g} is too large")
    return X.Factor(mant if len(mant) > 1 else mant.reshape(()), shift)


def check_dead_zone(layer: str, what: str, factor: float, bits: int, signal: float,
                    option: str) -> None:
    """Warn when ``x += round(dx * factor)`` ignores differences of a sizeable share of the
    signal: any |dx| below ``0.5 / factor`` LSB rounds to no change at all."""
    dead = 0.5 * 2.0 ** -bits / factor
    if dead > DEAD_ZONE_TOLERANCE * signal:
        warnings.warn(f"layer {layer!r}: with {what} = {factor:.3g} the state stops "
                      f"{dead:.3g} short of its target (rounding dead zone, "
                      f"{100 * dead / signal:.0f}% of the expected signal {signal:.3g}); "
                      f"raise the layer's fixed_point {option}", QuantizationWarning,
                      stacklevel=4)


def check_gain_resolution(layer: str, gain_max: float, w_exp: int) -> None:
    """Warn when a learning layer's gains, up to ``gain_max``, make one weight LSB
    (``2**w_exp``) a step of more than :data:`GAIN_LSB_TOLERANCE` of its neurons' gained
    payload per unit of input: the learning engine's rounding then switches a weight,
    and with one input a neuron's whole drive, by a sizeable share of it."""
    step, fit = gain_max * 2.0 ** w_exp, GAIN_LSB_TOLERANCE * 2.0 ** -w_exp
    if step > GAIN_LSB_TOLERANCE:
        warnings.warn(f"layer {layer!r}: gain_max {gain_max:g} times one weight LSB "
                      f"(2^{w_exp}) is {step:.3g}: one LSB a learning step rounds into a "
                      f"weight can move a neuron's gained payload by {step:.3g} of its RMS "
                      f"per unit of input; lower the layer's gain_max to {fit:g} or below "
                      f"(experiments: --gain-max {layer}={fit:g}), or give it a finer "
                      f"fixed_point weight_exp", QuantizationWarning, stacklevel=4)


def weight_exp(w: np.ndarray, headroom: float, floor: float) -> int:
    """Exponent of 8-bit mantissas (+-255) that hold ``max|w| * headroom`` and ``+-floor``."""
    top = float(np.max(np.abs(w))) if w.size else 0.0
    return ceil_log2(max(top * headroom, floor, 2.0 ** -16) / 255.0)


def to_mantissas(values: np.ndarray, exp: int, layer: str, what: str,
                 fixed: bool = False) -> np.ndarray:
    """``values`` as mantissas of ``2**exp`` in the learning engine's weight range (sign and
    8 bits, ``W_MIN..W_MAX`` = -256..255, so the integers a run learned read back as they
    are); warns when some saturate, and, for weights that do not learn (``fixed``), when a
    neuron's (a row of the matrix) all round to zero though some are not: the neuron
    would get no input at all (learning weights may grow from zero; a layer of one input
    drawn at random has some such rows, e.g. MNIST-1D's h0)."""
    q, n = X.to_fixed(values, -exp, X.W_MIN, X.W_MAX, what=f"layer {layer!r}: {what}")
    if fixed and q.ndim == 2:
        lost = np.flatnonzero(~q.any(axis=1) & np.asarray(values).any(axis=1))
        if len(lost):
            top = float(np.max(np.abs(values[lost[0]])))
            warnings.warn(f"layer {layer!r}: the {what} of {len(lost)} neuron(s) (first: "
                          f"{int(lost[0])}, largest |w| {top:g}) all round to 0 at exponent "
                          f"{exp} (LSB {2.0 ** exp:g}, set by the layer's largest |w| "
                          f"{float(np.max(np.abs(values))):g}) and do not learn: they get no "
                          "input in fixed point; bring the layer's weights within 8 bits of "
                          "each other, or lower its fixed_point.weight_exp (the largest then "
                          "saturate)",
                          QuantizationWarning, stacklevel=4)
    if n:
        warnings.warn(f"layer {layer!r}: {n} {what} saturate at exponent {exp} (values "
                      f"{float(np.min(values)):g}..{float(np.max(values)):g} beyond "
                      f"{X.W_MIN * 2.0 ** exp:g}..{X.W_MAX * 2.0 ** exp:g}); "
                      f"raise the layer's fixed_point exponent", QuantizationWarning,
                      stacklevel=4)
    return q
