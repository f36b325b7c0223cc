"""phi and phi' in integers: piecewise-linear kinds and tables (lava_gle.quantize.activation)."""
import numpy as np
import pytest

from lava_gle.numerics import fixed as X
from lava_gle.numerics.activations import phi as float_phi, phi_prime as float_phi_prime
from lava_gle.quantize.activation import MAX_TABLE, WIDE_TABLE_BITS, fixed_activation
from lava_gle.quantize.formats import QuantizationError

U_BITS = 16


def _rates(act, u, rate_bits):
    p, _, _ = act(X.to_fixed(u, U_BITS)[0])
    return p * 2.0 ** -rate_bits


@pytest.mark.parametrize("phi", ["linear", "relu", "hard_sigmoid"])
def test_piecewise_linear_phi_needs_no_table(phi):
    act, err = fixed_activation(phi, U_BITS, 6, phi == "linear", False, "a")
    assert act.kind == phi and act.phi_table is None
    assert err <= 0.5 * 2.0 ** -6  # rounding only


@pytest.mark.parametrize("phi,signed,rate_bits", [("sigmoid", False, 8), ("tanh", True, 7),
                                                  ("softplus", False, 5)])
def test_table_phi_is_within_one_lsb_on_random_potentials(phi, signed, rate_bits):
    act, err = fixed_activation(phi, U_BITS, rate_bits, signed, False, "a")
    assert act.kind == "table" and len(act.phi_table) <= MAX_TABLE
    u = np.random.default_rng(0).uniform(-6.0, 6.0, 4000)
    top = (127 if signed else 255) * 2.0 ** -rate_bits
    ref = np.clip(float_phi(phi)(u), -top if signed else 0.0, top)
    got = np.abs(_rates(act, u, rate_bits) - ref).max()
    assert got <= 2.0 ** -rate_bits  # one payload LSB
    assert err <= 2.0 ** -rate_bits  # and the reported worst case says as much


@pytest.mark.parametrize("phi", ["sigmoid", "tanh", "softplus"])
def test_gate_table_holds_phi_prime_to_half_a_gate_lsb(phi):
    act, _ = fixed_activation(phi, U_BITS, 6, phi == "tanh", False, "a")
    xs = (act.table_lo + np.arange(len(act.gate_table))) * 2.0 ** -act.table_bits
    gates = act.gate_table * 2.0 ** -X.GATE_BITS
    assert np.abs(gates - float_phi_prime(phi)(xs)).max() <= 0.5 * 2.0 ** -X.GATE_BITS


@pytest.mark.parametrize("phi", ["sigmoid", "tanh"])
def test_wide_output_interpolates_a_table_far_below_the_8_bit_lsb(phi):
    signed = phi == "tanh"
    narrow = 7 if signed else 8
    wide_bits = narrow + (15 if signed else 14)
    act, err = fixed_activation(phi, 20, wide_bits, signed, True, "z")
    assert act.interpolate and act.table_bits == WIDE_TABLE_BITS
    assert err < 2.0 ** -narrow / 64  # interpolation error: 6 bits below the 8-bit LSB


def test_a_table_larger_than_the_limit_is_an_error_naming_the_layer():
    with pytest.raises(QuantizationError, match=r"layer 'a': the sigmoid table .*rate_bits"):
        fixed_activation("sigmoid", 23, 16, False, False, "a")
