"""What was mapped is what runs: ``simulate BUNDLE_DIR`` and ``deploy`` run the bundle's own
integers (formats checked against its manifest, weights and tables from its arrays.npz)."""
from __future__ import annotations

import json
import re
import sys
import types
import warnings
from dataclasses import replace

import numpy as np
import pytest

from lava_gle import load_network
from lava_gle.backends import simulate, twin
from lava_gle.cli import main
from lava_gle.errors import LavaGleError
from lava_gle.mappings import deploy as deploy_mod
from lava_gle.mappings.bundle import BundleError, read_bundle, write_bundle
from lava_gle.mappings.mapper import map_network
from lava_gle.traces import load_traces

from conftest import GOLDEN

MLP = GOLDEN / "visible_mlp"


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def mlp():
    return load_network(MLP / "network.json")


@pytest.fixture
def bundle_dir(mlp, tmp_path):
    return write_bundle(map_network(mlp), tmp_path / "b")[0]


@pytest.fixture
def streams():
    return np.load(MLP / "inputs.npy"), np.load(MLP / "targets.npy")


def edit_arrays(bundle_dir, key: str, edit) -> np.ndarray:
    """Replace array ``key`` of the bundle by ``edit(array)``; return the new array."""
    with np.load(bundle_dir / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = np.asarray(edit(arrays[key].copy()))
    np.savez_compressed(bundle_dir / "arrays.npz", **arrays)
    return arrays[key]


def nudge_first_weight(w: np.ndarray) -> np.ndarray:
    """``w`` with its first entry one LSB further from zero (or nearer, at the limit)."""
    w.flat[0] += 1 if 0 <= w.flat[0] < 255 else -1
    return w


def simulate_cli(source, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"t{len(list(tmp_path.glob('t*.npz')))}.npz"
    assert main(["simulate", str(source), "--inputs", str(MLP / "inputs.npy"), "--targets",
                 str(MLP / "targets.npy"), "--out", str(out), "--quiet", *extra]) == 0
    return load_traces(out)


def assert_same_traces(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


# -- simulate BUNDLE_DIR -------------------------------------------------------------

def test_simulating_a_bundle_is_simulating_its_description_in_integers(
        mlp, bundle_dir, streams, tmp_path):
    from_bundle = simulate_cli(bundle_dir, tmp_path)  # default backend: numpy-fixed
    assert_same_traces(from_bundle, simulate(mlp, *streams, backend="numpy-fixed"))


def test_one_changed_weight_in_the_bundle_changes_the_run(bundle_dir, tmp_path):
    before = simulate_cli(bundle_dir, tmp_path)
    edit_arrays(bundle_dir, "W.hidden", nudge_first_weight)
    after = simulate_cli(bundle_dir, tmp_path)
    for key in ("u.hidden", "r.hidden", "output", "W.hidden"):
        assert not np.array_equal(before[key], after[key]), key


def test_the_result_holds_the_bundles_weights(mlp, tmp_path, streams):
    """Without learning the final W of the run is the bundle's array times its LSB."""
    frozen = replace(mlp, learning=replace(mlp.learning, enabled=False))
    out = write_bundle(map_network(frozen), tmp_path / "b")[0]
    w_exp = read_bundle(out).manifest["fixed_point"]["layers"][0]["weights"]["exp"]
    w = edit_arrays(out, "W.hidden", nudge_first_weight)
    b = read_bundle(out).arrays()["b.hidden"]
    traces = simulate_cli(out, tmp_path)
    assert np.array_equal(traces["W.hidden"], w * 2.0 ** w_exp)
    assert np.array_equal(traces["b.hidden"], b * 2.0 ** read_bundle(out).manifest[
        "fixed_point"]["layers"][0]["biases"]["exp"])
    assert traces["W.hidden"].flat[0] != simulate(frozen, *streams,
                                                  backend="numpy-fixed")["W.hidden"].flat[0]


@pytest.mark.lava
@pytest.mark.parametrize("backend", ["lava-fixed", "lava-fixed-fused"])
def test_lava_runs_the_bundles_integers(bundle_dir, streams, backend):
    edit_arrays(bundle_dir, "W.hidden", nudge_first_weight)
    qnet = read_bundle(bundle_dir).quantized()
    x, y = streams[0][:150], streams[1][:150]
    lava = simulate(qnet.net, x, y, backend=backend, qnet=qnet)
    assert_same_traces(lava, simulate(qnet.net, x, y, backend=twin(backend), qnet=qnet))
    assert not np.array_equal(lava["output"],
                              simulate(qnet.net, x, y, backend="numpy-fixed")["output"])


def test_a_float_backend_or_calibration_on_a_bundle_is_refused(bundle_dir, capsys):
    x = str(MLP / "inputs.npy")
    assert main(["simulate", str(bundle_dir), "--backend", "numpy", "--inputs", x,
                 "--out", str(bundle_dir / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --backend numpy: a bundle holds integers") and \
        str(bundle_dir / "network.json") in err and err.count("\n") == 1
    assert main(["simulate", str(bundle_dir), "--calibrate", "--inputs", x,
                 "--out", str(bundle_dir / "t.npz")]) == 2
    assert capsys.readouterr().err.startswith("error: --calibrate: a bundle's formats")
    assert not (bundle_dir / "t.npz").exists()


def test_simulate_refuses_integers_for_a_float_backend(mlp, bundle_dir, streams):
    with pytest.raises(LavaGleError, match="backend 'numpy' is float"):
        simulate(mlp, *streams, backend="numpy", qnet=read_bundle(bundle_dir).quantized())


# -- refusing a bundle that is not what it says ------------------------------------------

@pytest.mark.parametrize("section, edit, field", [
    ("fixed_point", lambda m: m["layers"][0]["weights"].update(exp=m["layers"][0]["weights"]
                                                               ["exp"] - 1),
     "fixed_point.layers[0].weights.exp"),
    ("learning_rules", lambda m: m["hidden"]["weights"].update(dw="0"),
     "learning_rules.hidden.weights.dw"),
])
def test_a_changed_section_of_the_manifest_is_named(bundle_dir, section, edit, field):
    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest[section])
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"^.*manifest.json: " + re.escape(field)):
        read_bundle(bundle_dir).quantized()


def test_lists_of_other_lengths_are_named_by_their_lengths():
    """Found by a new-user audit: a layer's size edited in network.json showed two
    truncated lists that looked identical ([3277, 3277, ... and [3277, 3277, ...)."""
    from lava_gle.mappings.bundle import _first_difference
    assert _first_difference({"dt_m": [3277] * 4}, {"dt_m": [3277] * 5}, "c") == \
        "c.dt_m (4 entries in the manifest, 5 derived)"


def test_a_manifest_that_differs_from_its_network_is_refused(bundle_dir, tmp_path, capsys):
    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["fixed_point"]["layers"][1]["formats"]["u_bits"] += 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as info:
        read_bundle(bundle_dir).quantized()
    msg = str(info.value)
    assert "fixed_point.layers[1].formats.u_bits" in msg and "map the network again" in msg
    assert "network.json was edited after mapping, or the bundle was mapped by another " \
        "lava-gle (lava-gle " in msg and "\n" not in msg
    assert main(["simulate", str(bundle_dir), "--inputs", str(MLP / "inputs.npy"),
                 "--out", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("key, edit, needed", [
    ("W.hidden", lambda w: np.full_like(w, 300), "W.hidden holds 300, outside [-256, 255]"),
    ("b.out", lambda b: np.full_like(b, -257), "b.out holds -257, outside [-256, 255]"),
    ("W.out", lambda w: w[:, :-1], "W.out has shape [2, 3], layer 'out' needs [2, 4]"),
    ("W.hidden", lambda w: w.astype(np.float64) + 0.5, "W.hidden holds float64 values"),
])
def test_an_array_out_of_shape_type_or_range_is_refused(bundle_dir, key, edit, needed):
    edit_arrays(bundle_dir, key, edit)
    with pytest.raises(BundleError) as info:
        read_bundle(bundle_dir).quantized()
    assert needed in str(info.value) and "\n" not in str(info.value)


def test_a_missing_or_unexpected_array_is_refused(bundle_dir):
    with np.load(bundle_dir / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "b.out"}
    arrays["W.extra"] = np.zeros(2, dtype=np.int64)
    np.savez_compressed(bundle_dir / "arrays.npz", **arrays)
    with pytest.raises(BundleError, match=r"missing arrays \['b.out'\]; unexpected arrays "
                                          r"\['W.extra'\]"):
        read_bundle(bundle_dir).quantized()


# -- neuron-local normalisers ------------------------------------------------------

@pytest.fixture
def normalised(mlp):
    """The golden MLP with a gain on its hidden layer and error normalisers on both, their
    state as after 100 updates (``normaliser_state``)."""
    from conftest import with_normalisers
    from lava_gle.network import NormaliserState
    net = with_normalisers(mlp)
    rng = np.random.default_rng(3)
    return replace(net, layers=tuple(replace(layer, normaliser_state=NormaliserState(
        100, None if layer.gain_decay is None else rng.uniform(0.05, 0.5, layer.size),
        rng.uniform(1e-4, 1e-2, layer.size))) for layer in net.layers))


def test_a_bundle_holds_and_runs_its_normalisers(normalised, tmp_path, streams):
    """Mapped with normalisers: the manifest names their integer form, arrays.npz holds
    their state (mean squares and update counts), simulating the bundle is simulating the
    description in integers, and one changed mean square changes the run."""
    out, _ = write_bundle(map_network(normalised), tmp_path / "b")
    bundle = read_bundle(out)
    layers = bundle.manifest["fixed_point"]["layers"]
    assert layers[0]["normalisers"]["gain_decay_shift"] == 6  # SHIFT_DECAY = 1 - 2**-6
    assert layers[1]["normalisers"]["gain_decay_shift"] is None
    assert layers[1]["normalisers"]["error_decay_shift"] == 6
    arrays = bundle.arrays()
    assert {"gain_ms.hidden", "error_ms.hidden", "norm_steps.hidden", "error_ms.out",
            "norm_steps.out"} <= set(arrays) and "gain_ms.out" not in arrays
    assert int(arrays["norm_steps.hidden"]) == 100
    x, y = streams[0][:200], streams[1][:200]
    qnet = bundle.quantized()
    from_bundle = simulate(qnet.net, x, y, backend="numpy-fixed", qnet=qnet)
    assert_same_traces(from_bundle, simulate(normalised, x, y, backend="numpy-fixed"))
    edit_arrays(out, "gain_ms.hidden", lambda ms: ms * 4)  # gains halve
    qnet = read_bundle(out).quantized()
    halved = simulate(qnet.net, x, y, backend="numpy-fixed", qnet=qnet)
    assert not np.array_equal(halved["u.out"], from_bundle["u.out"])
    assert np.array_equal(halved["u.hidden"][:2], from_bundle["u.hidden"][:2])


def test_a_mean_square_beyond_a_24_bit_values_is_refused(normalised, tmp_path):
    out, _ = write_bundle(map_network(normalised), tmp_path / "b")
    edit_arrays(out, "error_ms.out", lambda ms: np.full_like(ms, 1 << 46))
    with pytest.raises(BundleError, match=r"error_ms.out holds 70368744177664, outside "
                                          r"\[0, 70368744177663\]"):
        read_bundle(out).quantized()


@pytest.mark.lava
def test_lava_runs_the_bundles_normalisers(normalised, tmp_path, streams):
    out, _ = write_bundle(map_network(normalised), tmp_path / "b")
    edit_arrays(out, "gain_ms.hidden", lambda ms: ms * 4)
    qnet = read_bundle(out).quantized()
    x, y = streams[0][:100], streams[1][:100]
    lava = simulate(qnet.net, x, y, backend="lava-fixed", qnet=qnet)
    assert_same_traces(lava, simulate(qnet.net, x, y, backend=twin("lava-fixed"), qnet=qnet))
    assert not np.array_equal(lava["output"], simulate(normalised, x, y,
                                                       backend="numpy-fixed")["output"])


# -- deploy ---------------------------------------------------------------------------

@pytest.fixture
def stand_in_lava_loihi(monkeypatch):
    for name in deploy_mod.HARDWARE_MODULES:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_deploy_hands_the_bundles_integers_to_the_hardware_runner(
        bundle_dir, streams, stand_in_lava_loihi, monkeypatch):
    w = edit_arrays(bundle_dir, "W.hidden", nudge_first_weight)
    import lava_gle.runtime.simulator as simulator
    seen = {}

    class StandIn:
        def __init__(self, net, backend, qnet=None):
            seen.update(net=net, backend=backend, qnet=qnet)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def run(self, inputs, targets=None, record=True, config_class=None):
            return {"output": np.zeros((len(inputs), 1, 2))}
    monkeypatch.setattr(simulator, "LavaNetwork", StandIn)
    deploy_mod.deploy(bundle_dir, streams[0][:5, 0])
    assert seen["backend"] == "fixed"
    assert np.array_equal(seen["qnet"].layers[0].w, w)
    assert seen["qnet"].chip_timing  # what a chip runs, as lava-fixed
    assert seen["qnet"].manifest() == replace(read_bundle(bundle_dir).quantized(),
                                              chip_timing=True).manifest()


def test_deploy_refuses_a_tampered_bundle_before_looking_for_hardware(bundle_dir, streams):
    edit_arrays(bundle_dir, "W.out", lambda w: np.full_like(w, -300))

    def not_looked_for(name):
        raise AssertionError("the bundle is checked first")
    with pytest.raises(BundleError, match="W.out holds -300"):
        deploy_mod.deploy(bundle_dir, streams[0][:5, 0], import_module=not_looked_for)
