"""Loading and validating network descriptions."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from lava_gle import (NetworkSpecError, load_network, network_from_dict, network_to_dict,
                      save_network)
from lava_gle.numerics.engine import Engine

from conftest import GOLDEN, GOLDEN_CASES


def golden_dict(case="visible_mlp"):
    return json.loads((GOLDEN / case / "network.json").read_text())


def minimal(**over):
    d = {"gle_network": 1, "dt": 0.1, "input": {"size": 2},
         "layers": [{"size": 3, "tau_m": 1.0, "tau_r": 0.5}]}
    d.update(over)
    return d


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_files_load_unchanged(case):
    net = load_network(GOLDEN / case / "network.json")
    raw = golden_dict(case)
    assert net.name == raw["name"] and net.dt == raw["dt"]
    for i, (layer, rl) in enumerate(zip(net.layers, raw["layers"])):
        assert layer.name == rl["name"] and layer.phi == rl["phi"]
        np.testing.assert_array_equal(net.initial_weights(i), rl["weights"])
        np.testing.assert_array_equal(net.initial_biases(i), rl["biases"] or 0.0)
    assert net.learning.eta == raw["learning"]["eta"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip_through_files(tmp_path, suffix):
    net = load_network(GOLDEN / "visible_mlp" / "network.json")
    path = tmp_path / f"net{suffix}"
    save_network(net, path)
    again = load_network(path)
    assert network_to_dict(again) == network_to_dict(net)


def test_seeded_initialisation_is_reproducible_and_lazy():
    d = minimal(layers=[{"size": 50, "tau_m": 1.0, "tau_r": 0.5,
                         "init": {"scheme": "lecun_normal", "seed": 7}}])
    a, b = network_from_dict(d), network_from_dict(copy.deepcopy(d))
    assert a.layers[0].weights is None  # nothing drawn until asked
    np.testing.assert_array_equal(a.initial_weights(0), b.initial_weights(0))
    w = a.initial_weights(0)
    assert w.shape == (50, 2) and abs(w.std() - 1 / np.sqrt(2)) < 0.15
    d["layers"][0]["init"]["seed"] = 8
    assert not np.allclose(network_from_dict(d).initial_weights(0), w)


def test_huge_network_is_described_without_allocating_weights():
    d = minimal(input={"size": 100_000},
                layers=[{"size": 100_000, "tau_m": 1.0, "tau_r": 0.5}])
    net = network_from_dict(d)
    g = net.to_graph()
    assert g.edges[0, 1]["synapses"] == 10_000_000_000
    assert g.nodes[1]["name"] == "layer0" and g.nodes[0]["kind"] == "input"


def test_huge_network_parameter_lists_are_refused_before_drawing(monkeypatch):
    from lava_gle.errors import MemoryLimitError
    from lava_gle.network import InitSpec

    def no_draw(*args, **kwargs):
        raise AssertionError("weights drawn for a refused network")

    monkeypatch.setattr(InitSpec, "draw", no_draw)
    net = network_from_dict(minimal(input={"size": 10**6},
                                    layers=[{"size": 10**7, "tau_m": 1.0, "tau_r": 0.5}]))
    assert network_to_dict(net)["layers"][0]["init"]["scheme"] == "lecun_normal"
    # 10^13 synapses as lists of Python floats: hundreds of TiB
    with pytest.raises(MemoryLimitError, match=r"explicit parameter lists .* layer 'layer0' "
                                               r"needs .* TiB"):
        network_to_dict(net, explicit_parameters=True)


def test_yaml_description_runs(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(minimal(learning={"enabled": True, "eta": 0.1})))
    net = load_network(path)
    assert net.learning.enabled and net.layers[0].name == "layer0"
    Engine(net).run(np.ones((3, 2)))


def _mut(path, value):
    """A copy of the mlp golden description with the field at ``path`` set (or deleted)."""
    d = golden_dict()
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


_DELETE = object()


@pytest.mark.parametrize("path, value, where, what", [
    (["layers", 0, "tau_r"], 0.01, "layers[0].tau_r", "smaller than dt"),
    (["layers", 1, "tau_m"], [0.6, 0.0], "layers[1].tau_m[1]", "must be > 0"),
    (["layers", 1, "tau_m"], [0.6], "layers[1].tau_m", "shape [1], expected [2]"),
    (["dt"], -0.1, "dt", "must be > 0"),
    (["dt"], float("nan"), "dt", "finite"),
    (["dt"], "0.05", "dt", "must be a number"),
    (["layers", 0, "size"], 0, "layers[0].size", ">= 1"),
    (["layers", 0, "size"], True, "layers[0].size", "integer"),
    (["layers", 0, "weights"], [[1.0, 2.0]] * 3, "layers[0].weights", "expected [4, 2]"),
    (["layers", 1, "weights"], [[1.0, float("inf"), 0, 0]] * 2, "layers[1].weights",
     "non-finite"),
    (["layers", 0, "phi"], "gelu", "layers[0].phi", "must be one of"),
    (["learning", "loss"], "hinge", "learning.loss", "must be one of"),
    (["learning", "etta"], 0.1, "learning.etta", "unknown key"),
    (["layers", 0, "taum"], 1.0, "layers[0].taum", "unknown key"),
    (["layers", 0, "tau_m"], _DELETE, "layers[0].tau_m", "missing"),
    (["layers"], [], "layers", "empty"),
    (["layers", 1, "name"], "hidden", "layers[1].name", "unique"),
    (["layers", 1, "name"], " ", "layers[1].name", "non-empty string"),
    (["input", "size"], -2, "input.size", ">= 1"),
    (["gle_network"], 2, "gle_network", "not supported"),
    (["learning", "enabled"], "yes", "learning.enabled", "true or false"),
    (["layers", 0, "biases"], [0, 0, 0], "layers[0].biases", "expected [4]"),
    (["fixed_point"], {"input_range": 0}, "fixed_point.input_range", "must be > 0"),
    (["fixed_point"], {"signal_growth": 0.5}, "fixed_point.signal_growth", "must be >= 1"),
    (["fixed_point"], {"seed": 1.5}, "fixed_point.seed", "must be an integer"),
    (["fixed_point"], {"rounding": "up"}, "fixed_point.rounding", "must be one of"),
    (["fixed_point"], {"bits": 3}, "fixed_point.bits", "unknown key"),
    (["layers", 0, "fixed_point"], {"weight_exp": 9}, "layers[0].fixed_point.weight_exp",
     "must be <= 8, got 9"),
    (["layers", 0, "fixed_point"], {"u_bits": -1}, "layers[0].fixed_point.u_bits",
     "must be >= 0, got -1"),
    (["layers", 0, "fixed_point"], {"error_trace_range": "x"},
     "layers[0].fixed_point.error_trace_range", "must be a number"),
    (["layers", 0, "fixed_point"], [], "layers[0].fixed_point", "must be a mapping"),
    (["layers", 1, "eta_scale"], -0.5, "layers[1].eta_scale", "must be >= 0"),
    (["layers", 1, "eta_scale"], "1", "layers[1].eta_scale", "must be a number"),
    (["layers", 0, "error_bound"], 0, "layers[0].error_bound", "must be > 0"),
    (["layers", 0, "error_bound"], "big", "layers[0].error_bound", "must be a number"),
])
def test_bad_fields_are_named(path, value, where, what):
    with pytest.raises(NetworkSpecError) as info:
        network_from_dict(_mut(path, value))
    assert info.value.path == where
    assert what in info.value.problem


def test_cross_entropy_needs_a_linear_output_layer():
    d = _mut(["learning", "loss"], "ce")
    d["layers"][1]["phi"] = "tanh"
    with pytest.raises(NetworkSpecError, match="'ce' needs a linear output layer"):
        network_from_dict(d)


def test_biases_with_bias_false_are_refused():
    d = _mut(["layers", 0, "bias"], False)
    with pytest.raises(NetworkSpecError, match="bias: false"):
        network_from_dict(d)


@pytest.mark.parametrize("text, suffix, match", [
    ('{"gle_network": 1, "dt": }', ".json", "invalid JSON at line 1"),
    ("layers: [\n  - size: 3\n tau_m", ".yaml", "invalid YAML at line"),
    ("- 1\n- 2\n", ".yaml", "must be a mapping"),
])
def test_malformed_files_give_located_errors(tmp_path, text, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(NetworkSpecError, match=match) as info:
        load_network(path)
    assert str(path) in str(info.value)


def test_missing_file():
    with pytest.raises(NetworkSpecError, match="file not found"):
        load_network("no/such/net.yaml")


# -- property-based: the loader either returns a network or raises NetworkSpecError -------

json_leaf = (st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True)
             | st.text(max_size=8) | st.sampled_from(["relu", "tanh", "mse", "ce", "linear"]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                          max_leaves=20)
plausible = (st.floats(0.0, 3.0) | st.integers(0, 5) | st.booleans()
             | st.sampled_from(["relu", "tanh", "softplus", "sigmoid", "hard_sigmoid", "ce",
                                "feedback_alignment", "lecun_uniform", "zeros"])
             | st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4))
FIELDS = ["gle_network", "name", "dt", "input", "size", "layers", "tau_m", "tau_r", "phi",
          "bias", "weights", "biases", "learning", "enabled", "eta", "gamma", "beta", "loss",
          "prospective_errors", "init", "scheme", "seed", "backward", "learn_tau"]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_description(draw):
    d = golden_dict(draw(st.sampled_from(GOLDEN_CASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(d) if p]
        path = draw(st.sampled_from(paths))
        parent = d
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELDS))] = draw(plausible | json_value)
        else:
            parent[path[-1]] = draw(plausible | json_value)
    return d


def _check(d):
    try:
        net = network_from_dict(d)
    except NetworkSpecError as exc:
        assert str(exc)
        return
    # whatever loads must be usable: right shapes and a clean step
    if max(net.sizes) <= 64:
        for i in range(len(net.layers)):
            assert net.initial_weights(i).shape == net.weight_shape(i)
        tr = Engine(net).run(np.zeros((2, net.input.size)), record=True)
        assert all(np.all(np.isfinite(v)) for v in tr.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_description())
def test_mutated_descriptions_load_or_raise_spec_error(d):
    _check(d)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=8) | json_value)
def test_random_documents_load_or_raise_spec_error(d):
    _check(d)


def test_layer_names_are_free_text_and_work_in_trace_keys():
    d = golden_dict()
    d["layers"][0]["name"] = "hidden layer.1"
    net = network_from_dict(d)
    tr = Engine(net).run(np.zeros((3, 2)), record=["r.hidden layer.1", "u"])
    assert tr["r.hidden layer.1"].shape == (3, 1, 4) and "u.hidden layer.1" in tr
