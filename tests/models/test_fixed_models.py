"""lava-fixed (the fixed_pt Lava models, structural and fused) produces the same integers as
numpy-fixed."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from conftest import GoldenCase, with_error_bounds, with_normalisers
from lava_gle import network_from_dict
from lava_gle.numerics.engine import FixedEngine
from lava_gle.quantize import QuantizationError, QuantizationWarning


def lava_fixed(net, x, y, fused):
    """The traces of a lava-fixed run and its learned parameters (integers, by kind)."""
    from lava_gle.runtime import LavaNetwork
    with LavaNetwork(net, backend="fixed", fused=fused) as sim:
        return sim.run(x, y, record=True), sim.parameters()


def assert_same_integers(net, x, y, fused):
    """Every recorded integer, every count and every learned parameter (weight tags and
    backward arrays included) equal numpy-fixed's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = FixedEngine(net, dequantize=False)
        ints = engine.run(x, y, record=True)
        lava, params = lava_fixed(net, x, y, fused)
    state = engine.state_dict()
    assert params and all(key in state for key in params)
    for key, value in params.items():
        assert value.dtype == np.int64 and np.array_equal(value, state[key]), key
    q = engine.q
    top = q.layers[-1]
    compared = 0
    for key, value in lava.items():
        var, _, layer = key.partition(".")
        if var == "sat":
            assert int(value) == engine.saturation[layer], key  # counts, not values
            continue
        if var in ("drift_max", "drift_rms"):  # chip timing: in LSBs already
            assert value == ints[key], key
            continue
        if key == "output":
            scale = top.scale("r")
        else:
            scale = q.layers[net.index(layer)].scale("W" if var == "W_back" else var)
        as_int = np.rint(value / scale).astype(np.int64)
        assert np.array_equal(as_int * scale, value), f"{key}: not on the integer grid"
        assert np.array_equal(as_int, ints[key]), f"{key}: integers differ"
        compared += 1
    # u, u_prosp, r, v, e, W, b (and tau_m when it learns) per layer, and the output; with
    # chip timing the backward arrays W_back of the layers above the first
    taus = sum(ql.tau is not None for ql in q.layers)
    backs = len(net.layers) - 1 if q.chip_timing else 0
    assert compared == len(net.layers) * 7 + taus + backs + 1


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_golden_networks_identical_integers_for_2000_steps(case, fused):
    g = GoldenCase(case)
    reps = -(-2000 // g.inputs.shape[0])  # visible_mlp has 800 steps: play it 3 times
    x = np.concatenate([g.inputs] * reps)
    y = np.concatenate([g.targets] * reps)
    assert x.shape[0] >= 2000
    assert_same_integers(g.net, x, y, fused)


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_tau_m_learning_identical_integers(fused):
    """Integer tau_m learning (re-derived Euler factors, dithered updates) in the Lava
    models equals numpy-fixed, tau_m included."""
    from lava_gle.experiments.lagline import (
        LaglineConfig, make_inputs, student_network, teacher_network,
    )
    from lava_gle.numerics.engine import Engine
    cfg = LaglineConfig(seed=2, batch=1, settle_time=0.0, train_time=4.0, learn_tau=True,
                        optimizer="sgd")
    x = make_inputs(cfg)
    y = Engine(teacher_network(cfg)).run(x, record=["output"])["output"]
    net = student_network(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        learned = FixedEngine(net).run(x, y)
    for i, layer in enumerate(net.layers):  # tau_m does move in these 400 steps
        assert abs(learned[f"tau_m.{layer.name}"][0] - layer.tau_m_array()[0]) > 1e-3, i
    assert_same_integers(net, x, y, fused)


PHIS = ["linear", "relu", "sigmoid", "tanh", "softplus", "hard_sigmoid"]


@st.composite
def networks(draw):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 4)) for _ in range(n_layers + 1)]
    layers = []
    for i in range(n_layers):
        layers.append({
            "name": f"l{i}", "size": sizes[i + 1],
            "tau_m": draw(st.sampled_from([0.2, 0.5, 1.0, 2.0])),
            "tau_r": draw(st.sampled_from([0.05, 0.1, 0.5, 1.0])),
            "phi": draw(st.sampled_from(PHIS)), "bias": draw(st.booleans()),
            "init": {"scheme": "normal", "scale": draw(st.sampled_from([0.5, 1.0])),
                     "seed": draw(st.integers(0, 99))}})
    net = {"gle_network": 1, "dt": 0.05, "input": {"size": sizes[0]}, "layers": layers,
           "learning": {"enabled": True, "eta": draw(st.sampled_from([0.2, 0.5, 1.0])),
                        "gamma": draw(st.sampled_from([0.0, 0.5, 1.0])),
                        "beta": draw(st.sampled_from([0.1, 0.5, 1.0])),
                        "prospective_errors": draw(st.booleans())}}
    return network_from_dict(net), draw(st.integers(0, 999))


@pytest.mark.lava
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(networks(), st.booleans())
def test_random_networks_identical_integers_with_learning(case, fused):
    net, seed = case
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)
            FixedEngine(net)
    except QuantizationError:
        assume(False)  # e.g. a learning gain below the engine's smallest: refused up front
    rng = np.random.default_rng(seed)
    T = 150
    x = np.sin(np.arange(T)[:, None] * rng.uniform(0.05, 0.3, net.input.size))
    y = rng.uniform(-0.5, 0.5, (T, net.output_size))
    assert_same_integers(net, x, y, fused)


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_saturation_counts_equal_the_twin(fused):
    """Clipping in the streams, the drive, the weights and the learning traces is counted
    by the Lava models exactly as by their numpy-fixed twin (chip timing for the
    structural lava-fixed), and returned as sat.* traces."""
    from lava_gle.commands.sweep import with_setting

    case = GoldenCase("visible_mlp")
    net = case.net
    for key, value in (("u_bits", 23), ("input_range", 0.5), ("weight_exp", -8),
                       ("hidden.rate_bits", 8), ("out.error_trace_range", 0.05)):
        net = with_setting(net, key, value)
    # eta so large that the narrow trace needs no coarsening for gain, so it clips
    net = dataclasses.replace(net, learning=dataclasses.replace(net.learning,
                                                                eta=256 * net.learning.eta))
    counts = lava_and_twin_counts(net, case.inputs[:300], case.targets[:300], fused)
    assert ("B.out" in counts) == (not fused)  # the structural lava-fixed runs chip timing
    assert {k for k, n in counts.items() if n} >= {"input", "s.out", "W.hidden", "trace.out"}


def lava_and_twin_counts(net, x, y, fused: bool) -> dict[str, int]:
    """The saturation counts (``sat.*`` without the prefix) of lava-fixed(-fused) on
    ``net``, asserted equal to its numpy-fixed twin's, and warned on the host as the twin
    warns them (the Lava processes' own warnings stay in their processes)."""
    from lava_gle.backends import make_engine, simulate, twin
    backend = "lava-fixed-fused" if fused else "lava-fixed"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = make_engine(net, twin(backend))
        engine.run(x, y)
        lava = simulate(net, x, y, backend=backend, record=False)
    counts = {k[len("sat."):]: int(v) for k, v in lava.items() if k.startswith("sat.")}
    assert counts == engine.saturation
    said = [str(w.message) for w in caught if "fixed-point saturation" in str(w.message)]
    assert len(said) == (2 if any(counts.values()) else 0) and len(set(said)) <= 1, said
    return counts


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_the_euler_operand_clamp_is_counted_like_the_twin(fused):
    """Strong gamma feedback clamps du (the neuron multiplier's operand) in both layers:
    the Lava models count the clamps as their twin does."""
    from conftest import clamping_network
    net, x, y = clamping_network()
    counts = lava_and_twin_counts(net, x[:100, :1], y[:100, :1], fused)
    assert counts["du.h"] > 0 and counts["du.out"] > 0


def chip(net):
    """``net`` with chip timing (separate backward arrays, independent rounding draws)."""
    return dataclasses.replace(net, fixed_point={**net.fixed_point, "timing": "chip"})


#: Steps of the structural chip-timing runs (each Lava Process is an OS process: short runs).
CHIP_STRUCTURAL_STEPS = 60


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_chip_timing_identical_integers_on_golden_networks(case, fused):
    """lava-fixed (structural: forward arrays with the neurons, backward arrays as Processes
    of their own) and lava-fixed-fused in chip timing: the integers of numpy-fixed in chip
    timing, the backward arrays and their drift included (the drift is not zero: it is
    compared). Fused: the full case; structural: its first steps."""
    g = GoldenCase(case)
    net = chip(g.net)
    T = g.inputs.shape[0] if fused else CHIP_STRUCTURAL_STEPS
    x, y = g.inputs[:T], g.targets[:T]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        drift = FixedEngine(net).run(x, y)[f"drift_max.{net.layers[-1].name}"]
    assert drift > 0
    assert_same_integers(net, x, y, fused)


@pytest.mark.lava
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(networks(), st.booleans())
def test_chip_timing_random_networks_identical_integers(case, fused):
    net, seed = case
    net = chip(net)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)
            FixedEngine(net)
    except QuantizationError:
        assume(False)
    rng = np.random.default_rng(seed)
    T = 150 if fused else CHIP_STRUCTURAL_STEPS
    x = np.sin(np.arange(T)[:, None] * rng.uniform(0.05, 0.3, net.input.size))
    y = rng.uniform(-0.5, 0.5, (T, net.output_size))
    assert_same_integers(net, x, y, fused)


def tagged(net, bits: int):
    """``net`` with ``fixed_point.weight_tag_bits: bits`` on every layer."""
    return dataclasses.replace(net, layers=tuple(
        dataclasses.replace(layer, fixed_point={**layer.fixed_point, "weight_tag_bits": bits})
        for layer in net.layers))


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
@pytest.mark.parametrize("timing", ["exact", "chip"])
def test_weight_tags_identical_integers(timing, fused):
    """Weight tags in the Lava models (in the Processes that hold the arrays: the
    projection, or under chip timing the neurons and the backward array): numpy-fixed's
    integers, the final tags included, and the tags are busy (non-zero, clipping)."""
    g = GoldenCase("visible_mlp")
    net = tagged(g.net if timing == "exact" else chip(g.net), 7)
    T = 300 if fused else CHIP_STRUCTURAL_STEPS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = FixedEngine(net)
        engine.run(g.inputs[:T], g.targets[:T], record=False)
    state = engine.state_dict()
    assert all(np.any(state[f"tag_W.{l}"]) for l in range(len(net.layers)))
    if timing == "chip":
        assert np.any(state["tag_B.1"])
    assert_same_integers(net, g.inputs[:T], g.targets[:T], fused)


def test_structural_chip_timing_keeps_arrays_where_a_chip_does(tmp_path):
    """Under chip timing the structural build has no projection Processes: each layer's
    neurons hold its forward array, and every layer above the first has a backward-array
    Process that receives the layer's error and the rates below and sends to the neurons
    below (2 L Processes with the streams)."""
    from lava_gle.numerics.kernels import FixedKernels
    from lava_gle.processes.gle.process import GleBackwardArray, GleNeurons, GleProjection
    from lava_gle.quantize import quantize_network
    from lava_gle.runtime.builder import build_structural
    g = GoldenCase("visible_mlp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        kernels = FixedKernels(quantize_network(chip(g.net)))
    built = build_structural(kernels, g.inputs[:5, 0], g.targets[:5, 0],
                             directory=str(tmp_path),
                             record=set())
    kinds = [type(p) for p in built.processes]
    assert GleProjection not in kinds
    assert kinds.count(GleNeurons) == len(g.net.layers)
    assert kinds.count(GleBackwardArray) == len(g.net.layers) - 1
    assert len(kinds) == 2 * len(g.net.layers)
    hidden, out = (built.layers[layer.name] for layer in g.net.layers)
    assert hidden.backward is None and out.backward is not None
    back = out.backward
    assert back.e_in.in_connections == [out.neurons.e_out]
    assert back.r_in.in_connections == [hidden.neurons.r_out]
    assert hidden.neurons.d_in.in_connections == [back.eps_out]
    assert out.neurons.p_in.in_connections == [hidden.neurons.r_out]


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_error_bounds_identical_integers(fused):
    """Layers with an error_bound that clips often, learning with gamma feedback: the Lava
    models give numpy-fixed's integers."""
    g = GoldenCase("visible_mlp")
    net = with_error_bounds(g.net)
    T = 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        e = FixedEngine(net).run(g.inputs[:T], g.targets[:T], record=["e"])
    assert np.abs(e["e.hidden"]).max() == pytest.approx(0.05, abs=2 ** -10)  # clipping
    assert_same_integers(net, g.inputs[:T], g.targets[:T], fused)


@pytest.mark.lava
@pytest.mark.parametrize("timing", ["exact", "chip"])
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_normalisers_identical_integers(timing, fused):
    """Neuron-local normalisers (gains on the hidden layer, error normalisers on both) in
    the Lava models: the gained payloads, the learning error the neurons send beside e
    (to the projection, or under chip timing to the backward array) and the normalisers'
    state (``gain_ms``, ``error_ms``, ``norm_steps``) are numpy-fixed's integers."""
    g = GoldenCase("visible_mlp")
    net = with_normalisers(g.net)
    net = dataclasses.replace(net, fixed_point={**net.fixed_point, "timing": timing})
    T = 400
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = FixedEngine(net, dequantize=False)
        engine.run(g.inputs[:T], g.targets[:T])
    hidden, out = engine.kernels.layers
    assert int(hidden.norm_steps) == T and not np.all(hidden.gamma == hidden.gamma[0])
    assert out.nu is not None and hidden.error_ms.min() > 0
    assert_same_integers(net, g.inputs[:T], g.targets[:T], fused)


@pytest.mark.lava
def test_a_described_normaliser_state_is_where_lava_starts():
    """A description carrying the normalisers' state (``Engine.network`` after 200 steps):
    the structural Lava model under chip timing starts from it and gives numpy-fixed's
    integers."""
    g = GoldenCase("visible_mlp")
    net = with_normalisers(g.net)
    net = dataclasses.replace(net, fixed_point={**net.fixed_point, "timing": "chip"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = FixedEngine(net)
        engine.run(g.inputs[:200], g.targets[:200])
    described = engine.network
    assert described.layers[0].normaliser_state.steps == 200
    assert_same_integers(described, g.inputs[200:400], g.targets[200:400], fused=False)
