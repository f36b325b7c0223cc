"""The integer GLE arithmetic against independent expectations: exact rational
rounding, the float step it approximates, and Lava's own fixed-point learning applier."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from lava_gle.numerics import fixed as X
from lava_gle.numerics import floating as F


def test_shift_round_is_round_half_up_of_the_exact_quotient():
    xs = np.arange(-600, 600, dtype=np.int64)
    for k in (1, 3, 7):
        want = [math.floor(Fraction(int(x), 2 ** k) + Fraction(1, 2)) for x in xs]
        assert X.shift_round(xs, k).tolist() == want
    assert X.shift_round(xs, -2).tolist() == (xs * 4).tolist()


@pytest.mark.parametrize("shift", [-9, -4, -1, 0, 1])
def test_the_error_sent_down_is_the_sum_rounded_to_nearest(shift):
    """``eps = round(W^T e 2**shift)`` (ties up) for every value, exact for left shifts;
    so its mean error over many sums is only the ties' ``2**(shift-1)`` (right shifts),
    where a floor's is ``2**(shift-1) - 1/2`` LSB (session 13's lower layers drifted by
    it). The accumulator holds the sum with its guard bit: it saturates at half its range
    in the error's units."""
    rng = np.random.default_rng(7)
    w = rng.integers(-255, 256, (30, 20), dtype=np.int64)
    e = rng.integers(-500, 501, (200, 30), dtype=np.int64)
    acc_max = X.acc_limit(40)  # wide: nothing clips
    eps, n, n_acc = X.backward_error(w, e, shift, acc_max)
    sums = e @ w
    want = [[math.floor(Fraction(int(x)) * Fraction(2) ** shift + Fraction(1, 2)) for x in row]
            for row in sums]
    assert eps.tolist() == want and n == n_acc == 0
    bias = float(np.mean(eps - sums * 2.0 ** shift))
    assert abs(bias - (2.0 ** (shift - 1) if shift < 0 else 0.0)) < 0.02
    acc_max = X.acc_limit(22)
    big = X.backward_error(np.full((1, 1), 255, np.int64), np.array([[1 << 14]]), 0, acc_max)
    assert big[0].tolist() == [[(acc_max + 1) >> X.BACKWARD_GUARD_BITS]] and big[2] == 1


def test_factor_apply_rounds_the_exact_product():
    f = X.Factor(np.array([3001, 17]), 12)
    x = np.array([[12345, -777], [-4096, 8191]], np.int64)
    got = f.apply(x)
    exact = x * np.array([3001, 17]) / 4096.0
    assert np.all(np.abs(got - exact) <= 0.5)


def test_saturation_is_counted():
    x, n = X.saturate_state(np.array([X.STATE_MAX + 5, -X.STATE_MAX - 1, 3]))
    assert n == 2 and x.tolist() == [X.STATE_MAX, -X.STATE_MAX, 3]


def _consts(bits_u=14, bits_e=14):
    from lava_gle.quantize import quantize_factor
    tm, tr, dt = np.array([1.0, 0.6, 2.0]), np.array([0.3, 0.6, 0.1]), 0.05
    act = X.FixedActivation("linear", bits_u, bits_u, -X.STATE_MAX, X.STATE_MAX)
    return X.FixedNeuronConstants(
        dt_m=quantize_factor(dt / tm, "", "t"), tau_r_m=quantize_factor(tr / tm, "", "t"),
        dt_r=quantize_factor(dt / tr, "", "t"), tau_m_r=quantize_factor(tm / tr, "", "t"),
        gamma=quantize_factor(0.5 * 2.0 ** (bits_u - bits_e), "", "t"), gamma_negative=False,
        prospective=True, phi=act), F.NeuronConstants.build(dt, tm, tr, 0.5, True, "linear", 3)


def _extreme_states(n: int):
    """u, v, g, s, d [3, n]: row 0 drives du = s - u + gamma' e to its most positive value
    (u = -max, s = e = +max), row 1 to its most negative, row 2 stays small."""
    m = X.STATE_MAX
    sign = np.array([[1], [-1], [0]])
    u, s, v, d = -sign * m, sign * m, sign * m, sign * m
    g = np.full((3, n), X.GATE_ONE)
    u, s, v, d = (np.broadcast_to(a, (3, n)).astype(np.int64) for a in (u, s, v, d))
    s[2], v[2], d[2] = 1000, 50, 60
    return u, v, g, s, d


@pytest.mark.parametrize("product_bits", [37, 38])
def test_the_euler_operand_is_clamped_to_the_multiplier_and_counted(product_bits):
    """With gamma' = 4 the worst du is 6 (2**23 - 1), about 2**25.6: times the largest
    mantissa beyond 37 or 38 bits. du is clamped to (2**(pb-1) - 1) >> 12 (any 12-bit
    mantissa fits: a shift, no division), every product then fits, each clamp is counted
    and the Euler update uses the clamped du."""
    from dataclasses import replace
    cq = replace(_consts(bits_u=17, bits_e=14)[0], product_bits=product_bits)
    assert int(cq.gamma.mant) * 2.0 ** -cq.gamma.shift == 4.0  # 0.5 * 2**(17 - 14)
    top = max(int(np.max(cq.dt_m.mant)), int(np.max(cq.tau_r_m.mant)))
    bound = 2 ** (product_bits - 13) - 1
    assert cq.du_max == bound
    assert bound * (2 ** X.FACTOR_BITS - 1) < 2 ** (product_bits - 1)  # any mantissa fits
    u, v, g, s, d = _extreme_states(3)
    st, counts = X.neuron_step(u, v, g, s, d, cq)
    raw = s - u + X.shift_round(st.e * cq.gamma.mant, cq.gamma.shift)
    assert np.all(np.abs(raw[:2]) * top >= 2 ** (product_bits - 1))  # would overflow
    du = np.clip(raw, -bound, bound)
    np.testing.assert_array_equal(du[:2], [[bound] * 3, [-bound] * 3])
    np.testing.assert_array_equal(du[2], raw[2])
    for f in (cq.dt_m, cq.tau_r_m):
        assert np.abs(du * f.mant).max() < 2 ** (product_bits - 1)
    counted = dict(zip(X.NEURON_SAT_VARS, counts))
    assert counted["du"] == 6
    want_u, _ = X.saturate_state(u + X.shift_round(du * cq.dt_m.mant, cq.dt_m.shift))
    np.testing.assert_array_equal(st.u, want_u)


def test_without_gamma_the_euler_operand_always_fits_37_bits():
    """|s - u| <= 2 (2**23 - 1) times the largest 12-bit mantissa is below 2**36: no clamp,
    no bound, nothing counted even at the state's limits."""
    from dataclasses import replace
    assert 2 * X.STATE_MAX * (2 ** X.FACTOR_BITS - 1) < 2 ** 36
    cq = replace(_consts()[0], gamma=None, product_bits=37)
    assert cq.du_max is None
    st, counts = X.neuron_step(*_extreme_states(3), cq)
    assert dict(zip(X.NEURON_SAT_VARS, counts))["du"] == 0


def test_neuron_step_tracks_the_float_step():
    cq, cf = _consts()
    rng = np.random.default_rng(1)
    scale = 2.0 ** 14
    u, v, s, d = (rng.uniform(-2, 2, size=(4, 3)) for _ in range(4))
    q = lambda a: np.round(a * scale).astype(np.int64)  # noqa: E731
    st, counts = X.neuron_step(q(u), q(v), np.full((4, 3), X.GATE_ONE), q(s), q(d), cq)
    ref = F.neuron_step(u, v, np.ones((4, 3)), s, d, cf)
    assert counts == (0,) * len(X.NEURON_SAT_VARS)
    for name in ("u", "u_prosp", "v", "e"):
        # the factors are rounded to 12 significant bits: a relative error of 2^-12
        err = np.abs(getattr(st, name) / scale - getattr(ref, name))
        assert np.all(err <= 4e-3 * (1 + np.abs(getattr(ref, name)))), name


def test_pre_trace_matches_lava_overwrite_semantics():
    p = np.array([0, 1, 2, 3, 5, 254, 255])
    x0, x1 = X.pre_trace(p, signed=False)
    assert x1.tolist() == [0, 0, 1, 2, 2, 127, 127]  # round half to even, clipped
    assert x0.tolist() == [0, 1, 1, 1, 1, 1, 1]
    x0, x1 = X.pre_trace(np.array([-127, 0, 127]), signed=True)
    assert (x1 - 64).tolist() == [-64, 0, 63] and x0.tolist() == [1, 1, 1]


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("shift", [1, 3, 6])
def test_coarser_pre_trace_is_an_unbiased_learning_payload(signed, shift):
    """Over its dither values the coarser trace, times 2**shift, averages to p / 2 exactly
    (the shift-0 trace's value); it is a trace Lava reads back from the learning payload
    2 x1 (OVERWRITE semantics), and no spike (x0 = 0) exactly when it is 0."""
    p = np.arange(-127, 128) if signed else np.arange(0, 256)
    draws = np.arange(1 << (shift + 1))
    x0, x1 = X.pre_trace(p[None, :], signed, shift, draws[:, None])
    value = x1 - 64 if signed else x1
    np.testing.assert_array_equal(value.mean(axis=0) * 2 ** shift, p / 2)
    assert x1.min() >= 0 and x1.max() <= 127
    payload = 2 * x1 - 128 if signed else 2 * x1
    np.testing.assert_array_equal(X.pre_trace(payload, signed)[1], x1)
    np.testing.assert_array_equal(x0, x1 != 0)


def test_coarsening_the_pre_trace_instead_of_a_small_error_cuts_the_product_noise():
    """The same 3 bits of coarsening off the error trace (an error of 0.6 of its finer
    LSB, as the Yin-Yang hidden layer's) or off the presynaptic trace (rates ~37 units):
    the same expected accumulator change, but far less rounding noise in the product
    when the larger factor is coarsened. (Up to the rounding compensation's overshoot
    with mantissa 4: half a unit when x1 * e_q is even, on every active product, which
    is larger when the error trace is active on most steps; docs/fixed-point.md.)"""
    rule = X.LearningRuleConstants(4, 1, True)
    p = np.array([75, 61, 90, 33])  # signed payloads: x1 - 64 = p / 2
    e = np.full(64, int(0.6 * 2 ** 10))  # 0.6 LSB of a trace shifted by 10
    w = np.zeros((64, 4), np.int64)
    got = {}
    for pre_shift in (0, 3):
        shift = 13 - pre_shift
        steps = []
        for t in range(1500):
            e_q, _ = X.error_trace(e, shift, X.trace_dither(0, 0, t, 64, shift))
            x0, x1 = X.pre_trace(p, True, pre_shift, X.pre_dither(0, 0, t, 4, pre_shift))
            steps.append(X.learning_accumulator(w, x0, x1, e_q, rule))
        got[pre_shift] = np.array(steps)  # accumulator units (2**-7 LSB) per step
    ideal = 0.6 * (p / 2) * rule.gain() * 2 ** -3 * 2 ** X.ACC_FRAC
    np.testing.assert_allclose(got[0].mean(axis=(0, 1)), ideal, rtol=0.08)
    over = got[3].mean(axis=(0, 1)) - ideal  # active on ~60 % of the steps: <= 0.6 units
    assert np.all(over > -0.1) and np.all(over < 0.6)
    assert got[3].var(axis=0).mean() < got[0].var(axis=0).mean() / 6


def test_exact_rule_removes_the_compensations_overshoot():
    """Mantissa 4 with the compensation: the floor loses the low bit of x1 * e_q (0 or
    half a quantum) and the compensation adds half a quantum on every active product, an
    upward drift where x1 * e_q is even. The exact rule (doubled error trace, s_exp one
    lower, no compensation) gives x1 * e_q exactly, at the same gain."""
    rng = np.random.default_rng(5)
    x1 = rng.integers(0, 128, 50)
    x0 = (x1 != 0).astype(np.int64)
    e_q = rng.integers(-31, 32, 40)
    w = np.zeros((40, 50), np.int64)
    comp = X.LearningRuleConstants(4, 1, False)
    exact = X.LearningRuleConstants(4, 0, False, exact=True)
    assert exact.gain() == comp.gain() and exact.compensation() == 0
    ideal = np.outer(e_q, x1) * x0  # accumulator units: gain 2**-7 LSB = 1 unit
    doubled, _ = X.error_trace(e_q, 0, None, doubled=True)
    np.testing.assert_array_equal(X.learning_accumulator(w, x0, x1, doubled, exact), ideal)
    over = X.learning_accumulator(w, x0, x1, e_q, comp) - ideal
    even = (np.outer(e_q, x1) % 2 == 0) & (e_q[:, None] != 0) & (x0[None, :] != 0)
    assert np.all(over[even] == 1) and np.all(over[~even & (e_q[:, None] != 0)] == 0)
    # the doubled trace clips at +-31 (counted) and is sent as 2 e_q
    q, n = X.error_trace(np.array([40, -32, 31, 0]), 0, None, doubled=True)
    assert q.tolist() == [62, -62, 62, 0] and n == 2


@pytest.mark.parametrize("payload", X.BIAS_PAYLOADS_EXACT)
def test_a_bias_rules_payload_sets_its_step_exactly(payload):
    """An exact bias rule learns as synapses from a bias neuron of the rule's payload:
    the accumulator moves by ``mant x1 e_q / 4`` units of ``2**(s_exp - 7)`` LSB with
    ``x1 = payload / 2``, exactly (no floor lost), and the biases stochastically rounded
    from it move that much on average."""
    rule = X.BiasRule(3, 2, False, True, payload)
    assert rule.x1 == payload // 2
    n = 4000
    e_q = np.full(n, 25)
    doubled, _ = X.error_trace(e_q, 0, None, doubled=True)
    step = 3 * rule.x1 * 25 / 4 * 2.0 ** (rule.s_exp - X.ACC_FRAC)  # LSB per update
    b = np.zeros(n, np.int64)
    _, b2, _ = X.update_projection(np.zeros((n, 1), np.int64), b, np.zeros(1, np.int64),
                                   doubled, False, X.LearningRuleConstants(4, 0, False, True),
                                   rule, np.zeros((n, 1), np.int64),
                                   X.counter_bits(5, 1, 0, X.ACC_FRAC, (n, 1)))
    assert np.all(np.abs(b2 - step) < 1)  # each a rounding of the exact step
    assert np.mean(b2) == pytest.approx(step, abs=4 * 0.5 / np.sqrt(n))


def test_a_bias_rules_payload_is_one_its_products_keep_exact():
    with pytest.raises(ValueError, match="exact bias rule takes an unsigned payload"):
        X.BiasRule(1, 0, False, True, 254)
    with pytest.raises(ValueError, match="compensated bias rule"):
        X.BiasRule(1, 1, False, False, 128)
    assert X.BiasRule(1, 0, False, True).payload == X.BIAS_PAYLOADS_EXACT[0]
    assert X.BiasRule(1, 1, False).x1 == 127


@pytest.mark.parametrize("mant,pre_signed,s_exp,exact", [(5, False, 2, False),
                                                         (7, True, 2, False),
                                                         (4, True, 0, True)])
def test_weight_update_equals_lavas_fixed_applier(mant, pre_signed, s_exp, exact):
    """Our accumulator change is Lava's LearningRuleApplierBitApprox on the same traces
    (exact: the rule string without compensation, s_exp 0, on the doubled trace)."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.learning.learning_rule_applier import LearningRuleApplierBitApprox
    from lava_gle.microcode import rule_string
    rule = X.LearningRuleConstants(mant=mant, s_exp=s_exp, pre_signed=pre_signed, exact=exact)
    lr = Loihi3FLearningRule(dw=rule_string(rule), x1_impulse=0, x1_tau=2 ** 16 - 1)
    applier = LearningRuleApplierBitApprox(lr.dw)
    rng = np.random.default_rng(3)
    n, m = 4, 6
    for _ in range(20):
        p = rng.integers(-127 if pre_signed else 0, 128 if pre_signed else 256, size=m)
        e_q = rng.integers(-63, 64, size=n) if not exact else 2 * rng.integers(-31, 32, size=n)
        w = rng.integers(-256, 256, size=(n, m))
        x0, x1 = X.pre_trace(p, pre_signed)
        ours = X.learning_accumulator(w, x0, x1, e_q, rule)
        y_traces = np.stack([np.zeros(n, int), np.maximum(e_q, 0), np.maximum(-e_q, 0)])
        args = {"shape": (n, m), "x0": x0[None, :], "y0": (e_q != 0)[:, None].astype(int),
                "u": 0, "weights": w, "tag_1": np.zeros((n, m), int),
                "tag_2": np.zeros((n, m), int),
                "x1_x0": x1[None, :], "x2_x0": np.zeros((1, m), int),
                "y1_x0": y_traces[0][:, None], "y2_x0": y_traces[1][:, None],
                "y3_x0": y_traces[2][:, None]}
        theirs = applier.apply((w << 7).astype(np.int32), **args)
        assert np.array_equal(ours, theirs)


def test_round_accumulator_is_floor_or_ceil_and_unbiased():
    ups = [X.round_accumulator(np.array([[32]]), r)[0][0, 0] for r in range(128)]
    assert sorted(set(ups)) == [0, 1] and sum(ups) == 32  # 32/128 of the draws round up
    downs = [X.round_accumulator(np.array([[-32]]), r)[0][0, 0] for r in range(128)]
    assert sorted(set(downs)) == [-1, 0] and sum(downs) == -32
    w2, n = X.round_accumulator(np.array([[(255 << 7) + 200]]), 0)
    assert w2[0, 0] == 255 and n == 1


def test_counter_bits_are_deterministic_and_uniform():
    draws = [int(X.counter_bits(7, 3, t, 7)) for t in range(12800)]
    assert draws == [int(X.counter_bits(7, 3, t, 7)) for t in range(12800)]
    counts = np.bincount(draws, minlength=128)
    assert counts.min() > 50 and counts.max() < 150
    assert draws != [int(X.counter_bits(8, 3, t, 7)) for t in range(12800)]
    grid = X.counter_bits(7, 3, 5, 7, (40, 80))  # one number per synapse
    assert grid.shape == (40, 80) and grid.flat[0] == draws[5]
    counts = np.bincount(grid.ravel(), minlength=128)
    assert counts.min() > 5 and counts.max() < 50
    wide = X.counter_bits(7, 3, 5, 16, (40, 80))  # the same hash, more of its top bits
    assert np.array_equal(wide >> 9, grid) and wide.max() < 2 ** 16


def test_error_trace_is_stochastically_rounded_and_unbiased():
    shift, n = 6, 4000
    e = np.array([-300, -10, 0, 5, 37, 64, 200])
    draws = [X.learning_draws(1, 0, t, (len(e), 1), shift, True)[2] for t in range(n)]
    traces = np.array([X.error_trace(e, shift, d)[0] for d in draws])
    assert np.all(traces >= np.floor(e / 2 ** shift)) and np.all(traces <= np.ceil(e / 2 ** shift))
    assert np.allclose(traces.mean(axis=0), e / 2 ** shift, atol=4 * 0.5 / np.sqrt(n))
    assert np.array_equal(X.error_trace(e, 0, None)[0], np.clip(e, -63, 63))
    assert X.error_trace(np.array([2 ** 20]), shift, draws[0][:1])[1] == 1  # clipped, counted
    batch = X.error_trace(np.stack([e, e]), shift, draws[0])[0]  # a batch shares the dither
    assert np.array_equal(batch[0], batch[1])
    # a mantissa scales the trace by mant / 16 (4 bits more shifted off), as unbiased
    mant, wide = 11, shift + X.TRACE_MANT_BITS
    draws = [X.learning_draws(1, 0, t, (len(e), 1), wide, True)[2] for t in range(n)]
    scaled = np.array([X.error_trace(e, wide, d, mant=mant)[0] for d in draws])
    want = mant * e / 2 ** wide
    assert np.all(scaled >= np.floor(want)) and np.all(scaled <= np.ceil(want))
    assert np.allclose(scaled.mean(axis=0), want, atol=4 * 0.5 / np.sqrt(n))
    assert not np.allclose(scaled.mean(axis=0), e / 2 ** shift, atol=4 * 0.5 / np.sqrt(n))


@pytest.mark.parametrize("gain", [2e-5, 3e-3])
@pytest.mark.parametrize("sign", [1, -1])
def test_weight_change_is_proportional_to_a_gain_far_below_one_product_unit(gain, sign):
    """The defect the coarser, dithered error trace removes: with a gain far below the
    engine's product quantum, floored products plus the half-unit compensation made
    every update +-1/2 unit by the error's sign alone (sign-SGD), whatever x1 was. Now a
    constant error far below one trace LSB moves each weight by gain * x1 * e on average."""
    from lava_gle.quantize.rules import choose_rules
    rule, _, k, _, _ = choose_rules(gain, None, False, "l")
    assert rule.mant >= 4 and rule.gain() == pytest.approx(gain * 2 ** k, rel=0.07)
    shift = 10 + k  # error format: 10 bits below the (uncoarsened) trace LSB
    e = sign * (1 << 10) // 5  # 0.2 of an uncoarsened trace LSB, on each of 64 neurons
    x1 = np.arange(8, 128, 8)
    p = 2 * x1  # payloads whose trace is x1
    steps = int(round(10 / (gain * 64 * 0.2)))  # about 10 LSB at the mean x1
    w = np.zeros((64, len(x1)), np.int64)
    for t in range(steps):
        rand_w, _, dither = X.learning_draws(0, 0, t, w.shape, shift, True)
        e_q, _ = X.error_trace(np.full(64, e), shift, dither)
        w, _, _ = X.synapse_update(w, (p > 0).astype(int), x1, e_q, rule, rand_w)
    ideal = rule.gain() * 2.0 ** -k * x1 * (e / 2 ** 10) * steps  # LSB per synapse
    slope, intercept = np.polyfit(ideal, w.mean(axis=0), 1)
    assert slope == pytest.approx(1.0, abs=0.1)
    assert abs(intercept) < 1.0  # LSB: no constant, sign-only part


def test_per_synapse_rounding_is_floor_or_ceil_and_unbiased():
    acc = np.full((64, 64), 32)  # a quarter LSB on every synapse
    rand = X.counter_bits(0, 0, 0, 7, acc.shape)
    w, _ = X.round_accumulator(acc, rand)
    assert set(np.unique(w)) <= {0, 1}
    assert abs(w.mean() - 0.25) < 0.03


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.integers(1, 5), st.integers(1, 6), st.integers(1, 7),
       st.integers(1, 6), st.integers(1, 63), st.integers(1, 255), st.booleans(),
       st.integers(0, 2 ** 32 - 1))
def test_batch_accumulator_equals_the_mean_of_per_element_accumulators(
        batch, n, m, mant, s_exp, e_max, w_max, pre_signed, seed):
    """The batched accumulator (matrix products) is exactly the rounded mean of the
    per-element Lava accumulators wherever no element saturates: floors of negative
    products, compensation and silent synapses included."""
    rng = np.random.default_rng(seed)
    rule = X.LearningRuleConstants(mant=mant, s_exp=s_exp, pre_signed=pre_signed)
    p = rng.integers(-127 if pre_signed else 0, 128 if pre_signed else 256, (batch, m))
    p[rng.random((batch, m)) < 0.2] = 0
    x0, x1 = X.pre_trace(p, pre_signed)
    e_q = rng.integers(-e_max, e_max + 1, (batch, n))
    e_q[rng.random((batch, n)) < 0.3] = 0
    w = rng.integers(-w_max, w_max + 1, (n, m))
    assume((w_max << 7) + ((mant * e_max * 127 >> 3) + 1 << s_exp) + (1 << s_exp) <= 32767)
    per_element = [X.learning_accumulator(w, x0[b], x1[b], e_q[b], rule) for b in range(batch)]
    expected = (np.sum(per_element, axis=0) + batch // 2) // batch
    assert np.array_equal(X.learning_accumulator(w, x0, x1, e_q, rule), expected)


@pytest.mark.parametrize("batch", [1, 2])
def test_accumulator_saturation_is_counted(batch):
    """A learning epoch that pushes weights at the top of their range past the 16-bit
    accumulator saturates there and says how often: at batch 1 (Lava's element sums) every
    clipped product or partial sum, with a batch axis every clipped element of the mean.
    Expectations in plain integers: w << 7 = 32640, the one product (mant 7, s_exp 2,
    shift 3) of e_q 10 and x1 = f is floor(70 f / 8) << 2, so the sum passes 32767 where
    that product exceeds 127, for f >= 4; the compensation (2 per product) then clips once
    more at batch 1, and nowhere else."""
    rule = X.LearningRuleConstants(mant=7, s_exp=2, pre_signed=False)
    x1 = np.arange(0, 8)  # f = 0 .. 7; x0 = 1 for f > 0
    x0 = (x1 > 0).astype(np.int64)
    w = np.full((3, 8), X.W_MAX)
    e_q = np.array([10, 0, 10])  # row 1 learns nothing
    acc, clips = X.accumulate(w, np.tile(x0, (batch, 1)), np.tile(x1, (batch, 1)),
                              np.tile(e_q, (batch, 1)), rule)
    unsaturated = (X.W_MAX << 7) + ((70 * x1 >> 3) << 2) + 2 * x0  # [8]
    over = int(np.sum(unsaturated > 32767))
    assert over == 4  # f = 4 .. 7
    assert clips == 2 * over * (2 if batch == 1 else 1)
    assert np.all(acc[[0, 2]] == np.minimum(unsaturated, 32767))
    assert np.all(acc[1] == X.W_MAX << 7)


def test_tags_accumulate_sub_lsb_updates_exactly():
    """1,000 updates of +1/128 LSB each: with 7 tag bits the weight and tag hold exactly
    1000/128 LSB, i.e. w = round(7.8125) = 8 and t = -24 (no rounding noise); without tags
    the weight is a stochastic rounding of each update (a random walk around 7.8)."""
    p, e = np.array([[2]]), np.array([[1]])  # x1 = 1, doubled e_q = 2
    ends = {}
    for bits in (0, 7):  # 1/128 LSB a step: s_exp 0 on the weight, 7 on the tag
        rule = X.LearningRuleConstants(mant=4, s_exp=bits, pre_signed=False, exact=True)
        w, b = np.zeros((1, 1), np.int64), np.zeros(1, np.int64)
        tags = (np.zeros_like(w), np.zeros_like(b)) if bits else None
        for step in range(1000):  # each epoch: the carry, then the rule on the tag
            if bits:
                X.carry_tags(w, tags[0], bits)
            X.learn_projection(*(tags if bits else (w, b)), p, e, 0, False, rule, None, 0, 0,
                               step, True)
        ends[bits] = (int(w[0, 0]), None if tags is None else int(tags[0][0, 0]))
    assert ends[7] == (8, -24)
    assert ends[0][0] != 8  # this seed's random walk; the tag removes it


@pytest.mark.parametrize("bits", X.TAG_BITS)
def test_tag_carry_and_update_equal_lavas_fixed_applier(bits):
    """The tag's carry into the weight and its update (carry_tags, then the accumulator of
    the rule in tag units) are Lava's LearningRuleApplierBitApprox on the dw and dt
    strings of microcode.tag_rule_strings (tags within +-192: beyond, Lava clips the carry
    product of 2 LSB at 7 tag bits one accumulator unit short)."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.learning.learning_rule_applier import LearningRuleApplierBitApprox
    from lava_gle.microcode import tag_rule_strings
    rule = X.LearningRuleConstants(mant=4, s_exp=3, pre_signed=True, exact=True)
    dw, dt = tag_rule_strings(rule, bits)
    lr = Loihi3FLearningRule(dw=dw, dt=dt, x1_impulse=0, x1_tau=2 ** 16 - 1)
    w_applier = LearningRuleApplierBitApprox(lr.dw)
    t_applier = LearningRuleApplierBitApprox(lr.dt)
    rng = np.random.default_rng(5)
    n, m = 4, 6
    for _ in range(20):
        p = rng.integers(-127, 128, size=m)
        e_q = 2 * rng.integers(-31, 32, size=n)
        w = rng.integers(-256, 256, size=(n, m))
        t = rng.integers(-192, 192, size=(n, m))
        x0, x1 = X.pre_trace(p, True)
        w_ours, t_ours = w.copy(), t.copy()
        X.carry_tags(w_ours, t_ours, bits)
        acc_t = X.learning_accumulator(t_ours, x0, x1, e_q, rule)
        y = np.stack([np.zeros(n, int), np.maximum(e_q, 0), np.maximum(-e_q, 0)])
        args = {"shape": (n, m), "x0": x0[None, :], "y0": (e_q != 0)[:, None].astype(int),
                "u": 1, "weights": w, "tag_1": t, "tag_2": np.zeros((n, m), int),
                "x1_x0": x1[None, :], "x2_x0": np.zeros((1, m), int),
                "y1_x0": y[0][:, None], "y2_x0": y[1][:, None], "y3_x0": y[2][:, None],
                "x1_u": x1[None, :], "x2_u": np.zeros((1, m), int),
                "y1_u": y[0][:, None], "y2_u": y[1][:, None], "y3_u": y[2][:, None]}
        acc_w = w_applier.apply((w << 7).astype(np.int32), **args)
        assert np.all(acc_w % 128 == 0) or np.any(np.abs(w) == 255)  # whole LSBs: no rounding
        assert np.array_equal(np.clip(acc_w >> 7, X.W_MIN, X.W_MAX), w_ours)
        assert np.array_equal(t_applier.apply((t << 7).astype(np.int32), **args), acc_t)
