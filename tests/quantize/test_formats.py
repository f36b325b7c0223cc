"""Bit formats, exponents and factors from value bounds (lava_gle.quantize.formats)."""
import warnings

import numpy as np
import pytest

from lava_gle.numerics import fixed as X
from lava_gle.quantize.formats import (
    QuantizationError, QuantizationWarning, check_dead_zone, check_gain_resolution,
    quantize_factor, rate_bits_for, state_bits_for, to_mantissas, weight_exp, wide_rate_bits,
)


@pytest.mark.parametrize("r_max,signed,bits", [
    (1.0, False, 8),   # [0, 1) in 256 steps of 2**-8
    (1.0, True, 7),    # (-1, 1) in 127 steps of 2**-7
    (0.3, False, 9),   # rounded up to 0.5
    (3.0, False, 6),   # rounded up to 4
    (3.0, True, 5),
    (100.0, True, 0),  # rounded up to 128: integer payloads
])
def test_rate_format_holds_the_bound_rounded_up_to_a_power_of_two(r_max, signed, bits):
    assert rate_bits_for(r_max, signed) == bits


@pytest.mark.parametrize("r_max", [1e-3, 0.07, 0.9, 1.1, 17.0, 250.0])
@pytest.mark.parametrize("signed", [False, True])
def test_rate_format_is_the_finest_that_holds_the_bound(r_max, signed):
    bits = rate_bits_for(r_max, signed)
    top = 127 if signed else 255
    assert (top + 1) * 2.0 ** -bits >= r_max  # the bound fits...
    assert (top + 1) * 2.0 ** -(bits + 1) < r_max  # ...and one more fraction bit would not


@pytest.mark.parametrize("signed,more", [(False, 14), (True, 15)])
def test_wide_output_format_doubles_the_range_with_more_fraction_bits(signed, more):
    bits = rate_bits_for(1.0, signed)
    wide = wide_rate_bits(bits, signed)
    assert wide - bits == more
    narrow_range = (127 if signed else 255) + 1
    assert (X.STATE_MAX + 1) * 2.0 ** -wide == 2 * narrow_range * 2.0 ** -bits


@pytest.mark.parametrize("bound,bits", [(1.0, 23), (1.5, 22), (256.0, 15), (1e-9, 23),
                                        (2.0 ** 30, 0)])
def test_state_format_holds_the_bound_in_24_bits(bound, bits):
    assert state_bits_for(bound) == bits
    if bound <= 2 ** 23:
        assert 2.0 ** (23 - bits) >= bound


def test_factor_keeps_12_significant_bits_within_its_tolerance():
    values = np.array([0.05, 0.031, 0.0125])
    f = quantize_factor(values, "dt/tau_m", "hidden")
    assert f.mant.max() < 2 ** 12 and f.mant.max() >= 2 ** 11  # 12 significant bits
    assert np.all(np.abs(f.value() / values - 1.0) <= 0.01)


def test_factor_beyond_the_mantissa_is_an_error_unless_it_is_a_format_conversion():
    with pytest.raises(QuantizationError, match=r"layer 'hidden': tau_m/tau_r = 5000"):
        quantize_factor(5000.0, "tau_m/tau_r", "hidden")
    f = quantize_factor(5000.0, "gamma", "hidden", scale=True)  # left shift
    assert f.shift < 0 and abs(float(f.value()) / 5000.0 - 1.0) <= 2.0 ** -11


def test_factor_too_small_next_to_the_largest_names_the_neuron():
    with pytest.raises(QuantizationError, match=r"'hidden'.*= 0.0001 \(neuron 1\)"):
        quantize_factor([1.0, 1e-4], "dt/tau_m", "hidden")


@pytest.mark.parametrize("top,headroom,floor", [(1.0, 2.0, 0.0), (0.01, 1.0, 4.0),
                                                (0.3, 1.0, 0.0), (5.0, 2.0, 4.0)])
def test_weight_exponent_is_the_finest_that_holds_headroom_and_floor(top, headroom, floor):
    w = np.array([[top, -top / 3], [0.0, top / 7]])
    exp = weight_exp(w, headroom, floor)
    need = max(top * headroom, floor)
    assert 255 * 2.0 ** exp >= need > 255 * 2.0 ** (exp - 1)


def test_mantissas_round_and_count_saturation_in_a_warning():
    q = to_mantissas(np.array([0.5, -0.25, 0.01]), -8, "a", "weights")
    assert q.tolist() == [128, -64, 3]
    with pytest.warns(QuantizationWarning, match=r"'a': 2 weights saturate at exponent -8"):
        q = to_mantissas(np.array([1.0, -2.0, 0.5]), -8, "a", "weights")
    assert q.tolist() == [255, -256, 128]  # the learning engine's range: sign and 8 bits
    # -256, which learning reaches, reads back as itself (no warning)
    assert to_mantissas(np.array([-1.0, -1.001]), -8, "a", "weights").tolist() == [-256, -256]


def test_dead_zone_warns_only_when_it_is_a_sizeable_share_of_the_signal():
    # dx below 0.5 / factor LSB rounds to nothing: 0.5 * 2**-10 / 1e-5 = 49 >> 1 % of 1
    with pytest.warns(QuantizationWarning, match=r"'a': with dt/tau_m = 1e-05 .*u_bits"):
        check_dead_zone("a", "dt/tau_m", 1e-5, 10, 1.0, "u_bits")
    # 0.5 * 2**-16 / 0.1 = 7.6e-5 < 1 % of 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dead_zone("a", "dt/tau_m", 0.1, 16, 1.0, "u_bits")


def test_gain_resolution_warns_above_one_payload_rms_per_weight_lsb():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_gain_resolution("a", 32.0, -5)  # 32 / 32 = 1: at the tolerance
        check_gain_resolution("a", 10.0, -5)  # the MNIST-1D recipe's h0: 0.31
    with pytest.warns(QuantizationWarning, match=r"'a': gain_max 100 times one weight LSB "
                                                 r"\(2\^-6\) is 1\.56.* to 64 or below "
                                                 r"\(experiments: --gain-max a=64\)"):
        check_gain_resolution("a", 100.0, -6)
