"""Chip timing (``fixed_point.timing: chip``): separate backward arrays with their own
learning epoch, one chip step after the forward array's (docs/fixed-point.md, "Chip
timing")."""
from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from conftest import GoldenCase, with_normalisers
from lava_gle import network_from_dict
from lava_gle.backends import simulate
from lava_gle.errors import NetworkSpecError
from lava_gle.numerics import fixed as X
from lava_gle.numerics.engine import FixedEngine
from lava_gle.numerics.kernels import FixedKernels
from lava_gle.quantize import QuantizationError, QuantizationWarning, quantize_network


def with_options(net, **options):
    return dataclasses.replace(net, fixed_point={**net.fixed_point, **options})


def run_ints(net, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return FixedEngine(net, dequantize=False).run(x, y, record=True)


def assert_mirrored_chip_equals_exact(net, x, y):
    """With the forward arrays' rounding numbers, the backward array learns exactly the
    forward array's updates one chip step later, so it is W^T whenever it is read, and
    every integer equals exact timing's: the pairing of steps is right."""
    exact = run_ints(net, x, y)
    mirrored = run_ints(with_options(net, timing="chip", backward_rounding="mirrored"), x, y)
    for key, value in exact.items():
        assert np.array_equal(mirrored[key], value), key
    for layer in net.layers[1:]:
        assert np.array_equal(mirrored[f"W_back.{layer.name}"], mirrored[f"W.{layer.name}"])
        assert mirrored[f"drift_max.{layer.name}"] == 0
        assert mirrored[f"drift_rms.{layer.name}"] == 0
    assert "W_back." + net.layers[0].name not in mirrored  # nothing below the first layer


def test_mirrored_draws_give_exact_timing_with_normalisers():
    """With neuron-local normalisers (gains on the hidden layer, error normalisers on both)
    the backward array learns from the learning error the neurons send, normalised, as
    the forward array does: with its rounding numbers every integer is exact timing's."""
    g = GoldenCase("visible_mlp")
    assert_mirrored_chip_equals_exact(with_normalisers(g.net), g.inputs, g.targets)


@pytest.mark.parametrize("tags", [0, 7])
@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_mirrored_draws_give_exact_timing_on_golden_networks(case, tags):
    """Also with weight tags (``tags`` bits on every layer): the backward array's own tags
    carry and learn exactly as the forward array's."""
    g = GoldenCase(case)
    net = dataclasses.replace(g.net, layers=tuple(
        dataclasses.replace(layer, fixed_point={**layer.fixed_point, "weight_tag_bits": tags})
        for layer in g.net.layers))
    assert_mirrored_chip_equals_exact(net, g.inputs, g.targets)


@st.composite
def networks(draw):
    n_layers = draw(st.integers(2, 3))
    sizes = [draw(st.integers(1, 4)) for _ in range(n_layers + 1)]
    layers = [{"name": f"l{i}", "size": sizes[i + 1],
               "tau_m": draw(st.sampled_from([0.2, 0.5, 1.0])),
               "tau_r": draw(st.sampled_from([0.05, 0.1, 0.5])),
               "phi": draw(st.sampled_from(["linear", "relu", "tanh", "softplus"])),
               "bias": draw(st.booleans()),
               "init": {"scheme": "normal", "scale": 1.0, "seed": draw(st.integers(0, 99))}}
              for i in range(n_layers)]
    net = {"gle_network": 1, "dt": 0.05, "input": {"size": sizes[0]}, "layers": layers,
           "learning": {"enabled": True, "eta": draw(st.sampled_from([0.5, 1.0])),
                        "gamma": draw(st.sampled_from([0.0, 1.0])), "beta": 0.5},
           "fixed_point": {"rounding": draw(st.sampled_from(["per_synapse", "shared"])),
                           "seed": draw(st.integers(0, 9))}}
    return network_from_dict(net), draw(st.integers(0, 999)), draw(st.integers(1, 3))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(networks())
def test_mirrored_draws_give_exact_timing_on_random_networks(case):
    net, seed, batch = case
    try:
        run_ints(net, np.zeros((1, 1, net.input.size)), None)
    except QuantizationError:
        assume(False)
    rng = np.random.default_rng(seed)
    T = 200
    x = np.sin(np.arange(T)[:, None, None] * rng.uniform(0.05, 0.3, (batch, net.input.size)))
    y = rng.uniform(-0.5, 0.5, (T, batch, net.output_size))
    assert_mirrored_chip_equals_exact(net, x, y)


def test_the_backward_arrays_accumulator_clips_are_counted_as_their_own():
    """Under mirrored rounding the backward array learns the forward array's updates on
    the transposed signals, so without biases its accumulator clips exactly as often
    (``lacc_B.<layer>`` = ``lacc.<layer>``); a rate high enough to push the accumulators
    past 16 bits makes both non-zero, and the first layer has no backward array."""
    from lava_gle.numerics import fingerprint
    spec = fingerprint._spec("chip", "compensated", False)
    spec["fixed_point"]["backward_rounding"] = "mirrored"
    spec["learning"].update(eta=0.5, learn_tau=False)
    for layer in spec["layers"]:
        layer["bias"] = False
        layer.get("fixed_point", {}).pop("weight_tag_bits", None)
    rng = np.random.default_rng(11)
    trace = run_ints(network_from_dict(spec), rng.uniform(-1.0, 1.0, (40, 1, 3)),
                     rng.uniform(0.0, 1.0, (40, 1, 2)))
    for name in ("g", "out"):
        assert trace[f"sat.lacc_B.{name}"] == trace[f"sat.lacc.{name}"] > 0
    assert "sat.lacc_B.h" not in trace and trace["sat.lacc.h"] > 0


def test_independent_draws_drift_as_a_random_walk_of_the_rounding():
    """With independent draws, both arrays add the same products to accumulators whose
    fraction f (in 1/128 LSB) is the same, and round it up with probability f each: per
    learning step B - W moves by +-1 with probability f (1 - f) each. After T steps of
    constant signals E[(B - W)**2] = 2 f (1 - f) T per synapse. The compensated rule,
    whose products leave fractions to round at this rate (exact products at this gain
    leave none, and B stays W)."""
    m, n, T = 40, 50, 120
    net = network_from_dict({
        "gle_network": 1, "dt": 0.05, "input": {"size": 1},
        "layers": [{"name": "a", "size": m, "tau_m": 1.0, "tau_r": 0.1, "phi": "relu",
                    "bias": False, "init": {"scheme": "normal", "scale": 0.1, "seed": 1}},
                   {"name": "b", "size": n, "tau_m": 1.0, "tau_r": 0.1, "phi": "relu",
                    "bias": False, "init": {"scheme": "normal", "scale": 0.1, "seed": 2}}],
        "learning": {"enabled": True, "eta": 0.5, "beta": 0.5},
        "fixed_point": {"timing": "chip", "seed": 3, "learning_products": "compensated"}})
    q = quantize_network(net)
    k = FixedKernels(q).layers[1]
    ql = k.ql
    rng = np.random.default_rng(0)
    p = rng.integers(2, 40, m)                                   # small rates, all spiking
    e_q = rng.integers(-1, 2, n)                                 # small traces: no clipping
    e = e_q << ql.trace_shift if ql.trace_shift > 0 else e_q     # the dither cannot move them
    x0, x1 = X.pre_trace(p, ql.pre_signed)
    frac = (X.learning_accumulator(np.zeros((n, m), np.int64), x0, x1, e_q, ql.rule)
            & 127) / 128.0
    w0 = k.W.copy()
    for t in range(T):
        k.learn_synapses(e[None], p[None], t)
    assert np.all(np.abs(k.W) < 255) and np.all(np.abs(k.B) < 255)  # no saturation
    assert not np.array_equal(k.W, w0)
    d2 = (k.B - k.W).astype(float) ** 2
    predicted = 2 * frac * (1 - frac) * T
    assert predicted.sum() > 5000  # enough rounding events: the sum has a 4 % spread
    assert d2.sum() == pytest.approx(predicted.sum(), rel=0.15)
    assert np.all(d2[frac == 0] == 0)  # nothing to round, nothing drifts
    drift = k.transpose_drift()
    assert drift["max_lsb"] == max(np.abs(k.B - k.W).max(), drift["max_lsb"])
    assert 0 < drift["rms_lsb"] < np.sqrt(d2.mean())  # the RMS over the run trails the end


def test_chip_timing_backend_names_and_options():
    g = GoldenCase("visible_mlp")
    x, y = g.inputs[:100], g.targets[:100]
    named = simulate(g.net, x, y, backend="numpy-fixed-chip", record=["output"])
    option = simulate(with_options(g.net, timing="chip"), x, y, backend="numpy-fixed",
                      record=["output"])
    assert set(named) == set(option)
    for key in named:
        assert np.array_equal(named[key], option[key]), key
    assert "drift_max.out" in named and "W_back.out" in named
    assert quantize_network(with_options(g.net, timing="chip")).manifest()["timing"] == "chip"
    with pytest.raises(NetworkSpecError, match="fixed_point.timing"):
        network_from_dict({**json.loads((g.dir / "network.json").read_text()),
                           "fixed_point": {"timing": "late"}})


def test_resuming_from_a_state_dict_continues_the_backward_array_and_its_drift():
    from lava_gle.backends import make_engine
    g = GoldenCase("visible_mlp")
    whole = make_engine(g.net, "numpy-fixed-chip").run(g.inputs, g.targets)
    first = make_engine(g.net, "numpy-fixed-chip")
    first.run(g.inputs[:300], g.targets[:300])
    resumed = make_engine(g.net, "numpy-fixed-chip")
    resumed.load_state_dict(first.state_dict())
    rest = resumed.run(g.inputs[300:], g.targets[300:])
    assert whole["drift_max.out"] > 0
    for key in ("W_back.out", "W.out", "drift_max.out", "drift_rms.out"):
        assert np.array_equal(rest[key], whole[key]), key


def test_which_backend_runs_which_timing_and_its_twin():
    """The structural lava-fixed runs chip timing (lava-fixed-exact the exact one); numpy-fixed
    and lava-fixed-fused run the description's timing (exact by default), and each Lava
    backend names the stepping engine that computes its numbers."""
    from lava_gle.backends import get_backend, twin
    g = GoldenCase("visible_mlp")
    timing = {name: get_backend(name).network(g.net).fixed_point.get("timing", "exact")
              for name in ("numpy-fixed", "numpy-fixed-chip", "lava-fixed", "lava-fixed-exact",
                           "lava-fixed-fused", "lava-fixed-fused-chip")}
    assert timing == {"numpy-fixed": "exact", "numpy-fixed-chip": "chip", "lava-fixed": "chip",
                      "lava-fixed-exact": "exact", "lava-fixed-fused": "exact",
                      "lava-fixed-fused-chip": "chip"}
    assert {name: twin(name) for name in timing if name.startswith("lava")} == {
        "lava-fixed": "numpy-fixed-chip", "lava-fixed-exact": "numpy-fixed",
        "lava-fixed-fused": "numpy-fixed", "lava-fixed-fused-chip": "numpy-fixed-chip"}
    assert twin("lava-float") == twin("lava-float-fused") == "numpy"


def test_every_random_stream_family_has_its_own_ids():
    """The backward arrays' rounding numbers once shared their stream ids with the pre
    trace's dither (both 3 << 32): correlated numbers where both are used. Each family
    of counter-hash streams (weight and bias rounding 2 l, 2 l + 1; error-trace, tau_m
    and pre-trace dither; backward rounding) owns a disjoint range of 2**32 ids."""
    bases = [X._DITHER_STREAM, X._TAU_STREAM, X._PRE_STREAM, X.BACKWARD_STREAM]
    starts = sorted([0] + bases)
    assert len(set(starts)) == len(starts)
    assert all(b - a >= 1 << 32 for a, b in zip(starts, starts[1:]))
