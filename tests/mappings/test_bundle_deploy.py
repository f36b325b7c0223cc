"""Deployment bundles and the Loihi 2 deploy path, with and without a stand-in lava-loihi."""
from __future__ import annotations

import importlib.util
import json
import sys
import types
import warnings

import numpy as np
import pytest

from lava_gle import load_network
from lava_gle.cli import main
from lava_gle.errors import BackendUnavailableError, LavaGleError
from lava_gle.mappings import bundle as bundle_mod
from lava_gle.mappings import deploy as deploy_mod
from lava_gle.mappings.bundle import BundleError, read_bundle, write_bundle
from lava_gle.mappings.mapper import map_network
from lava_gle.network import InputSpec, LayerSpec, Network
from lava_gle.provenance import code_version
from lava_gle.quantize import quantize_network

from conftest import GOLDEN as GOLDEN_DIR

MLP = GOLDEN_DIR / "visible_mlp"


@pytest.fixture
def mlp():
    return load_network(MLP / "network.json")


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_bundle_holds_the_placement_of_every_neuron(mlp, tmp_path, quiet):
    out, _ = write_bundle(map_network(mlp), tmp_path / "b")
    b = read_bundle(out)
    placement = b.manifest["placement"]
    for layer in mlp.layers:
        spans = sorted((blk["start"], blk["stop"]) for blk in placement["blocks"]
                       if blk["layer"] == layer.name)
        assert spans[0][0] == 0 and spans[-1][1] == layer.size
    assert b.manifest["profile"]["name"] == "loihi2"
    assert b.manifest["lava_gle"] == code_version()  # the code that mapped it
    assert b.net.sizes == mlp.sizes
    assert np.array_equal(b.net.initial_weights(0), mlp.initial_weights(0))


def test_bundle_carries_the_quantised_network(mlp, tmp_path, quiet):
    from lava_gle.quantize import quantize_network
    out, _ = write_bundle(map_network(mlp), tmp_path / "b")
    b = read_bundle(out)
    q = quantize_network(mlp)
    assert b.has_fixed_point
    assert b.manifest["fixed_point"] == json.loads(json.dumps(q.manifest()))
    arrays = b.arrays()
    assert sorted(arrays) == b.manifest["arrays"]["keys"]
    for key, value in q.arrays().items():
        assert np.array_equal(arrays[key], value), key


def test_map_calibrate_sizes_the_bundles_formats_from_inputs(tmp_path, quiet):
    x = tmp_path / "x.npy"
    np.save(x, 3.0 * np.load(MLP / "inputs.npy"))  # |x| up to ~3.2: range 4
    net = str(MLP / "network.json")
    assert main(["map", net, "--out", str(tmp_path / "plain")]) == 0
    assert main(["map", net, "--calibrate", str(x), "--out", str(tmp_path / "cal")]) == 0
    plain, cal = read_bundle(tmp_path / "plain"), read_bundle(tmp_path / "cal")
    assert plain.manifest["fixed_point"]["input"]["rate_bits"] == 6  # default range 2
    assert cal.manifest["fixed_point"]["input"]["rate_bits"] == 5
    assert cal.net.fixed_point["input_range"] == pytest.approx(float(np.abs(np.load(x)).max()))


def test_large_networks_get_a_placement_only_bundle(tmp_path):
    layers = tuple(LayerSpec(f"l{i}", 4000, 1.0, 1.0) for i in range(2))
    net = Network(dt=0.1, input=InputSpec(4000), layers=layers, name="big")
    out, notes = write_bundle(map_network(net), tmp_path / "b")
    b = read_bundle(out)
    assert not b.has_fixed_point and b.arrays() == {}
    assert not (out / "arrays.npz").exists()
    assert any("32,000,000 synapses" in n for n in notes)
    assert b.manifest["notes"] == notes


def test_fixed_point_payload_of_an_unrepresentable_network_says_why():
    from lava_gle import network_from_dict
    net = network_from_dict({"gle_network": 1, "dt": 0.01, "input": {"size": 2},
                             "layers": [{"name": "slow", "size": 2, "tau_m": 1e12,
                                         "tau_r": 0.1}]})
    formats, rules, arrays, notes = bundle_mod.fixed_point_payload(net)
    assert formats is None and rules is None and arrays == {}
    assert notes[0].startswith("fixed point: no fixed-point form (layer 'slow': dt/tau_m")


def test_read_bundle_rejects_other_directories(tmp_path):
    with pytest.raises(BundleError, match="not a bundle directory"):
        read_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(BundleError, match="not a lava-gle bundle"):
        read_bundle(tmp_path)


# -- deploy -------------------------------------------------------------------------

def _no_runner(*args):
    raise AssertionError("the hardware runner must not be reached without lava-loihi")


def _absent(name):
    raise ImportError(name)


def test_deploy_without_lava_loihi_stops_before_lava_and_points_to_the_bundle(
        tmp_path, quiet):
    looked_for = []

    def absent(name):
        looked_for.append(name)
        raise ImportError(name)
    x = np.load(MLP / "inputs.npy")[:, 0]
    with pytest.raises(BackendUnavailableError) as info:
        deploy_mod.deploy(MLP / "network.json", x, bundle_dir=tmp_path / "b",
                          import_module=absent, runner=_no_runner)
    msg = str(info.value)
    assert looked_for == list(deploy_mod.HARDWARE_MODULES)
    for needed in ("lava-loihi", "INRC", "lava.magma.core.model.nc.model", str(tmp_path / "b")):
        assert needed in msg
    assert read_bundle(tmp_path / "b").net.name == "visible_mlp"


@pytest.mark.parametrize("bad, words", [
    (lambda x: x[:, :1], "inputs have shape [800, 1]; network 'visible_mlp' needs [T, 2]"),
    (lambda x: np.stack([x, x], 1), "deploy runs one stream: [T, 2] or [T, 1, 2]"),
    (lambda x: np.where(np.arange(len(x))[:, None] == 7, np.nan, x),
     "inputs hold a non-finite value at step 7"),
])
def test_deploy_checks_the_streams_before_it_looks_for_the_chip(tmp_path, quiet, bad, words):
    """Found by a new-user audit: a wrong input size or NaN was said only on the machine
    with lava-loihi; here the hardware message came instead."""
    x = np.load(MLP / "inputs.npy")[:, 0]
    with pytest.raises(LavaGleError) as info:
        deploy_mod.deploy(MLP / "network.json", bad(x), bundle_dir=tmp_path / "b",
                          import_module=_absent, runner=_no_runner)
    assert words in str(info.value) and "hardware" not in str(info.value)
    with pytest.raises(LavaGleError, match="targets have shape"):
        deploy_mod.deploy(tmp_path / "b", x, x[:, :1], runner=_no_runner)


@pytest.mark.skipif(importlib.util.find_spec("lava.magma.core.model.nc") is not None,
                    reason="lava-loihi is installed here")
def test_real_detection_reports_every_missing_module():
    assert deploy_mod.missing_hardware_modules() == list(deploy_mod.HARDWARE_MODULES)


def test_deploy_runs_the_bundle_with_a_stand_in_lava_loihi(mlp, tmp_path, monkeypatch,
                                                           quiet):
    for name in deploy_mod.HARDWARE_MODULES:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    write_bundle(map_network(mlp), tmp_path / "b")
    calls = []

    def runner(bundle, qnet, x, y):
        calls.append((bundle, qnet, x, y))
        return {"output": np.zeros((x.shape[0], 1, bundle.net.output_size))}
    x = np.load(MLP / "inputs.npy")[:, 0]
    y = np.load(MLP / "targets.npy")[:, 0]
    traces = deploy_mod.deploy(tmp_path / "b", x, y, runner=runner)
    (bundle, qnet, gx, gy), = calls
    assert bundle.path == tmp_path / "b" and bundle.has_fixed_point
    for key, value in bundle.arrays().items():
        kind, name = key.split(".")
        ql = qnet.layers[mlp.index(name)]
        held = {"W": ql.w, "b": ql.b}[kind]
        assert np.array_equal(held, value), key
    assert np.array_equal(gx, x) and np.array_equal(gy, y)
    assert traces["output"].shape == (x.shape[0], 1, 2)


def test_hardware_runner_hands_loihi2hwcfg_to_the_lava_network(mlp, tmp_path,
                                                               monkeypatch, quiet):
    """run_on_loihi2 hands Loihi2HwCfg to the Lava network (a stand-in here: open-source
    Lava cannot construct the hardware path), and run_config builds a real Loihi2HwCfg
    that names lava-gle's fixed-point model of every Process."""
    from lava.magma.core.run_configs import Loihi2HwCfg

    import lava_gle.runtime.simulator as simulator
    seen = {}

    class StandIn:
        def __init__(self, net, backend, qnet=None):
            seen["net"], seen["backend"], seen["qnet"] = net, backend, qnet

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def run(self, inputs, targets=None, record=True, config_class=None):
            seen["cfg"] = config_class
            return {"output": np.zeros((len(inputs), 1, 2))}
    monkeypatch.setattr(simulator, "LavaNetwork", StandIn)
    for name in deploy_mod.HARDWARE_MODULES:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    write_bundle(map_network(mlp), tmp_path / "b")
    x = np.load(MLP / "inputs.npy")[:5, 0]
    deploy_mod.deploy(tmp_path / "b", x)
    assert seen["backend"] == "fixed" and seen["net"].sizes == mlp.sizes
    assert seen["qnet"] is not None and seen["qnet"].net is seen["net"]
    assert seen["cfg"] is Loihi2HwCfg
    from lava_gle.numerics.kernels import FixedKernels
    from lava_gle.runtime.builder import build_fused
    from lava_gle.runtime.selection import run_config
    built = build_fused(FixedKernels(quantize_network(mlp)), np.zeros((3, 2)), None,
                        directory=str(tmp_path), record=set())
    cfg = run_config(built.processes, "fixed_pt", config_class=Loihi2HwCfg)
    assert isinstance(cfg, Loihi2HwCfg) and cfg.select_tag == "fixed_pt"
    assert {type(p).__name__: m.__name__ for p, m in cfg.exception_proc_model_map.items()} \
        == {"GleNetworkProcess": "PyGleNetworkFixed"}


def test_deploy_cli_without_hardware_is_a_one_line_error(tmp_path, capsys, quiet):
    code = main(["deploy", str(MLP / "network.json"), "--inputs",
                 str(MLP / "inputs.npy"), "--bundle", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Loihi 2 hardware is not available")
    assert "lava-loihi" in err and str(tmp_path / "b") in err
    assert (tmp_path / "b" / "manifest.json").is_file()
