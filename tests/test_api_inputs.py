"""Bad inputs to the Python API, found by an audit of the API as a researcher calls it
(session 51). Each case failed on the code before its fix: a traceback from inside
NumPy or an endless loop, or numbers that could not be right (learning run backwards by
``set_epoch_steps(-1)``, weights broadcast from another network's state, tau_m below dt
run unchecked after ``dataclasses.replace``). The Lava runs' saturation warning is
tested in ``models/test_fixed_models.py`` (``lava_and_twin_counts``)."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from lava_gle import load_network
from lava_gle.calibration import calibrate
from lava_gle.errors import LavaGleError, NetworkSpecError, ShapeError
from lava_gle.mappings.mapper import map_network
from lava_gle.numerics.engine import Engine, FixedEngine
from lava_gle.quantize import QuantizationError, QuantizationWarning, quantize_network

NET = load_network("examples/mlp.yaml")  # 2 -> 8 (tanh) -> 2
HIDDEN, OUT = NET.layers


def _with_hidden(**changes):
    return replace(NET, layers=(replace(HIDDEN, **changes), OUT))


CASES = {  # case: (call, error type, words of its one-line message)
    "epoch_steps -1 (learning backwards)": (lambda: Engine(NET).set_epoch_steps(-1),
                                            NetworkSpecError, "epoch_steps: must be >= 1"),
    "epoch_steps 0 in integers": (lambda: FixedEngine(NET).set_epoch_steps(0),
                                  NetworkSpecError, "epoch_steps: must be >= 1"),
    "epoch_steps 2.5": (lambda: Engine(NET).set_epoch_steps(2.5), NetworkSpecError,
                        "epoch_steps: must be an integer"),
    "tau_m below dt by replace": (lambda: Engine(_with_hidden(tau_m=0.001)), NetworkSpecError,
                                  "layers[0].tau_m: 0.001 is smaller than dt"),
    "unknown phi by replace": (lambda: Engine(_with_hidden(phi="gelu")), NetworkSpecError,
                               "layers[0].phi: must be one of"),
    "negative eta": (lambda: quantize_network(NET.with_learning(eta=-0.02)), NetworkSpecError,
                     "learning.eta: must be >= 0"),
    "loss spelt CE": (lambda: Engine(NET.with_learning(loss="CE")), NetworkSpecError,
                      "learning.loss: must be one of"),
    "W of another shape": (lambda: Engine(NET.with_parameters(
        [np.zeros((3, 3)), NET.initial_weights(1)], [NET.initial_biases(0), NET.initial_biases(1)])),
        NetworkSpecError, "layers[0].weights: has shape [3, 3], expected [8, 2]"),
    "one W for two layers": (lambda: NET.with_parameters([NET.initial_weights(0)],
                                                         [NET.initial_biases(0)]),
                             ShapeError, "one W and one b per layer: 2 layers, got 1 W"),
    "a path for a Network": (lambda: Engine("examples/mlp.yaml"), NetworkSpecError,
                             "expected a Network, got str; build one with load_network"),
    "a dict for a Network": (lambda: calibrate({"gle_network": 1}, np.zeros((4, 2))),
                             NetworkSpecError, "build one with network_from_dict"),
    "reset to a negative batch": (lambda: Engine(NET).reset(-1), ShapeError,
                                  "reset: batch must be a whole number of copies >= 1"),
    "fractional block size (looped forever)": (lambda: map_network(NET, block_size=2.5),
                                               LavaGleError, "whole number of neurons"),
    "chips as a string": (lambda: map_network(NET, chips="2"), LavaGleError,
                          "--chips must be a whole number"),
    "qnet of another network": (lambda: FixedEngine(NET, qnet=quantize_network(
        NET.with_learning(eta=0.2))), QuantizationError,
        "qnet quantises another network than the one given (learning.eta 0.2 / 0.02"),
    "calibrating on zeros": (lambda: calibrate(NET.with_learning(enabled=False),
                                               np.zeros((20, 2))),
                             LavaGleError, "the inputs are all zero"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_api_input_gets_one_clear_error(case):
    call, error, words = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        with pytest.raises(error) as info:
            call()
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("arith", ["float", "fixed"])
def test_a_state_of_another_network_or_arithmetic_is_refused_before_anything_changes(arith):
    """A float state loaded into integers used to cast W to int and then fail on a
    missing key; a smaller network's W was broadcast onto every row. Both are refused,
    and the engine keeps its own numbers; its own state still loads."""
    make = Engine if arith == "float" else FixedEngine
    x = np.random.default_rng(0).normal(size=(20, 2))
    other = (FixedEngine if arith == "float" else Engine)(NET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)  # the inputs clip in integers
        other.run(x)
    smaller = Engine(_with_hidden(size=1, tau_m=1.0, tau_r=0.1)) if arith == "float" else \
        FixedEngine(_with_hidden(size=1, tau_m=1.0, tau_r=0.1))
    engine = make(NET)
    engine.run(x)
    before = engine.state_dict()
    for state, words in ((other.state_dict(), "'W.0' is "), (smaller.state_dict(), "[1, 2]")):
        with pytest.raises(ShapeError, match=r"the state's .*another network") as info:
            engine.load_state_dict(state)
        assert words in str(info.value)
        for key, value in engine.state_dict().items():
            np.testing.assert_array_equal(value, before[key], err_msg=key)
    fresh = make(NET)
    fresh.load_state_dict(before)
    np.testing.assert_array_equal(fresh.run(x, record=["r"])["r.out"],
                                  engine.run(x, record=["r"])["r.out"])


def test_calibrating_on_tiny_inputs_stays_in_the_format_and_names_a_silent_layer():
    """Inputs 1e-3 wide used to give the output layer rate_bits 17, which no description
    holds (saved and loaded, it was refused), and a tanh layer whose rates lie below its
    payload's LSB, so that the integers were all zero without a word."""
    x = 1e-3 * np.random.default_rng(0).normal(size=(200, 2))
    with pytest.warns(QuantizationWarning, match=r"layer 'hidden': its rates reach only "
                                                 r"0\.00\d+, below half the LSB 0\.0078"):
        cal = calibrate(NET.with_learning(enabled=False), x)
    assert cal.layers[1].fixed_point["rate_bits"] == 16
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        calibrate(NET.with_learning(enabled=False), 1e3 * x)  # rates of a usable size


def test_compare_runs_refuses_targets_runs_and_tolerances_that_do_not_fit():
    """Targets given transposed were reshaped to the output silently (a loss of other
    numbers), runs of other lengths failed inside NumPy's broadcasting, a negative
    tolerance judged every variable, and ``chunks=0`` failed with an IndexError."""
    from lava_gle.analysis.comparison import compare_runs, run_backend
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)), rng.uniform(-0.5, 0.5, (60, 2))
    run, short = run_backend(NET, x, y, "numpy"), run_backend(NET, x[:40], y[:40], "numpy")
    assert compare_runs(NET, run, run, y)["task"]  # the same targets, as the runs had them
    for call, error, words in (
            (lambda: compare_runs(NET, run, run, y.T.copy()), ShapeError, "targets"),
            (lambda: compare_runs(NET, run, short, y), ShapeError,
             "the runs differ in [steps, batch]: numpy [60, 1], numpy [40, 1]"),
            (lambda: compare_runs(NET, run, run, y, tolerance=-1), LavaGleError,
             "tolerance must be a positive number"),
            (lambda: run_backend(NET, x, y, "numpy", chunks=0), LavaGleError,
             "chunks must be a whole number >= 1")):
        with pytest.raises(error) as info:
            call()
        assert words in str(info.value)
