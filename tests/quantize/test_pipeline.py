"""The quantisation pipeline and its typed passes (lava_gle.quantize.network)."""
from dataclasses import replace

import numpy as np
import pytest

from lava_gle import network_from_dict
from lava_gle.quantize import quantize_network
from lava_gle.quantize.network import Options, error_formats, rate_formats

pytestmark = pytest.mark.filterwarnings("ignore:layer 'z'. bias learning gain")


def chain(learning=True, fp=None, hidden_fp=None, beta=1.0):
    """2 inputs -> 3 linear (weights 0.5, bias 0.25) -> 1 linear (weights 0.25)."""
    return network_from_dict({
        "gle_network": 1, "dt": 0.05, "input": {"size": 2}, "fixed_point": fp or {},
        "layers": [{"name": "h", "size": 3, "tau_m": 1.0, "tau_r": 0.5,
                    "weights": [[0.5, 0.5]] * 3, "biases": [0.25] * 3,
                    "fixed_point": hidden_fp or {}},
                   {"name": "z", "size": 1, "tau_m": 1.0, "tau_r": 1.0,
                    "weights": [[0.25] * 3], "biases": [0.0]}],
        "learning": {"enabled": learning, "eta": 0.1, "beta": beta,
                     "prospective_errors": False}})


def _passes(net):
    opts = Options.of(net)
    w = [net.initial_weights(i) for i in range(2)]
    b = [net.initial_biases(i) for i in range(2)]
    rates = rate_formats(net, w, b, opts, 6)
    return opts, rates, error_formats(net, w, rates[-1], opts.growth, opts.acc_bits)


def test_options_defaults_depend_on_learning():
    on, off = Options.of(chain(True)), Options.of(chain(False))
    assert (on.w_headroom, on.w_floor, on.learns) == (2.0, 4.0, True)
    assert (off.w_headroom, off.w_floor, off.learns) == (1.0, 0.0, False)
    assert on.growth == 8.0 and on.in_range == 2.0
    given = Options.of(chain(fp={"weight_headroom": 3, "input_range": 0.5}))
    assert (given.w_headroom, given.in_range) == (3.0, 0.5)
    assert Options.of(chain(fp={"weight_range": 0})).w_floor == 0.0  # the documented minimum
    assert on.w_fixed == off.w_fixed == (1.0, 0.0) and given.w_fixed == (3.0, 0.0)


def test_a_frozen_projection_is_sized_as_without_learning():
    """A projection that does not learn (eta_scale 0) keeps its weights: its formats are
    the ones the network has without learning (no headroom, no floor), the others' those
    of learning."""
    net = chain(True)
    frozen = replace(net, layers=(replace(net.layers[0], eta_scale=0.0), net.layers[1]))
    q, on, off = (quantize_network(n) for n in (frozen, chain(True), chain(False)))
    assert (q.layers[0].w_exp, q.layers[0].b_exp) == (off.layers[0].w_exp, off.layers[0].b_exp)
    assert (q.layers[1].w_exp, q.layers[1].b_exp) == (on.layers[1].w_exp, on.layers[1].b_exp)
    assert on.layers[0].w_exp > off.layers[0].w_exp  # learning sizes it coarser


def test_forward_pass_bounds_drive_rate_and_potential_by_hand():
    _, rates, _ = _passes(chain())
    h, z = rates
    # |x| <= 2: drive 2 * 0.5 * 2 + 0.25 = 2.25; grown by sqrt(8) -> 6.4 -> range 8, signed
    assert h.drive == pytest.approx(2.25) and (h.range_bits, h.rate_bits) == (4, 4)
    assert not h.wide and h.signed and (h.pre_bits, h.pre_signed) == (6, True)
    assert h.u_bits == 23 - 7  # 4 * 8 * 2.25 = 72 -> 128 = 2**7
    # the output sees rates up to 2.25 (initial): drive 3 * 0.25 * 2.25
    assert z.drive == pytest.approx(3 * 0.25 * 2.25) and z.wide
    assert z.rate_bits == z.range_bits + 15 and z.pre_bits == h.rate_bits


def test_backward_pass_bounds_errors_by_hand():
    _, rates, errors = _passes(chain())
    h_err, z_err = errors
    z_range = 127 * 2.0 ** -rates[1].range_bits
    assert z_err.e_bound == pytest.approx(2.0 * z_range)  # |beta| 2 rate range, no overshoot
    assert z_err.trace_range == pytest.approx(z_range / 8)
    # down through sum_i |W_ij| = 0.25 and the signal growth 8
    assert h_err.e_bound == pytest.approx(z_err.e_bound * 0.25 * 8)
    assert h_err.trace_range == pytest.approx(z_err.trace_range * 0.25 * np.sqrt(8))
    # no overshoot: the error sent down (bound e_bound) must fit the 22-bit accumulator
    # with its guard bit, three bits less than the 24-bit state
    assert 2.0 ** (20 - h_err.e_bits) >= h_err.e_bound > 2.0 ** (19 - h_err.e_bits)
    wide_acc = _passes(chain(fp={"accumulator_bits": 24}))[2][0]
    assert wide_acc.e_bits == h_err.e_bits + 2


def test_overrides_replace_the_derived_formats():
    hidden_fp = {"rate_bits": 3, "u_bits": 12, "error_bits": 11, "error_trace_range": 0.5}
    _, rates, errors = _passes(chain(hidden_fp=hidden_fp))
    assert (rates[0].rate_bits, rates[0].u_bits) == (3, 12)
    assert (errors[0].e_bits, errors[0].trace_range) == (11, 0.5)
    assert rates[1].pre_bits == 3


def test_layers_join_the_passes_with_consistent_shifts():
    net = chain(fp={"seed": 7, "rounding": "shared"})
    q = quantize_network(net)
    _, rates, errors = _passes(net)
    h, z = q.layers
    assert (h.u_bits, h.e_bits, z.e_bits) == (rates[0].u_bits, errors[0].e_bits,
                                              errors[1].e_bits)
    # w @ p carries 2**(w_exp - pre_bits); the potential 2**-u_bits
    assert z.w_shift == z.w_exp - h.rate_bits + z.u_bits
    # e @ w carries 2**(w_exp - e_bits above); the error below 2**-e_bits below
    assert z.back_shift == z.w_exp - z.e_bits + h.e_bits and h.back_shift is None
    assert q.seed == 7 and not q.per_synapse_rounding


def test_beta_zero_needs_no_output_factor():
    q = quantize_network(chain(beta=0.0))
    assert int(q.beta.mant) == 0
