"""Fixed-point GLE step functions: the integer twin of :mod:`lava_gle.numerics.floating`.

Every quantity is an integer with a per-layer binary point; the formats, the
rounding and the saturation rules are documented in ``docs/fixed-point.md``, and
the constants come from :func:`lava_gle.quantize.quantize_network`. The split
mirrors the float module (neuron step, forward drive, backward error, output
error, synapse update) so that the NumPy engine and the Lava ``fixed_pt``
ProcessModels call exactly these functions.

All functions take integer ndarrays (int64 inside, values within the stated bit
widths) with any leading batch axes ``...`` and are deterministic: the only
randomness (the stochastic rounding of the learning accumulator and the layers'
learning schedules, :func:`learning_draws`) comes from :func:`counter_bits`, a
counter-based hash of ``(seed, stream, step, synapse)`` that a Lava model reproduces
exactly.

Saturation is never silent: every function that clips returns how many values it
clipped, and the engines add these counts up per variable.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from lava_gle.errors import NonFiniteError

Array = np.ndarray

#: Width of neuron state (u, v, e, u_prosp, drive, errors sent down): signed 24 bit.
STATE_BITS = 24
STATE_MAX = (1 << (STATE_BITS - 1)) - 1
#: Fraction bits of phi' (the error gate): 1.0 == 4096.
GATE_BITS = 12
GATE_ONE = 1 << GATE_BITS
#: Fraction bits of the learning accumulator (Lava: weights sit in it as w << 7).
ACC_FRAC = 7
#: Unsigned width of the learning accumulator (Lava ``W_ACCUMULATOR_U``).
ACC_BITS = 15
#: Width of a trace factor (x1, y2, y3) and of the scaling mantissa.
TRACE_BITS = 7
MANT_BITS = 4
#: Weight range of the learning engine (MIXED sign mode, 8-bit magnitude).
W_MIN, W_MAX = -256, 255
#: Ranges of an 8-bit rate payload (graded spike), unsigned and signed.
UNSIGNED_PAYLOAD = (0, 255)
SIGNED_PAYLOAD = (-127, 127)
#: Largest magnitude of the signed error trace e_q (y2 = e_q+, y3 = e_q-; x1 - 64 = e_q).
ERR_TRACE_MAX = 63


# -- rounding, shifting, saturation ---------------------------------------------

def shift_round(x: Array, k: int) -> Array:
    """``x * 2**-k`` rounded to nearest (ties up) for ``k > 0``; an exact ``x << -k`` for k <= 0."""
    if k > 0:
        return (x + (1 << (k - 1))) >> k
    if k < 0:
        return x << (-k)
    return x


def shift_floor(x: Array, k: int) -> Array:
    """``x >> k`` (floor, as Lava's Dense for negative exponents) or ``x << -k``."""
    if k > 0:
        return x >> k
    if k < 0:
        return x << (-k)
    return x


def saturate(x: Array, lo: int, hi: int) -> tuple[Array, int]:
    """Clip ``x`` to ``[lo, hi]``; return the clipped array and how many values were clipped."""
    n = int(np.count_nonzero((x < lo) | (x > hi)))
    if n:
        x = np.minimum(np.maximum(x, lo), hi)
    return x, n


def saturate_state(x: Array) -> tuple[Array, int]:
    """Clip to the signed 24-bit state range ``[-(2**23 - 1), 2**23 - 1]``."""
    return saturate(x, -STATE_MAX, STATE_MAX)


#: Default bounds of :func:`to_fixed` for values without a format of their own: int64
#: with room for the shifts that follow.
INT_LIMIT = 1 << 62


def to_fixed(x, bits: int, lo: int = -INT_LIMIT, hi: int = INT_LIMIT,
             what: str = "values") -> tuple[Array, int]:
    """Float ``x`` in a format with ``bits`` fraction bits: ``round(x * 2**bits)`` (ties to
    even) clipped to ``[lo, hi]``, as int64, and how many values were clipped.

    Every float that becomes an integer goes through here. The clip happens in float,
    before the cast: a plain ``astype(np.int64)`` turns anything beyond 2**63 into
    INT64_MIN, so +1e20 would become the most negative value. ``+-inf`` saturates like
    any value beyond the format; NaN has no integer value and raises
    :class:`~lava_gle.errors.NonFiniteError` naming ``what`` (the streams refuse NaN and
    inf earlier, in :func:`lava_gle.numerics.streams.prepare_streams`).
    """
    r = np.round(np.asarray(x, np.float64) * 2.0 ** bits)
    bad = np.isnan(r)
    if bad.any():
        where = np.argwhere(bad)[0].tolist()
        raise NonFiniteError(f"{what} hold NaN (at index {where}), which has no fixed-point "
                             "value; remove it before the fixed-point run")
    n = int(np.count_nonzero((r < lo) | (r > hi)))
    if n:
        r = np.clip(r, lo, hi)
    return r.astype(np.int64), n


@dataclass(frozen=True, eq=False)
class Factor:
    """A non-negative constant ``mant * 2**-shift``: 12-bit unsigned mantissa(s), one shift.

    ``mant`` is an int64 array [n] (one per neuron) or a 0-d array. ``shift`` >= 0 for
    the Euler factors; format conversions (gamma, beta) may have ``shift < 0``, an exact
    left shift.
    """

    mant: Array
    shift: int

    def apply(self, x: Array) -> Array:
        """``round(x * mant * 2**-shift)`` (ties up), exact integer arithmetic."""
        return shift_round(x * self.mant, self.shift)

    def value(self) -> Array:
        """The float value(s) the factor represents."""
        return self.mant.astype(np.float64) * 2.0 ** -self.shift


# -- activation -----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Segments:
    """A piecewise polynomial ``f(a)`` of a non-negative potential ``a`` (``u_bits``
    fraction bits), evaluated with multiplies, shifts, adds and compares only.

    Segment ``i`` covers ``starts[i] <= a < starts[i + 1]`` (the last one to infinity) and
    holds ``f = sum_j c_ij t**j`` with ``t = a - starts[i]``, by Horner's rule:
    ``acc = c_id``, then ``acc = round(acc * t * 2**-shift) + c_ij`` for ``j = d-1 .. 0``.
    Coefficient ``j`` has ``bits + j * spread`` fraction bits (``shift = u_bits + spread``
    with ``2**spread`` >= the widest segment), so each rounding costs at most half an LSB
    of the ``bits`` format whatever the power of ``t`` it is multiplied by. The last
    segment is all zeros: ``f = 0`` beyond ``starts[-1]``.

    Attributes
    ----------
    starts : int64 [N]
        Segment starts in potential LSBs, ascending, ``starts[0] == 0``.
    coefs : int64 [N, degree + 1]
        ``coefs[i, j]`` multiplies ``t**j``.
    bits : int
        Fraction bits of the result.
    shift : int
        Right shift (rounding half up) after each multiply by ``t``.
    t_shift : int
        ``t`` is first rounded to ``t_shift`` fewer bits (potentials finer than the
        tolerance needs would only widen the products).
    tol : float
        The approximation tolerance (units of ``f``) the segments were designed to; a
        record, not used in the arithmetic.
    """

    starts: Array
    coefs: Array
    bits: int
    shift: int
    t_shift: int = 0
    tol: float = 0.0

    @property
    def degree(self) -> int:
        return self.coefs.shape[1] - 1

    def constants(self) -> int:
        """How many constants the neuron program holds: the starts after the first and the
        coefficients of every segment but the last (all zero)."""
        return (len(self.starts) - 1) * (self.degree + 2)

    def product_bits(self, every: int = 1) -> int:
        """Width (bits, sign included) of the widest product ``acc * t`` Horner's rule
        forms, over every potential (``every`` > 1: every ``every``-th ``t`` of each
        segment and its last, a cheaper estimate from below). 0 for constant segments."""
        widest = 0
        for i in range(len(self.starts) - 1):
            top = int(shift_round(self.starts[i + 1] - 1 - self.starts[i], self.t_shift))
            t = np.unique(np.append(np.arange(0, top + 1, every), top))
            acc = np.full(t.shape, self.coefs[i, -1])
            for j in range(self.degree - 1, -1, -1):
                prod = acc * t
                widest = max(widest, int(np.max(np.abs(prod))).bit_length() + 1)
                acc = shift_round(prod, self.shift) + self.coefs[i, j]
        return widest

    def __call__(self, a: Array) -> Array:
        """``f(a)`` in ``bits`` fraction bits (a: int64 >= 0, any shape)."""
        i = np.searchsorted(self.starts, a, side="right") - 1
        t = shift_round(a - self.starts[i], self.t_shift)
        c = self.coefs[i]
        acc = c[..., -1]
        for j in range(self.degree - 1, -1, -1):
            acc = shift_round(acc * t, self.shift) + c[..., j]
        return acc


#: Activations evaluated from segments (the others are exact shifts and compares).
SEGMENT_PHI = ("sigmoid", "tanh", "softplus")


#: phi whose rates are bounded by +-1.0.
BOUNDED_KINDS = ("sigmoid", "hard_sigmoid", "tanh")


@dataclass(frozen=True, eq=False)
class FixedActivation:
    """Integer phi and phi' of one layer: prospective potential -> (rate payload, gate).

    ``kind`` is ``linear``, ``relu``, ``hard_sigmoid`` (exact piecewise-linear: shifts and
    compares) or ``sigmoid``, ``tanh``, ``softplus``: these fold the potential to
    ``a = |u|`` and evaluate one decaying function of ``a`` from :class:`Segments`
    (``f = sigmoid(-a)``, ``1 - tanh(a)``, ``softplus(-a)``), then unfold by the sign of
    ``u``: ``sigmoid(u) = 1 - f`` for ``u >= 0`` else ``f``; ``tanh(u) = +-(1 - f)``;
    ``softplus(u) = max(u, 0) + f``. The gate comes from the same value
    (``sigmoid' = f (1 - f)``, ``tanh' = 1 - tanh**2``) or, for softplus
    (``softplus' = sigmoid``), from ``gate_segments`` (``sigmoid(-a)`` to the gate's
    precision). Payloads are clipped to ``[p_min, p_max]`` and the clips counted, except
    a rate of exactly +-1.0 of a bounded phi (sigmoid, hard_sigmoid, tanh) one LSB beyond
    the format (``2**rate_bits = p_max + 1``): that is the 8-bit format's top, held as
    ``+-p_max`` (:attr:`counts_clips`).

    Attributes
    ----------
    kind : str
    u_bits, rate_bits : int
        Fraction bits of the potential (input) and of the rate payload (output).
    p_min, p_max : int
        Payload range (0..255 unsigned, -127..127 signed; 24 bit for the output layer).
    segments, gate_segments : Segments or None
        The segment functions (``gate_segments``: softplus only).
    """

    kind: str
    u_bits: int
    rate_bits: int
    p_min: int
    p_max: int
    segments: Segments | None = None
    gate_segments: Segments | None = None

    @property
    def counts_clips(self) -> bool:
        """Whether clipped payloads are saturations. Not for a bounded phi (sigmoid,
        hard_sigmoid, tanh) whose +-1.0, ``2**rate_bits``, is one LSB beyond the format:
        its payloads reach at most that, so its only clip is a rate of +-1.0, held as the
        format's top. With more fraction bits than its range needs (a ``rate_bits``
        override) a bounded phi's clips lose rates and count."""
        one = 1 << self.rate_bits if self.rate_bits >= 0 else 0
        return not (self.kind in BOUNDED_KINDS and one == self.p_max + 1)

    def __call__(self, u: Array) -> tuple[Array, Array, int]:
        """Payload p, gate g (``GATE_ONE`` == 1) and the number of clipped payloads."""
        to_rate = self.u_bits - self.rate_bits
        if self.kind == "linear":
            p = shift_round(u, to_rate)
            g = np.full_like(u, GATE_ONE)
        elif self.kind == "relu":
            p = np.maximum(shift_round(u, to_rate), 0)
            g = (u > 0).astype(np.int64) << GATE_BITS
        elif self.kind == "hard_sigmoid":
            one = 1 << self.u_bits
            p = np.clip(shift_round(u, to_rate), 0, 1 << self.rate_bits)
            g = ((u >= 0) & (u <= one)).astype(np.int64) << GATE_BITS
        else:
            p, g = self._segmented(u)
        p, n = saturate(p, self.p_min, self.p_max)
        return p, g, n if self.counts_clips else 0

    def _segmented(self, u: Array) -> tuple[Array, Array]:
        """Payload and gate of sigmoid, tanh and softplus (the neuron program's steps)."""
        seg = self.segments
        w = seg.bits
        one = 1 << w
        pos = u >= 0
        a = np.abs(u)
        f = seg(a)
        if self.kind == "sigmoid":
            y = np.where(pos, one - f, f)
            g = shift_round(f * (one - f), 2 * w - GATE_BITS)
            return shift_round(y, w - self.rate_bits), g
        if self.kind == "tanh":
            y = one - f
            q = shift_round(y, w - self.rate_bits)
            g = GATE_ONE - shift_round(y * y, 2 * w - GATE_BITS)
            return np.where(pos, q, -q), g
        # softplus
        y = shift_round(np.maximum(u, 0), self.u_bits - w) + f
        gs = self.gate_segments
        fg = gs(a)
        g = shift_round(np.where(pos, (1 << gs.bits) - fg, fg), gs.bits - GATE_BITS)
        return shift_round(y, w - self.rate_bits), g


# -- neuron ---------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FixedNeuronConstants:
    """Integer constants of one layer's neuron update (from ``quantize_network``).

    Attributes
    ----------
    dt_m, tau_r_m : Factor
        ``dt/tau_m`` and ``tau_r/tau_m`` (membrane update and prospective read-out).
    dt_r, tau_m_r : Factor
        ``dt/tau_r`` and ``tau_m/tau_r`` (error compartment; ``tau_m/tau_r`` may exceed 1).
    gamma : Factor or None
        ``gamma * 2**(u_bits - e_bits)``: error (error format) into the membrane
        (potential format); ``None`` when gamma == 0.
    gamma_negative : bool
        The sign of gamma (a Factor is non-negative).
    prospective : bool
        Prospective error compartments or instantaneous errors.
    phi : FixedActivation
    product_bits : int or None
        The multiplier's product width (sign included; None: int64, 63 bits).
    e_max : int or None
        The layer's ``error_bound`` in the error format: ``e`` is clipped to ``+-e_max``
        (the model's bound, not a saturation: not counted, nor is e's clip at the state's
        limit, which then changes nothing); None: unbounded.
    du_max : int or None
        Derived, not given: the largest ``|du|`` the Euler multiplies take
        (:func:`euler_operand_max`); ``du`` is clamped to it (counted as ``du.<layer>``).
        None without gamma: ``|s - u| <= 2**24 - 2`` times a 12-bit mantissa always fits
        37 bits. A constant of the layer (it depends on the product width only, so a
        learned tau_m does not change it and the chip never divides for it).
    """

    dt_m: Factor
    tau_r_m: Factor
    dt_r: Factor
    tau_m_r: Factor
    gamma: Factor | None
    gamma_negative: bool
    prospective: bool
    phi: FixedActivation
    product_bits: int | None = None
    e_max: int | None = None
    du_max: int | None = field(init=False)

    def __post_init__(self) -> None:
        du_max = None if self.gamma is None else euler_operand_max(self.product_bits)
        object.__setattr__(self, "du_max", du_max)


#: Product width of int64 arithmetic (sign included): ``product_bits`` None.
INT64_PRODUCT_BITS = 63


def euler_operand_max(product_bits: int | None) -> int:
    """The largest operand magnitude whose product with any 12-bit factor mantissa fits a
    signed ``product_bits``-wide product (None: int64): ``(2**(product_bits - 1) - 1) >>
    FACTOR_BITS`` (``2**24 - 1`` at 37 bits). A shift of a profile number, not a division
    by the factors' mantissas: at most 2x tighter than the exact bound (mantissas keep 12
    significant bits) and the same for every tau_m."""
    bits = INT64_PRODUCT_BITS if product_bits is None else product_bits
    return ((1 << (bits - 1)) - 1) >> FACTOR_BITS


class FixedNeuronState(NamedTuple):
    """Integer state of a layer at the end of a step (int64 arrays [..., n]).

    ``u``, ``u_prosp``: potential format; ``p``: rate payload; ``g``: phi' gate
    (``GATE_ONE`` == 1) used by the next step; ``v``, ``e``: error format.
    """

    u: Array
    u_prosp: Array
    p: Array
    g: Array
    v: Array
    e: Array


#: Variables whose saturations a neuron step counts, in the order it returns them
#: (``du``: the Euler operand clamped to :attr:`FixedNeuronConstants.du_max`).
NEURON_SAT_VARS = ("v", "e", "du", "u", "u_prosp", "r")


def zero_state(shape: tuple[int, ...]) -> FixedNeuronState:
    """The state before step 0: all zero (rate and gate too)."""
    return FixedNeuronState(*(np.zeros(shape, np.int64) for _ in FixedNeuronState._fields))


def neuron_step(u: Array, v: Array, g: Array, s: Array, d: Array,
                c: FixedNeuronConstants) -> tuple[FixedNeuronState, tuple[int, ...]]:
    """One integer Euler step of both compartments (the float ``neuron_step``'s twin).

    Parameters
    ----------
    u, v, g : int64 [..., n]
        Potential, error state and gate from the previous step.
    s : int64 [..., n]
        Forward drive (potential format).
    d : int64 [..., n]
        Error from above (error format).

    Returns
    -------
    (FixedNeuronState, counts)
        ``counts`` = clipped values of (v, e, du, u, u_prosp, r), see
        :data:`NEURON_SAT_VARS`. With ``c.e_max`` (the layer's error bound, the model's
        clip) ``e`` counts nothing: the bound, within the state, sets its value.

    With gamma, ``du = s - u +- round(e gamma')`` can exceed what the multiplier takes:
    it is clamped to ``+-c.du_max`` (counted) before the Euler multiplies, so every
    product ``du * mant`` fits ``c.product_bits``. Without gamma it always fits.
    """
    i = shift_round(g * d, GATE_BITS)
    if c.prospective:
        dv = i - v
        v_new, n_v = saturate_state(v + c.dt_r.apply(dv))
        e, n_e = saturate_state(v + c.tau_m_r.apply(dv))
    else:
        v_new, n_v = saturate_state(i)
        e, n_e = v_new, 0
    if c.e_max is not None:  # within the state: it sets e, a clip at the state's limit
        e, n_e = np.clip(e, -c.e_max, c.e_max), 0  # changes nothing then
    du, n_du = s - u, 0
    if c.gamma is not None:
        fb = c.gamma.apply(e)
        du, n_du = saturate(du - fb if c.gamma_negative else du + fb, -c.du_max, c.du_max)
    u_new, n_u = saturate_state(u + c.dt_m.apply(du))
    u_prosp, n_up = saturate_state(u + c.tau_r_m.apply(du))
    p, g_new, n_r = c.phi(u_prosp)
    return (FixedNeuronState(u_new, u_prosp, p, g_new, v_new, e),
            (n_v, n_e, n_du, n_u, n_up, n_r))


# -- synapses -------------------------------------------------------------------

def int_matmul(a: Array, b: Array) -> Array:
    """Exact integer ``a @ b`` through float64 BLAS.

    Exact while every partial sum stays below 2**53: the operands here are at most
    24-bit states and 9-bit weights or traces, so fan-ins up to 2**20 are safe.
    """
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def acc_limit(acc_bits: int) -> int:
    """Largest magnitude of a signed ``acc_bits``-wide dendritic accumulator."""
    return (1 << (acc_bits - 1)) - 1


def forward_drive(w: Array, w_shift: int, b: Array, b_shift: int, p: Array,
                  acc_max: int) -> tuple[Array, int, int]:
    """Drive ``s = (W p) << w_shift + b << b_shift`` in the potential format, saturated.

    w int [n, m] (8-bit magnitude + sign), p int [..., m] payloads, b int [n];
    negative shifts are arithmetic right shifts (floor), as Lava's Dense ``weight_exp``.
    The dendritic accumulator's sum ``(W p) << w_shift`` saturates to ``±acc_max``
    (:func:`acc_limit`; as a whole: the partial sums are exact), then the bias is added
    and the drive saturates to the state. Returns (s, state clips, accumulator clips).
    """
    acc, n_acc = saturate(shift_floor(int_matmul(p, w.T), -w_shift), -acc_max, acc_max)
    s, n = saturate_state(acc + shift_floor(b, -b_shift))
    return s, n, n_acc


#: Fraction bits the dendritic accumulator keeps below the error format of the layer an
#: error is sent down to (:func:`backward_error`).
BACKWARD_GUARD_BITS = 1


def backward_error(w: Array, e: Array, shift: int, acc_max: int) -> tuple[Array, int, int]:
    """Error sent down ``eps = round((W^T e) << shift)`` (error format of the layer below,
    ties up), saturated to the accumulator, then to the state.

    The accumulator sums ``(W^T e) << (shift + 1)``, one guard bit
    (:data:`BACKWARD_GUARD_BITS`) finer than the error format, floored for negative shifts
    as Lava's Dense ``weight_exp``, saturated to ``±acc_max`` as a whole; the error neuron
    drops the guard bit rounding half up (one ``mulsr``). By ``floor((floor(2x) + 1) / 2) =
    floor(x + 1/2)`` that is the sum rounded to nearest. A floor alone biases every error by
    -1/2 LSB; below a layer whose errors are a few LSBs the bias drives its biases to the
    limits of their formats (``docs/fixed-point.md``, section 1).

    w int [n, m], e int [..., n] -> [..., m]. Returns (eps, state clips, accumulator clips).
    """
    acc, n_acc = saturate(shift_floor(int_matmul(e, w), -shift - BACKWARD_GUARD_BITS),
                          -acc_max, acc_max)
    eps, n = saturate_state(shift_round(acc, BACKWARD_GUARD_BITS))
    return eps, n, n_acc


def output_error(p: Array, y: Array, beta: Factor, beta_negative: bool) -> tuple[Array, int]:
    """Nudging error ``beta * (y - r)`` (mse) in the output layer's error format, saturated.

    p: previous output payloads [..., n]; y: targets in the same rate format [..., n].
    """
    d = beta.apply(y - p)
    return saturate_state(-d if beta_negative else d)


# -- learning engine ------------------------------------------------------------

def pre_trace(p: Array, signed: bool, shift: int = 0,
              dither: Array | None = None) -> tuple[Array, Array]:
    """Presynaptic trace from a rate payload, as Lava's GradedSpikeCfg.OVERWRITE sees it.

    ``shift`` 0: the learning payload is ``q = p`` (unsigned rates, 0..255) or
    ``q = p + 128`` (signed rates -127..127, read back with the factor ``x1 - 64``).
    Returns ``(x0, x1)``: ``x0 = q != 0`` (a zero payload is no spike) and
    ``x1 = min(round_half_even(q / 2), 127)``.

    ``shift`` a > 0: the trace is ``a`` bits coarser (the rule's gain is ``2**a`` larger,
    :func:`lava_gle.quantize.rules.layer_learning`), stochastically rounded: the
    presynaptic neuron sends the learning-only payload ``q = 2 x1`` with
    ``x1 = (p + dither) >> (a + 1)`` (``+ 64`` for signed rates), ``dither`` uniform in
    ``0 .. 2**(a+1) - 1`` ([m], broadcast over the batch axes of ``p``;
    :func:`pre_dither`), so ``E[x1 * 2**a] = p / 2``, the shift-0 trace's value.
    """
    if shift <= 0:
        q = p + 128 if signed else p
        x1 = np.minimum(np.round(q / 2.0).astype(np.int64), (1 << TRACE_BITS) - 1)
        return (q != 0).astype(np.int64), x1
    x1 = shift_floor(p + dither, shift + 1) + (64 if signed else 0)
    return (x1 != 0).astype(np.int64), x1


def error_trace(e: Array, shift: int, dither: Array | None,
                doubled: bool = False, mant: int = 1) -> tuple[Array, int]:
    """Signed 7-bit error trace ``e_q = clip((mant e + dither) >> shift, -63, 63)`` and clip
    count.

    ``dither`` holds uniform integers in ``0 .. 2**shift - 1`` ([n], broadcast over the
    batch axes of ``e``; None for ``shift <= 0``, an exact left shift): stochastic
    rounding, so ``E[e_q] = mant e 2**-shift`` and an error below one trace LSB still
    learns, in proportion to its size. ``mant``: 1, or a 4-bit mantissa (9..15, with
    ``shift`` :data:`TRACE_MANT_BITS` larger) that scales the trace by ``mant / 16``
    between powers of two, which is how an exact rule's power-of-two gain is met to 4 bits
    (:func:`lava_gle.quantize.rules.choose_rules`). The
    postsynaptic third factors are ``y2 = max(e_q, 0)``, ``y3 = max(-e_q, 0)``; the
    backward array reads the same e_q as the presynaptic factor ``x1 - 64``.
    ``doubled`` (an exact rule, :class:`LearningRuleConstants`): e_q is clipped to +-31
    and sent as ``2 e_q``, the values returned.
    """
    x = e if mant == 1 else mant * e
    q = shift_floor(x + dither, shift) if shift > 0 else shift_floor(x, shift)
    if doubled:
        q, n = saturate(q, -(ERR_TRACE_MAX // 2), ERR_TRACE_MAX // 2)
        return 2 * q, n
    return saturate(q, -ERR_TRACE_MAX, ERR_TRACE_MAX)


#: Width of an error trace's mantissa (:func:`error_trace`): the trace scaled by
#: ``mant / 2**TRACE_MANT_BITS``.
TRACE_MANT_BITS = 4


@dataclass(frozen=True)
class LearningRuleConstants:
    """One projection's learning rule in the learning engine's terms.

    ``dw = S*x0*x1*y2 - S*x0*x1*y3 + 2^(s_exp-8)*x0*y0`` (``(x1-64)`` instead of ``x1``
    for a signed presynaptic payload) with ``S = mant * 2**(s_exp - 7)``; ``y0`` (the
    bAP) is sent whenever the error trace is non-zero. The engine floors every product
    to a multiple of ``2**s_exp`` accumulator units, which biases the update by half a
    unit downwards per active product; the last product adds that half unit back, so
    ``s_exp >= 1``. See :mod:`lava_gle.microcode`.

    ``exact``: mantissa 4 on an error trace sent doubled (``y2 = 2 e_q+``, ``y3 =
    2 e_q-``, e_q clipped to +-31; :func:`error_trace`), so every product
    ``(4 x1 2 e_q) >> 3 = x1 e_q`` is exact: no compensation product (with mantissa 4 the
    floor loses only the low bit of ``x1 e_q``, a quarter quantum on average, which the
    half-quantum compensation overshoots), and ``s_exp >= 0``.
    """

    mant: int
    s_exp: int
    pre_signed: bool
    exact: bool = False

    #: Right shift that brings a product back to 15 bits: factor widths (x1, y2: 7 each;
    #: the x0 dependency counts none) + mantissa width (4) - 15.
    overflow_shift = 2 * TRACE_BITS + MANT_BITS - ACC_BITS

    def gain(self) -> float:
        """Weight LSBs per unit of ``x1 * e_q`` (ignoring the floor of the shift)."""
        return self.mant * 2.0 ** (self.s_exp - ACC_FRAC - self.overflow_shift) * (
            2 if self.exact else 1)

    def compensation(self) -> int:
        """Accumulator units the rule adds per active product (``x0 * y0``)."""
        return 0 if self.exact else 1 << (self.s_exp - 1)


#: Constant payload of a bias neuron under a compensated rule (x1 = 127).
BIAS_PAYLOAD = 254
#: The bias neuron's payloads under an exact rule, the first the widest (x1 = 64 .. 4): on
#: the doubled error trace every product ``m x1 2 e_q >> 3 = m x1 e_q / 4`` is exact.
BIAS_PAYLOADS_EXACT = (128, 64, 32, 16, 8)


@dataclass(frozen=True)
class BiasRule(LearningRuleConstants):
    """A bias array's rule: the biases learn as synapses from a bias neuron whose constant
    payload ``payload`` gives the presynaptic trace ``x1`` (never coarsened; unsigned).
    Under an exact rule the payload is one of :data:`BIAS_PAYLOADS_EXACT`, so the products
    stay exact, and a smaller payload gives a smaller step per unit of ``e_q`` than the
    least mantissa and exponent do (:func:`lava_gle.quantize.rules.choose_rules`); under a
    compensated rule it is :data:`BIAS_PAYLOAD`."""

    payload: int | None = None  # None: the widest for the rule's kind

    def __post_init__(self) -> None:
        allowed = BIAS_PAYLOADS_EXACT if self.exact else (BIAS_PAYLOAD,)
        if self.payload is None:
            object.__setattr__(self, "payload", allowed[0])
        if self.payload not in allowed or self.pre_signed:
            raise ValueError(f"an {'exact' if self.exact else 'compensated'} bias rule "
                             f"takes an unsigned payload of {allowed}, not {self.payload}")

    @property
    def x1(self) -> int:
        """The bias neuron's presynaptic trace (:func:`pre_trace` of its payload)."""
        return min(self.payload // 2, (1 << TRACE_BITS) - 1)


_ACC_LO, _ACC_HI = -(1 << ACC_BITS) - 1, (1 << ACC_BITS) - 1


def learning_accumulator(w: Array, x0: Array, x1: Array, e_q: Array,
                         rule: LearningRuleConstants) -> Array:
    """The learning accumulator after one epoch's product series (:func:`accumulate`
    without its count of clips)."""
    return accumulate(w, x0, x1, e_q, rule)[0]


def accumulate(w: Array, x0: Array, x1: Array, e_q: Array,
               rule: LearningRuleConstants) -> tuple[Array, int]:
    """The learning accumulator after one epoch's product series, and its clips.

    w: int [n, m] weights; x0, x1: int [m] or [B, m] presynaptic; e_q: int [n] or
    [B, n] signed error trace. The accumulator is int64 [n, m] in units of 2**-7 weight
    LSB.
    As Lava's fixed learning engine: the accumulator starts at ``w << 7``; each product
    ``((x0 * f_pre * y * mant) >> overflow_shift) << s_exp`` is clipped to 16 bits signed
    and added with saturation, in the order of the rule string (y2 with +mant, y3 with
    -mant, then the rounding compensation ``x0 * y0 * rule.compensation()``, none for an
    exact rule, whose ``e_q`` is the doubled trace of :func:`error_trace`). With a batch
    axis every element's products are floored and compensated as if each were its own Lava
    epoch, and the accumulator is the mean of the elements' accumulators, rounded to
    nearest (ties up) and then saturated (:func:`_accumulator_sums`, matrix products);
    per-element saturation is not modelled in a batch, which differs from the mean of B
    Lava epochs only where one element's product or partial sum reaches the 16-bit
    limits. Batch 1 is exactly Lava's arithmetic, and identical batch copies give
    exactly batch 1 wherever nothing saturates.

    Returns ``(accumulator, clips)``: the number of saturations, at batch 1 every product
    and partial sum that reached the 16-bit limits (Lava's engine saturates silently; here
    they are counted), with a batch axis every element of the mean that did.
    """
    x0, x1, e_q = np.atleast_2d(x0), np.atleast_2d(x1), np.atleast_2d(e_q)
    batch = max(x0.shape[0], e_q.shape[0])
    f_pre = (x1 - 64) if rule.pre_signed else x1
    pre = x0 * np.clip(f_pre, -(1 << TRACE_BITS), (1 << TRACE_BITS) - 1)
    if batch == 1:
        return _element_sums(w, x0[:, None, :], pre[:, None, :], e_q[:, :, None], rule)
    return _saturated_acc((_accumulator_sums(w, x0, pre, e_q, rule, batch) + batch // 2)
                          // batch)


def _saturated_acc(x: Array) -> tuple[Array, int]:
    """``x`` saturated to the learning accumulator, and how many of its values were."""
    clipped = np.minimum(np.maximum(x, _ACC_LO), _ACC_HI)  # np.clip: ~5x slower when small
    return clipped, int(np.count_nonzero(clipped != x))


def _element_sums(w: Array, x0: Array, pre: Array, e_q: Array,
                  rule: LearningRuleConstants) -> tuple[Array, int]:
    """Sum over the batch (axis 0) of every element's accumulator, saturating per element
    as Lava does (used for batch 1; the operands broadcast to [B, n, m]), and the
    saturations."""
    acc, clips = w << ACC_FRAC, 0
    for mant, y in ((rule.mant, np.maximum(e_q, 0)), (-rule.mant, np.maximum(-e_q, 0))):
        mac, n_mac = _saturated_acc(((y * pre * mant) >> rule.overflow_shift) << rule.s_exp)
        acc, n_sum = _saturated_acc(acc + mac)
        clips += n_mac + n_sum
    comp = ((e_q != 0) * x0) * rule.compensation()
    acc, n_sum = _saturated_acc(acc + comp)
    return acc.sum(axis=0), clips + n_sum


def _accumulator_sums(w: Array, x0: Array, pre: Array, e_q: Array,
                      rule: LearningRuleConstants, batch: int) -> Array:
    """The batch sum of the accumulators with matrix products, without saturation.

    ``sum_b floor(a_b / 2**k)`` with ``a_b = mant y_b pre_b`` is
    ``(sum_b a_b - sum_b (a_b mod 2**k)) / 2**k``, and ``a_b mod 2**k`` depends only on
    ``mant y_b mod 2**k`` and ``pre_b mod 2**k``: one matrix product over the non-zero
    residues of ``mant y`` that occur (few: the error trace is sparse, and mant 4 or 6
    leaves only even residues). Without saturation (the caller saturates the mean).
    """
    mask = (1 << rule.overflow_shift) - 1
    total = batch * (w << ACC_FRAC)
    pre_res = pre & mask
    for mant, y in ((rule.mant, np.maximum(e_q, 0)), (-rule.mant, np.maximum(-e_q, 0))):
        exact = mant * int_matmul(y.T, pre)
        res = (mant * y) & mask  # [B, n]
        r = np.flatnonzero(np.bincount(res.ravel(), minlength=mask + 1)[1:]) + 1
        if r.size:
            onehot = (res[:, :, None] == r).transpose(1, 0, 2).reshape(y.shape[1], -1)
            # [B R, m]: (r * pre_b) mod 2**k for every residue r that occurs
            lost_by_residue = ((r[None, :, None] * pre_res[:, None, :]) & mask).reshape(
                -1, pre.shape[1])
            exact = exact - int_matmul(onehot, lost_by_residue)
        total = total + ((exact >> rule.overflow_shift) << rule.s_exp)
    comp = int_matmul((e_q != 0).T, x0) * rule.compensation()
    return total + comp


def round_accumulator(acc: Array, rand7) -> tuple[Array, int]:
    """New weights from the accumulator, as Lava's fixed learning engine does it.

    ``w' = floor(acc / 128) + (rand7 < acc mod 128)``, clipped to ``[-256, 255]``
    (counted). ``rand7`` in 0..127 is the epoch's random number: one shared by the whole
    projection as in Lava (which draws one float ``u`` per epoch; ``rand7 = floor(128 u)``
    is equivalent because the fraction is a multiple of 1/128), or an array of one per
    synapse.
    """
    frac = acc & ((1 << ACC_FRAC) - 1)
    w_new = (acc >> ACC_FRAC) + (rand7 < frac)
    return saturate(w_new, W_MIN, W_MAX)


def synapse_update(w: Array, x0: Array, x1: Array, e_q: Array, rule: LearningRuleConstants,
                   rand7) -> tuple[Array, int, int]:
    """One learning epoch (t_epoch = 1) of a projection: w int [n, m] -> (w', weights
    clipped, accumulator clips).

    x0/x1 [m] or [B, m], e_q [n] or [B, n] (see :func:`accumulate`).
    """
    acc, n_acc = accumulate(w, x0, x1, e_q, rule)
    return *round_accumulator(acc, rand7), n_acc


#: Widths of the synaptic tag as extra low-order bits of a weight (``weight_tag_bits``):
#: the learning engine's carry product ``(t + C) * sgn(t + 512)`` is floored by 2**7 (its
#: factor widths, 9 + 9 + 4, exceed the accumulator's 15 bits by 7), times a mantissa
#: ``2**(7 - bits)`` of at most 4 bits.
TAG_BITS = (5, 6, 7)


def carry_tags(w: Array, tag: Array, bits: int) -> int:
    """The tag's carry into its weight, in place: ``c = (tag + 2**(bits-1)) >> bits``
    whole weight LSBs, ``w += c`` (clipped to the weight range, counted) and
    ``tag -= c * 2**bits``.

    w, tag: int [n, m] (or [n] for biases); the tag holds the weight's low-order part in
    units of ``2**-bits`` LSB, so ``w + tag * 2**-bits`` is the learned value and ``w``, which
    the forward sum reads, its nearest multiple of one LSB once carried. On a chip this is
    the unconditional first product of each rule (``u0``; :func:`lava_gle.microcode.
    tag_rule_strings`). Returns the weights clipped.
    """
    carry = (tag + (1 << (bits - 1))) >> bits
    tag -= carry << bits
    w[...], clipped = saturate(w + carry, W_MIN, W_MAX)
    return clipped


def transpose_drift(w: Array, back: Array, rows: Array, row_sq: Array) -> tuple[int, int]:
    """How far the backward array ``back`` stands from ``w`` on ``rows`` after a learning
    step that changed only those rows (chip timing's transpose drift).

    w, back: int [n, m] (``back`` held in ``w``'s orientation); rows: int [k], the rows to
    measure; row_sq: int64 [n], each row's ``sum_j (back - w)**2`` as last measured,
    updated in place on ``rows``. Returns ``(largest |back - w| on rows (0 if none),
    change of sum(row_sq))``, in weight LSBs and their squares.
    """
    d = back[rows].astype(np.int64) - w[rows]
    sq = np.sum(d * d, axis=-1)
    largest = int(np.abs(d).max()) if d.size else 0
    change = int(sq.sum()) - int(row_sq[rows].sum())
    row_sq[rows] = sq
    return largest, change


def active_rows(e_q: Array) -> Array:
    """Rows (postsynaptic neurons) whose error trace ``e_q`` [..., n] is non-zero in some
    batch element. Only these rows' synapses can change in a learning epoch: a row with
    ``e_q = 0`` everywhere has no product and no rounding compensation, its accumulator is
    ``w << 7`` exactly and rounds back to ``w`` (already within the weight range), for any
    batch. Updating only these rows gives the very integers of updating all."""
    return np.flatnonzero(np.any(np.reshape(e_q, (-1, e_q.shape[-1])) != 0, axis=0))


def update_projection(w: Array, b: Array | None, p: Array, e_q: Array, pre_signed: bool,
                      rule: LearningRuleConstants, bias_rule: BiasRule | None,
                      rand_w, rand_b, pre_shift: int = 0, dither_pre: Array | None = None
                      ) -> tuple[Array, Array | None, tuple[int, int]]:
    """One learning epoch of a projection (or of some of its rows): weights w [n, m] from
    the presynaptic payloads ``p`` [..., m] (traced as :func:`pre_trace` with
    ``pre_shift`` and ``dither_pre``) and the error trace ``e_q`` [..., n]
    (:func:`error_trace`), biases b [n] (when ``bias_rule``) as synapses from a bias neuron
    with the rule's payload (never coarsened). ``rand_w``, ``rand_b``: the step's
    rounding numbers of these rows (:func:`rounding_draws`).

    Returns ``(w', b', (weight clips, bias clips, accumulator clips))``, the last of the
    weights' and the biases' accumulators together.
    """
    x0, x1 = pre_trace(p, pre_signed, pre_shift, dither_pre)
    w, n_w, n_acc = synapse_update(w, x0, x1, e_q, rule, rand_w)
    n_b = 0
    if bias_rule is not None:
        bx0, bx1 = pre_trace(np.full(e_q.shape[:-1] + (1,), bias_rule.payload), False)
        wb, n_b, n_bacc = synapse_update(b[:, None], bx0, bx1, e_q, bias_rule, rand_b)
        b, n_acc = wb[:, 0], n_acc + n_bacc
    return w, b, (n_w, n_b, n_acc)


def learn_projection(w: Array, b: Array | None, p: Array, e: Array, trace_shift: int,
                     pre_signed: bool, rule: LearningRuleConstants,
                     bias_rule: BiasRule | None, seed: int, layer: int,
                     step: int, per_synapse: bool, pre_shift: int = 0,
                     rounding: tuple[int, int] | None = None,
                     active: Array | None = None,
                     trace_mant: int = 1) -> tuple[int, int, int, int]:
    """Layer ``layer``'s learning epoch at step ``step``, in place: the error trace of the
    errors ``e`` [..., n] (:func:`error_trace` with mantissa ``trace_mant``, dithered by
    :func:`trace_dither`), then
    :func:`update_projection` of weights ``w`` [n, m] and biases ``b`` [n] (``bias_rule``
    None: biases stay, and ``b`` may be None) from the payloads ``p`` [..., m] (their
    trace ``pre_shift`` bits coarser, dithered by :func:`pre_dither`), with the rounding
    numbers of :func:`rounding_draws` (``seed``; ``per_synapse`` or one per projection).
    ``rounding``: ``(stream, step)`` of the weights' rounding numbers instead of
    ``(2 layer, step)`` (:func:`counter_bits`; a chip's backward array, which learns from
    the same traces with numbers of its own). ``active``: bool [n], set to the rows whose
    error trace is non-zero (output).

    Only the rows whose error trace is non-zero are computed (:func:`active_rows`: the
    others keep their integers exactly); the trace is sparse after training starts.
    With weight tags (:func:`carry_tags`) ``w`` and ``b`` are the tags and the rules are
    in tag units.
    Returns the clipped values ``(error trace, weights, biases, learning accumulators)``
    (:func:`accumulate`).
    """
    n = w.shape[0]
    dither = trace_dither(seed, layer, step, n, trace_shift)
    e_q, n_trace = error_trace(e, trace_shift, dither, rule.exact, trace_mant)
    rows = active_rows(e_q)
    if active is not None:
        active[...] = False
        active[rows] = True
    if rows.size == 0:
        return n_trace, 0, 0, 0
    rand_w, rand_b = (rounding_draws(seed, layer, step, w.shape, per_synapse, rows)
                      if rounding is None or bias_rule is not None else (None, None))
    if rounding is not None:
        stream, at = rounding
        rand_w = counter_bits(seed, stream, at, ACC_FRAC, w.shape if per_synapse else (),
                              rows if per_synapse else None)
    w_rows, b_rows, (n_w, n_b, n_acc) = update_projection(
        w[rows], None if b is None else b[rows], p, e_q[..., rows], pre_signed, rule,
        bias_rule, rand_w, rand_b, pre_shift, pre_dither(seed, layer, step, w.shape[1],
                                                         pre_shift))
    w[rows] = w_rows
    if bias_rule is not None:
        b[rows] = b_rows
    return n_trace, n_w, n_b, n_acc


# -- tau_m learning -------------------------------------------------------------

#: Largest shift of a re-derived Euler factor (as the quantiser's).
FACTOR_MAX_SHIFT = 40
#: Width of a factor mantissa (unsigned), as Loihi's 12-bit decays.
FACTOR_BITS = 12


@dataclass(frozen=True, eq=False)
class TauLearning:
    """Integer tau_m learning of one layer: ``T = round(tau_m * 2**tau_bits)`` per neuron.

    ``gain`` turns ``-e * du`` (error format times potential format, ``du`` the step's
    change of u) into T units: ``eta_tau / dt * 2**(tau_bits - e_bits - u_bits)``.
    ``t_init``: T before learning [n]; ``t_min``: tau_m_min in T units; ``dt_num`` and
    ``tau_r_num`` [n]: dt and tau_r in T units, from which the Euler factors are
    re-derived whenever T changes (:func:`tau_constants`).
    """

    tau_bits: int
    gain: Factor
    t_init: Array
    t_min: int
    dt_num: int
    tau_r_num: Array


def factor_shift(top: float, allow_left: bool = False) -> int:
    """The shift that gives a factor's largest value ``top`` 12 significant bits:
    ``11 - floor(log2(top))``, clamped to ``0..40`` (``-40..40`` when ``allow_left``, for
    format conversions that may shift left)."""
    shift = (FACTOR_BITS - 1) - int(np.floor(np.log2(top)))
    return int(min(max(shift, -FACTOR_MAX_SHIFT if allow_left else 0), FACTOR_MAX_SHIFT))


def factor_ratio(num, den) -> Factor:
    """The Factor of ``num / den`` (positive integers, scalars or arrays [n]): 12-bit
    mantissas ``round(num * 2**shift / den)`` (integer division), the shift giving the
    largest ratio 12 significant bits (0..40)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.int64), np.asarray(den, np.int64))
    shift = factor_shift(float(np.max(num / den)))
    mant = ((num << shift) + den // 2) // den
    mant = np.clip(mant, 1, (1 << FACTOR_BITS) - 1)
    return Factor(mant if mant.ndim and mant.size > 1 else mant.reshape(()), shift)


def tau_factors(t: Array, tl: TauLearning) -> dict[str, Factor]:
    """The factors that depend on tau_m, ``dt_m``, ``tau_r_m`` and ``tau_m_r`` (dt/tau_m,
    tau_r/tau_m, tau_m/tau_r), derived from the integer time constants ``t`` [n]."""
    return {"dt_m": factor_ratio(tl.dt_num, t), "tau_r_m": factor_ratio(tl.tau_r_num, t),
            "tau_m_r": factor_ratio(t, tl.tau_r_num)}


def tau_constants(c: FixedNeuronConstants, t: Array, tl: TauLearning) -> FixedNeuronConstants:
    """``c`` with the factors that depend on tau_m derived from ``t`` [n]
    (:func:`tau_factors`)."""
    return replace(c, **tau_factors(t, tl))


def tau_step(t: Array, e: Array, du: Array, tl: TauLearning,
             dither: Array | None) -> tuple[Array, int]:
    """One SGD step of tau_m in integers: ``T += gain * mean_b(-e du)``, stochastically
    rounded with ``dither`` (``gain.shift`` bits per neuron, None for shift <= 0),
    clamped below at ``t_min`` (tau_m_min, as the float engine) and saturated at the
    24-bit state (counted). e [..., n] error format, du [..., n] potential format."""
    e2, du2 = np.atleast_2d(e), np.atleast_2d(du)
    batch = e2.shape[0]
    g = ((-(e2 * du2)).sum(axis=0) + batch // 2) // batch
    prod = g * tl.gain.mant
    k = tl.gain.shift
    dt_ = shift_floor(prod + dither, k) if k > 0 else shift_floor(prod, k)
    t_new = np.maximum(t + dt_, tl.t_min)
    return saturate(t_new, tl.t_min, STATE_MAX)


# -- deterministic randomness ---------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0xD1B54A32D192ED03)


_MASK64 = (1 << 64) - 1
_GOLDEN_INT, _MIX1_INT, _STEP_INT = int(_GOLDEN), int(_MIX1), int(_STEP)


@functools.lru_cache(maxsize=16)
def _counter_index(shape: tuple[int, ...]) -> Array:
    """The element indices ``0 .. prod(shape) - 1`` as a flat uint64 array (read-only,
    cached: the hash needs them every step)."""
    index = np.arange(int(np.prod(shape)), dtype=np.uint64)  # 1-d: array ops wrap silently
    index.setflags(write=False)
    return index


def counter_bits(seed: int, stream: int, step: int, bits: int,
                 shape: tuple[int, ...] = (), rows: Array | None = None) -> Array:
    """Uniform integers in ``0 .. 2**bits - 1`` from ``(seed, stream, step, element)``.

    A SplitMix64 finaliser of the counter: no state to carry, so the NumPy engine and a
    Lava model that know the seed, the stream id, the step and the element's flat index
    draw the same numbers. ``shape=()`` gives one number (element 0), e.g. one shared by
    a whole projection as in Lava's LearningDense; ``shape=(n, m)`` one per synapse.
    ``rows`` (int array, with a 2-d ``shape``): only these rows, ``[len(rows), m]``, the
    same numbers as the full draw's rows.
    """
    base = (seed * _GOLDEN_INT + stream * _MIX1_INT + step * _STEP_INT + 1) & _MASK64
    index = _counter_index(shape)
    if rows is not None:
        m = shape[1]
        index = (index[:m][None, :] + (np.asarray(rows, np.uint64) * np.uint64(m))[:, None]
                 ).ravel()
        shape = (len(rows), m)
    z = index + np.uint64(base)  # wraps modulo 2**64, as the hash's sums
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(64 - bits)).astype(np.int64).reshape(shape)


#: First stream id of the error-trace dither (layer l uses ``_DITHER_STREAM + l``; the
#: weight and bias rounding numbers use streams ``2 l`` and ``2 l + 1``).
_DITHER_STREAM = 1 << 32
#: First stream id of the tau_m update's dither.
_TAU_STREAM = 1 << 33
#: First stream id of the presynaptic trace's dither (layer l: ``_PRE_STREAM + l``).
_PRE_STREAM = 3 << 32
#: First stream id of the backward arrays' rounding numbers under chip timing (layer l:
#: ``BACKWARD_STREAM + l``); every stream family above has its own base.
BACKWARD_STREAM = 4 << 32


def tau_dither(seed: int, layer: int, step: int, tl: TauLearning) -> Array | None:
    """The dither of :func:`tau_step` for layer ``layer`` on ``step`` (stream
    ``_TAU_STREAM + layer``, one number per neuron), or None for a gain without shift."""
    if tl.gain.shift <= 0:
        return None
    return counter_bits(seed, _TAU_STREAM + layer, step, tl.gain.shift, tl.t_init.shape)


def trace_dither(seed: int, layer: int, step: int, n: int, trace_shift: int) -> Array | None:
    """The error trace's dither of layer ``layer`` on ``step``: ``trace_shift`` bits per
    neuron ([n], stream ``_DITHER_STREAM + layer``, shared by a batch so that identical
    batch copies stay identical); None when ``trace_shift <= 0``."""
    if trace_shift <= 0:
        return None
    return counter_bits(seed, _DITHER_STREAM + layer, step, trace_shift, (n,))


def pre_dither(seed: int, layer: int, step: int, m: int, pre_shift: int) -> Array | None:
    """The dither of layer ``layer``'s presynaptic trace on ``step`` (:func:`pre_trace`):
    ``pre_shift + 1`` bits per presynaptic neuron ([m], stream ``_PRE_STREAM + layer``,
    shared by a batch); None when ``pre_shift <= 0``. The presynaptic neuron draws it
    when it forms its learning payload."""
    if pre_shift <= 0:
        return None
    return counter_bits(seed, _PRE_STREAM + layer, step, pre_shift + 1, (m,))


def rounding_draws(seed: int, layer: int, step: int, w_shape: tuple[int, int],
                   per_synapse: bool, rows: Array | None = None) -> tuple[Array, Array]:
    """The 7-bit rounding numbers of layer ``layer``'s weights [n, m] (stream ``2 layer``)
    and biases (stream ``2 layer + 1``) on ``step``: one per projection, or one per synapse
    (``per_synapse``; with ``rows``, only those rows' numbers)."""
    if not per_synapse:
        return (counter_bits(seed, 2 * layer, step, ACC_FRAC),
                counter_bits(seed, 2 * layer + 1, step, ACC_FRAC))
    return (counter_bits(seed, 2 * layer, step, ACC_FRAC, w_shape, rows),
            counter_bits(seed, 2 * layer + 1, step, ACC_FRAC, (w_shape[0], 1), rows))


def learning_draws(seed: int, layer: int, step: int, w_shape: tuple[int, int],
                   trace_shift: int, per_synapse: bool) -> tuple[Array, Array, Array | None]:
    """All random numbers of one step of layer ``layer``'s plasticity (weights [n, m]):
    ``(rand_w, rand_b, dither)`` of :func:`rounding_draws` and :func:`trace_dither`."""
    return (*rounding_draws(seed, layer, step, w_shape, per_synapse),
            trace_dither(seed, layer, step, w_shape[0], trace_shift))


# -- neuron-local normalisers -------------------------------------------------------

#: Fraction bits of a gain's integer factor ``gamma = g * 2**GAIN_FRAC``.
GAIN_FRAC = 12
#: Fraction bits of the normalised error ``e / RMS(e)`` (:func:`normalised_error`), from
#: which a layer with an error normaliser takes its error trace: RMS 1 is ``2**16``,
#: whatever the layer's error format.
NORM_FRAC = 16
#: Significant bits of an error normaliser's factor ``nu`` (a mantissa and a per-neuron
#: shift, :func:`error_normaliser`): the factor keeps its precision for errors of any size.
NU_BITS = 16
#: The largest ``nu``, so that ``nu e`` of a 24-bit ``e`` stays within 63 bits.
NU_MAX = 2.0 ** 32


@dataclass(frozen=True)
class NormaliserFormat:
    """Integer form of one layer's neuron-local normalisers (``docs/fixed-point.md``,
    section 6; the float model: ``docs/model.md``, "Neuron-local normalisers").

    Attributes
    ----------
    gain_shift, error_shift : int or None
        ``s`` with ``1 - decay = 2**-s`` of ``gain_decay`` / ``error_norm_decay``; None
        where the layer has no gain / no error normaliser.
    q_bits : int
        Fraction bits of the 8-bit learning payload of ``q = g r``
        (:func:`learning_payload`).
    wide_bits : int
        Fraction bits the summed payload ``q`` keeps beyond ``q_bits``
        (``fixed_point.gain_payload_bits - 8``): it is ``gain_payload_bits`` wide.
    payload_shift : int
        ``q = gamma p >> payload_shift`` from the layer's 24-bit rate ``p``:
        ``GAIN_FRAC + rate_bits - q_bits - wide_bits``.
    gain_k : int
        ``gamma = round(2**gain_k / sqrt(ms_r))`` from the running mean square of ``p``:
        ``GAIN_FRAC + rate_bits``. ``g d`` (the error format) is ``gamma d >> GAIN_FRAC``.
    gain_max : int
        The largest ``gamma`` (the float model's ``GAIN_MAX`` in these units).
    norm_shift : int
        ``NORM_FRAC - error_bits``: ``nu = n * 2**norm_shift`` turns the error (the layer's
        error format) scaled by the float normaliser ``n`` into the normalised error
        (``NORM_FRAC`` fraction bits, the format of its learning rule's trace).
    norm_max : float
        The largest ``nu``: the float model's ``NORM_MAX`` in these units, at most
        :data:`NU_MAX`.
    """

    gain_shift: int | None
    error_shift: int | None
    q_bits: int
    wide_bits: int
    payload_shift: int
    gain_k: int
    gain_max: int
    norm_shift: int
    norm_max: float

    @property
    def payload_frac(self) -> int:
        """Fraction bits of the summed payload ``q``: ``q_bits + wide_bits``."""
        return self.q_bits + self.wide_bits


def mean_square_shift(steps: int, decay_shift: int) -> int:
    """Shift of a running mean square's update number ``steps`` (1, 2, ...):
    ``min(floor(log2 steps), decay_shift)``, the float model's rate
    (:func:`lava_gle.numerics.floating.mean_square_rate`) with ``1 - decay = 2**-decay_shift``."""
    return min(int(steps).bit_length() - 1, decay_shift)


def update_mean_square(ms: Array, x: Array, shift: int) -> None:
    """``ms += round((mean_b(x**2) - ms) * 2**-shift)`` in place; ms int64 [n], x [..., n]
    24-bit values (the batch mean rounded down: batches > 1 are an approximation anyway)."""
    sq = x * x
    if sq.ndim > 1:
        sq = sq.reshape(-1, sq.shape[-1])
        sq = sq.sum(axis=0) // sq.shape[0]
    ms += shift_round(sq - ms, shift)


def inverse_rms(ms: Array, k: int, limit: int) -> Array:
    """``min(round(2**k / sqrt(ms)), limit)`` per neuron (``limit`` where ``ms`` is 0).

    Evaluated in float64, whose square root and division are correctly rounded (IEEE
    754), so every CPU gives the same integers for ``ms < 2**53``. A chip would compute it
    with Newton iterations, as Lava's InvSqrt does (not modelled)."""
    with np.errstate(divide="ignore"):
        y = np.floor(2.0 ** k / np.sqrt(ms.astype(np.float64)) + 0.5)
    return np.minimum(y, float(limit)).astype(np.int64)


def error_normaliser(ms: Array | None, norm_shift: int, limit: float) -> tuple[Array, Array]:
    """An error normaliser's factor ``nu`` per neuron as ``(m, s)``, ``nu = m * 2**-s``
    with ``NU_BITS`` significant bits in ``m``: ``min(2**NORM_FRAC / sqrt(ms), limit)``
    from the error's running mean square ``ms`` (int64 [n], error format squared;
    ``limit`` where it is 0), or ``2**norm_shift`` (the float ``n = 1``) where ``ms`` is
    None (before the first update).

    ``2**NORM_FRAC / sqrt(ms)`` is evaluated in float64, whose square root and division
    are correctly rounded (IEEE 754), so every CPU gives the same integers. A chip would
    compute it with Newton iterations, as Lava's InvSqrt does (not modelled)."""
    if ms is None:
        y = np.array([2.0 ** norm_shift])
    else:
        with np.errstate(divide="ignore"):
            y = np.minimum(2.0 ** NORM_FRAC / np.sqrt(ms.astype(np.float64)), limit)
    s = NU_BITS - np.frexp(y)[1]  # y * 2**s in [2**(NU_BITS - 1), 2**NU_BITS)
    return np.floor(np.ldexp(y, s) + 0.5).astype(np.int64), s.astype(np.int64)


def normalised_error(e: Array, nu: tuple[Array, Array]) -> Array:
    """``round(nu e)`` (ties up), the normalised error (``NORM_FRAC`` fraction bits) of the
    errors ``e`` [..., n] (int64) with the factors ``nu = (m, s)`` of
    :func:`error_normaliser`."""
    m, s = nu
    right, left = np.maximum(s, 0), np.maximum(-s, 0)
    return ((e * m << left) + ((np.int64(1) << right) >> 1)) >> right


def gain_payload_range(signed: bool, wide_bits: int) -> tuple[int, int]:
    """The range of a gained payload with ``wide_bits`` fraction bits beyond the 8-bit
    learning payload's: the 8-bit range (signed: -127..127, else 0..255) times
    ``2**wide_bits``, so that :func:`learning_payload` stays within the 8-bit range."""
    lo, hi = SIGNED_PAYLOAD if signed else UNSIGNED_PAYLOAD
    return lo << wide_bits, hi << wide_bits


def gain_payload(p: Array, gamma: Array, shift: int, signed: bool,
                 wide_bits: int = 0) -> tuple[Array, int]:
    """The payload ``q = round(gamma p * 2**-shift)`` a layer with gains sends from its
    24-bit rates ``p`` (``NormaliserFormat.payload_shift``), within
    :func:`gain_payload_range`; and its clip count."""
    return saturate(shift_round(gamma * p, shift), *gain_payload_range(signed, wide_bits))


def learning_payload(q: Array, wide_bits: int) -> Array:
    """The 8-bit learning payload ``round(q * 2**-wide_bits)`` (ties up) of a gained
    payload ``q`` with ``wide_bits`` extra fraction bits (:func:`gain_payload`): the
    value the receiving projection's learning engine traces; ``q`` itself where
    ``wide_bits`` is 0."""
    return shift_round(q, wide_bits) if wide_bits else q


def gain_error(d: Array, gamma: Array, shift: int) -> tuple[Array, int]:
    """The error ``g d = round(gamma d * 2**-shift)`` the neurons of a layer with gains
    take from above, within the 24-bit state; and its clip count."""
    return saturate_state(shift_round(gamma * d, shift))
