"""A layer's ``error_bound``: the error clipped as the neurons form it, in both arithmetics."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from conftest import MLP_ERROR_BOUNDS as BOUNDS
from conftest import GoldenCase, with_error_bounds as bounded
from lava_gle import network_from_dict
from lava_gle.numerics import fixed as X
from lava_gle.numerics import floating as F
from lava_gle.numerics.engine import Engine, FixedEngine
from lava_gle.quantize import QuantizationError, QuantizationWarning, quantize_network

def _states(rng, n=5, batch=3):
    return tuple(rng.normal(scale=2.0, size=(batch, n)) for _ in range(5))


@pytest.mark.parametrize("prospective", [True, False])
def test_the_float_step_clips_e_and_feeds_the_clipped_error_back(prospective):
    """Same state, bound 0.3: e is the unbounded step's e clipped; v is not; with gamma the
    membrane sees the clipped error (udot from the step's own formula)."""
    rng = np.random.default_rng(0)
    u, v, rp, s, d = _states(rng)
    build = dict(dt=0.05, tau_m=[1.0, 0.5, 2.0, 1.0, 0.3], tau_r=[0.3, 0.5, 0.1, 1.0, 0.3],
                 gamma=0.7, prospective=prospective, phi="tanh", size=5)
    free = F.neuron_step(u, v, rp, s, d, F.NeuronConstants.build(**build))
    c = F.NeuronConstants.build(**build, e_bound=0.3)
    got = F.neuron_step(u, v, rp, s, d, c)
    assert np.any(np.abs(free.e) > 0.3)
    np.testing.assert_array_equal(got.e, np.clip(free.e, -0.3, 0.3))
    np.testing.assert_array_equal(got.v, free.v)
    np.testing.assert_allclose(got.udot, (s + 0.7 * got.e - u) / c.tau_m, rtol=1e-15)


def test_float_engine_bounds_every_layers_error_and_only_the_errors():
    """visible_mlp without learning and gamma 0: the rates are those of the unbounded run,
    the output error is its error clipped, and every error stays within its bound while
    the hidden layer's (formed from the clipped error above) differs."""
    g = GoldenCase("visible_mlp")
    off = {"enabled": False, "gamma": 0.0}
    free = Engine(bounded(g.net, {}, off)).run(g.inputs, g.targets, record=["r", "e"])
    got = Engine(bounded(g.net, learning=off)).run(g.inputs, g.targets, record=["r", "e"])
    for name, bound in BOUNDS.items():
        np.testing.assert_array_equal(got[f"r.{name}"], free[f"r.{name}"])
        assert np.abs(got[f"e.{name}"]).max() <= bound
        assert np.abs(free[f"e.{name}"]).max() > bound
    np.testing.assert_array_equal(got["e.out"], np.clip(free["e.out"], -0.04, 0.04))
    assert not np.array_equal(got["e.hidden"], np.clip(free["e.hidden"], -0.05, 0.05))


def test_the_fixed_step_clips_e_to_e_max_without_counting_it():
    """Integers: e is the unbounded step's e clipped to e_max; e counts no saturation (the
    bound is the model, and e's clip at the state's limit changes nothing under it), the
    other counts are the unbounded step's; v and, without gamma, u are unchanged."""
    q = _quantized(bounded(GoldenCase("visible_mlp").net, {}, {"gamma": 0.0}))
    c = q.layers[0].consts
    rng = np.random.default_rng(1)
    u, v, s, d = (rng.integers(-2 ** 24, 2 ** 24, (4, 4)) for _ in range(4))
    g = rng.integers(0, X.GATE_ONE + 1, (4, 4))
    free, n_free = X.neuron_step(u, v, g, s, d, c)
    got, n_got = X.neuron_step(u, v, g, s, d, dataclasses.replace(c, e_max=1000))
    i_e = X.NEURON_SAT_VARS.index("e")
    assert n_free[i_e] > 0 and n_got[i_e] == 0
    assert n_got[:i_e] + n_got[i_e + 1:] == n_free[:i_e] + n_free[i_e + 1:]
    np.testing.assert_array_equal(got.e, np.clip(free.e, -1000, 1000))
    for field in ("u", "u_prosp", "p", "g", "v"):
        np.testing.assert_array_equal(getattr(got, field), getattr(free, field))


def _quantized(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return quantize_network(net)


@pytest.mark.parametrize("products, factor", [("compensated", 1.0), ("exact", 2.0)])
def test_the_bound_quantises_to_e_max_and_sets_the_trace_range(products, factor):
    """e_max is the bound in error LSB; without error_trace_range the learning trace spans
    the bound (twice it under exact products, whose trace clips at half its range): the
    trace format of an explicit error_trace_range of that size (bounds 16x wider than
    the default trace ranges, so that the default would give other formats)."""
    wide = {name: 16 * b for name, b in BOUNDS.items()}
    net = dataclasses.replace(bounded(GoldenCase("visible_mlp").net, wide),
                              fixed_point={"learning_products": products})
    q = _quantized(net)
    explicit = _quantized(dataclasses.replace(net, layers=tuple(
        dataclasses.replace(l, fixed_point={"error_trace_range": wide[l.name] * factor})
        for l in net.layers)))
    for ql, qe, layer in zip(q.layers, explicit.layers, net.layers):
        assert ql.consts.e_max == round(wide[layer.name] * 2 ** ql.e_bits)
        assert (ql.trace_shift, ql.trace_coarsening, ql.rule) == (
            qe.trace_shift, qe.trace_coarsening, qe.rule)
    free = _quantized(bounded(net, {}))
    assert all(ql.consts.e_max is None for ql in free.layers)
    from lava_gle.quantize.manifest import manifest
    assert [l["formats"].get("error_max") for l in manifest(q)["layers"]] == [
        ql.consts.e_max for ql in q.layers]
    assert all("error_max" not in l["formats"] for l in manifest(free)["layers"])
    # the same trace LSB (the gain asks it), reached from another range: other coarsening
    assert ([ql.trace_coarsening for ql in free.layers]
            != [ql.trace_coarsening for ql in q.layers])


def test_the_default_error_format_holds_the_bound():
    """A bound far above the errors the quantiser expects (the output's default format
    holds |e| < 1): the default error bits are lowered to hold it, so an inference
    network with a bound from training quantises."""
    net = bounded(GoldenCase("visible_mlp").net, {"out": 100.0}, {"enabled": False})
    free = _quantized(bounded(net, {}))
    q = _quantized(net)
    assert free.layers[1].e_bits > 16
    assert q.layers[1].e_bits == 23 - 7 and q.layers[1].consts.e_max == 100 * 2 ** 16
    assert q.layers[0].e_bits == free.layers[0].e_bits  # the unbounded layer keeps its own


@pytest.mark.parametrize("bound, error_bits, fix", [
    (1e4, 14, "lower the bound or fixed_point.error_bits"),
    (1e-6, 10, "raise fixed_point.error_bits or the bound")])
def test_a_bound_the_error_format_cannot_hold_is_refused(bound, error_bits, fix):
    net = GoldenCase("visible_mlp").net
    layers = (dataclasses.replace(net.layers[0], error_bound=bound,
                                  fixed_point={"error_bits": error_bits,
                                               "error_trace_range": 0.5}),) + net.layers[1:]
    with pytest.raises(QuantizationError, match=f"'hidden': error_bound {bound:g} .*{fix}"):
        _quantized(dataclasses.replace(net, layers=layers))


def test_calibration_holds_the_bound_and_leaves_the_trace_to_it():
    """calibrate: a bounded layer's error bits hold its bound (a power of two at the
    format's very limit gives the state's limit), it sets no error_trace_range there (the
    quantiser spans the bound) and keeps it on the unbounded layer."""
    from lava_gle.calibration import calibrate
    g = GoldenCase("visible_mlp")
    net = bounded(g.net, {"hidden": 64.0})
    cal = calibrate(net, g.inputs, g.targets)
    hidden, out = (layer.fixed_point for layer in cal.layers)
    assert hidden["error_bits"] == 23 - 6 and "error_trace_range" not in hidden
    assert "error_trace_range" in out
    q = _quantized(cal)
    assert q.layers[0].consts.e_max == X.STATE_MAX


def test_numpy_fixed_follows_the_bounded_float_run():
    """A learning run of visible_mlp with bounds: numpy-fixed's errors stay within the
    bound (to one error LSB) and its output follows the float run as closely as the
    unbounded golden comparison asks (RMS within 5 % of the output's range)."""
    g = GoldenCase("visible_mlp")
    net = bounded(g.net)
    f = Engine(net).run(g.inputs, g.targets, record=["e", "r"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = FixedEngine(net)
        x = engine.run(g.inputs, g.targets, record=["e", "r"])
    for i, (name, bound) in enumerate(BOUNDS.items()):
        lsb = 2.0 ** -engine.q.layers[i].e_bits
        assert np.abs(x[f"e.{name}"]).max() <= bound + lsb
        assert np.abs(x[f"e.{name}"]).max() >= bound - lsb  # the clip is reached
    rms = np.sqrt(np.mean((x["r.out"] - f["r.out"]) ** 2))
    assert rms <= 0.05 * np.ptp(f["r.out"])


def test_the_description_carries_the_bound():
    g = GoldenCase("visible_mlp")
    from lava_gle.description import network_to_dict
    d = network_to_dict(bounded(g.net))
    assert [layer.get("error_bound") for layer in d["layers"]] == [0.05, 0.04]
    assert network_from_dict(d).layers[1].error_bound == 0.04
    assert "error_bound" not in network_to_dict(g.net)["layers"][0]
