"""phi and phi' in integers: piecewise-linear kinds, and segments for sigmoid, tanh and
softplus (lava_gle.quantize.activation)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lava_gle.numerics import fixed as X
from lava_gle.numerics.activations import phi as float_phi, phi_prime as float_phi_prime
from lava_gle.quantize.activation import (
    GATE_TOL_LSB, SEGMENT_TOL_LSB, WIDE_TOL, fixed_activation, segment_tolerance,
)

SEGMENT_PHI = ["sigmoid", "tanh", "softplus"]


@pytest.mark.parametrize("phi", ["linear", "relu", "hard_sigmoid"])
def test_piecewise_linear_phi_needs_no_segments(phi):
    act, err = fixed_activation(phi, 16, 6, phi == "linear", False, "a")
    assert act.kind == phi and act.segments is None
    assert err <= 0.5 * 2.0 ** -6  # rounding only


def _act(phi, u_bits, rate_bits, wide):
    return fixed_activation(phi, u_bits, rate_bits, phi == "tanh", wide, "a")[0]


FORMATS = st.one_of(  # (u_bits, rate_bits, wide): 8-bit hidden and 24-bit output payloads
    st.tuples(st.integers(8, 18), st.integers(3, 9), st.just(False)),
    st.tuples(st.integers(16, 20), st.integers(17, 22), st.just(True)))


@pytest.mark.parametrize("phi", ["hard_sigmoid", "sigmoid", "tanh"])
def test_a_rate_of_one_is_the_formats_top_and_only_finer_formats_count_clips(phi):
    """A bounded phi at +-1.0 is 2**rate_bits, one LSB beyond the 8-bit payload: held as
    its top and not counted (a hard_sigmoid layer at its top counted every step before).
    With a fraction bit more than its range needs (a rate_bits override) the clips lose
    rates and count. The compiled kernel counts alike."""
    from lava_gle.numerics import compiled
    signed = phi == "tanh"
    bits = 7 if signed else 8
    u = np.array([-40, -1, 0, 1, 40]) << 12  # at -40 and 40 phi is its bound
    finer = {"hard_sigmoid": 2, "sigmoid": 3, "tanh": 4}[phi]  # values >= 0.5 (tanh: |.|)
    for rate_bits, clips in ((bits, 0), (bits + 1, finer)):
        act = fixed_activation(phi, 12, rate_bits, signed, False, "a")[0]
        p, _, n = act(u)
        assert n == clips, (rate_bits, p)
        assert p.max() == act.p_max and compiled.activation(u, act)[2] == clips


@settings(max_examples=60, deadline=None)
@given(phi=st.sampled_from(SEGMENT_PHI), fmt=FORMATS, seed=st.integers(0, 2**32 - 1),
       span=st.sampled_from([1.0, 4.0, 20.0]))
def test_segment_phi_and_its_gate_stay_within_the_stated_bounds(phi, fmt, seed, span):
    """phi within the segment tolerance plus half a payload LSB (rounding); the gate
    within what the tolerance costs it plus half a gate LSB: 2 tol for tanh (1 - y**2),
    tol for sigmoid (f (1 - f)), GATE_TOL_LSB for softplus (its own segments)."""
    u_bits, rate_bits, wide = fmt
    act = _act(phi, u_bits, rate_bits, wide)
    u = np.random.default_rng(seed).integers(-span * 2**u_bits, span * 2**u_bits, 2000)
    p, g, _ = act(u)
    x, lsb = u * 2.0 ** -u_bits, 2.0 ** -rate_bits
    tol = segment_tolerance(rate_bits, wide)
    ref = np.clip(float_phi(phi)(x), act.p_min * lsb, act.p_max * lsb)
    assert np.max(np.abs(p * lsb - ref)) <= tol + 0.5 * lsb
    gate_tol = {"sigmoid": tol, "tanh": 2 * tol,
                "softplus": GATE_TOL_LSB * 2.0 ** -X.GATE_BITS}[phi]
    err_g = np.abs(g * 2.0 ** -X.GATE_BITS - float_phi_prime(phi)(x))
    assert np.max(err_g) <= gate_tol + 0.5 * 2.0 ** -X.GATE_BITS


@settings(max_examples=40, deadline=None)
@given(phi=st.sampled_from(SEGMENT_PHI), fmt=FORMATS, seed=st.integers(0, 2**32 - 1))
def test_segment_phi_is_monotone_up_to_one_lsb(phi, fmt, seed):
    """The three are increasing; the segment payload never steps down by more than one
    LSB and never falls more than one LSB below what it reached (Horner's intermediate
    roundings make single-LSB reversals where phi is flat; not strictly monotone, see
    docs/fixed-point.md section 2), on consecutive potentials around every breakpoint
    (where the constant coefficients are moved so that f never steps up) and in random
    windows."""
    u_bits, rate_bits, wide = fmt
    act = _act(phi, u_bits, rate_bits, wide)
    rng = np.random.default_rng(seed)
    starts = act.segments.starts
    centres = np.concatenate([starts, -starts,
                              rng.integers(-2**(u_bits + 4), 2**(u_bits + 4), 20)])
    u = np.unique((centres[:, None] + np.arange(-300, 300)).ravel())
    p, _, _ = act(u)
    assert np.all(np.diff(p) >= -1)
    assert np.all(np.maximum.accumulate(p) - p <= 1)
    f = act.segments
    assert np.all(f(starts[1:]) <= f(starts[1:] - 1))  # no step up at a breakpoint


@pytest.mark.parametrize("phi", SEGMENT_PHI)
@pytest.mark.parametrize("rate_bits, wide", [(8, False), (5, False), (22, True)])
def test_segments_need_few_constants_and_no_table(phi, rate_bits, wide):
    """A few polynomial pieces (the neuron program's constants), not hundreds of table
    entries; the reported worst case is within the stated bound."""
    act, err = fixed_activation(phi, 18, rate_bits, phi == "tanh", wide, "a")
    consts = act.segments.constants() + (act.gate_segments.constants()
                                         if act.gate_segments else 0)
    assert consts <= (80 if wide else 40)
    assert act.segments.degree <= 5
    assert err <= segment_tolerance(rate_bits, wide) + 0.5 * 2.0 ** -rate_bits


def test_tolerances_are_below_the_tables_they_replace():
    """1/8 LSB for 8-bit payloads (nearest-entry tables: up to 1/4 LSB before rounding),
    2**-21 for the 24-bit output (interpolated tables: 0.9e-6 to 6e-6)."""
    assert segment_tolerance(8, False) == SEGMENT_TOL_LSB * 2.0 ** -8 == 2.0 ** -11
    assert segment_tolerance(22, True) == WIDE_TOL < 0.9e-6


@settings(max_examples=30, deadline=None)
@given(phi=st.sampled_from(SEGMENT_PHI), fmt=FORMATS, budget=st.sampled_from([37, 40, 48]))
def test_segments_fit_the_product_budget(phi, fmt, budget):
    """With a multiplier of ``budget`` bits (sign included) every Horner product fits (all
    potentials), the gate's squares of the working format fit (``2 bits + 2``), and phi is
    within the (relaxed) tolerance the segments record plus half an LSB."""
    u_bits, rate_bits, wide = fmt
    act, err = fixed_activation(phi, u_bits, rate_bits, phi == "tanh", wide, "a", budget)
    for seg in (act.segments, act.gate_segments):
        if seg is not None:
            assert seg.product_bits() <= budget
            assert 2 * seg.bits + 2 <= budget
    assert act.segments.tol >= segment_tolerance(rate_bits, wide, budget)
    assert err <= act.segments.tol + 0.5 * 2.0 ** -rate_bits
    u = np.arange(-(20 << u_bits), 20 << u_bits, 97)
    f = act.segments
    one = 1 << f.bits
    y = one - f(np.abs(u))
    assert int(np.abs(y * y).max()).bit_length() + 1 <= budget  # tanh's gate square


def test_the_product_budget_relaxes_only_the_24_bit_payloads():
    """37-bit products (the default): 8-bit payloads keep their segments; the 24-bit
    output's tolerance becomes 2**-14 (from 2**-21), fewer instructions than unbounded."""
    for phi in SEGMENT_PHI:
        hidden = [fixed_activation(phi, 16, 8, phi == "tanh", False, "a", b)[0].segments
                  for b in (None, 37)]
        assert np.array_equal(hidden[0].coefs, hidden[1].coefs)
        wide = [fixed_activation(phi, 18, 20, phi == "tanh", True, "a", b)[0].segments
                for b in (None, 37)]
        assert wide[0].product_bits() > 40 >= 37 >= wide[1].product_bits()
        assert (wide[0].tol, wide[1].tol) == (WIDE_TOL, 2.0 ** -14)
