"""Learning-rule search: gains -> learning-engine constants (lava_gle.quantize.rules)."""
import math
import warnings

import numpy as np
import pytest

from lava_gle.numerics import fixed as X
from lava_gle.quantize.formats import BiasTraceWarning, QuantizationError, QuantizationWarning
from lava_gle.quantize.rules import (
    GAIN_TOLERANCE, MIN_PRECISE_GAIN, choose_rules, layer_learning, trace_scale,
)


@pytest.mark.parametrize("gain", np.geomspace(MIN_PRECISE_GAIN, 50.0, 23).tolist())
def test_weight_rule_is_the_closest_and_warns_beyond_its_tolerance(gain):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rule, _, k, _, mant = choose_rules(gain, None, False, "a")
    assert k == 0 and 4 <= rule.mant <= 7 and mant == 1  # compensated: no trace mantissa
    every = [X.LearningRuleConstants(m, e, False) for m in range(4, 8) for e in range(1, 16)]
    best = min(abs(math.log(r.gain() / gain)) for r in every)
    assert abs(math.log(rule.gain() / gain)) == pytest.approx(best)
    off = abs(rule.gain() / gain - 1)
    assert (off > GAIN_TOLERANCE) == any(w.category is QuantizationWarning for w in caught)


@pytest.mark.parametrize("gain", [1e-3, 1e-5, 3e-7])
def test_small_gain_coarsens_the_trace_instead_of_a_sign_only_rule(gain):
    rule, _, k, _, _ = choose_rules(gain, None, True, "a")
    assert k > 0 and rule.mant >= 4 and rule.pre_signed
    assert gain * 2.0 ** k >= MIN_PRECISE_GAIN * (1 - GAIN_TOLERANCE)
    assert gain * 2.0 ** (k - 2) < MIN_PRECISE_GAIN  # no more coarsening than needed
    assert rule.gain() == pytest.approx(gain * 2.0 ** k, rel=GAIN_TOLERANCE)


def test_bias_rule_follows_the_same_coarsening():
    with warnings.catch_warnings():
        warnings.simplefilter("error", BiasTraceWarning)  # the weights' k serves the bias
        rule, bias_rule, k, _, _ = choose_rules(1e-3, 0.05, False, "a")
    assert k > 0
    assert bias_rule.gain() == pytest.approx(0.05 * 2.0 ** k, rel=GAIN_TOLERANCE)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("gain, bias_gain", [(0.03, 1e-6), (1e-4, 1e-8), (3e-3, 2e-7)])
def test_a_bias_too_slow_even_at_the_weights_trace_takes_a_coarser_trace_of_its_own(
        gain, bias_gain, exact):
    """Where all ``k`` bits off the error trace leave the bias below half the smallest bias
    rule, the trace is coarsened until the bias reaches the smallest rule (no further),
    with a warning naming the layer, and the weight rule is the one for that trace."""
    with pytest.warns(BiasTraceWarning, match=r"layer 'a': the bias learning gain .* made "
                                              r"\d+ bits coarser.*fixed_point\.bias_exp") as rec:
        rule, bias_rule, k, a, mant = choose_rules(gain, bias_gain, False, "a", pre_max=3,
                                             exact=exact)
    assert [w.message.layer for w in rec if w.category is BiasTraceWarning] == ["a"]
    # mantissa 1, least s_exp, narrowest payload; gains per unit of the widest's x1 * e_q
    least = (X.BiasRule(1, 0, False, True, X.BIAS_PAYLOADS_EXACT[-1]) if exact else
             X.BiasRule(1, 1, False))
    widest = X.BIAS_PAYLOADS_EXACT[0] // 2 if exact else least.x1
    smallest = least.gain() * least.x1 / widest
    assert a == 0  # the bias sees all k bits
    assert bias_gain * 2.0 ** k >= smallest > bias_gain * 2.0 ** (k - 1)
    assert bias_rule.gain() * bias_rule.x1 / widest == pytest.approx(bias_gain * 2.0 ** k,
                                                                     rel=0.5)
    # the weights follow the coarser trace: their rule is the closest at 2**k
    rules = ([X.LearningRuleConstants(4, e, False, True) for e in range(15)] if exact else
             [X.LearningRuleConstants(m, e, False) for m in range(4, 8) for e in range(1, 16)])
    best = min(abs(math.log(r.gain() / (gain * 2.0 ** k))) for r in rules)
    assert abs(math.log(rule.gain() / (gain * 2.0 ** k))) == pytest.approx(best)


def test_a_bias_too_slow_for_any_trace_the_weights_can_share_is_an_error_naming_bias_exp():
    with pytest.raises(QuantizationError, match=r"layer 'a': the bias learning gain.*beyond "
                                                r"the largest rule.*fixed_point\.bias_exp"):
        choose_rules(1.0, 1e-6, False, "a")


def test_gain_beyond_every_rule_warns_with_the_approximation():
    biggest = X.LearningRuleConstants(7, 15, False).gain()
    with pytest.warns(QuantizationWarning, match=r"'a': weight learning gain"):
        rule, _, _, _, _ = choose_rules(biggest * 4, None, False, "a")
    assert rule.gain() == biggest


def test_trace_format_from_the_trace_range_without_learning():
    # +-63 spans 63 * 2**-10: the trace keeps 10 fraction bits of a 16-bit error format
    got = layer_learning(0.0, False, True, 16, 63 * 2.0 ** -10, 8, False, -6, -8, "a")
    assert got.rule is None and got.bias_rule is None
    assert got.trace_shift == 6 and got.trace_coarsening == 0


def test_learning_gain_is_eta_in_weight_lsb_per_trace_and_payload_unit():
    eta, pre_bits, w_exp, b_exp, y_bits = 0.5, 7, -5, -7, 10
    got = layer_learning(eta, True, True, 18, 63 * 2.0 ** -y_bits, pre_bits, True, w_exp,
                         b_exp, "a")
    k = got.trace_coarsening
    # x1 = p / 2 carries 2**-(pre_bits - 1), e_q 2**-y_bits, a weight LSB 2**w_exp
    assert got.gain_target == pytest.approx(eta * 2.0 ** (1 - pre_bits - y_bits - w_exp + k))
    assert got.bias_gain_target == pytest.approx(eta * 2.0 ** (k - y_bits - b_exp) / 127)
    assert got.trace_shift == 18 - y_bits + k
    assert got.rule.gain() == pytest.approx(got.gain_target, rel=GAIN_TOLERANCE)


def test_a_trace_finer_than_the_error_format_is_an_error_naming_the_range():
    with pytest.raises(QuantizationError, match=r"'a': error_trace_range 0.001 .*error_bits"):
        layer_learning(1024.0, True, True, 8, 1e-3, 8, False, -6, -8, "a")


def test_without_learning_the_trace_is_no_finer_than_the_error_format():
    """Nothing reads the trace with learning off: the range that a learning layer refuses
    (above) gives the error format's own LSB, no rule and no error."""
    got = layer_learning(1024.0, False, True, 8, 1e-3, 8, False, -6, -8, "a")
    assert got.rule is None and got.trace_shift == 0


@pytest.mark.parametrize("pre_max", [1, 3, 6])
def test_pre_trace_takes_up_to_its_share_of_the_coarsening(pre_max):
    """The same total coarsening and rule, split: ``a = min(pre_max, k)`` bits off the
    presynaptic trace, the rest off the error trace (whose shift shrinks by ``a``); the
    bias neuron's payload is not coarsened, so its rule sees the error trace's bits only."""
    args = (2.0, True, True, 18, 63 * 2.0 ** -7, 7, True, -2, -4, "a")
    plain = layer_learning(*args)
    split = layer_learning(*args, pre_max=pre_max)
    k = plain.trace_coarsening
    assert k == 3  # the Yin-Yang hidden layer's case: gain below the smallest precise rule
    a = min(pre_max, k)
    assert (split.pre_trace_coarsening, split.trace_coarsening) == (a, k - a)
    assert split.trace_shift == plain.trace_shift - a
    assert split.rule == plain.rule and split.gain_target == plain.gain_target
    assert split.bias_gain_target == pytest.approx(plain.bias_gain_target * 2.0 ** -a)
    assert split.bias_rule.gain() == pytest.approx(split.bias_gain_target, rel=GAIN_TOLERANCE)


def test_no_coarsening_needed_leaves_the_pre_trace_alone():
    got = layer_learning(16.0, True, True, 18, 63 * 2.0 ** -10, 7, True, -5, -7, "a",
                         pre_max=4)
    assert got.trace_coarsening == 0 and got.pre_trace_coarsening == 0


def test_a_bias_too_slow_for_the_engine_keeps_bits_on_the_error_trace():
    """The bias neuron's payload is not coarsened: where the bias gain at the error
    trace's ``k - a`` bits would be below the smallest bias rule, fewer bits come off the
    presynaptic trace (here: eta 0.25, the Yin-Yang hidden layer after three halvings)."""
    smallest = X.LearningRuleConstants(1, 1, False).gain()
    got = layer_learning(0.25, True, True, 18, 63 * 2.0 ** -7, 7, True, -2, -4, "a",
                         pre_max=6)
    k = got.trace_coarsening + got.pre_trace_coarsening
    assert k == 6 and 0 < got.pre_trace_coarsening < 6
    assert got.bias_gain_target >= smallest / 2 > got.bias_gain_target / 2


@pytest.mark.parametrize("gain", [3e-3, 1e-3, 1e-5])
def test_exact_rules_are_mantissa_4_at_the_same_gains(gain):
    rule, bias_rule, k, _, mant = choose_rules(gain, 0.05, True, "a", exact=True)
    assert rule.exact and rule.mant == 4 and rule.pre_signed and rule.s_exp >= 0
    scale = trace_scale(mant)
    assert rule.gain() * scale == pytest.approx(gain * 2.0 ** k, rel=GAIN_TOLERANCE)
    assert gain * 2.0 ** k >= MIN_PRECISE_GAIN * (1 - GAIN_TOLERANCE) or k == 0
    # the bias rule is exact too (bias payload x1 = 64 on the doubled trace), for the trace
    assert bias_rule.exact
    assert bias_rule.gain() * scale == pytest.approx(0.05 * 2.0 ** k, rel=GAIN_TOLERANCE)


@pytest.mark.parametrize("gain", np.geomspace(MIN_PRECISE_GAIN, 2.0 ** 6, 61).tolist())
def test_exact_weight_gains_between_powers_of_two_are_met_by_the_traces_mantissa(gain):
    """An exact rule's gain is a power of two (mantissa 4 on the doubled trace); where the
    nearest is more than :data:`GAIN_TOLERANCE` off, the error trace is scaled by
    ``mant / 16`` (9..15) under the least power of two above the gain: within 6 % (half a
    mantissa step at 9), with no warning. Within the tolerance the trace is not scaled
    (the integers of such layers stay as they were). Before, 0.01 was approximated by
    0.0078 (-22 %: the README's example network)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        rule, _, k, _, mant = choose_rules(gain, None, True, "a", exact=True)
    assert k == 0 and rule.exact and rule.mant == 4
    power = min((X.LearningRuleConstants(4, e, True, True) for e in range(15)),
                key=lambda r: abs(math.log(r.gain() / gain)))
    if abs(power.gain() / gain - 1) <= GAIN_TOLERANCE:
        assert (rule, mant) == (power, 1)
    else:
        assert 9 <= mant <= 15 and gain < rule.gain() < 2 * gain
        assert rule.gain() * mant / 16 == pytest.approx(gain, rel=0.06)
        for other in (mant - 1, mant + 1):  # the closest mantissa
            assert abs(mant / 16 * rule.gain() / gain - 1) <= abs(
                other / 16 * rule.gain() / gain - 1)


def _bias_per_widest(rule: X.BiasRule) -> float:
    """An exact bias rule's gain per unit of the widest payload's ``x1 * e_q``."""
    return rule.gain() * rule.x1 / (X.BIAS_PAYLOADS_EXACT[0] // 2)


@pytest.mark.parametrize("bias_gain", np.geomspace(2.0 ** -11, 1.0, 97))
def test_exact_bias_gains_are_met_by_a_narrower_bias_payload_not_a_coarser_trace(bias_gain):
    """Under exact rules a bias gain down to 2**-11 LSB per unit of ``64 e_q`` (16 x below
    the least rule on payload 128) is met to the 3-bit mantissa's resolution (within
    half its widest spacing, 4 -> 5) with no coarser trace: the bias neuron's payload
    halves instead. Before, 0.001024 (the online MNIST-1D recipe's h3-out at eta 4e-6) was
    approximated by 0.001953 (+91 %)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", BiasTraceWarning)
        _, bias_rule, k, a, _ = choose_rules(MIN_PRECISE_GAIN, bias_gain, True, "a", exact=True)
    assert (k, a) == (0, 0)
    assert bias_rule.exact and bias_rule.payload in X.BIAS_PAYLOADS_EXACT
    assert abs(math.log(_bias_per_widest(bias_rule) / bias_gain)) <= math.log(1.25) / 2 + 1e-12


@pytest.mark.parametrize("bias_gain", [0.001024, 0.0007, 0.0015])
def test_a_bias_gain_the_widest_payload_misses_warns_no_more(bias_gain):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, bias_rule, _, _, _ = choose_rules(MIN_PRECISE_GAIN, bias_gain, True, "a", exact=True)
    assert not [w for w in caught if "bias" in str(w.message)]
    assert bias_rule.payload < X.BIAS_PAYLOADS_EXACT[0]
    assert _bias_per_widest(bias_rule) == pytest.approx(bias_gain, rel=GAIN_TOLERANCE)


@pytest.mark.parametrize("bias_gain", np.geomspace(2.0 ** -9 * 0.9, 1.0, 41))
def test_a_bias_gain_the_widest_payload_meets_keeps_it(bias_gain):
    """Where a rule on payload 128 is within the tolerance, the rule is the closest there,
    as before bias payloads could narrow (so such networks keep their integers); where
    none is, the rule chosen is no further off than that closest."""
    _, bias_rule, _, _, _ = choose_rules(MIN_PRECISE_GAIN, bias_gain, True, "a", exact=True)
    widest = [X.BiasRule(m, e, False, True) for m in range(1, 8) for e in range(15)]
    best = min(widest, key=lambda r: (abs(math.log(r.gain() / bias_gain)), r.s_exp))
    if abs(best.gain() / bias_gain - 1) <= GAIN_TOLERANCE:
        assert bias_rule == best
    else:
        assert abs(math.log(_bias_per_widest(bias_rule) / bias_gain)) <= abs(
            math.log(best.gain() / bias_gain))


def test_compensated_bias_rules_keep_the_full_payload():
    _, bias_rule, _, _, _ = choose_rules(MIN_PRECISE_GAIN, 0.001024, False, "a")
    assert bias_rule.payload == X.BIAS_PAYLOAD and bias_rule.x1 == 127


def test_the_bias_gain_target_is_per_unit_of_the_chosen_payloads_x1():
    """layer_learning's ``bias_gain_target`` (the manifest's) is in the units of the bias
    rule it chose: LSB per unit of its own ``x1 * e_q``."""
    eta, y_bits, b_exp = 0.262, 10, -8  # 0.001024 LSB per unit of 64 e_q: payload 64
    got = layer_learning(eta, True, True, 18, 63 * 2.0 ** -y_bits, 7, True, -12, b_exp, "a",
                         exact=True)
    k = got.trace_coarsening
    assert got.bias_rule.payload < X.BIAS_PAYLOADS_EXACT[0]
    assert got.bias_gain_target == pytest.approx(
        eta * 2.0 ** (k - y_bits - b_exp) / got.bias_rule.x1)
    assert got.bias_rule.gain() == pytest.approx(got.bias_gain_target, rel=GAIN_TOLERANCE)
