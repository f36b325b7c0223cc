"""Post-training calibration of the fixed-point formats from a float run."""
import warnings

import numpy as np
import pytest

from conftest import GoldenCase
from lava_gle.calibration import calibrate
from lava_gle.numerics.engine import Engine
from lava_gle.errors import LavaGleError
from lava_gle.numerics.engine import FixedEngine
from lava_gle.quantize import quantize_network


def frozen(net):
    import dataclasses
    return dataclasses.replace(net, learning=dataclasses.replace(net.learning, enabled=False))


def test_calibration_sizes_input_and_unbounded_rates_from_what_it_saw():
    case = GoldenCase("visible_mlp")  # tanh hidden layer (bounded), linear output
    x = 3.0 * case.inputs  # beyond the default input range of 2
    cal = calibrate(case.net, x)
    assert cal.fixed_point["input_range"] == pytest.approx(np.abs(x).max())
    hidden, out = cal.layers
    assert "rate_bits" not in hidden.fixed_point  # tanh keeps its exact range
    ref = Engine(frozen(case.net)).run(x, record=["r", "u"])
    r_max = np.abs(ref["r.out"]).max()
    q = quantize_network(frozen(cal))
    bits = out.fixed_point["rate_bits"]  # the range of an 8-bit signed payload
    assert 127 * 2.0 ** -bits >= r_max > 63 * 2.0 ** -bits
    top = q.layers[1]  # the output's 24-bit payload has twice that range
    assert top.consts.phi.p_max * 2.0 ** -top.rate_bits == pytest.approx(2 * 128 * 2.0 ** -bits)
    assert all(2.0 ** (23 - ql.u_bits) >= 2 * np.abs(ref[f"u.{ql.name}"]).max()
               for ql in q.layers)


def test_calibrated_fixed_point_tracks_float_where_the_defaults_clip():
    case = GoldenCase("visible_mlp")
    net, x = frozen(case.net), 3.0 * case.inputs[:400]
    ref = Engine(net).run(x, record=["output"])["output"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = FixedEngine(net).run(x, record=["output"])
        cal = FixedEngine(calibrate(net, x)).run(x, record=["output"])
    err = {k: np.sqrt(np.mean((t["output"] - ref) ** 2)) / np.ptp(ref)
           for k, t in (("default", default), ("calibrated", cal))}
    assert int(default["sat.input"]) > 0 and int(cal["sat.input"]) == 0
    assert err["calibrated"] < 0.02 and err["default"] > 2 * err["calibrated"], err


def test_options_in_the_description_win_and_bad_inputs_are_named():
    case = GoldenCase("visible_mlp")
    from lava_gle.commands.sweep import with_setting
    net = with_setting(with_setting(case.net, "input_range", 0.5), "out.rate_bits", 2)
    cal = calibrate(net, case.inputs)
    assert cal.fixed_point["input_range"] == 0.5 and cal.layers[1].fixed_point["rate_bits"] == 2
    with pytest.raises(LavaGleError, match=r"inputs have shape \[800, 1\]; network "
                                           r"'visible_mlp' needs \[T, 2\]"):
        calibrate(net, case.inputs[:, 0, :1])


def test_cli_calibrate_flag_sizes_the_formats_from_the_inputs(tmp_path):
    from lava_gle.cli import main
    case = GoldenCase("visible_mlp")
    x = tmp_path / "x.npy"
    np.save(x, 3.0 * case.inputs[:200, 0])  # [T, in], beyond the default input range
    sat = {}
    for flag in ([], ["--calibrate"]):
        out = tmp_path / f"t{len(flag)}.npz"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["simulate", str(case.dir / "network.json"), "--inputs", str(x),
                         "--backend", "numpy-fixed", "--out", str(out), "--quiet"] + flag) == 0
        with np.load(out) as data:
            sat[bool(flag)] = int(data["sat.input"])
    assert sat[False] > 0 and sat[True] == 0


def test_targets_size_the_error_formats_from_the_errors_they_cause():
    """With targets, each layer's error format holds twice its largest error (and W^T e
    from above) and its error trace spans the 99th percentile of |e|; without, the error
    formats stay the quantiser's bounds; options the description sets win."""
    from lava_gle.calibration import ERROR_TRACE_QUANTILE, POTENTIAL_MARGIN
    from lava_gle.commands.sweep import with_setting
    case = GoldenCase("visible_mlp")
    net, x, y = case.net, case.inputs, case.targets
    cal = calibrate(net, x, y)
    ref = Engine(frozen(net)).run(x, y, record=["e", "v"])
    for i, layer in enumerate(cal.layers):
        o, e = layer.fixed_point, np.abs(ref[f"e.{layer.name}"])
        top = 2.0 ** (23 - o["error_bits"])  # the error format's range
        biggest = max(e.max(), np.abs(ref[f"v.{layer.name}"]).max())
        assert top >= POTENTIAL_MARGIN * biggest
        if i + 1 == len(cal.layers):  # the output's: the smallest such range (or the
            # finest format, 23 fraction bits)
            assert top < 2 * POTENTIAL_MARGIN * biggest or o["error_bits"] == 23
        assert o["error_trace_range"] == pytest.approx(
            max(np.quantile(e, ERROR_TRACE_QUANTILE), 63 * 2.0 ** -o["error_bits"]))
    assert not {"error_bits", "error_trace_range"} & set(calibrate(net, x).layers[0].fixed_point)
    mine = calibrate(with_setting(net, "out.error_trace_range", 0.5), x, y)
    assert mine.layers[1].fixed_point["error_trace_range"] == 0.5



def test_targets_beyond_the_initial_outputs_size_the_output_rates_to_hold_them():
    """The output rates learn towards the targets: with targets 8x the initial outputs'
    largest rate, rounded up to a power of two (the edge of a format's range), the
    calibrated output format holds them (none clipped), where sizing it from the rates
    alone clipped every one, and it is the finest format that does."""
    case = GoldenCase("visible_mlp")
    net, x = frozen(case.net), case.inputs
    r_max = np.abs(Engine(net).run(x, record=["r"])["r.out"]).max()
    target = 8 * 2.0 ** np.ceil(np.log2(r_max))
    y = np.full(x.shape[:2] + (net.output_size,), target)
    by_rates, by_targets = calibrate(net, x), calibrate(net, x, y)
    clipped = {k: quantize_network(c).quantize_targets(y)[1]
               for k, c in (("rates", by_rates), ("targets", by_targets))}
    assert clipped == {"rates": y.size, "targets": 0}
    # the smallest range that holds them: one bit finer would clip the targets
    finer = 2.0 ** (23 - quantize_network(by_targets).layers[-1].rate_bits - 1)
    assert finer <= target


def test_calibration_takes_a_stream_without_batch_axis_and_names_a_bad_shape():
    """Found by a new-user audit: calibrate refused [T, in] inputs, which every other API
    takes, and the CLI reported the shape it had reshaped them to."""
    case = GoldenCase("visible_mlp")
    x = case.inputs[:200]
    a, b = calibrate(case.net, x[:, 0]), calibrate(case.net, x)
    assert a.fixed_point == b.fixed_point and "input_range" in a.fixed_point
    assert [l.fixed_point for l in a.layers] == [l.fixed_point for l in b.layers]
