"""Values beyond any fixed-point format saturate with their sign and are counted
(issue #12: 1e20 used to wrap to INT64_MIN and come out as -127)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import GoldenCase
from lava_gle import network_from_dict
from lava_gle.numerics import fixed as X
from lava_gle.backends import simulate
from lava_gle.errors import NonFiniteError, ShapeError
from lava_gle.numerics.engine import FixedEngine
from lava_gle.quantize import QuantizationWarning, quantize_network
from lava_gle.numerics.streams import prepare_streams


def quiet_run(backend, net, x, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return simulate(net, x, y, backend=backend, record=["r"])


def test_to_fixed_clips_in_float_with_the_sign_and_counts():
    q, n = X.to_fixed(np.array([1e20, -1e20, np.inf, -np.inf, 3e18, 0.3, -0.7]), 4, -127, 127)
    assert q.tolist() == [127, -127, 127, -127, 127, 5, -11] and n == 5
    assert q.dtype == np.int64
    # without bounds of its own, a value still keeps its sign beyond int64
    big, n = X.to_fixed(np.array([1e30, -1e30]), 0)
    assert big.tolist() == [X.INT_LIMIT, -X.INT_LIMIT] and n == 2


def test_to_fixed_refuses_nan_naming_the_array():
    with pytest.raises(NonFiniteError, match=r"inputs hold NaN \(at index \[1, 0\]\)"):
        X.to_fixed(np.array([[0.0], [np.nan]]), 5, -127, 127, what="inputs")


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_numpy_fixed_input_1e20_saturates_like_1e6(sign):
    case = GoldenCase("visible_mlp")
    runs = {v: quiet_run("numpy-fixed", case.net, np.full((100, 1, 2), sign * v))
            for v in (1e6, 1e20)}
    assert np.array_equal(runs[1e20]["r.hidden"], runs[1e6]["r.hidden"])
    assert int(runs[1e20]["sat.input"]) == int(runs[1e6]["sat.input"]) == 200
    # the saturated input is +-127 payloads, not the wrapped INT64_MIN
    q = quantize_network(case.net)
    payload = q.quantize_inputs(np.full((1, 2), sign * 1e20))[0]
    assert payload.tolist() == [[sign * 127] * 2]
    # and the hidden layer's tanh follows the drive W x + b of that input's sign
    w, b = case.net.initial_weights(0), case.net.initial_biases(0)
    drive = w @ (np.full(2, sign * 127 * 2.0 ** -q.in_bits)) + b
    big = np.abs(drive) > 0.5
    assert np.array_equal(np.sign(runs[1e20]["r.hidden"][-1, 0][big]), np.sign(drive[big]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fixed_point_runs_refuse_non_finite_inputs_naming_the_place(bad):
    case = GoldenCase("visible_mlp")
    x = np.zeros((5, 1, 2))
    x[3, 0, 1] = bad
    with pytest.raises(ShapeError, match="inputs hold a non-finite value at step 3, batch 0, "
                                         "channel 1"):
        FixedEngine(case.net).run(x)


def test_numpy_fixed_targets_beyond_the_format_saturate_with_their_sign():
    case = GoldenCase("visible_mlp")
    q = quantize_network(case.net)
    y, n = q.quantize_targets(np.array([[1e20, -1e20]]))
    assert y.tolist() == [[X.STATE_MAX, -X.STATE_MAX]] and n == 2
    x = case.inputs[:50]
    runs = {v: FixedEngine(case.net) for v in (1e6, 1e20)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        out = {v: e.run(x, np.full((50, 2), v), record=["e"]) for v, e in runs.items()}
    assert np.array_equal(out[1e20]["e.out"], out[1e6]["e.out"])
    assert runs[1e20].saturation["target"] == runs[1e6].saturation["target"] == 100


def test_weights_beyond_the_8_bit_format_saturate_with_their_sign():
    net = network_from_dict({
        "gle_network": 1, "dt": 0.1, "input": {"size": 2},
        "fixed_point": {"input_range": 1.0},
        "layers": [{"name": "out", "size": 1, "tau_m": 1.0, "tau_r": 0.5, "phi": "linear",
                    "weights": [[1e20, -1e20]], "fixed_point": {"weight_exp": 0}}]})
    with pytest.warns(QuantizationWarning, match="2 weights saturate"):
        q = quantize_network(net)
    assert q.layers[0].w.tolist() == [[255, -256]]  # the learning engine's range: sign and 8 bits


def test_ce_class_beyond_int64_is_refused_with_its_value():
    net = network_from_dict({
        "gle_network": 1, "dt": 0.1, "input": {"size": 1},
        "layers": [{"name": "out", "size": 3, "tau_m": 1.0, "tau_r": 0.5, "phi": "linear"}],
        "learning": {"loss": "ce"}})
    with pytest.raises(ShapeError, match=r"targets hold class 1e\+20, outside 0\.\.2"):
        prepare_streams(net, np.zeros((2, 1)), np.array([0.0, 1e20]))


@pytest.mark.lava
def test_lava_fixed_input_1e20_saturates_like_1e6():
    case = GoldenCase("visible_mlp")
    x = np.full((20, 2), 1e20)
    lava = quiet_run("lava-fixed", case.net, x)
    twin = quiet_run("numpy-fixed-chip", case.net, np.full((20, 2), 1e6))  # lava-fixed's
    assert np.array_equal(lava["r.hidden"], twin["r.hidden"])
    assert int(lava["sat.input"]) == int(twin["sat.input"]) == 40
