"""Shared fixtures: the golden cases shipped in tests/data/golden, and the slow-test switch."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from lava_gle import load_network
from lava_gle.traces import load_traces

# Property tests draw the same examples on every run and machine, so a CI failure is the
# same failure on a developer's machine; HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden"
GOLDEN_CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.npz").is_file())


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


@pytest.fixture(autouse=True)
def _lava_marker_is_honest(request, monkeypatch):
    """Fail a test that starts the Lava runtime without ``@pytest.mark.lava``, so that
    ``-m "not lava"`` leaves out every test that forks Lava's processes. Lava creates
    every runtime in ``AbstractProcess.create_runtime`` (also from ``run``); a runtime
    started in a subprocess (``python -m lava_gle.cli ...``) is not seen."""
    if request.node.get_closest_marker("lava") is not None:
        return
    from lava_gle.runtime.fork_safety import prepare_for_lava
    prepare_for_lava()
    from lava.magma.core.process.process import AbstractProcess

    def refuse(*args, **kwargs):
        pytest.fail(f"{request.node.nodeid} starts the Lava runtime: mark it "
                    "@pytest.mark.lava", pytrace=False)

    monkeypatch.setattr(AbstractProcess, "create_runtime", refuse)


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow")
    skip = pytest.mark.skip(reason="slow: run with `make test-slow`")
    for item in items:
        if "slow" in item.keywords:
            # long runs get an hour instead of the suite's per-test timeout (setup.cfg)
            item.add_marker(pytest.mark.timeout(3600) if run_slow else skip)


class GoldenCase:
    """One golden case: its network, streams and expected traces."""

    def __init__(self, name: str):
        self.name = name
        self.dir = GOLDEN / name
        self.net = load_network(self.dir / "network.json")
        self.inputs = np.load(self.dir / "inputs.npy")
        self.targets = np.load(self.dir / "targets.npy")
        self.expected = load_traces(self.dir / "expected.npz")


#: Error bounds that clip the golden visible_mlp's errors often (|e| reaches 0.37 and 0.096).
MLP_ERROR_BOUNDS = {"hidden": 0.05, "out": 0.04}


def benchmark_module(name: str):
    """``benchmarks/<name>.py`` imported as a module (registered in ``sys.modules``, which
    dataclasses need), without running its ``main``."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def with_error_bounds(net, bounds=MLP_ERROR_BOUNDS, learning=None):
    """``net`` with each layer's ``error_bound`` from ``bounds`` (by name; None where not
    given), and ``learning`` fields replaced."""
    import dataclasses
    net = dataclasses.replace(net, layers=tuple(
        dataclasses.replace(layer, error_bound=bounds.get(layer.name)) for layer in net.layers))
    if learning is not None:
        net = dataclasses.replace(net, learning=dataclasses.replace(net.learning, **learning))
    return net


#: A normaliser decay both arithmetics take (1 - 2**-6: about 64 steps).
SHIFT_DECAY = 1 - 2 ** -6


def with_normalisers(net, gain=SHIFT_DECAY, norm=SHIFT_DECAY):
    """``net`` (two layers, e.g. the golden visible_mlp) with a gain on the hidden layer
    and error normalisers on both (``docs/model.md``, "Neuron-local normalisers")."""
    import dataclasses
    hidden, out = net.layers
    return dataclasses.replace(net, layers=(
        dataclasses.replace(hidden, gain_decay=gain, error_norm_decay=norm),
        dataclasses.replace(out, error_norm_decay=norm)))


def clamping_network():
    """``(net, x, y)``: a 2-4-2 network learning W, b and tau_m whose strong gamma feedback
    (gamma 6 on large output errors) drives the neuron step's Euler operand
    ``du = s - u + gamma e`` beyond what the 37-bit multiplier takes, in both layers: the
    clamp (``sat.du.<layer>``) triggers, and the learned tau_m moves its bound."""
    from lava_gle import network_from_dict
    net = network_from_dict({
        "gle_network": 1, "dt": 0.05, "seed": 3, "input": {"size": 2},
        "layers": [{"name": "h", "size": 4, "tau_m": 1.0, "tau_r": 0.2, "phi": "tanh"},
                   {"name": "out", "size": 2, "tau_m": [0.5, 1.0], "tau_r": 0.5,
                    "phi": "linear"}],
        "learning": {"enabled": True, "eta": 0.5, "gamma": 6.0, "beta": 2.0, "loss": "mse",
                     "learn_tau": True, "eta_tau": 0.05}})
    rng = np.random.default_rng(0)
    return net, rng.uniform(-1, 1, (200, 2, 2)), rng.uniform(-2, 2, (200, 2, 2))


@pytest.fixture(params=GOLDEN_CASES)
def golden(request) -> GoldenCase:
    return GoldenCase(request.param)


@pytest.fixture
def tiny_mnist1d(monkeypatch):
    """MNIST-1D on 12 random 30-step sequences (the same for training and test) in place of
    the dataset; returns the quick configuration of a 2 + 4-unit network at batch 4 with
    GLE's rule (SGD, MSE), no Lava check, ``overrides`` applied."""
    from lava_gle.experiments import mnist1d
    from lava_gle.experiments.training import Dataset
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(12, 30, 1)), np.arange(12) % 10
    monkeypatch.setattr(mnist1d, "load_data", lambda config: Dataset(x, labels, x, labels))

    def config(**overrides):
        return mnist1d.Mnist1dConfig.quick(**{
            "epochs": 2, "batch": 4, "fast": 2, "slow": 4, "optimizer": "sgd", "loss": "mse",
            "sgd_eta": 0.002, "agreement_steps": 0, **overrides})
    return config


@pytest.fixture
def repo() -> Path:
    return REPO


class StopAfter:
    """A stand-in for Ctrl-C: ``requested`` turns true at the ``n``-th check."""

    def __init__(self, n: int):
        self.n = n

    @property
    def requested(self) -> bool:
        self.n -= 1
        return self.n < 0


@pytest.fixture
def stop_after():
    """``stop_after(n)``: a guard that asks a training loop to stop at its n-th check."""
    return StopAfter
