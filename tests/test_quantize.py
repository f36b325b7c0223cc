"""Quantisation of a float description: formats, errors before the run, overrides."""
import json
import warnings
import re

import numpy as np
import pytest

from lava_gle import NetworkSpecError, load_network, network_from_dict
from lava_gle.numerics import fixed as X
from lava_gle.numerics.activations import phi as float_phi
from lava_gle.quantize import WIDE_TOL, QuantizationError, QuantizationWarning, quantize_network

from conftest import GOLDEN as GOLDEN_DIR

GOLDEN = str(GOLDEN_DIR / "{}" / "network.json")


def chain(phi="softplus", tau_m=1.0, tau_r=0.1, weights=0.5, eta=0.5, layer_fp=None,
          net_fp=None, loss="mse"):
    return network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": 2}, "fixed_point": net_fp or {},
        "layers": [{"name": "a", "size": 3, "tau_m": tau_m, "tau_r": tau_r, "phi": phi,
                    "weights": np.full((3, 2), weights).tolist(),
                    "fixed_point": layer_fp or {}},
                   {"name": "z", "size": 2, "tau_m": 1.0, "tau_r": 0.5, "phi": "linear"}],
        "learning": {"enabled": True, "eta": eta, "gamma": 1.0, "beta": 0.1, "loss": loss}})


@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_manifest_and_arrays_describe_the_integers(case):
    q = quantize_network(load_network(GOLDEN.format(case)))
    manifest = json.loads(json.dumps(q.manifest()))  # JSON-ready
    assert [l["name"] for l in manifest["layers"]] == [l.name for l in q.layers]
    arrays = q.arrays()
    for ql in q.layers:
        w = arrays[f"W.{ql.name}"]
        assert w.dtype.kind == "i" and np.abs(w).max() <= 255
        float_w = q.net.initial_weights(q.layers.index(ql))
        # weights are the float weights rounded to the layer's exponent
        assert np.max(np.abs(w * 2.0 ** ql.w_exp - float_w)) <= 2.0 ** ql.w_exp / 2
        layer = manifest["layers"][q.layers.index(ql)]
        assert layer["weights"]["exp"] == ql.w_exp
        assert layer["formats"]["u_bits"] <= 23 and layer["formats"]["error_bits"] <= 23
        f = layer["factors"]["dt_over_tau_m"]
        want = q.net.dt / q.net.layers[q.layers.index(ql)].tau_m_array()
        assert np.allclose(f["value"], want, rtol=2.0 ** -11)


def test_tau_ratio_beyond_the_factor_format_is_an_error_naming_layer_and_number():
    with pytest.raises(QuantizationError, match=r"'a'.*tau_m/tau_r = 5000"):
        quantize_network(chain(tau_m=50.0, tau_r=0.01))


def test_per_neuron_taus_too_far_apart_are_an_error():
    with pytest.raises(QuantizationError, match=r"'a'.*dt/tau_m.*neuron 2"):
        quantize_network(chain(tau_m=[0.02, 0.5, 900.0]))


def test_weights_saturating_at_a_chosen_exponent_warn_with_layer_and_count():
    with pytest.warns(QuantizationWarning, match=r"'a': 6 weights saturate at exponent -9"):
        quantize_network(chain(weights=0.9, layer_fp={"weight_exp": -9}))


def test_learning_rate_below_the_engine_is_an_error():
    with pytest.raises(QuantizationError, match=r"layer 'a'.*learning gain"):
        quantize_network(chain(eta=1e-9))


def test_cross_entropy_has_no_fixed_form_yet():
    with pytest.raises(QuantizationError, match="ce"):
        quantize_network(chain(loss="ce"))


@pytest.mark.parametrize("fp,where", [
    ({"weight_exp": "big"}, "layers[0].fixed_point.weight_exp"),
    ({"weight_exp": 2.5}, "layers[0].fixed_point.weight_exp"),
    ({"weight_exp": True}, "layers[0].fixed_point.weight_exp"),
    ({"error_trace_range": 10 ** 400}, "layers[0].fixed_point.error_trace_range"),
    ({"weight_exp": 99}, "layers[0].fixed_point.weight_exp"),
    ({"mantissa": 3}, "layers[0].fixed_point.mantissa"),
    ({"error_trace_range": -1.0}, "layers[0].fixed_point.error_trace_range"),
])
def test_fixed_point_options_are_validated_with_their_path(fp, where):
    with pytest.raises(NetworkSpecError) as info:
        chain(layer_fp=fp)
    assert info.value.path == where


def test_network_level_options_are_validated():
    with pytest.raises(NetworkSpecError) as info:
        chain(net_fp={"input_range": 0})
    assert info.value.path == "fixed_point.input_range"


@pytest.mark.parametrize("net_fp, layer_fp, path, where", [
    ({"rate_bits": 6}, None, "fixed_point.rate_bits", "each layer's layers[i].fixed_point"),
    (None, {"seed": 3}, "layers[0].fixed_point.seed", "the network's top-level fixed_point"),
])
def test_an_option_at_the_wrong_level_says_where_it_belongs(net_fp, layer_fp, path, where):
    """Found by a new-user audit: a layer option at the top level was an 'unknown key'."""
    with pytest.raises(NetworkSpecError,
                       match=re.escape(f"is an option of {where}; move it there")) as info:
        chain(net_fp=net_fp, layer_fp=layer_fp)
    assert info.value.path == path


@pytest.mark.filterwarnings("ignore::lava_gle.quantize.QuantizationWarning")
def test_a_left_shift_beyond_64_bit_integers_is_refused_naming_the_fix():
    """gamma' = gamma 2**(u_bits - error_bits) is a left shift of the error: at u_bits 23,
    error_bits -16 and gamma 3 the largest error times it wraps int64 and the membrane
    would be pushed the wrong way, uncounted (the neuron step clamps only afterwards).
    Found by review: both the NumPy reference and the compiled kernels wrapped."""
    net = chain(phi="tanh", layer_fp={"u_bits": 23, "error_bits": -16, "error_trace_range": 1e7})
    with pytest.raises(QuantizationError, match="layer 'a': gamma.* shifted left by 29 bits"
                       ".*a lower fixed_point.u_bits, a higher error_bits"):
        quantize_network(net.with_learning(gamma=3.0))
    quantize_network(net)  # gamma 1: a shift of 28 bits keeps the largest error in 2**62


def test_a_neuron_whose_weights_all_round_to_zero_is_warned_about():
    """Found by a new-user audit: weights [[1e6, -1e6], [2, 1]] gave hidden neuron 1 no
    input in fixed point (0 where float gives tanh(...) != 0), with no word about it. Not
    for a layer that learns: its weights may grow from zero (MNIST-1D's h0, one input per
    neuron drawn at random, has such rows on most seeds)."""
    spec = {
        "gle_network": 1, "dt": 0.1, "input": {"size": 2},
        "layers": [{"name": "h", "size": 2, "tau_m": 1, "tau_r": 1, "phi": "tanh",
                    "weights": [[1e6, -1e6], [2, 1]]},
                   {"name": "out", "size": 1, "tau_m": 1, "tau_r": 1, "phi": "linear",
                    "weights": [[1, 1]]}]}
    with pytest.warns(QuantizationWarning, match=r"layer 'h': the weights of 1 neuron\(s\) "
                      r"\(first: 1, largest \|w\| 2\) all round to 0 at exponent 12"):
        quantize_network(network_from_dict(spec))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize_network(network_from_dict({**spec, "learning": {"enabled": True, "eta": 1.0}}))
    assert not any("all round to 0" in str(w.message) for w in caught)


def test_overrides_reach_the_formats():
    q = quantize_network(chain(layer_fp={"weight_exp": np.int64(-6), "rate_bits": 5.0,
                                         "u_bits": 16}))
    a = q.layers[0]
    assert (a.w_exp, a.rate_bits, a.u_bits) == (-6, 5, 16)


@pytest.mark.parametrize("phi,bound_lsb", [("linear", 0.5), ("relu", 0.5),
                                           ("hard_sigmoid", 0.5), ("sigmoid", 1.0),
                                           ("tanh", 1.5), ("softplus", 1.5)])
def test_phi_worst_case_error_is_documented_and_small(phi, bound_lsb):
    q = quantize_network(chain(phi=phi))
    a = q.layers[0]
    act = a.consts.phi
    assert a.phi_max_error * 2.0 ** a.rate_bits <= bound_lsb + 1e-9
    # independent check on random potentials inside the payload range
    u = np.random.default_rng(0).uniform(-6, 6, 2000)
    p, g, _ = act(np.round(u * 2.0 ** a.u_bits).astype(np.int64))
    ref = np.clip(float_phi(phi)(u), act.p_min * 2.0 ** -a.rate_bits,
                  act.p_max * 2.0 ** -a.rate_bits)
    assert np.max(np.abs(p * 2.0 ** -a.rate_bits - ref)) <= a.phi_max_error + 1e-12
    assert g.min() >= 0 and g.max() <= X.GATE_ONE


def test_euler_dead_zone_of_a_very_slow_neuron_warns():
    # dt/tau_m = 1e-5 at 12 fraction bits: |du| < 12 (units of u) never moves u
    with pytest.warns(QuantizationWarning, match=r"'a': with dt/tau_m = 1e-05 .*u_bits"):
        quantize_network(chain(tau_m=1000.0, tau_r=1.0, layer_fp={"u_bits": 12}))


def test_golden_formats_have_no_dead_zone_warning():
    import warnings
    for case in ("visible_lagline", "visible_mlp"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quantize_network(load_network(GOLDEN.format(case)))
        assert not [w for w in caught if "dead zone" in str(w.message)]


def test_beta_zero_quantises_and_forms_no_error():
    net = network_from_dict({
        "gle_network": 1, "dt": 0.05, "input": {"size": 2},
        "layers": [{"size": 2, "tau_m": 1.0, "tau_r": 0.3, "phi": "tanh"}],
        "learning": {"enabled": False, "beta": 0.0, "gamma": 1.0}})
    from lava_gle.numerics.engine import FixedEngine
    tr = FixedEngine(net).run(np.ones((20, 2)), np.ones((20, 2)), record=["e"])
    assert not np.any(tr["e.layer0"])


def test_weight_exponent_keeps_headroom_only_while_learning():
    # learning on: room for growth, at least +-4 (LSB 2**-5); learning off: the
    # exponent fits the fixed weights (0.1 -> 0.1 / 255 -> 2**-11)
    assert quantize_network(chain(weights=0.1)).layers[0].w_exp == -5
    off = chain(weights=0.1, eta=0.0)
    assert quantize_network(off).layers[0].w_exp == -11
    assert quantize_network(chain(weights=0.1, eta=0.0, net_fp={"weight_range": 4.0})
                            ).layers[0].w_exp == -5


def test_coarser_error_trace_for_a_small_learning_gain_is_in_the_manifest():
    slow, fast = quantize_network(chain(eta=0.002)), quantize_network(chain(eta=0.5))
    for q in (slow, fast):
        for ql in q.layers:
            assert ql.rule.mant >= 4  # precise rules only
            # the realised gain (LSB per unit of the coarsened trace) is the wanted one
            assert abs(ql.rule.gain() / ql.gain_target - 1) <= 0.07
    k_slow = [ql.trace_coarsening for ql in slow.layers]
    k_fast = [ql.trace_coarsening for ql in fast.layers]
    assert all(a >= b + 7 for a, b in zip(k_slow, k_fast))  # 250x smaller eta: ~8 bits
    formats = slow.manifest()["layers"][0]["formats"]
    assert formats["error_trace_coarsening"] == k_slow[0]
    assert formats["error_trace_bits"] == slow.layers[0].e_bits - slow.layers[0].trace_shift


def q_widths(net) -> int:
    """The product width a network was quantised for (the manifest's record)."""
    return quantize_network(net).manifest()["product_bits"]


@pytest.mark.parametrize("phi", ["sigmoid", "tanh", "softplus", "linear"])
def test_output_layer_sends_24_bit_rates_from_fine_segments(phi):
    """The output's rates reach no learning engine: 24-bit payloads with twice the range
    of the 8-bit format (+-1 fits a tanh output) and its 14-15 bits finer; its segments
    are within their tolerance + half an LSB of phi: 2**-14 with the default 37-bit
    products (the gates' squares of the working format bound it), far finer than the
    8-bit LSB (2**-8)."""
    net = network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": 2},
        "layers": [{"name": "a", "size": 3, "tau_m": 1.0, "tau_r": 0.1, "phi": "tanh"},
                   {"name": "z", "size": 2, "tau_m": 1.0, "tau_r": 0.5, "phi": phi}],
        "learning": {"enabled": False}})
    hidden, top = quantize_network(net).layers
    assert hidden.consts.phi.p_max == 127
    act = top.consts.phi
    signed = phi in ("tanh", "linear")
    assert (act.p_min, act.p_max) == (-X.STATE_MAX if signed else 0, X.STATE_MAX)
    if phi in ("sigmoid", "tanh"):  # their 8-bit payloads span 1.0 (rate_bits 8 and 7)
        assert top.rate_bits == 22
        assert act.p_max * 2.0 ** -top.rate_bits == pytest.approx(2.0, rel=1e-6)
    u = np.round(np.random.default_rng(1).uniform(-20, 20, 5000) * 2.0 ** top.u_bits)
    p, _, clipped = act(u.astype(np.int64))
    lsb = 2.0 ** -top.rate_bits
    ref = np.clip(float_phi(phi)(u * 2.0 ** -top.u_bits), act.p_min * lsb, act.p_max * lsb)
    if act.segments is not None:
        assert WIDE_TOL < act.segments.tol <= 2.0 ** -14
        assert act.segments.product_bits() <= 37 == q_widths(net)
    bound = (act.segments.tol if act.segments is not None else 0.0) + lsb / 2
    assert np.max(np.abs(p * lsb - ref)) <= bound
    assert top.phi_max_error <= bound
    assert clipped == np.count_nonzero(np.abs(ref) >= act.p_max * lsb)  # beyond: counted
    if phi == "tanh":  # the rate reaches 1.0 exactly (so do +-1 targets)
        assert act(np.array([50 << top.u_bits]))[0].tolist() == [1 << top.rate_bits]


def test_softplus_rates_beyond_the_payload_are_counted():
    q = quantize_network(chain(phi="softplus", layer_fp={"rate_bits": 6}))
    act = q.layers[0].consts.phi
    u = np.array([3.0, 5.0, 50.0]) * 2.0 ** act.u_bits  # 5 is inside the table, 50 above it
    p, _, clipped = act(u.astype(np.int64))
    assert p.tolist() == [195, 255, 255] and clipped == 2
