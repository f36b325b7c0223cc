"""LavaNetwork (lava-float, structural and fused) against the golden cases and the engine."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import MLP_ERROR_BOUNDS, GoldenCase, with_error_bounds, with_normalisers
from lava_gle import Network, network_from_dict
from lava_gle.numerics.engine import Engine
from lava_gle.errors import LavaGleError
from lava_gle.runtime import LavaNetwork
from lava_gle.processes.gle.process import GleNeurons, GleProjection
from lava_gle.traces import max_relative_errors


def feature_net(learning: dict) -> Network:
    """3 layers: ce loss on a linear output, relu/tanh hidden, per-neuron taus, no-bias layer."""
    return network_from_dict({
        "gle_network": 1, "name": "features", "dt": 0.05, "input": {"size": 3},
        "layers": [
            {"name": "h1", "size": 5, "tau_m": [1.0, 0.8, 0.6, 1.2, 0.9], "tau_r": 0.3,
             "phi": "tanh", "init": {"scheme": "normal", "scale": 0.8, "seed": 1}},
            {"name": "h2", "size": 4, "tau_m": 0.7, "tau_r": [0.1, 0.2, 0.3, 0.4],
             "phi": "relu", "bias": False, "init": {"scheme": "normal", "scale": 0.8, "seed": 2}},
            {"name": "out", "size": 3, "tau_m": 0.5, "tau_r": 0.1, "phi": "linear",
             "init": {"scheme": "normal", "scale": 0.8, "seed": 3}},
        ],
        "learning": {"gamma": 0.7, "beta": 0.5, "loss": "ce", **learning}})


def streams(T: int, batch: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None, None] * 0.05
    x = np.sin(t * rng.uniform(0.5, 3.0, (1, batch, 3)) + rng.uniform(0, 6, (1, batch, 3)))
    y = rng.integers(0, 3, size=(T, batch))
    return x, y


@pytest.mark.lava
def test_golden_case_reproduced_and_fused_identical(golden):
    with LavaNetwork(golden.net, backend="float") as sim:
        structural = sim.run(golden.inputs, golden.targets)
        handles = sim.built.layers
    assert list(handles) == golden.net.layer_names
    for i, (name, handle) in enumerate(handles.items()):
        assert isinstance(handle.neurons, GleNeurons) and handle.neurons.name == f"{name}.neurons"
        assert isinstance(handle.projection, GleProjection)
        assert handle.projection.W.shape == golden.net.weight_shape(i)
    errors = max_relative_errors(golden.expected, structural)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-9, f"{golden.name}: {worst} off by {errors[worst]:.2e}"
    with LavaNetwork(golden.net, backend="float", fused=True) as sim:
        fused = sim.run(golden.inputs, golden.targets)
    # both Lava shapes run the engine's kernels with a batch axis of 1: the same bits
    engine = Engine(golden.net).run(golden.inputs, golden.targets, record=True)
    assert fused.keys() == structural.keys() == engine.keys()
    for key in structural:
        np.testing.assert_array_equal(fused[key], structural[key], err_msg=key)
        np.testing.assert_array_equal(engine[key], structural[key], err_msg=key)


@pytest.mark.lava
def test_learning_with_ce_feedback_alignment_and_tau_learning_matches_engine():
    net = feature_net({"enabled": True, "eta": 0.05, "prospective_errors": False,
                       "backward": "feedback_alignment", "feedback_seed": 4,
                       "learn_tau": True, "eta_tau": 0.02, "tau_m_min": 0.3})
    x, y = streams(60, 1)
    expected = Engine(net).run(x, y, record=True)
    with LavaNetwork(net) as sim:
        traces = sim.run(x, y)
    assert traces.keys() == expected.keys()
    for key in expected:  # the engine's kernels at batch 1: the same bits
        np.testing.assert_array_equal(traces[key], expected[key], err_msg=key)
    # the run learned something, so the comparison is not between two static networks
    assert not np.allclose(expected["W.h1"], net.initial_weights(0))
    assert not np.allclose(expected["tau_m.h1"], net.layers[0].tau_m_array())


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_error_bounds_in_lava_float_give_the_engines_bits(fused):
    """Layers with an error_bound that clips often, learning with gamma: lava-float
    (structural and fused) gives the engine's bits, and the bound holds."""
    g = GoldenCase("visible_mlp")
    net = with_error_bounds(g.net)
    T = 300
    expected = Engine(net).run(g.inputs[:T], g.targets[:T], record=True)
    with LavaNetwork(net, backend="float", fused=fused) as sim:
        traces = sim.run(g.inputs[:T], g.targets[:T])
    for key in expected:
        np.testing.assert_array_equal(traces[key], expected[key], err_msg=key)
    assert np.abs(traces["e.hidden"]).max() == MLP_ERROR_BOUNDS["hidden"]


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_normalisers_in_lava_float_give_the_engines_bits(fused):
    """Gains on the hidden layer and error normalisers on both, learning: lava-float
    gives the engine's bits, and the normalisers' state after the run is the engine's
    (kept by the neurons Processes, read back by the host)."""
    g = GoldenCase("visible_mlp")
    net = with_normalisers(g.net, gain=0.99, norm=0.99)
    T = 300
    engine = Engine(net)
    expected = engine.run(g.inputs[:T], g.targets[:T], record=True)
    with LavaNetwork(net, backend="float", fused=fused) as sim:
        traces = sim.run(g.inputs[:T], g.targets[:T])
        params = sim.parameters()
        # the description it gives goes on from the normalisers' state, also after
        # set_weights (the next run builds its kernels from the description)
        assert sim.network.layers[0].normaliser_state.steps == T
        sim.set_weights("out", *sim.get_weights("out"))
        np.testing.assert_array_equal(sim.network.layers[1].normaliser_state.error_ms,
                                      engine.kernels.layers[1].error_ms)
    for key in expected:
        np.testing.assert_array_equal(traces[key], expected[key], err_msg=key)
    state = engine.state_dict()
    for key in ("gain_ms.0", "error_ms.0", "error_ms.1", "norm_steps.0"):
        np.testing.assert_array_equal(params[key], state[key], err_msg=key)
    assert int(state["norm_steps.0"]) == T
    assert not np.allclose(engine.kernels.layers[0].gain, 1.0)  # the gains moved


@pytest.mark.lava
@pytest.mark.parametrize("fused", [False, True], ids=["structural", "fused"])
def test_batch_without_learning_runs_each_element_and_matches_engine(fused):
    net = feature_net({"enabled": False})
    x, y = streams(25, 3)
    expected = Engine(net).run(x, y, record=True)
    with LavaNetwork(net, fused=fused, chunk=20) as sim:
        traces = sim.run(x, y)
    errors = max_relative_errors(expected, traces)
    assert max(errors.values()) <= 1e-12, errors
    assert traces["r.out"].shape == (25, 3, 3)
    # the batch elements differ, so a mix-up of batch and time axes would show
    assert not np.allclose(traces["r.h1"][:, 0], traces["r.h1"][:, 1])


def test_batch_with_learning_is_refused_before_lava_starts():
    net = feature_net({"enabled": True, "eta": 0.1})
    x, y = streams(10, 2)
    with LavaNetwork(net) as sim:
        with pytest.raises(LavaGleError, match=r"batch 2 with learning enabled.*learning\.enabled"):
            sim.run(x, y)
        assert sim.built is None


@pytest.mark.lava
def test_learned_parameters_carry_over_and_set_weights_applies():
    golden = GoldenCase("visible_mlp")
    T = 120
    x, y = golden.inputs[:T], golden.targets[:T]
    name = golden.net.layer_names[0]
    with LavaNetwork(golden.net, fused=True) as sim:
        first = sim.run(x, y, record=["r"])
        w1, b1 = sim.get_weights(name)
        np.testing.assert_array_equal(w1, first[f"W.{name}"])
        second = sim.run(x, y, record=["r"])
    expected = Engine(golden.net.with_parameters(
        [first[f"W.{n}"] for n in golden.net.layer_names],
        [first[f"b.{n}"] for n in golden.net.layer_names])).run(x, y, record=["r"])
    assert max(max_relative_errors(expected, second).values()) <= 1e-12
    with LavaNetwork(golden.net, fused=True) as sim:
        sim.set_weights(name, np.zeros_like(w1))
        with pytest.raises(LavaGleError, match="shape"):
            sim.set_weights(name, np.zeros((7, 7)))
        assert np.all(sim.get_weights(name)[0] == 0)
        assert np.all(sim.network.initial_weights(0) == 0)


@pytest.mark.lava
@pytest.mark.parametrize("case", ["single layer, ce", "two layers, no targets"])
def test_structural_edge_wiring_matches_engine(case):
    """A single layer (no backward path, output layer = first layer) and a run without targets."""
    single = case.startswith("single")
    layers = [(3, "linear")] if single else [(3, "softplus"), (2, "hard_sigmoid")]
    net = network_from_dict({
        "gle_network": 1, "dt": 0.1, "input": {"size": 2},
        "layers": [dict(name=f"l{i}", size=s, tau_m=1.0, tau_r=0.3, phi=p,
                        init={"scheme": "normal", "seed": i}) for i, (s, p) in enumerate(layers)],
        "learning": {"enabled": True, "eta": 0.1, "gamma": 1.0, "beta": 0.5,
                     "loss": "ce" if single else "mse"}})
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2))
    y = rng.integers(0, 3, 40) if single else None
    expected = Engine(net).run(x, y, record=True)
    with LavaNetwork(net) as sim:
        traces = sim.run(x, y)
    assert max(max_relative_errors(expected, traces).values()) <= 1e-12
    assert np.any(expected["e.l0"] != 0) == single  # errors flow only with a target
