"""phi and phi' of a layer in integers: exact piecewise-linear kinds, or piecewise
polynomials (segments) for sigmoid, tanh and softplus.

Nothing public shows lookup tables in Loihi 2 neuron microcode, so sigmoid, tanh and
softplus are evaluated from a few polynomial segments with the operations public sources
do show (abs, compare-and-select, multiply with shift and rounding, add):
:class:`lava_gle.numerics.fixed.Segments`. :func:`design_segments` chooses the segments
(breakpoints on a grid of 2**-4, the widest segments and the degree that need the fewest
instructions) so that the approximation error stays below a tolerance that is finer than
the payload's LSB: ``SEGMENT_TOL_LSB`` of an LSB, and at most ``WIDE_TOL`` for the 24-bit
output payloads, and so that every product fits the neuron's multiplier
(``product_bits``, a profile number: 37 bits by default, what the Euler factors use).
Where the budget does not allow the tolerance, it is relaxed (the gate's squares of the
working format bound it first: :func:`segment_tolerance`).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np
from scipy.special import expit

from lava_gle.numerics import fixed as X
from lava_gle.numerics.activations import phi as float_phi
from lava_gle.quantize.formats import SIGNED_PAYLOAD, UNSIGNED_PAYLOAD

#: Activations with signed rates (payloads -127..127).
SIGNED_PHI = {"linear", "tanh"}
#: Activations whose rate range is known exactly.
BOUNDED_PHI = dict.fromkeys(X.BOUNDED_KINDS, 1.0)
#: Approximation tolerance of the segments, in payload LSBs: the payload's rounding adds
#: half an LSB, so phi stays within 5/8 LSB (the nearest-entry tables it replaces: 3/4).
SEGMENT_TOL_LSB = 1 / 8
#: Approximation tolerance (rate units) of the 24-bit output payloads, whose LSB is far
#: finer than any need: 2**-21 = 4.8e-7 (the interpolated tables it replaces: 0.9-6e-6).
WIDE_TOL = 2.0 ** -21
#: Tolerance of the softplus gate (sigmoid) in gate LSBs (2**-12): within 1.5 gate LSB
#: after rounding (the tables it replaces: 4-27 gate LSB).
GATE_TOL_LSB = 1
#: Guard bits of the segments' working format below the tolerance.
GUARD_BITS = 3
#: Highest polynomial degree tried, widest and narrowest segment limit (log2) tried, and
#: breakpoint grid (log2).
MAX_DEGREE, MAX_WIDTH_LOG2, MIN_WIDTH_LOG2, GRID_LOG2 = 5, 2, -2, 4

#: The decaying function of a = |u| >= 0 each kind evaluates from segments.
SEGMENT_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda a: expit(-a),
    "tanh": lambda a: 1.0 - np.tanh(a),
    "softplus": lambda a: np.log1p(np.exp(-a)),
}


def segment_tolerance(rate_bits: int, wide: bool, product_bits: int | None = None) -> float:
    """The approximation tolerance (rate units) of a layer's segments: ``SEGMENT_TOL_LSB``
    of a payload LSB, at least ``WIDE_TOL`` for the 24-bit payloads (``wide``), and at
    least what a multiplier of ``product_bits`` allows (None: no limit): the gates of
    sigmoid and tanh multiply two values of the working format (``GUARD_BITS`` finer
    than the tolerance), whose product needs twice its bits and two more."""
    tol = SEGMENT_TOL_LSB * 2.0 ** -rate_bits
    if wide:
        tol = max(tol, WIDE_TOL)
    if product_bits is not None:
        tol = max(tol, 2.0 ** -(_max_work_bits(product_bits) - GUARD_BITS))
    return tol


def _max_work_bits(product_bits: int | None) -> int:
    """The finest working format whose squares (up to ``2**(2 bits)``) fit the budget."""
    return 62 if product_bits is None else (product_bits - 2) // 2


def _fit(f, lo: float, hi: float, degree: int) -> tuple[np.ndarray, float]:
    """Near-minimax polynomial (coefficients of t**j, t = a - lo) of ``f`` on [lo, hi]:
    interpolation at Chebyshev nodes; and its largest error on a fine grid."""
    k = np.arange(degree + 1)
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos((2 * k + 1) * np.pi / (2 * degree + 2))
    c = np.polynomial.polynomial.polyfit(x - lo, f(x), degree)
    t = np.linspace(0.0, hi - lo, 129)
    return c, float(np.max(np.abs(np.polynomial.polynomial.polyval(t, c) - f(t + lo))))


def _breakpoints(f, tol: float, degree: int, grid: float,
                 width_log2: int) -> list[tuple[float, float]]:
    """Greedy segments of ``f`` (decreasing to 0) on the ``grid``, each as wide as the
    tolerance allows (at most 2**width_log2), up to where ``f`` < tol / 4."""
    end = grid * math.ceil(-math.log(tol / 4) / grid)  # f(a) <= e**-a for all three
    while end - grid > 0 and f(np.array([end - grid]))[0] < tol / 4:
        end -= grid
    widest = max(1, int(2.0 ** width_log2 / grid))
    out, lo = [], 0.0
    while lo < end:
        # the widest segment within tolerance, by bisection (the error grows with width)
        good, bad = 1, min(widest, round((end - lo) / grid)) + 1
        while bad - good > 1:
            mid = (good + bad) // 2
            good, bad = (mid, bad) if _fit(f, lo, lo + mid * grid, degree)[1] <= tol / 2 \
                else (good, mid)
        out.append((lo, lo + good * grid))
        lo += good * grid
    return out


def _instructions(n_segments: int, degree: int) -> int:
    """Instructions of the segment selection and Horner's rule (as the neuron program
    writes them: ``lava_gle.numerics.neuron_program``)."""
    return (n_segments - 1) * (degree + 3) + 3 * degree + 3


@functools.lru_cache(maxsize=256)
def design_segments(kind: str, u_bits: int, tol: float,
                    product_bits: int | None = None) -> X.Segments:
    """The segments of ``kind`` (a key of :data:`SEGMENT_FUNCTIONS`, or ``gate`` for the
    softplus gate's sigmoid) for potentials with ``u_bits`` fraction bits, within ``tol``,
    every Horner product within ``product_bits`` (sign included; None: int64).

    Candidates are the degrees 1..MAX_DEGREE with segments at most 2**MAX_WIDTH_LOG2 ..
    2**MIN_WIDTH_LOG2 wide (narrower segments need fewer bits in ``t`` and in the
    coefficients), tried by instruction count; the first whose coefficients, rounded in a
    working format ``GUARD_BITS`` (or more) below the tolerance, meet it in integers within
    the budget is the design. If none does, the tolerance doubles (``Segments.tol`` holds
    the one met)."""
    f = SEGMENT_FUNCTIONS["sigmoid" if kind == "gate" else kind]
    grid = 2.0 ** -min(GRID_LOG2, max(u_bits, 0))
    limit = 63 if product_bits is None else min(product_bits, 63)
    while True:
        candidates = []
        for width_log2 in range(MAX_WIDTH_LOG2, MIN_WIDTH_LOG2 - 1, -1):
            for degree in range(1, MAX_DEGREE + 1):
                segs = _breakpoints(f, tol, degree, grid, width_log2)
                candidates.append((_instructions(len(segs) + 1, degree), -width_log2, degree,
                                   segs))
        fallback = None
        for _, neg_width, degree, segs in sorted(candidates, key=lambda c: c[:3]):
            seg, met = _integer_segments(f, segs, u_bits, tol, degree, -neg_width, limit,
                                         _max_work_bits(product_bits))
            if met:
                return seg
            fallback = fallback or seg
        if u_bits < GRID_LOG2 and fallback is not None:
            # potentials too coarse for the tolerance: the reported max_error says
            return fallback
        tol *= 2


def _integer_segments(f, segs: list[tuple[float, float]], u_bits: int, tol: float,
                      degree: int, width_log2: int, limit: int,
                      max_bits: int) -> tuple[X.Segments | None, bool]:
    """Integer segments of ``f`` on ``segs``: the first working format (``GUARD_BITS``
    below ``tol`` and finer, at most ``max_bits``) that meets ``tol`` with every Horner
    product within ``limit`` bits. Returns (segments, met); segments within the budget
    but not the tolerance (or None) when not met."""
    widest = max(hi - lo for lo, hi in segs)
    spread = max(min(0, width_log2), math.ceil(math.log2(widest)))  # 2**spread >= widest
    starts = np.array([round(lo * 2 ** u_bits) for lo, _ in segs]
                      + [round(segs[-1][1] * 2 ** u_bits)], np.int64)
    # t needs no more fraction bits than the tolerance (products stay narrow)
    t_shift = max(0, u_bits - (math.ceil(-math.log2(tol)) + 2))
    fits = None
    for guard in range(GUARD_BITS, GUARD_BITS + 8):
        bits = math.ceil(-math.log2(tol)) + guard
        if bits > max_bits:
            break
        coefs = np.zeros((len(segs) + 1, degree + 1), np.int64)
        for i, (lo, hi) in enumerate(segs):
            c, _ = _fit(f, lo, hi, degree)
            coefs[i] = np.round(c * 2.0 ** (bits + spread * np.arange(degree + 1)))
        seg = _monotone(X.Segments(starts=starts, coefs=coefs, bits=bits,
                                   shift=u_bits - t_shift + spread, t_shift=t_shift, tol=tol))
        if limit < 63 and (seg.product_bits(every=64) > limit or seg.product_bits() > limit):
            continue  # (no budget: int64 products, unchecked)
        fits = seg
        a = np.arange(0, int(starts[-1]) + 2 ** u_bits, max(1, 2 ** (u_bits - 12)))
        if np.max(np.abs(seg(a) * 2.0 ** -bits - f(a * 2.0 ** -u_bits))) <= tol:
            return seg, True
    return fits, False


def _monotone(seg: X.Segments) -> X.Segments:
    """``seg`` with constant coefficients raised so that ``f`` never steps up at a
    breakpoint (the functions decrease), in one sweep from the zero tail down: raising
    segment ``i`` only moves the breakpoint below it, which is checked next."""
    coefs = seg.coefs.copy()
    for i in range(len(seg.starts) - 2, -1, -1):  # the breakpoint starts[i + 1]
        fixed = X.Segments(seg.starts, coefs, seg.bits, seg.shift, seg.t_shift, seg.tol)
        b = seg.starts[i + 1]
        up = int(fixed(np.array([b]))[0] - fixed(np.array([b - 1]))[0])
        if up > 0:
            coefs[i, 0] += up
    return X.Segments(seg.starts, coefs, seg.bits, seg.shift, seg.t_shift, seg.tol)


def make_activation(phi: str, u_bits: int, rate_bits: int, signed: bool, wide: bool,
                    product_bits: int | None = None) -> X.FixedActivation:
    """phi of one layer in integers (see :func:`fixed_activation`)."""
    if wide:
        p_min, p_max = (-X.STATE_MAX if signed else 0), X.STATE_MAX
    else:
        p_min, p_max = SIGNED_PAYLOAD if signed else UNSIGNED_PAYLOAD
    segments = gate = None
    if phi in X.SEGMENT_PHI:
        tol = segment_tolerance(rate_bits, wide, product_bits)
        segments = design_segments(phi, u_bits, tol, product_bits)
        if phi == "softplus":
            gate = design_segments("gate", u_bits, GATE_TOL_LSB * 2.0 ** -X.GATE_BITS,
                                   product_bits)
    return X.FixedActivation(kind=phi, u_bits=u_bits, rate_bits=rate_bits, p_min=p_min,
                             p_max=p_max, segments=segments, gate_segments=gate)


def fixed_activation(phi: str, u_bits: int, rate_bits: int, signed: bool, wide: bool,
                     layer: str, product_bits: int | None = None
                     ) -> tuple[X.FixedActivation, float]:
    """phi of one layer and its largest error (rate units) over the payload range.

    Sigmoid, tanh and softplus are evaluated from segments within
    :func:`segment_tolerance` (a fraction of the payload LSB; ``WIDE_TOL`` for the 24-bit
    payloads of the output layer, ``wide``); the softplus gate from segments of the
    sigmoid within ``GATE_TOL_LSB``; every product within ``product_bits`` (None: no
    limit but int64's), which may relax the tolerances. Piecewise-linear phi (linear,
    relu, hard_sigmoid) are exact shifts and compares. ``layer`` names the layer in errors.
    """
    del layer  # every format has a segment form: nothing to refuse
    act = make_activation(phi, u_bits, rate_bits, signed, wide, product_bits)
    hi = 4.0 if act.segments is None else float(act.segments.starts[-1]) * 2.0 ** -u_bits + 1
    # worst-case error of phi within the payload range, on a grid of 2**-13 (or u's LSB)
    u = np.arange(-hi, hi, 2.0 ** -min(u_bits, 13))
    p, _, _ = act(X.to_fixed(u, u_bits)[0])
    lsb = 2.0 ** -rate_bits
    ref = np.clip(float_phi(phi)(u), act.p_min * lsb, act.p_max * lsb)
    return act, float(np.max(np.abs(p * lsb - ref)))
