"""Neuron-local normalisers (``gain_decay``, ``error_norm_decay``): the float model and
its integer form."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from conftest import SHIFT_DECAY, GoldenCase, with_normalisers
from lava_gle import LavaGleError, network_from_dict
from lava_gle.description import network_to_dict
from lava_gle.experiments.training import frozen_network, trained_network
from lava_gle.network import NormaliserState
from lava_gle.numerics import fixed as X
from lava_gle.numerics import floating as F
from lava_gle.numerics import ops
from lava_gle.numerics.engine import Engine, FixedEngine
from lava_gle.quantize import QuantizationError, quantize_network
from tolerances import assert_close_at_scale


def _normalised(net, gain=0.99, norm=0.99):
    """``net`` (two layers) with a gain on the hidden layer and error normalisers on both
    (a decay of 0.99 by default: float only)."""
    return with_normalisers(net, gain, norm)


def test_the_rate_halves_at_powers_of_two_down_to_one_minus_the_decay():
    rates = [F.mean_square_rate(k, 0.99) for k in (1, 2, 3, 4, 7, 8, 64, 127, 128, 10 ** 6)]
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 2 ** -6, 2 ** -6, 1 - 0.99, 1 - 0.99]


def test_a_constant_signal_is_normalised_exactly_from_the_first_update():
    """The first update takes the value itself: a signal of constant magnitude c gives
    1 / c after every number of updates (capped at the limit); before the first update
    the factor is 1."""
    ms = np.zeros(3)
    x = np.array([[0.5, -2.0, 1e-4], [-0.5, 2.0, -1e-4]])  # batch 2: mean_b x**2 = c**2
    np.testing.assert_array_equal(F.normaliser(ms, 0, F.GAIN_MAX), np.ones(3))
    for steps in range(1, 300):
        F.update_mean_square(ms, x, F.mean_square_rate(steps, 0.9))
        np.testing.assert_allclose(F.normaliser(ms, steps, F.GAIN_MAX), [2.0, 0.5, 1000.0],
                                   rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ms, want", [([0.25, 0.0, 4.0], [2.0, 1000.0, 0.5]),
                                      ([0.25, 1e-12, 4.0], [2.0, 1000.0, 0.5])])
def test_a_silent_neuron_gets_the_limit_without_a_division_warning(dtype, ms, want):
    """A mean square of exactly 0 (a neuron silent since the start) gives the limit, as
    1 / sqrt(0) capped would, with no floating-point warning; the dtype is kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = F.normaliser(np.array(ms, dtype), 1, F.GAIN_MAX)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.array(want, dtype))

def test_gains_start_at_one_and_a_silent_first_step_leaves_them_near_it():
    """The gains' mean square starts at the prior 1 and counts it as its first sample: a
    first learning step from the zero state (r = 0) halves it, g = sqrt(2), in float and
    in integers. Taking the first value itself, as the error normalisers do, gave every
    gain its limit (1000) there."""
    g = GoldenCase("visible_mlp")
    net = _normalised(g.net, SHIFT_DECAY, SHIFT_DECAY)
    for engine in (Engine(net), FixedEngine(net)):
        k = engine.kernels.layers[0]
        np.testing.assert_array_equal(k.gain, np.ones(k.size))
        k.adapt(k.zero_state((1,)))
        np.testing.assert_allclose(k.gain, np.sqrt(2.0), rtol=2.0 ** -X.GAIN_FRAC)


def test_a_silent_neuron_gets_the_layers_gain_cap_in_both_arithmetics():
    """100 silent learning steps take the gains' mean square far below 1 (the gain ~23
    under the default cap); under ``gain_max`` = 5 the gain is exactly 5, in float and in
    integers (``5 * 2**GAIN_FRAC``), and ``gains_at_cap`` counts those neurons (4 of 4;
    none before, the output layer has no gains)."""
    g = GoldenCase("visible_mlp")
    net = _normalised(g.net, SHIFT_DECAY, SHIFT_DECAY)
    capped = dataclasses.replace(net, layers=(
        dataclasses.replace(net.layers[0], gain_max=5.0), net.layers[1]))
    for engine, cap in ((Engine(net), None), (FixedEngine(net), None),
                        (Engine(capped), 5.0), (FixedEngine(capped), 5.0)):
        k = engine.kernels.layers[0]
        assert k.gains_at_cap() == 0 and engine.kernels.layers[1].gains_at_cap() is None
        for _ in range(100):
            k.adapt(k.zero_state((1,)))
        if cap is None:
            assert np.all(k.gain > 20), k.gain
            assert k.gains_at_cap() == 0
        else:
            np.testing.assert_array_equal(k.gain, cap)
            assert k.gains_at_cap() == 4


def test_the_running_mean_square_is_a_weighted_mean_of_the_history():
    """After k updates with x_t, ms = sum_t w_t mean_b x_t**2 with w_t = a_t prod_{s>t}
    (1 - a_s), a_t the rate of update t: weights that sum to 1 (a mean, no start-up
    bias) and, past the warm-up, fall geometrically with the decay."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(300, 4, 3))
    ms = np.zeros(3)
    for t, x in enumerate(xs, start=1):
        F.update_mean_square(ms, x, F.mean_square_rate(t, 0.97))
    a = np.array([F.mean_square_rate(t, 0.97) for t in range(1, 301)])
    w = a * np.append(np.cumprod((1 - a)[::-1])[::-1][1:], 1.0)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(w[-1] / w[-2], 1 / 0.97, rtol=1e-12)
    np.testing.assert_allclose(ms, np.einsum("t,tn->n", w, (xs ** 2).mean(axis=1)),
                               rtol=1e-12)


def test_without_learning_the_normalisers_do_not_act():
    """Gains start at 1 and only learning steps move them: a run with learning off is the
    plain network's, bit for bit."""
    g = GoldenCase("visible_mlp")
    off = dataclasses.replace(g.net.learning, enabled=False)
    plain = Engine(dataclasses.replace(g.net, learning=off)).run(g.inputs, g.targets,
                                                                 record=["r", "e"])
    net = _normalised(dataclasses.replace(g.net, learning=off))
    got = Engine(net).run(g.inputs, g.targets, record=["r", "e"])
    for key in plain:
        np.testing.assert_array_equal(got[key], plain[key])


def test_the_first_update_learns_from_the_sign_of_the_error():
    """Batch 1, the first learning step (after 20 steps without learning, so that errors
    flow): the error normaliser is 1 / |e|, so ``dW = eta sign(e) p^T``, ``db = eta
    sign(e)``."""
    g = GoldenCase("visible_mlp")
    net = _normalised(g.net)
    engine = Engine(net)
    engine.learning = False
    engine.run(g.inputs[:20], g.targets[:20], reset=True)
    engine.learning = True
    w0, b0 = engine.kernels.layers[0].W.copy(), engine.kernels.layers[0].b.copy()
    x = np.array([[0.7, -0.4]])
    engine.step(x, np.array([[0.3, -0.2]]))
    e = engine.state[0].e[0]
    assert np.all(np.abs(e) > 1e-6)
    eta = net.learning.eta
    np.testing.assert_allclose(engine.kernels.layers[0].W - w0, eta * np.outer(np.sign(e), x[0]),
                               rtol=1e-12)
    np.testing.assert_allclose(engine.kernels.layers[0].b - b0, eta * np.sign(e), rtol=1e-12)


def test_the_gain_scales_the_payload_and_the_error_received():
    """After learning, one more step from the same state: the hidden layer sends g r and
    its error is the plain network's formed from g d (r' g W^T e)."""
    g = GoldenCase("visible_mlp")
    engine = Engine(_normalised(g.net))
    engine.run(g.inputs[:300], g.targets[:300])
    hidden = engine.kernels.layers[0]
    gain = hidden.gain.copy()
    assert np.ptp(gain) > 0.01 and np.all(np.abs(gain - 1) > 0.01)
    st = engine.state[0]
    np.testing.assert_array_equal(hidden.rate(st), st.r * gain)
    d = np.array([[0.3, -0.1, 0.2, 0.05]])
    expected = F.neuron_step(st.u, st.v, st.r_prime, np.zeros_like(d), d * gain, hidden.consts)
    got = hidden.step(st, np.zeros_like(d), d)
    np.testing.assert_array_equal(got.e, expected.e)


def test_the_frozen_network_folds_the_gains_and_computes_the_same():
    """After learning with normalisers, the plain network of :func:`frozen_network`
    (W_out diag(g), no normalisers) runs a fresh stream as the trained engine does with
    learning off: rates and errors equal up to the rounding of the folded product."""
    g = GoldenCase("visible_mlp")
    net = _normalised(g.net)
    engine = Engine(net)
    engine.run(g.inputs, g.targets)
    frozen = frozen_network(net, engine)
    assert all(layer.gain_decay is None and layer.error_norm_decay is None
               for layer in frozen.layers)
    np.testing.assert_array_equal(frozen.initial_weights(1),
                                  engine.kernels.layers[1].W * engine.kernels.layers[0].gain)
    engine.learning = False
    engine.reset(1)
    got = engine.run(g.inputs, g.targets, record=["r", "e"])
    want = Engine(frozen).run(g.inputs, g.targets, record=["r", "e"])
    for key in ("r.out", "e.out", "e.hidden"):
        # a few ulps per step (one product reordered), carried and amplified over 800
        # steps of a learned recurrent-in-time network (measured: 2e5 ulps of the scale)
        assert_close_at_scale(got[key], want[key], ulps=1e6, what=key)
    assert not np.allclose(want["r.out"], Engine(_plain(frozen, engine)).run(
        g.inputs, g.targets, record=["r"])["r.out"])


def test_the_trained_network_keeps_the_gains_in_the_neurons_and_computes_the_same():
    """:func:`trained_network` (gains and their state kept, error normalisers dropped,
    learning off) runs a fresh stream as the trained engine does with learning off, bit
    for bit in float; in integers its description (formats pinned by
    ``FixedEngine.network``) quantises back to the trained integers
    (weights, biases, gains), so the integer engine built from it runs the same."""
    g = GoldenCase("visible_mlp")
    for make, net in ((Engine, _normalised(g.net)),
                      (FixedEngine, _normalised(g.net, SHIFT_DECAY, SHIFT_DECAY))):
        engine = make(net)
        engine.run(g.inputs, g.targets)
        trained = trained_network(engine)
        assert not trained.learning.enabled
        assert [layer.error_norm_decay for layer in trained.layers] == [None, None]
        state = trained.layers[0].normaliser_state
        assert state.steps == len(g.inputs) and state.error_ms is None
        assert trained.layers[1].normaliser_state is None  # its only normaliser: the error's
        rebuilt = make(trained)
        if make is FixedEngine:
            for a, b in zip(engine.kernels.layers, rebuilt.kernels.layers):
                np.testing.assert_array_equal(b.W, a.W)
                np.testing.assert_array_equal(b.b, a.b)
            np.testing.assert_array_equal(rebuilt.kernels.layers[0].gamma,
                                          engine.kernels.layers[0].gamma)
        engine.learning = False
        engine.reset(1)
        got = engine.run(g.inputs, None, record=["r"])
        want = rebuilt.run(g.inputs, None, record=["r"])
        for key in ("r.hidden", "r.out"):
            np.testing.assert_array_equal(want[key], got[key], err_msg=f"{make.__name__} {key}")


def _plain(frozen, engine):
    """``frozen`` with the unfolded output weights (the gains dropped)."""
    return frozen.with_parameters([engine.kernels.layers[0].W, engine.kernels.layers[1].W],
                                  [k.b for k in engine.kernels.layers])


def test_a_resumed_run_continues_the_normalisers_exactly():
    """state_dict / load_state_dict carry the running mean squares and their step count: a
    run split in two is the whole run, bit for bit."""
    g = GoldenCase("visible_mlp")
    net = _normalised(g.net)
    whole = Engine(net)
    whole.run(g.inputs, g.targets, reset=True)
    first = Engine(net)
    first.run(g.inputs[:400], g.targets[:400], reset=True)
    second = Engine(net)
    second.load_state_dict(first.state_dict())
    second.run(g.inputs[400:], g.targets[400:])
    for a, b in zip(whole.kernels.layers, second.kernels.layers):
        for kind, arr in a.parameters().items():
            np.testing.assert_array_equal(b.parameters()[kind], arr, err_msg=kind)
    assert int(second.kernels.layers[0].norm_steps) == 800


def test_descriptions_take_checked_decays_and_write_them_back():
    g = GoldenCase("visible_mlp")
    d = network_to_dict(_normalised(g.net, 0.995, 0.9))
    assert d["layers"][0]["gain_decay"] == 0.995 and d["layers"][1]["error_norm_decay"] == 0.9
    net = network_from_dict(d)
    assert (net.layers[0].gain_decay, net.layers[0].error_norm_decay) == (0.995, 0.9)
    assert "gain_max" not in d["layers"][0] and net.layers[0].gain_max == F.GAIN_MAX
    d["layers"][0]["gain_max"] = 100
    capped = network_from_dict(d)
    assert network_to_dict(capped)["layers"][0]["gain_max"] == 100
    folded = dataclasses.replace(capped, layers=(  # as frozen_network leaves it: inert
        dataclasses.replace(capped.layers[0], gain_decay=None), capped.layers[1]))
    assert "gain_max" not in network_to_dict(folded)["layers"][0]
    for layer, key, value, message in (
            (0, "gain_decay", 1.0, "layers[0].gain_decay: 1 is not below 1"),
            (1, "error_norm_decay", 0.0, "layers[1].error_norm_decay"),
            (1, "gain_decay", 0.99, "layers[1].gain_decay: is set on the output layer"),
            (1, "gain_max", 10, "layers[1].gain_max: caps the neurons' gains, but the layer "
                                "has none; add 'gain_decay'"),
            (0, "gain_max", 0.5, "layers[0].gain_max: must be >= 1, got 0.5"),
            (0, "gain_max", 2000, "layers[0].gain_max: 2000 is above the default 1000")):
        bad = network_to_dict(_normalised(g.net, 0.995, 0.9))
        bad["layers"][layer][key] = value
        with pytest.raises(LavaGleError, match=message.replace("[", r"\[").replace("]", r"\]")):
            network_from_dict(bad)


@pytest.mark.parametrize("fixed", [False, True], ids=["float", "fixed"])
def test_the_description_of_a_trained_network_continues_it(fixed):
    """``Engine.network`` (W unfolded, b, the normalisers' ``normaliser_state``), written
    and read back as a description, gives an engine that continues the run bit for bit
    (from the zero neuron state, as the run itself with ``reset``): the state is the
    running mean squares and their step count, in float units exactly."""
    g = GoldenCase("visible_mlp")
    net = with_normalisers(g.net)
    make = FixedEngine if fixed else Engine
    first = make(net)
    first.run(g.inputs[:300], g.targets[:300])
    described = network_from_dict(network_to_dict(first.network))
    state = described.layers[0].normaliser_state
    assert state.steps == 300 and state.gain_ms.shape == (4,)
    assert described.layers[1].normaliser_state.gain_ms is None
    second = make(described)
    if fixed:
        assert [ql.w_exp for ql in second.q.layers] == [ql.w_exp for ql in first.q.layers]
    for a, b in zip(first.kernels.layers, second.kernels.layers):
        for kind, arr in a.parameters().items():
            np.testing.assert_array_equal(b.parameters()[kind], arr, err_msg=kind)
    before = dict(first.saturation) if fixed else {}  # counts since the engine started
    want = first.run(g.inputs[300:600], g.targets[300:600], record=True, reset=True)
    got = second.run(g.inputs[300:600], g.targets[300:600], record=True)
    for key in want:
        if key.startswith("sat."):
            assert got[key] == want[key] - before[key[4:]], key
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_normaliser_state_is_checked_by_name():
    g = GoldenCase("visible_mlp")
    good = {"steps": 10, "gain_ms": [0.5, 0.1, 0.0, 2.0], "error_ms": [1.0, 1.0, 1.0, 1.0]}
    d = network_to_dict(_normalised(g.net, 0.995, 0.9))
    d["layers"][0]["normaliser_state"] = good
    assert network_to_dict(network_from_dict(d))["layers"][0]["normaliser_state"] == good
    for layer, state, message in (
            (0, {**good, "steps": 0}, "layers[0].normaliser_state.steps: must be >= 1"),
            (0, {"steps": 3, "gain_ms": good["gain_ms"]},
             "layers[0].normaliser_state.error_ms: is missing: the layer has "
             "'error_norm_decay'"),
            (1, {**good, "error_ms": [1.0, 2.0]},
             "layers[1].normaliser_state.gain_ms: is given but the layer has no 'gain_decay'"),
            (0, {**good, "gain_ms": [1.0, -1.0, 1.0, 1.0]},
             "layers[0].normaliser_state.gain_ms: must be >= 0"),
            (0, {**good, "error_ms": [1.0, 1.0]}, "layers[0].normaliser_state.error_ms"),
            (0, {**good, "rms": 1}, "layers[0].normaliser_state")):
        bad = network_to_dict(_normalised(g.net, 0.995, 0.9))
        bad["layers"][layer]["normaliser_state"] = state
        with pytest.raises(LavaGleError, match=message.replace("[", r"\[").replace("]", r"\]")):
            network_from_dict(bad)
    plain = network_to_dict(g.net)
    plain["layers"][0]["normaliser_state"] = good
    with pytest.raises(LavaGleError, match="has no normalisers; add 'gain_decay'"):
        network_from_dict(plain)
    huge = dataclasses.replace(_normalised(g.net, SHIFT_DECAY, SHIFT_DECAY), layers=(
        dataclasses.replace(_normalised(g.net).layers[0], gain_decay=SHIFT_DECAY,
                            error_norm_decay=SHIFT_DECAY,
                            normaliser_state=NormaliserState(5, np.full(4, 1e30),
                                                             np.ones(4))),
        _normalised(g.net, SHIFT_DECAY, SHIFT_DECAY).layers[1]))
    with pytest.raises(QuantizationError, match="layer 'hidden': normaliser_state.gain_ms "
                                                "reaches 1e\\+30"):
        _quantized(huge)


def test_parts_without_normalisers_refuse_them_by_name():
    g = GoldenCase("visible_mlp")
    with pytest.raises(QuantizationError, match=r"layer 'hidden': gain_decay 0.99 is not "
                                                r"1 - 2\*\*-s; .* use 0.9921875 \(1 - 2\*\*-7\)"):
        quantize_network(_normalised(g.net))
    from lava_gle.numerics.optim import Adam
    with pytest.raises(LavaGleError, match=r"layers \['hidden', 'out'\] set error_norm_decay"):
        Engine(_normalised(g.net), optimizer=Adam(lr=1e-3))


# -- integers ---------------------------------------------------------------------------

def _quantized(net):
    import warnings
    from lava_gle.quantize import QuantizationWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return quantize_network(net)


def test_a_gain_cap_coarse_against_the_weight_lsb_is_warned_about_by_layer():
    """``gain_max x 2**w_exp`` above 1 (the golden MLP's hidden weights: exponent -5, so
    1000 / 32 = 31.2) warns naming the layer and the cap that fits (32); at that cap, or
    with learning off (no LSB is rounded into a weight), it does not."""
    import warnings
    from lava_gle.quantize import QuantizationWarning
    net = _normalised(GoldenCase("visible_mlp").net, SHIFT_DECAY, SHIFT_DECAY)
    with pytest.warns(QuantizationWarning, match=r"'hidden': gain_max 1000 times one weight "
                                                 r"LSB \(2\^-5\) is 31\.2.* gain_max to 32 or"):
        assert quantize_network(net).layers[0].w_exp == -5
    capped = dataclasses.replace(net, layers=(
        dataclasses.replace(net.layers[0], gain_max=32.0), net.layers[1]))
    frozen = dataclasses.replace(net, learning=dataclasses.replace(net.learning, enabled=False))
    for quiet in (capped, frozen):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quantize_network(quiet)
        assert not [w for w in caught if "gain_max" in str(w.message)]


def test_the_integer_shift_schedule_is_the_float_rate():
    for s in (1, 6, 10, 15):
        for k in range(1, 3 * 2 ** s):
            assert 2.0 ** -X.mean_square_shift(k, s) == F.mean_square_rate(k, 1 - 2.0 ** -s)


def test_the_integer_mean_square_tracks_the_float_one():
    """24-bit values, 500 updates: the integer running mean square (rounded shifts) is the
    float one on the same integers to within its rounding: each update rounds by at most
    1/2 and the batch mean of x**2 is rounded down by less than 1, an error the average
    forgets at rate 2**-6, so it stays below 1 + 2**6 / 2."""
    rng = np.random.default_rng(3)
    xs = rng.integers(-(1 << 23) + 1, 1 << 23, size=(500, 3, 5)) >> rng.integers(0, 20, 5)
    ms_int, ms = np.zeros(5, np.int64), np.zeros(5)
    for k, x in enumerate(xs, start=1):
        X.update_mean_square(ms_int, x, X.mean_square_shift(k, 6))
        F.update_mean_square(ms, x.astype(float), F.mean_square_rate(k, SHIFT_DECAY))
    assert np.all(np.abs(ms - ms_int) <= 1 + 2 ** 6 / 2)
    assert np.all(ms_int > 0)


def test_inverse_rms_is_exact_on_squares_and_capped_at_zero():
    ms = np.array([1, 4, 4 ** 5, 4 ** 20, 0, 2])
    np.testing.assert_array_equal(X.inverse_rms(ms, 30, 2 ** 40),
                                  [2 ** 30, 2 ** 29, 2 ** 25, 2 ** 10, 2 ** 40, 759250125])


def test_error_normaliser_keeps_its_precision_at_every_scale():
    """``normalised_error`` is ``e / RMS(e)`` with NORM_FRAC fraction bits, to NU_BITS
    significant bits of the factor, whether the errors are a few LSB or fill 24 bits; and
    before the first update ``nu`` is ``2**norm_shift`` exactly, either side of 1."""
    rng = np.random.default_rng(3)
    for scale in (3.0, 300.0, 3e4, 3e6):
        e = np.clip(np.round(rng.normal(0.0, scale, (50, 4))), -X.STATE_MAX, X.STATE_MAX)
        e = e.astype(np.int64)
        ms = np.floor((e * e).mean(axis=0)).astype(np.int64)
        got = X.normalised_error(e, X.error_normaliser(ms, 0, X.NU_MAX))
        want = e * 2.0 ** X.NORM_FRAC / np.sqrt(ms)
        assert np.all(np.abs(got - want) <= np.abs(want) * 2.0 ** (1 - X.NU_BITS) + 0.5)
    e = np.array([[-5, 0, 7]])
    for shift in (-20, 0, 3):
        np.testing.assert_array_equal(
            X.normalised_error(e, X.error_normaliser(None, shift, X.NU_MAX)),
            np.round(e * 2.0 ** shift))
    capped = X.error_normaliser(np.array([0, 1, 4]), 0, 2.0 ** 20)
    np.testing.assert_array_equal(capped[0] * 2.0 ** -capped[1],
                                  [2.0 ** 20, 2.0 ** X.NORM_FRAC, 2.0 ** (X.NORM_FRAC - 1)])


def test_errors_beyond_the_state_get_negative_fraction_bits_and_a_trace():
    """Errors of 10**7 (MNIST-1D's h0 below five gains) take an error format with negative
    fraction bits, and a layer with an error normaliser still gets its learning rule: its
    trace is taken from the normalised error, whatever the error format."""
    g = GoldenCase("visible_mlp")
    net = _normalised(dataclasses.replace(g.net, learning=dataclasses.replace(
        g.net.learning, beta=1e6)), SHIFT_DECAY, SHIFT_DECAY)
    q = quantize_network(net)
    assert all(ql.e_bits < 0 and ql.rule is not None for ql in q.layers)
    assert all(ql.norm.norm_shift == X.NORM_FRAC - ql.e_bits for ql in q.layers)


def test_integer_normalisers_follow_the_float_ones():
    """No weight learning (eta 0), normalisers adapting over the golden stream: the integer
    gains and error normalisers are the float model's to within 1 % (8-bit payloads and
    quantised errors feed them)."""
    g = GoldenCase("visible_mlp")
    net = _normalised(dataclasses.replace(g.net, learning=dataclasses.replace(
        g.net.learning, eta=0.0)), SHIFT_DECAY, SHIFT_DECAY)
    fixed, flt = FixedEngine(net), Engine(net)
    fixed.run(g.inputs, g.targets)
    flt.run(g.inputs, g.targets)
    for k_int, k in zip(fixed.kernels.layers, flt.kernels.layers):
        m, s = k_int.nu
        np.testing.assert_allclose(m * 2.0 ** -(s + k_int.norm.norm_shift), k.error_scale,
                                   rtol=0.01)
    np.testing.assert_allclose(fixed.kernels.layers[0].gain, flt.kernels.layers[0].gain,
                               rtol=0.01)
    assert fixed.kernels.layers[1].gain is None


@pytest.mark.parametrize("bits, lo, hi", [(16, 0.0, 0.015), (8, 0.02, 0.1)])
def test_a_gained_payload_of_small_rates_follows_the_float_one(bits, lo, hi):
    """Hidden tanh rates of RMS about 0.01 (about one LSB of an 8-bit rate): the layer
    forms g r from its 24-bit rates and rounds only the gained payload (RMS 1), so the
    payload follows the float g r to within a tenth of its RMS even on the 8-bit grid (4
    fraction bits: 0.037 measured); 16 bits (8 more fraction bits, the default) leave the
    24-bit rates' and gains' own roundings (0.007). Rounding the rates to 8 bits first, as
    once, sent their rounding noise times the gain (~100)."""
    g = GoldenCase("visible_mlp")
    net = _normalised(dataclasses.replace(g.net, learning=dataclasses.replace(
        g.net.learning, eta=0.0, beta=0.0)), SHIFT_DECAY, SHIFT_DECAY)
    net = net.with_parameters([net.initial_weights(0) / 100.0, net.initial_weights(1)],
                              [net.initial_biases(0) / 100.0, net.initial_biases(1)])
    net = dataclasses.replace(net, fixed_point={**net.fixed_point, "gain_payload_bits": bits})
    fixed, flt = FixedEngine(net), Engine(net)
    k_int, k = fixed.kernels.layers[0], flt.kernels.layers[0]
    q_int, q = [], []
    for t in range(400):
        fixed.run(g.inputs[t:t + 1], g.targets[t:t + 1])
        flt.run(g.inputs[t:t + 1], g.targets[t:t + 1])
        q_int.append(k_int.rate(fixed.state[0]) * 2.0 ** -k_int.norm.payload_frac)
        q.append(k.rate(flt.state[0]))
    q_int, q = np.array(q_int[200:]), np.array(q[200:])
    assert np.sqrt(np.mean(np.square(flt.state[0].r))) < 0.05
    rel = np.sqrt(np.mean((q_int - q) ** 2)) / np.sqrt(np.mean(q ** 2))
    assert lo < rel < hi


def test_the_integer_layer_sends_the_gained_payload_and_learns_from_nu_e():
    """After learning: ``rate`` is gain_payload(p), the neurons take gain_error(d), and one
    learning epoch equals the plain learning-engine epoch on ``nu e``."""
    g = GoldenCase("visible_mlp")
    engine = FixedEngine(_normalised(g.net, SHIFT_DECAY, SHIFT_DECAY))
    engine.run(g.inputs[:200], g.targets[:200])
    k, st = engine.kernels.layers[0], engine.state[0]
    q, _ = X.gain_payload(st.p, k.gamma, k.norm.payload_shift, k.ql.rate_signed,
                          k.norm.wide_bits)
    np.testing.assert_array_equal(k.rate(st), q)
    assert not np.array_equal(q, st.p)
    d = np.array([[3000, -200, 50, 7]])
    d_in, _ = X.gain_error(d, k.gamma, X.GAIN_FRAC)
    want, _ = X.neuron_step(st.u, st.v, st.g, np.zeros_like(d), d_in, k.consts)
    np.testing.assert_array_equal(k.step(st, np.zeros_like(d), d).e, want.e)
    w, b = k.tag_W if k.tag_W is not None else k.W, k.b
    w_ref, b_ref = w.copy(), b.copy()
    x = np.array([[5, -9]])
    X.learn_projection(w_ref, b_ref, x, X.normalised_error(st.e, k.nu), k.ql.trace_shift,
                       k.ql.pre_signed,
                       k.ql.rule, k.ql.bias_rule, engine.q.seed, 0, 7, True,
                       trace_mant=k.ql.trace_mant)
    k.learn_forward(k.learning_error(st.e), x, 7)
    np.testing.assert_array_equal(k.W, w_ref)
    np.testing.assert_array_equal(k.b, b_ref)
    # the layer above sums the 16-bit q and its learning engine traces q rounded to 8 bits
    top, st_top = engine.kernels.layers[1], engine.state[1]
    assert (k.norm.wide_bits, top.ql.pre_wide_bits) == (8, 8)
    q8 = (q + 128) >> 8
    assert np.abs(q).max() > 127 and np.abs(q8).max() <= 127
    w, b = top.tag_W if top.tag_W is not None else top.W, top.b
    w_ref, b_ref = w.copy(), b.copy()
    X.learn_projection(w_ref, b_ref, q8, X.normalised_error(st_top.e, top.nu),
                       top.ql.trace_shift, top.ql.pre_signed, top.ql.rule,
                       top.ql.bias_rule, engine.q.seed, 1, 7, True,
                       trace_mant=top.ql.trace_mant)
    top.learn_forward(top.learning_error(st_top.e), q, 7)
    np.testing.assert_array_equal(top.W, w_ref)
    np.testing.assert_array_equal(top.b, b_ref)


@pytest.mark.parametrize("split", [137, 400])
def test_integer_runs_resume_and_both_kernel_implementations_agree(split):
    """The integers with normalisers: NumPy reference and compiled kernels give the same
    integers, and a run split in two (state_dict / load_state_dict) is the whole run."""
    g = GoldenCase("visible_mlp")
    net = _normalised(g.net, SHIFT_DECAY, SHIFT_DECAY)
    runs = {}
    for impl in ("numpy", "numba"):
        with ops.using(impl):
            runs[impl] = FixedEngine(net).run(g.inputs, g.targets, record=["r", "e"])
    for key in runs["numpy"]:
        np.testing.assert_array_equal(runs["numba"][key], runs["numpy"][key], err_msg=key)
    whole = FixedEngine(net)
    whole.run(g.inputs, g.targets)
    first = FixedEngine(net)
    first.run(g.inputs[:split], g.targets[:split])
    second = FixedEngine(net)
    second.load_state_dict(first.state_dict())
    second.run(g.inputs[split:], g.targets[split:])
    for a, b in zip(whole.kernels.layers, second.kernels.layers):
        for kind, arr in a.parameters().items():
            np.testing.assert_array_equal(b.parameters()[kind], arr, err_msg=kind)
    assert "q.hidden" in whole.saturation and "q.out" not in whole.saturation
