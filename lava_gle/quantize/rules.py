"""Learning-rule search: wanted learning gains -> learning-engine constants.

A learning-engine rule (:class:`~lava_gle.numerics.fixed.LearningRuleConstants`) moves
a weight by ``gain() = mant * 2**(s_exp - ACC_FRAC - overflow_shift)`` LSB per unit of
``x1 * e_q``; the pass picks the rule closest to the wanted gain and the error-trace
format it needs (``docs/fixed-point.md``, section 3).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from lava_gle.numerics import fixed as X
from lava_gle.quantize.formats import (
    BiasTraceWarning, QuantizationError, QuantizationWarning,
)

#: Relative learning-gain error above which quantisation warns.
GAIN_TOLERANCE = 0.10
#: Smallest weight-rule gain (LSB per unit of x1*e_q): mantissa 4, s_exp 1.
MIN_PRECISE_GAIN = X.LearningRuleConstants(4, 1, False).gain()


@dataclass(frozen=True)
class LayerLearning:
    """Learning-engine form of one layer's weight and bias updates.

    Fields as in :class:`~lava_gle.quantize.QuantizedLayer`: ``rule`` and ``bias_rule``
    (None without learning), the error trace ``e_q = (trace_mant e + dither) >>
    trace_shift``, ``trace_coarsening`` bits coarser than ``error_trace_range`` asks, the
    presynaptic trace ``pre_trace_coarsening`` bits coarser than the payload's own
    (:func:`~lava_gle.numerics.fixed.pre_trace`), and the wanted gains ``gain_target``,
    ``bias_gain_target`` (LSB per unit of x1*e_q per step, the biases' at their payload)
    at these traces.
    """

    rule: X.LearningRuleConstants | None
    bias_rule: X.BiasRule | None
    trace_shift: int
    trace_mant: int
    trace_coarsening: int
    pre_trace_coarsening: int
    gain_target: float
    bias_gain_target: float


def _rules(mants: range, pre_signed: bool) -> list[X.LearningRuleConstants]:
    return [X.LearningRuleConstants(m, e, pre_signed) for m in mants for e in range(1, 16)]


def _exact_rules(pre_signed: bool) -> list[X.LearningRuleConstants]:
    """Mantissa 4 on the doubled error trace: gains ``2**(s_exp - 7)``, the smallest
    :data:`MIN_PRECISE_GAIN` (s_exp 0)."""
    return [X.LearningRuleConstants(4, e, pre_signed, True) for e in range(0, 15)]


def _closest_rule(gain: float, rules: list[X.LearningRuleConstants]) -> X.LearningRuleConstants:
    return min(rules, key=lambda r: (abs(math.log(r.gain() / gain)), r.s_exp))


def trace_scale(mant: int) -> float:
    """The factor an error trace's mantissa (:func:`~lava_gle.numerics.fixed.error_trace`)
    puts on the trace: 1 for ``mant`` 1, else ``mant / 2**mantissa_shift(mant)``."""
    return mant / 2.0 ** mantissa_shift(mant)


def mantissa_shift(mant: int) -> int:
    """Bits the trace's shift grows by for its mantissa: 0 for ``mant`` 1, else
    ``TRACE_MANT_BITS`` (the trace scaled by ``mant / 16``)."""
    return 0 if mant == 1 else X.TRACE_MANT_BITS


def _weight_rule(gain: float, rules: list[X.LearningRuleConstants], exact: bool
                 ) -> tuple[X.LearningRuleConstants, int]:
    """The weight rule for ``gain`` and the error trace's mantissa (1: none). The closest
    rule, where it is within :data:`GAIN_TOLERANCE` or the rules have mantissas of their
    own (compensated); else (exact rules: powers of two) the least rule above ``gain`` on a
    trace scaled by ``mant / 16`` (9..15), which meets the gain to 4 bits."""
    rule = _closest_rule(gain, rules)
    above = [r for r in rules if r.gain() >= gain]
    if not exact or abs(rule.gain() / gain - 1.0) <= GAIN_TOLERANCE or not above:
        return rule, 1
    rule = min(above, key=lambda r: r.gain())
    mant = round(gain / rule.gain() * 2 ** X.TRACE_MANT_BITS)
    return (rule, 1) if mant == 2 ** X.TRACE_MANT_BITS else (rule, mant)


def _bias_rules(exact: bool) -> list[X.BiasRule]:
    """Every bias rule, widest payload first: an exact rule's any mantissa on each payload
    of :data:`~lava_gle.numerics.fixed.BIAS_PAYLOADS_EXACT`, a compensated rule's on
    :data:`~lava_gle.numerics.fixed.BIAS_PAYLOAD`."""
    if exact:
        return [X.BiasRule(m, e, False, True, p) for p in X.BIAS_PAYLOADS_EXACT
                for m in range(1, 8) for e in range(0, 15)]
    return [X.BiasRule(m, e, False, False, X.BIAS_PAYLOAD) for m in range(1, 8)
            for e in range(1, 16)]


def _bias_rule(target: float, rules: list[X.BiasRule], per_full) -> X.BiasRule:
    """The bias rule for ``target`` LSB per unit of the widest payload's ``x1 * e_q``: the
    closest on the widest payload whose closest is within :data:`GAIN_TOLERANCE` (a
    narrower payload halves the step per unit of ``e_q``, so a gain between or below the
    least mantissas is met without a coarser error trace), else the closest of all."""
    def off(r: X.BiasRule) -> float:
        return abs(math.log(per_full(r) / target))

    closest = [min((r for r in rules if r.payload == p), key=lambda r: (off(r), r.s_exp))
               for p in dict.fromkeys(r.payload for r in rules)]
    return next((r for r in closest if abs(per_full(r) / target - 1.0) <= GAIN_TOLERANCE),
                min(closest, key=off))


def _warn_gain(got: float, wanted: float, layer: str, what: str) -> None:
    if abs(got / wanted - 1.0) > GAIN_TOLERANCE:
        warnings.warn(f"layer {layer!r}: {what} learning gain {wanted:.4g} is approximated "
                      f"by {got:.4g} ({100 * (got / wanted - 1):+.0f}%)", QuantizationWarning,
                      stacklevel=6)


def choose_rules(gain: float, bias_gain: float | None, pre_signed: bool,
                 layer: str, pre_max: int = 0,
                 exact: bool = False) -> tuple[X.LearningRuleConstants,
                                               X.BiasRule | None, int, int, int]:
    """Learning-engine constants of a layer's weights and biases, and how many bits
    coarser the traces must be: in all (``k``), and of these on the presynaptic trace
    (``a``, at most ``pre_max``); the error trace is ``k - a`` bits coarser than its range
    asks (``error_trace_range`` is the least span).

    ``gain`` and ``bias_gain`` are the wanted LSBs per unit of ``x1 * e_q`` at the trace
    format from ``error_trace_range``. The weight rule takes a mantissa of 4..7, so a
    product keeps at least two bits above the engine's 3-bit floor (its quantum is
    ``8 / mant`` units of x1*e_q): smaller products would be floored to 0 or -1 and, with
    the compensation, become +-1/2 unit by the error's sign alone (sign-SGD). A gain below
    the smallest such rule is reached by a coarser error trace instead (``k`` more bits
    shifted off, the gain per trace unit ``2**k`` larger), which costs no precision on
    average because the trace is stochastically rounded. The product ``x1 * e_q`` loses
    the same ``k`` bits wherever they are dropped, but its rounding noise is smaller when
    they come off the larger factor: ``a`` of them come off the presynaptic rate trace
    (also stochastically rounded), the rest off the error trace. Biases (a bias neuron's
    constant payload, never coarsened) see the error trace's ``k - a`` bits only, so ``a``
    is lowered where the bias gain would otherwise fall below the engine's smallest; where
    even ``a = 0`` leaves it below half the smallest, ``k`` grows until the bias reaches
    the smallest (a :class:`BiasTraceWarning`) and the weight rule follows the coarser
    trace. The engine's smallest bias rule is that of the narrowest bias payload: under
    exact rules the bias neuron's payload is halved (down to 8) where no rule on the
    widest is within :data:`GAIN_TOLERANCE` of the bias gain (:func:`_bias_rule`).
    ``exact``: exact rules (:class:`~lava_gle.numerics.fixed.LearningRuleConstants`):
    the weights' mantissa 4 on the doubled error trace (gains powers of two), the biases'
    any mantissa from a bias payload of x1 = 64 or narrower (``bias_gain`` is per unit of
    ``64 e_q`` then). A weight gain no power of two meets within :data:`GAIN_TOLERANCE` is
    met by the error trace's mantissa ``mant`` (:func:`_weight_rule`): the trace is scaled
    by ``mant / 16``, and the bias rule is chosen for its gain per unit of that trace.
    Returns ``(rule, bias_rule, k, a, mant)`` (``mant`` 1: the trace is not scaled).
    """
    rules = _exact_rules(pre_signed) if exact else _rules(range(4, 8), pre_signed)

    def off(choice: tuple[X.LearningRuleConstants, int], wanted: float) -> float:
        return abs(math.log(choice[0].gain() * trace_scale(choice[1]) / wanted))

    floor = MIN_PRECISE_GAIN * (1 - GAIN_TOLERANCE)
    ks = [0]
    if gain < floor:
        k = math.ceil(math.log2(floor / gain))
        ks = [kk for kk in (k, k + 1) if gain * 2.0 ** kk >= floor]
    k, (rule, mant) = min(((kk, _weight_rule(gain * 2.0 ** kk, rules, exact)) for kk in ks),
                          key=lambda o: (off(o[1], gain * 2.0 ** o[0]), o[0]))
    a = min(pre_max, k)
    bias_rule = None
    if bias_gain is not None:
        bias_rules = _bias_rules(exact)
        full = bias_rules[0].x1  # the payload ``bias_gain`` is given for

        def per_full(r: X.BiasRule) -> float:  # r's gain per unit of full x1 * e_q
            return r.gain() * r.x1 / full

        def per_trace() -> float:  # the bias gain wanted per unit of the (scaled) trace
            return bias_gain * 2.0 ** (k - a) / trace_scale(mant)

        smallest = min(per_full(r) for r in bias_rules)
        while a > 0 and per_trace() < smallest / 2:
            a -= 1  # the bias needs these bits off the error trace
        if per_trace() < smallest / 2:
            wanted = per_trace()
            k, a = math.ceil(math.log2(smallest / bias_gain)), 0
            rule, mant = _weight_rule(gain * 2.0 ** k, rules, exact)
            if gain * 2.0 ** k > max(r.gain() for r in rules) * (1 + GAIN_TOLERANCE):
                raise QuantizationError(
                    f"layer {layer!r}: the bias learning gain {wanted:.3g} LSB per unit of "
                    f"x1*e_q is below the learning engine's smallest {smallest:.3g}, and an "
                    f"error trace coarse enough for it leaves the weights beyond the largest "
                    f"rule ({gain * 2.0 ** k:.3g} wanted, {rule.gain():.3g} the most); lower "
                    "the bias exponent (fixed_point.bias_exp)", layer=layer, field="bias_exp")
            warnings.warn(BiasTraceWarning(
                f"layer {layer!r}: the bias learning gain {wanted:.3g} LSB per unit of "
                f"x1*e_q is below the learning engine's smallest {smallest:.3g}: the error "
                f"trace is made {k} bits coarser for it (the weights learn from it too: "
                "stochastically rounded, so as fast on average, with more noise); a finer "
                "bias format (fixed_point.bias_exp) avoids this where the biases fit",
                layer), stacklevel=5)
        target = per_trace()
        bias_rule = _bias_rule(target, bias_rules, per_full)
        _warn_gain(per_full(bias_rule), target, layer, "bias")
    _warn_gain(rule.gain() * trace_scale(mant), gain * 2.0 ** k, layer, "weight")
    return rule, bias_rule, k, a, mant


def layer_learning(eta: float, learns: bool, bias: bool, e_bits: int, trace_range: float,
                   pre_bits: int, pre_signed: bool, w_exp: int, b_exp: int,
                   layer: str, pre_max: int = 0, exact: bool = False,
                   e_width: int = X.STATE_BITS) -> LayerLearning:
    """The rules and trace formats of one layer learning at rate ``eta``.

    ``trace_range`` is the least error magnitude mapped to the largest trace; ``pre_bits``
    and ``pre_signed`` the presynaptic rate format; ``w_exp``, ``b_exp`` the weight and
    bias exponents; ``pre_max`` the most bits of a needed trace coarsening taken off the
    presynaptic trace (the layer's ``pre_trace_coarsening`` option; 0: all off the error
    trace); ``exact``: exact weight rules (``fixed_point.learning_products: exact``);
    ``e_width``: the bits of the value the trace is taken from (the 24-bit error, or the
    wider normalised error ``nu e`` of a layer with an error normaliser).
    Without learning (``learns`` False) the trace format is still set (for the manifest),
    no finer than the error format: nothing reads it, so a range the error format cannot
    hold is no error then (a float-trained network calibrated for inference may pick
    fewer error bits than its training range needs).
    """
    y_bits = int(math.floor(math.log2(X.ERR_TRACE_MAX / trace_range)))
    gain = eta * 2.0 ** (1 - pre_bits) * 2.0 ** -y_bits / 2.0 ** w_exp
    bias_x1 = (X.BIAS_PAYLOADS_EXACT[0] if exact else X.BIAS_PAYLOAD) // 2
    bias_gain = eta * 2.0 ** -y_bits / 2.0 ** b_exp / bias_x1
    rule = bias_rule = None
    coarser = pre_coarser = 0
    mant = 1
    if learns:
        rule, bias_rule, coarser, pre_coarser, mant = choose_rules(
            gain, bias_gain if bias else None, pre_signed, layer, pre_max, exact)
        coarser -= pre_coarser
        y_bits -= coarser
        # per unit of x1 * e_q, the trace scaled by its mantissa
        scale = trace_scale(mant)
        gain = gain * 2.0 ** (coarser + pre_coarser) / scale
        bias_gain = bias_gain * 2.0 ** coarser / scale
        if bias_rule is not None:  # at the payload chosen
            bias_gain *= bias_x1 / bias_rule.x1
    # a mantissa scales the error by up to 15 / 16 first: its trace is shifted that much more
    extra = mantissa_shift(mant)
    trace_shift = e_bits - y_bits + extra
    if rule is not None and trace_shift - extra >= e_width:
        raise QuantizationError(
            f"layer {layer!r}: the learning gain of eta {eta:g} is too small for the "
            f"learning engine: even an error trace whose LSB is the whole {e_width}"
            f"-bit error range ({trace_shift - extra - e_width + 1} bits short) gives less "
            f"than its smallest precise gain {MIN_PRECISE_GAIN:.3g} LSB per unit of "
            "x1*e_q (or its smallest bias rule); raise eta or lower the weight exponent "
            "(or the bias exponent)")
    if trace_shift < 0 and not learns:
        trace_shift = 0  # no learning reads the trace: the error format's own LSB will do
    if trace_shift - extra < 0:
        raise QuantizationError(f"layer {layer!r}: error_trace_range {trace_range:g} "
                                f"needs {y_bits} trace fraction bits, more than the error "
                                f"format's {e_bits}; raise error_bits or the range")
    return LayerLearning(rule, bias_rule, trace_shift, mant, coarser, pre_coarser, gain,
                         bias_gain)
