"""The compiled fixed-point primitives (numba) give the NumPy reference's integers exactly.

Each primitive of :mod:`lava_gle.numerics.compiled` against its reference in
:mod:`lava_gle.numerics.fixed` on random shapes, shifts, seeds and values up to the
saturation limits (results and clip counts equal), then whole engines (every recorded
integer and saturation count) with the switch :mod:`lava_gle.numerics.ops`.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lava_gle import load_network, network_from_dict
from lava_gle.errors import LavaGleError
from lava_gle.numerics import fixed as X
from lava_gle.numerics import ops
from lava_gle.numerics.engine import FixedEngine
from lava_gle.quantize import QuantizationWarning, quantize_network

C = pytest.importorskip("lava_gle.numerics.compiled")

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
# the first examples compile; later ones are fast
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(0, 2 ** 32)
#: Batch sizes drawn (0: no batch axis); from ``C.GEMM_BATCH`` on the compiled twins take
#: their matrix-product paths.
BATCHES = st.integers(0, 5) | st.sampled_from([C.GEMM_BATCH, 3 * C.GEMM_BATCH + 1])


def ints(rng, lo, hi, shape, extreme=0.2):
    """Uniform integers in [lo, hi] with about ``extreme`` of them at the limits."""
    x = rng.integers(lo, hi + 1, shape)
    edge = rng.random(shape) < extreme
    return np.where(edge, np.where(rng.random(shape) < 0.5, lo, hi), x).astype(np.int64)


def batch_shape(draw_batch: int) -> tuple[int, ...]:
    return () if draw_batch == 0 else (draw_batch,)


#: Accumulator widths (sign included): narrow ones overflow on most sums, 22 (the
#: default) on some, 40 on none.
ACC_BITS = st.sampled_from([12, 18, 22, 40])


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 12), m=st.integers(1, 12), batch=BATCHES,
       w_shift=st.integers(-6, 6), b_shift=st.integers(-6, 8), wide=st.booleans(),
       acc_bits=ACC_BITS)
def test_forward_drive(seed, n, m, batch, w_shift, b_shift, wide, acc_bits):
    rng = np.random.default_rng(seed)
    w, b = ints(rng, X.W_MIN, X.W_MAX, (n, m)), ints(rng, X.W_MIN, X.W_MAX, (n,))
    top = X.STATE_MAX if wide else 255  # 24-bit output payloads or 8-bit rates
    p = ints(rng, -top, top, batch_shape(batch) + (m,))
    acc_max = X.acc_limit(acc_bits)
    want = X.forward_drive(w, w_shift, b, b_shift, p, acc_max)
    got = C.forward_drive(w, w_shift, b, b_shift, p, acc_max)
    assert got[0].shape == want[0].shape and got[1:] == want[1:]
    np.testing.assert_array_equal(got[0], want[0])


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 12), m=st.integers(1, 12), batch=BATCHES,
       shift=st.integers(-8, 8), acc_bits=ACC_BITS)
def test_backward_error(seed, n, m, batch, shift, acc_bits):
    rng = np.random.default_rng(seed)
    w = ints(rng, X.W_MIN, X.W_MAX, (n, m))
    e = ints(rng, -X.STATE_MAX, X.STATE_MAX, batch_shape(batch) + (n,))
    e[..., rng.random(n) < 0.3] = 0  # rows that send nothing
    acc_max = X.acc_limit(acc_bits)
    want, got = X.backward_error(w, e, shift, acc_max), C.backward_error(w, e, shift, acc_max)
    assert got[0].shape == want[0].shape and got[1:] == want[1:]
    np.testing.assert_array_equal(got[0], want[0])


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 12), batch=BATCHES, shift=st.integers(0, 14))
def test_the_normalisers_running_mean_square(seed, n, batch, shift):
    rng = np.random.default_rng(seed)
    x = ints(rng, -X.STATE_MAX, X.STATE_MAX, batch_shape(batch) + (n,))
    ms = rng.integers(0, 1 << 46, n).astype(np.int64)
    want, got = ms.copy(), ms.copy()
    X.update_mean_square(want, x, shift)
    C.update_mean_square(got, x, shift)
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 12), k=st.integers(12, 60), limit=st.integers(1, 1 << 40),
       zeros=st.booleans())
def test_the_normalisers_factors(seed, n, k, limit, zeros):
    """The gains' ``inverse_rms`` and the error normaliser's mantissa and shift (float64
    square roots and divisions, correctly rounded in both), the mean squares spread over
    every magnitude, some 0 (the limit)."""
    rng = np.random.default_rng(seed)
    ms = (rng.integers(1, 1 << 20, n) << rng.integers(0, 33, n)).astype(np.int64)
    if zeros:
        ms[rng.random(n) < 0.3] = 0
    np.testing.assert_array_equal(C.inverse_rms(ms, k, limit), X.inverse_rms(ms, k, limit))
    for got, want in zip(C.error_normaliser(ms, 0, float(limit)),
                         X.error_normaliser(ms, 0, float(limit))):
        np.testing.assert_array_equal(got, want)
    # before the first update (ms None) the compiled twin is the reference itself: that
    # case is checked against 2**norm_shift in test_normalisers, not here


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 12), batch=BATCHES, first=st.booleans())
def test_the_normalised_error(seed, n, batch, first):
    """``round(nu e)`` for factors with right and left shifts, and the first step's single
    factor broadcast over the neurons."""
    rng = np.random.default_rng(seed)
    e = ints(rng, -X.STATE_MAX, X.STATE_MAX, batch_shape(batch) + (n,))
    ms = None if first else (rng.integers(0, 1 << 20, n) << rng.integers(0, 30, n))
    nu = X.error_normaliser(ms, int(rng.integers(-8, 8)), 2.0 ** 20)
    np.testing.assert_array_equal(C.normalised_error(e, nu), X.normalised_error(e, nu))


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 12), batch=BATCHES, shift=st.integers(0, 30),
       signed=st.booleans(), wide=st.sampled_from([0, 8, 16]))
def test_the_gained_payload_and_error(seed, n, batch, shift, signed, wide):
    rng = np.random.default_rng(seed)
    x = ints(rng, -X.STATE_MAX, X.STATE_MAX, batch_shape(batch) + (n,))
    gamma = ints(rng, 0, 1 << 22, (n,))
    for got, want in ((C.gain_payload(x, gamma, shift, signed, wide),
                       X.gain_payload(x, gamma, shift, signed, wide)),
                      (C.gain_error(x, gamma, shift), X.gain_error(x, gamma, shift))):
        assert got[0].shape == want[0].shape and got[1] == want[1]
        np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("overflows", [True, False])
def test_the_accumulator_saturates_alike(overflows):
    """Sums beyond the 22-bit accumulator (2**21 - 1 = 2,097,151) or within it (a right
    shift of 2 first): both implementations give the clipped (or exact) sum and count the
    clips alike. Forward: 255 * 255 * 40 = 2,601,000; backward: 2**14 * 255 = 4,177,920,
    held with the guard bit (twice that), whose clipped value halves to 2**20."""
    w = np.full((2, 40), 255, np.int64)
    w[1] = -255
    b = np.array([3, -3], np.int64)
    acc_max = X.acc_limit(22)
    shift = 0 if overflows else -2
    fwd = min(2_601_000 >> -shift, acc_max)
    back = min(4_177_920 << 1 >> -shift, acc_max)
    assert (fwd == acc_max) == (back == acc_max) == overflows
    back = (back + 1) >> 1
    for impl in (X, C):
        s, n, n_acc = impl.forward_drive(w, shift, b, 0, np.full((1, 40), 255, np.int64),
                                         acc_max)
        np.testing.assert_array_equal(s, [[fwd + 3, -fwd - 3]])
        assert (n, n_acc) == (0, 2 if overflows else 0)
        eps, n, n_acc = impl.backward_error(w, np.array([[1 << 14, 0]], np.int64), shift,
                                            acc_max)
        np.testing.assert_array_equal(eps, np.full((1, 40), back))
        assert (n, n_acc) == (0, 40 if overflows else 0)


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 8), batch=st.integers(0, 4), shift=st.integers(-3, 20),
       negative=st.booleans(), per_neuron=st.booleans())
def test_output_error(seed, n, batch, shift, negative, per_neuron):
    rng = np.random.default_rng(seed)
    mant = rng.integers(1, 4096, n if per_neuron else ())
    beta = X.Factor(np.asarray(mant, np.int64), shift)
    p, y = (ints(rng, -X.STATE_MAX, X.STATE_MAX, batch_shape(batch) + (n,)) for _ in range(2))
    want, got = X.output_error(p, y, beta, negative), C.output_error(p, y, beta, negative)
    assert got[0].shape == want[0].shape and got[1] == want[1]
    np.testing.assert_array_equal(got[0], want[0])


PHIS = ("linear", "relu", "hard_sigmoid", "tanh", "sigmoid", "softplus")


def _layer_constants(phi: str, gamma: float, prospective: bool) -> list:
    """Neuron constants of a quantised 3-5-4 network, phi in both layers: 8-bit payloads
    in the hidden layer, 24-bit ones in the output layer (the segment kinds' two
    formats)."""
    net = network_from_dict({
        "gle_network": 1, "dt": 0.05, "input": {"size": 3},
        "layers": [{"name": "h", "size": 5, "tau_m": [1.0, 0.5, 2.0, 1.0, 0.3],
                    "tau_r": [0.3, 0.5, 0.1, 1.0, 0.3], "phi": phi},
                   {"name": "out", "size": 4, "tau_m": 1.0, "tau_r": 0.4, "phi": phi}],
        "learning": {"enabled": False, "gamma": gamma, "beta": 0.5,
                     "prospective_errors": prospective}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return [ql.consts for ql in quantize_network(net).layers]


CONSTS = {(phi, gamma, pro): _layer_constants(phi, gamma, pro)
          for phi in PHIS for gamma in (0.0, 0.7, -0.4) for pro in (True, False)}


class _OtherKind:
    """An activation of a kind the compiled step does not know: it calls it as it is."""

    kind = "other"

    def __init__(self, phi: X.FixedActivation) -> None:
        self.phi = phi

    def __call__(self, u):
        return self.phi(u)


@SETTINGS
@given(seed=SEEDS, key=st.sampled_from(sorted(CONSTS)), layer=st.integers(0, 1),
       batch=st.integers(0, 4), scale=st.sampled_from([8, 16, 23, 24]),
       other=st.booleans(), bounded=st.booleans())
def test_neuron_step(seed, key, layer, batch, scale, other, bounded):
    """Both implementations on random states (scale 24: beyond the 24-bit state, so with
    gamma the Euler operand is clamped), with an error bound or without; every result and
    count equal."""
    c = CONSTS[key][layer]
    if other:
        c = dataclasses.replace(c, phi=_OtherKind(c.phi))
    rng = np.random.default_rng(seed)
    if bounded:
        c = dataclasses.replace(c, e_max=int(rng.integers(1, 1 << scale)))
    shape = batch_shape(batch) + (c.dt_m.mant.size if c.dt_m.mant.ndim else 5 - layer,)
    u, v, s, d = (ints(rng, -(1 << scale) + 1, (1 << scale) - 1, shape) for _ in range(4))
    g = ints(rng, 0, X.GATE_ONE, shape)
    want, want_n = X.neuron_step(u, v, g, s, d, c)
    got, got_n = C.neuron_step(u, v, g, s, d, c)
    assert got_n == want_n
    for field in X.FixedNeuronState._fields:
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
        assert getattr(got, field).shape == shape


SEGMENT_KEYS = sorted(k for k in CONSTS if k[0] in X.SEGMENT_PHI)


@SETTINGS
@given(seed=SEEDS, key=st.sampled_from(SEGMENT_KEYS), layer=st.integers(0, 1),
       batch=st.integers(0, 4), reach=st.sampled_from([2.0, 8.0, 24.0, 2.0 ** 8]))
def test_segment_activation(seed, key, layer, batch, reach):
    """sigmoid, tanh and softplus at 8-bit (hidden) and 24-bit (output) payloads: compiled
    segments and Horner steps give the reference's payloads, gates and clip counts for
    potentials within ``reach`` (every segment, the zero tail, and beyond)."""
    phi = CONSTS[key][layer].phi
    assert phi.kind in X.SEGMENT_PHI and phi.segments is not None
    assert (phi.p_max == X.STATE_MAX) == (layer == 1)
    rng = np.random.default_rng(seed)
    top = int(reach * 2 ** phi.u_bits)
    u = ints(rng, -top, top, batch_shape(batch) + (64,), extreme=0.05)
    u[..., :len(phi.segments.starts)] = phi.segments.starts  # each segment's first point
    want, got = phi(u), C.activation(u, phi)
    assert got[2] == want[2]
    for w, g in zip(want[:2], got[:2]):
        assert g.shape == u.shape
        np.testing.assert_array_equal(g, w)


RULES = st.builds(X.LearningRuleConstants, mant=st.integers(1, 7), s_exp=st.integers(1, 15),
                  pre_signed=st.booleans()) | st.builds(
    X.LearningRuleConstants, mant=st.just(4), s_exp=st.integers(0, 14), pre_signed=st.booleans(),
    exact=st.just(True))  # exact: the doubled error trace, no compensation
BIAS_RULES = st.builds(X.BiasRule, mant=st.integers(1, 7), s_exp=st.integers(1, 15),
                       pre_signed=st.just(False)) | st.builds(
    X.BiasRule, mant=st.integers(1, 7), s_exp=st.integers(0, 14), pre_signed=st.just(False),
    exact=st.just(True), payload=st.sampled_from(X.BIAS_PAYLOADS_EXACT))


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 10), m=st.integers(1, 10),
       batch=st.integers(1, 3) | st.sampled_from([C.GEMM_BATCH, 37, C._F32_EXACT_BATCH]),
       rule=RULES | st.builds(X.LearningRuleConstants, mant=st.just(4),
                              s_exp=st.integers(1, 15), pre_signed=st.booleans()),
       sparse=st.booleans())
def test_learning_accumulator(seed, n, m, batch, rule, sparse):
    """The learning engine's accumulator of the active rows, before any rounding (where
    a term lost in a batch sum could not hide): the element loop at batch 1 and small
    batches, the matrix products (float32 or float64) from ``GEMM_BATCH`` on."""
    rng = np.random.default_rng(seed)
    w = ints(rng, X.W_MIN, X.W_MAX, (n, m))
    x0 = rng.integers(0, 2, (batch, m))
    x1 = ints(rng, 0, (1 << X.TRACE_BITS) - 1, (batch, m))
    e_q = ints(rng, -X.ERR_TRACE_MAX, X.ERR_TRACE_MAX, (batch, n)) * (2 if rule.exact else 1)
    if sparse:
        e_q[:, rng.random(n) < 0.5] = 0
    active = np.flatnonzero((e_q != 0).any(axis=0))
    f_pre = x1 - 64 if rule.pre_signed else x1
    pre = x0 * np.clip(f_pre, -(1 << X.TRACE_BITS), (1 << X.TRACE_BITS) - 1)
    want, want_clips = X.accumulate(w, x0, x1, e_q, rule)
    got, clips = C._accumulate(w, x0, pre, e_q, active, rule.mant, rule.s_exp,
                               rule.overflow_shift, rule.compensation())
    np.testing.assert_array_equal(got, want[active])
    assert clips == want_clips  # the rows not active cannot clip: w << 7 fits


@SETTINGS
@given(seed=SEEDS, n=st.integers(1, 10), m=st.integers(1, 10), batch=BATCHES,
       trace_shift=st.integers(-2, 14), pre_signed=st.booleans(), rule=RULES,
       bias_rule=st.none() | BIAS_RULES, layer=st.integers(0, 6), step=st.integers(0, 10 ** 9),
       rounding_seed=st.integers(0, 2 ** 40), per_synapse=st.booleans(),
       sparse=st.booleans(), pre_shift=st.sampled_from([0, 0, 1, 3, 6]),
       rounding=st.none() | st.tuples(st.integers(0, 2 ** 34), st.integers(0, 10 ** 9)),
       no_bias=st.booleans(), trace_mant=st.sampled_from([1, 1, 9, 12, 15]))
def test_learn_projection(seed, n, m, batch, trace_shift, pre_signed, rule, bias_rule, layer,
                          step, rounding_seed, per_synapse, sparse, pre_shift, rounding,
                          no_bias, trace_mant):
    """Also with other rounding numbers for the weights and without biases (``b`` None),
    as a chip's backward array learns, and with a trace mantissa; the active rows reported
    alike."""
    rng = np.random.default_rng(seed)
    w, b = ints(rng, X.W_MIN, X.W_MAX, (n, m)), ints(rng, X.W_MIN, X.W_MAX, (n,))
    lo, hi = (-127, 127) if pre_signed else (0, 255)
    p = ints(rng, lo, hi, batch_shape(batch) + (m,))
    # errors from below one trace LSB to beyond the trace's saturation
    top = 1 << max(trace_shift + 7, 1)
    e = ints(rng, -top, top, batch_shape(batch) + (n,))
    if sparse:
        e[..., rng.random(n) < 0.5] = 0
    args = (p, e, trace_shift, pre_signed, rule, bias_rule, rounding_seed, layer, step,
            per_synapse, pre_shift, rounding)  # pre_shift > 0: the coarser, dithered trace
    if no_bias:
        bias_rule = None
        args = args[:5] + (None,) + args[6:]
    w_ref, b_ref, w_c, b_c = w.copy(), b.copy(), w.copy(), b.copy()
    act_ref, act_c = np.ones(n, bool), np.ones(n, bool)
    want = X.learn_projection(w_ref, None if no_bias else b_ref, *args, act_ref, trace_mant)
    got = C.learn_projection(w_c, None if no_bias else b_c, *args, act_c, trace_mant)
    assert got == want
    np.testing.assert_array_equal(w_c, w_ref)
    np.testing.assert_array_equal(b_c, b_ref)
    np.testing.assert_array_equal(act_c, act_ref)
    # rows outside the active ones keep their integers
    assert np.array_equal(w_ref[~act_ref], w[~act_ref])
    if no_bias or bias_rule is None:
        assert np.array_equal(b_ref, b)


@SETTINGS
@given(seed=SEEDS, shape=st.sampled_from([(5,), (4, 7), (1, 1)]),
       bits=st.sampled_from(X.TAG_BITS))
def test_carry_tags(seed, shape, bits):
    """The tags' carry into their weights: the same weights, tags and clip count, with
    weights at the limits so that carries clip (a tag holds sign + 8 bits)."""
    rng = np.random.default_rng(seed)
    w = ints(rng, X.W_MIN, X.W_MAX, shape, 0.3)
    w[rng.random(shape) < 0.3] = X.W_MAX
    tag = ints(rng, X.W_MIN, X.W_MAX, shape)
    w2, tag2 = w.copy(), tag.copy()
    want = X.carry_tags(w, tag, bits)
    assert C.carry_tags(w2, tag2, bits) == want
    assert np.array_equal(w, w2) and np.array_equal(tag, tag2)
    assert np.all(np.abs(tag) <= 1 << (bits - 1))  # what is left is below half an LSB


@SETTINGS
@given(seed=SEEDS, shape=st.sampled_from([(6, 9), (1, 1), (90, 90)]))
def test_transpose_drift(seed, shape):
    """Chip timing's transpose drift on a random subset of rows (none, some or all): the
    same largest difference, change of the squared sum and per-row sums; measured from
    zero on every row it is ``max |B - W|`` and ``sum (B - W)**2`` themselves."""
    rng = np.random.default_rng(seed)
    w, back = (ints(rng, X.W_MIN, X.W_MAX, shape, 0.3) for _ in range(2))
    row_sq = rng.integers(0, 10 ** 6, shape[0])
    rows = np.flatnonzero(rng.random(shape[0]) < rng.choice([0.0, 0.5, 1.0]))
    row_sq2 = row_sq.copy()
    want = X.transpose_drift(w, back, rows, row_sq)
    assert C.transpose_drift(w, back, rows, row_sq2) == want
    assert np.array_equal(row_sq, row_sq2)
    d = back.astype(np.int64) - w
    everything = np.arange(shape[0])
    assert C.transpose_drift(w, back, everything, np.zeros(shape[0], np.int64)) == (
        int(np.abs(d).max()), int(np.sum(d * d)))

def test_learn_projection_reaches_every_saturation():
    """A configuration whose clip counts are all non-zero, so the equality above is not
    only about zeros: trace, weights and biases clip, in both implementations alike."""
    rng = np.random.default_rng(0)
    rule = X.LearningRuleConstants(7, 15, False)
    w, b = ints(rng, X.W_MIN, X.W_MAX, (6, 8), 0.5), ints(rng, X.W_MIN, X.W_MAX, (6,), 0.5)
    p, e = ints(rng, 0, 255, (3, 8)), ints(rng, -5000, 5000, (3, 6), 0.5)
    w2, b2 = w.copy(), b.copy()
    bias_rule = X.BiasRule(7, 15, False)
    want = X.learn_projection(w, b, p, e, 4, False, rule, bias_rule, 1, 0, 7, True)
    assert all(want)
    assert C.learn_projection(w2, b2, p, e, 4, False, rule, bias_rule, 1, 0, 7, True) == want
    assert np.array_equal(w, w2) and np.array_equal(b, b2)


@pytest.mark.parametrize("y", [X.ERR_TRACE_MAX, 2 * X.ERR_TRACE_MAX])  # odd; doubled
def test_the_float32_bound_holds_the_largest_batch_sums_exactly(y):
    """Just below ``_F32_EXACT_BATCH`` elements the largest learning-sum operands (error
    trace +-y, presynaptic trace 127 / -128) give exact float32 products; the accumulator
    test above cannot see a bound set too high, since the mean over the batch hides a few
    units of error (checked: raising the bound 4x fails this test)."""
    batch = C._F32_EXACT_BATCH - 1
    e = np.full((batch, 2), y, np.int64)
    e[:, 1] = -y
    pre = np.full((batch, 3), 127, np.int64)
    pre[:, 2] = -128
    np.testing.assert_array_equal(C._int_matmul(e.T, pre, True), e.T @ pre)


@pytest.mark.parametrize("rule", [X.LearningRuleConstants(4, 3, False),
                                  X.LearningRuleConstants(4, 1, False, exact=True)])
@pytest.mark.parametrize("batch", [C._F32_EXACT_BATCH - 1, C._F32_EXACT_BATCH,
                                   4 * C._F32_EXACT_BATCH])
def test_batch_sums_are_exact_at_the_float32_bound(batch, rule):
    """The batched learning sums run as float32 matrix products below
    ``_F32_EXACT_BATCH`` elements and as float64 from there: with every error trace and
    presynaptic trace at its largest magnitude (partial sums up to 2**24, and 4x beyond)
    the integers stay the reference's."""
    rng = np.random.default_rng(3)
    w, b = ints(rng, X.W_MIN, X.W_MAX, (3, 4)), ints(rng, X.W_MIN, X.W_MAX, (3,))
    p = np.full((batch, 4), 255)  # x1 127, the largest presynaptic trace
    p[:, 0] = 0  # a silent input
    e = np.full((batch, 3), 1 << 20)
    e[:, 1] = -(1 << 20)  # traces saturate at -+63 (doubled: 126) on every element
    w2, b2 = w.copy(), b.copy()
    bias_rule = X.BiasRule(rule.mant, rule.s_exp, False, rule.exact,
                           X.BIAS_PAYLOADS_EXACT[0] if rule.exact else X.BIAS_PAYLOAD)
    want = X.learn_projection(w, b, p, e, 0, False, rule, bias_rule, 1, 0, 7, True)
    assert want[0] == 3 * batch  # every trace at its limit
    assert C.learn_projection(w2, b2, p, e, 0, False, rule, bias_rule, 1, 0, 7, True) == want
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(b2, b)


def test_learn_projection_with_other_rounding_numbers_is_the_epoch_of_its_parts():
    """``rounding=(stream, step)``: the error trace and presynaptic trace of the layer's
    step, the weights rounded with the counter numbers of ``(seed, stream, step)``; the
    composition of the reference's pieces, as the backward array's epoch was written."""
    rng = np.random.default_rng(3)
    rule = X.LearningRuleConstants(5, 9, True)
    n, m, seed, layer, step, ts, pre_shift = 7, 9, 11, 2, 40, 3, 1
    w = ints(rng, X.W_MIN, X.W_MAX, (n, m))
    p, e = ints(rng, -127, 127, (1, m)), ints(rng, -900, 900, (1, n), 0.0)
    e[0, :2] = 0
    for per_synapse in (True, False):
        e_q = X.error_trace(e, ts, X.trace_dither(seed, layer, step, n, ts), rule.exact)[0]
        rows = X.active_rows(e_q)
        rand = X.counter_bits(seed, 5 << 32, step + 1, X.ACC_FRAC,
                              (n, m) if per_synapse else (), rows if per_synapse else None)
        x0, x1 = X.pre_trace(p, True, pre_shift, X.pre_dither(seed, layer, step, m, pre_shift))
        want = w.copy()
        want[rows] = X.synapse_update(w[rows], x0, x1, e_q[..., rows], rule, rand)[0]
        for impl in (X, C):
            got, active = w.copy(), np.zeros(n, bool)
            impl.learn_projection(got, None, p, e, ts, True, rule, None, seed, layer, step,
                                  per_synapse, pre_shift, (5 << 32, step + 1), active)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.flatnonzero(active), rows)
        assert not np.array_equal(want, w) and rows.size < n


# -- whole engines -----------------------------------------------------------------------

def _both(net, x, y) -> tuple[dict, dict]:
    """The integer traces of a run in each implementation, and the engine's final state
    (``final.<key>``: every parameter, weight tags included)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        for impl in ops.IMPLEMENTATIONS:
            with ops.using(impl):
                eng = FixedEngine(net, dequantize=False)
                out[impl] = eng.run(x, y, record=True)
                out[impl].update({f"final.{k}": v for k, v in eng.state_dict().items()})
    return out["numpy"], out["numba"]


def _assert_same(want: dict, got: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_golden_networks_give_the_same_integers(case):
    net = load_network(GOLDEN / case / "network.json")
    x, y = np.load(GOLDEN / case / "inputs.npy"), np.load(GOLDEN / case / "targets.npy")
    want, got = _both(net, x, y)
    _assert_same(want, got)
    # gamma 1: the Euler operand's clamp is there (counted per layer) and never needed
    du = [k for k in want if k.startswith("sat.du.")]
    assert len(du) == len(net.layers) and all(int(want[k]) == 0 for k in du)


def test_a_network_whose_euler_operand_is_clamped_gives_the_same_integers():
    """Strong gamma feedback clamps du in both layers while tau_m learns (the bound follows
    the re-derived factors): the same integers and the same clamp counts."""
    from conftest import clamping_network
    want, got = _both(*clamping_network())
    assert int(want["sat.du.h"]) > 0 and int(want["sat.du.out"]) > 0
    _assert_same(want, got)


@pytest.mark.parametrize("batch", [1, C.GEMM_BATCH + 2])
def test_a_network_with_normalisers_gives_the_same_integers(batch):
    """Gains on the hidden layers and error normalisers on every layer (fast decays, so
    that both move in 200 steps), learning: the same integers and counts, the running
    mean squares included."""
    spec = {
        "gle_network": 1, "dt": 0.1, "seed": 3, "input": {"size": 3},
        "layers": [{"name": "h1", "size": 12, "tau_m": 1.0, "tau_r": 0.5, "phi": "tanh",
                    "gain_decay": 0.984375, "error_norm_decay": 0.9375},
                   {"name": "h2", "size": 9, "tau_m": 0.7, "tau_r": 0.2, "phi": "relu",
                    "gain_decay": 0.984375, "error_norm_decay": 0.9375},
                   {"name": "out", "size": 4, "tau_m": 1.0, "tau_r": 1.0, "phi": "sigmoid",
                    "error_norm_decay": 0.9375}],
        "learning": {"enabled": True, "eta": 0.05, "beta": 1.0, "loss": "mse"}}
    net = network_from_dict(spec)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (200, batch, 3))
    y = rng.uniform(0, 1, (200, batch, 4))
    want, got = _both(net, x, y)
    assert not np.array_equal(want["final.W.0"], FixedEngine(net).kernels.layers[0].ql.w)
    assert np.any(want["final.gain_ms.1"] != want["final.gain_ms.1"][0])  # the gains moved
    _assert_same(want, got)


@pytest.mark.parametrize("batch", [1, 4, C.GEMM_BATCH + 2])
@pytest.mark.parametrize("rounding,timing,backward,tags,products", [
    ("per_synapse", "exact", "independent", 0, "compensated"),
    ("shared", "exact", "independent", 0, "compensated"),
    ("per_synapse", "chip", "independent", 0, "compensated"),
    ("shared", "chip", "mirrored", 0, "exact"),
    ("per_synapse", "exact", "independent", 7, "exact"),
    ("per_synapse", "chip", "independent", 6, "compensated")])
def test_a_learning_network_gives_the_same_integers(batch, rounding, timing, backward, tags,
                                                    products):
    """Hundreds of learning steps with tau_m learning, gamma feedback, signed and unsigned
    rates, saturating weights: every recorded integer and count equal, and the final
    parameters; under chip timing also the backward arrays, which learn with their own
    epoch, and their drift; with weight tags (``tags`` bits) also the tags. Both
    learning-product rules (the independent backward draws drift apart only where the
    rule rounds: the compensated one at this rate)."""
    spec = {
        "gle_network": 1, "dt": 0.1, "seed": 5, "input": {"size": 3},
        "fixed_point": {"rounding": rounding, "timing": timing,
                        "backward_rounding": backward, "learning_products": products},
        "layers": [{"name": "h1", "size": 12, "tau_m": 1.0, "tau_r": 0.5, "phi": "tanh"},
                   {"name": "h2", "size": 9, "tau_m": 0.7, "tau_r": 0.2, "phi": "relu"},
                   {"name": "out", "size": 4, "tau_m": 1.0, "tau_r": 1.0,
                    "phi": "sigmoid"}],
        "learning": {"enabled": True, "eta": 5.0, "gamma": 0.3, "beta": 1.5, "loss": "mse",
                     "learn_tau": True, "eta_tau": 0.01}}
    for layer in spec["layers"]:
        layer["fixed_point"] = {"weight_tag_bits": tags}
    net = network_from_dict(spec)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (300, batch, 3))
    y = rng.uniform(0, 1, (300, batch, 4))
    want, got = _both(net, x, y)
    saturating = ("trace", "tag") if tags else ("W", "b", "trace", "acc")
    if batch >= C.GEMM_BATCH:  # the mean of many elements' accumulators stays in range
        saturating = tuple(v for v in saturating if v != "acc")
    for var in saturating:  # these saturate (and must agree)
        assert any(want[k] for k in want if k.startswith(f"sat.{var}.")), var
    if tags:  # the tags hold low bits, and their carries moved the weights
        assert any(np.any(want[k]) for k in want if k.startswith("final.tag_W."))
        assert not np.array_equal(want["final.W.0"], FixedEngine(net).kernels.layers[0].ql.w)
        if timing == "chip":
            assert "final.tag_B.2" in want
    if timing == "chip":
        assert {"W_back.h2", "W_back.out", "drift_max.out"} <= set(want)
        if backward == "independent":  # B learns apart from W (its own rounding numbers)
            assert (not np.array_equal(want["final.tag_B.1"], want["final.tag_W.1"]) if tags
                    else np.max(want["drift_max.out"]) > 0)
    _assert_same(want, got)


# -- the switch -------------------------------------------------------------------------

def test_the_switch_picks_the_implementation(monkeypatch):
    with ops.using("numpy"):
        assert ops.current() == "numpy" and ops.learn_projection is X.learn_projection
        with ops.using("numba"):
            assert ops.current() == "numba" and ops.neuron_step is C.neuron_step
        assert ops.forward_drive is X.forward_drive
    with pytest.raises(LavaGleError, match="use one of numba, numpy"):
        ops.use("fortran")
    monkeypatch.setenv(ops.ENV, "cuda")
    with pytest.raises(LavaGleError, match=f"{ops.ENV}='cuda'"):
        ops.use()
    monkeypatch.setenv(ops.ENV, "NumPy")
    previous = ops.use()
    try:
        assert ops.current() == "numpy"
    finally:
        ops.use(previous)
