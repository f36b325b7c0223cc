"""The integer GLE arithmetic against independent expectations: exact rational
rounding, the float step it approximates, and Lava's own fixed-point learning applier."""
import math
from fractions import Fraction

import numpy as np
import pytest

from lava_gle.arithmetic import fixed as X
from lava_gle.arithmetic import floating as F


def test_shift_round_is_round_half_up_of_the_exact_quotient():
    xs = np.arange(-600, 600, dtype=np.int64)
    for k in (1, 3, 7):
        want = [math.floor(Fraction(int(x), 2 ** k) + Fraction(1, 2)) for x in xs]
        assert X.shift_round(xs, k).tolist() == want
    assert X.shift_round(xs, -2).tolist() == (xs * 4).tolist()


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


def test_neuron_step_tracks_the_float_step():
    cq, cf = _consts()
    rng = np.random.default_rng(1)
    scale = 2.0 ** 14
    u, v, s, d = (rng.uniform(-2, 2, size=(4, 3)) for _ in range(4))
    q = lambda a: np.round(a * scale).astype(np.int64)  # noqa: E731
    st, counts = X.neuron_step(q(u), q(v), np.full((4, 3), X.GATE_ONE), q(s), q(d), cq)
    ref = F.neuron_step(u, v, np.ones((4, 3)), s, d, cf)
    assert counts == (0, 0, 0, 0, 0)
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


@pytest.mark.parametrize("y1,pre_signed", [(None, False), (5, False), (37, True)])
def test_weight_update_equals_lavas_fixed_applier(y1, pre_signed):
    """Our accumulator change is Lava's LearningRuleApplierBitApprox on the same traces."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.learning.learning_rule_applier import LearningRuleApplierBitApprox
    from lava_gle.microcode import rule_string
    rule = X.LearningRuleConstants(mant=5, s_exp=2, y1=y1, pre_signed=pre_signed)
    lr = Loihi3FLearningRule(dw=rule_string(rule), x1_impulse=0, x1_tau=2 ** 16 - 1)
    applier = LearningRuleApplierBitApprox(lr.dw)
    rng = np.random.default_rng(3)
    n, m = 4, 6
    for _ in range(20):
        p = rng.integers(-127 if pre_signed else 0, 128 if pre_signed else 256, size=m)
        e_q = rng.integers(-63, 64, size=n)
        w = rng.integers(-256, 256, size=(n, m))
        x0, x1 = X.pre_trace(p, pre_signed)
        y1v = np.full(n, 0 if y1 is None else y1)
        ours = X.learning_accumulator(w, x0, x1, e_q, rule)
        y_traces = np.stack([y1v, np.maximum(e_q, 0), np.maximum(-e_q, 0)])
        args = {"shape": (n, m), "x0": x0[None, :], "y0": (e_q != 0)[:, None].astype(int),
                "u": 0, "weights": w, "tag_1": np.zeros((n, m), int),
                "tag_2": np.zeros((n, m), int),
                "x1_x0": x1[None, :], "x2_x0": np.zeros((1, m), int),
                "y1_x0": y1v[:, None], "y2_x0": y_traces[1][:, None],
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


def test_counter_uniform7_is_deterministic_and_uniform():
    draws = [int(X.counter_uniform7(7, 3, t)) for t in range(12800)]
    assert draws == [int(X.counter_uniform7(7, 3, t)) for t in range(12800)]
    counts = np.bincount(draws, minlength=128)
    assert counts.min() > 50 and counts.max() < 150
    assert draws != [int(X.counter_uniform7(8, 3, t)) for t in range(12800)]
    grid = X.counter_uniform7(7, 3, 5, (40, 80))  # one number per synapse
    assert grid.shape == (40, 80) and grid.flat[0] == draws[5]
    counts = np.bincount(grid.ravel(), minlength=128)
    assert counts.min() > 5 and counts.max() < 50


def test_per_synapse_rounding_is_floor_or_ceil_and_unbiased():
    acc = np.full((64, 64), 32)  # a quarter LSB on every synapse
    rand = X.counter_uniform7(0, 0, 0, acc.shape)
    w, _ = X.round_accumulator(acc, rand)
    assert set(np.unique(w)) <= {0, 1}
    assert abs(w.mean() - 0.25) < 0.03
