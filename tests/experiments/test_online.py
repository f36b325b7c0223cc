"""On-chip learning of the classification experiments: MSE one-hot targets, GLE's own SGD
rule with an epoch schedule, batch 1, and training in fixed point end to end."""
from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from lava_gle.numerics.engine import Engine, FixedEngine
from lava_gle.errors import LavaGleError
from lava_gle.experiments import mnist1d, yinyang
from lava_gle.experiments.checkpoint import ExperimentInterrupted
from lava_gle.description import network_from_dict, network_to_dict
from lava_gle.experiments.rules import parse_error_bounds, parse_eta_scales, rule_overrides
from lava_gle.experiments.fixed_training import (
    BIAS_HEADROOM, formats_from_float, parameters_vs_float, write_compare_case,
)
from lava_gle.experiments.training import (
    TrainConfig, epoch_order, frozen_network, onehot_targets, predict, predict_in_place,
    scheduled_network,
)
from lava_gle import load_network
from lava_gle.calibration import calibrate
from lava_gle.quantize import BiasTraceWarning, quantize_network

#: A Yin-Yang run of a few seconds, trained by GLE's rule on MSE targets at batch 1.
TINY = yinyang.YinyangConfig.quick(epochs=2, n_train=150, n_test=60, hidden=12,
                                   optimizer="sgd", loss="mse", batch=1, agreement_steps=0)


def fixed_runner(out):
    """``run(config, part="all", **kw)``: Yin-Yang on numpy-fixed into ``out``, quiet."""
    def run(config, part="all", **kw):
        return yinyang.run_yinyang(config, out, backend="numpy-fixed", quiet=True, part=part,
                                   **kw)
    return run


def test_onehot_targets_and_the_halving_schedule():
    np.testing.assert_array_equal(onehot_targets(np.array([2, 0]), 3, 0.5),
                                  [[0, 0, 0.5], [0.5, 0, 0]])
    cfg = TrainConfig(epochs=9, lr=0.04, optimizer="sgd", halve_every=3)
    assert [cfg.eta(e) for e in (0, 2, 3, 6)] == [0.04, 0.04, 0.02, 0.01]
    assert TrainConfig(epochs=9, lr=0.04).eta(8) == 0.04
    assert TrainConfig(epochs=1, batch=1).test_batch == 1
    assert TrainConfig(epochs=1, batch=1, eval_batch=100).test_batch == 100


def test_fixed_point_backends_default_to_the_chips_rule_and_refuse_the_float_ones():
    assert rule_overrides("numpy-fixed") == {"optimizer": "sgd", "loss": "mse"}
    assert rule_overrides("numpy") == {}
    assert rule_overrides("numpy", "sgd", batch=1, sgd_eta=0.1, halve_every=2) == {
        "optimizer": "sgd", "batch": 1, "sgd_eta": 0.1, "halve_every": 2}
    for items, caps in ((["10"], 10.0), (["h0=10"], {"h0": 10.0}),
                        (["h0=10", "100", "h1=20"], {"*": 100.0, "h0": 10.0, "h1": 20.0})):
        assert rule_overrides("numpy", "sgd", normalizers=0.999,
                              gain_max=items)["gain_max"] == caps
    with pytest.raises(LavaGleError, match="--loss ce .*needs --loss mse"):
        rule_overrides("numpy-fixed", loss="ce")
    with pytest.raises(LavaGleError, match="--optimizer adam .*use --optimizer sgd"):
        rule_overrides("numpy-fixed", optimizer="adam")
    with pytest.raises(LavaGleError, match="--halve-every .*add --optimizer sgd"):
        rule_overrides("numpy", halve_every=3)
    assert rule_overrides("numpy-fixed", eta_scale=["out=0.5"], formats="initial") == {
        "optimizer": "sgd", "loss": "mse", "eta_scale": {"out": 0.5}, "formats": "initial"}
    with pytest.raises(LavaGleError, match="--eta-scale .*add --optimizer sgd"):
        rule_overrides("numpy", eta_scale=["out=0.5"])
    with pytest.raises(LavaGleError, match="--formats .*backend numpy is float"):
        rule_overrides("numpy", "sgd", formats="float")


@pytest.mark.parametrize("item", ["out", "out=", "=2", "out=-1", "out=-0.1", "out=x", "out=inf"])
def test_bad_eta_scale_items_are_refused_with_the_expected_form(item):
    with pytest.raises(LavaGleError, match=f"--eta-scale {item}: expected LAYER=SCALE"):
        parse_eta_scales([item])
    assert parse_eta_scales(["h0=0", "out=0.5"]) == {"h0": 0.0, "out": 0.5}  # 0: frozen


def test_eta_scale_gives_each_projection_its_own_rate():
    config = replace(TINY, eta_scale={"out": 0.25})
    net = config.with_eta_scales(yinyang.build_network(replace(TINY, lr=0.02)), {})
    d = network_to_dict(net)
    assert d["layers"][1]["eta_scale"] == 0.25 and "eta_scale" not in d["layers"][0]
    assert network_from_dict(d).layers[1].eta_scale == 0.25
    float_engine = Engine(net)
    assert [k.eta for k in float_engine.kernels.layers] == [0.02, 0.005]
    float_engine.kernels.set_eta(0.01)
    assert [k.eta for k in float_engine.kernels.layers] == [0.01, 0.0025]
    # the learning engine's wanted gain scales alike (the gain per unit of the traces that
    # the rule is chosen for: undo the coarser error and presynaptic traces)
    plain, scaled = (quantize_network(n).layers[1] for n in (yinyang.build_network(
        replace(TINY, lr=0.02)), net))
    assert (scaled.gain_target * 2.0 ** -(scaled.trace_coarsening + scaled.pre_trace_coarsening)
            == 0.25 * plain.gain_target
            * 2.0 ** -(plain.trace_coarsening + plain.pre_trace_coarsening))
    assert replace(config, optimizer="adam").with_eta_scales(net, {"out": 2.0}) is net
    with pytest.raises(LavaGleError, match="--eta-scale outt=2: no layer 'outt'; the layers "
                                           r"are \['hidden', 'out'\]"):
        replace(TINY, eta_scale={"outt": 2.0}).with_eta_scales(net, {})


def test_biases_fall_back_to_the_weights_headroom_where_the_engine_cannot_learn_them():
    """Under compensated rules, whose bias neuron has one payload (under exact ones a
    narrower payload meets these gains, ``tests/quantize/test_rules.py``)."""
    net = yinyang.build_network(TINY)
    net = replace(net, fixed_point={**net.fixed_point, "learning_products": "compensated"})
    trained = net.with_parameters([net.initial_weights(i) for i in range(2)],
                                  [np.full(ls.size, 40.0) for ls in net.layers])
    data = yinyang.load_data(TINY)
    x = data.x_train[:20].transpose(1, 0, 2)
    y = np.broadcast_to(onehot_targets(data.y_train[:20], 3, 1.0), x.shape[:2] + (3,))
    assert [l.fixed_point["bias_exp"] for l in formats_from_float(net, trained, x, y).layers
            ] == [-1, -1]  # 2 x 40 needs 2**-1 per LSB (255 LSBs), 1.25 x 40 only 2**-2
    # judged at the run's smallest rate (its last epoch's), the output layer's bias gain
    # is too small at the first, the hidden layer's is not
    sized = formats_from_float(net, trained, x, y, eta=0.001)
    assert [l.fixed_point["bias_exp"] for l in sized.layers] == [-1, -2]
    sized = replace(sized, learning=replace(net.learning, eta=0.001))
    wide = replace(sized, layers=(sized.layers[0], replace(
        sized.layers[1], fixed_point={**sized.layers[1].fixed_point, "bias_exp": -1})))
    with pytest.warns(BiasTraceWarning, match="layer 'out': the bias learning gain") as rec:
        q_wide = quantize_network(wide)  # the quantiser's own way out: a coarser trace
    assert [(w.message.layer, w.message.field) for w in rec
            if w.category is BiasTraceWarning] == [("out", "bias_exp")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BiasTraceWarning)
        q = quantize_network(sized)  # the narrower bias format needs no coarser trace
    assert q.layers[1].trace_coarsening < q_wide.layers[1].trace_coarsening
    # a gain too small at either exponent: the caller's quantisation coarsens the trace
    sized = formats_from_float(net, trained, x, y, eta=0.0003)
    assert [l.fixed_point["bias_exp"] for l in sized.layers] == [-1, -2]
    with pytest.warns(BiasTraceWarning, match="layer 'out': the bias learning gain"):
        quantize_network(replace(sized, learning=replace(net.learning, eta=0.0003)))


def test_formats_from_float_leave_a_frozen_projection_to_the_quantisers_own_sizing():
    """A frozen projection's weights stay as they start, so the learning headroom would only
    cost them a bit: its exponent is the finest that holds them, as the quantiser sizes a
    projection that does not learn, while a learning one keeps the headroom."""
    net = yinyang.build_network(TINY)
    top = float(np.abs(net.initial_weights(0)).max())
    e = int(np.ceil(np.log2(top / 255.0)))
    scale = 0.9 * 255 * 2.0 ** e / top  # max |W| at 0.9 of the range: 1.25x does not fit
    weights = [scale * net.initial_weights(0), net.initial_weights(1)]
    net = net.with_parameters(weights, [np.zeros(ls.size) for ls in net.layers])
    net = replace(net, layers=(replace(net.layers[0], eta_scale=0.0), net.layers[1]))
    data = yinyang.load_data(TINY)
    x = data.x_train[:20].transpose(1, 0, 2)
    y = np.broadcast_to(onehot_targets(data.y_train[:20], 3, 1.0), x.shape[:2] + (3,))
    sized = formats_from_float(net, net, x, y)
    q = quantize_network(sized)
    assert q.layers[0].w_exp == e  # 0.9 x 255 LSB of 2**e
    top1 = 1.25 * float(np.abs(weights[1]).max())
    assert 127 * 2.0 ** q.layers[1].w_exp < top1 <= 255 * 2.0 ** q.layers[1].w_exp
    learning = replace(net, layers=(replace(net.layers[0], eta_scale=1.0), net.layers[1]))
    assert quantize_network(formats_from_float(learning, learning, x, y)).layers[0].w_exp \
        == e + 1


def test_formats_from_float_hold_the_trained_parameters():
    net = yinyang.build_network(TINY)
    grown = [8.0 * net.initial_weights(i) for i in range(2)]
    trained = net.with_parameters(grown, [np.full(ls.size, 3.0) for ls in net.layers])
    data = yinyang.load_data(TINY)
    x = data.x_train[:20].transpose(1, 0, 2)
    y = np.broadcast_to(onehot_targets(data.y_train[:20], 3, 1.0), x.shape[:2] + (3,))
    sized = formats_from_float(net, trained, x, y)
    q = quantize_network(sized)
    for i, ql in enumerate(q.layers):
        top = 1.25 * float(np.abs(grown[i]).max())
        assert 127 * 2.0 ** ql.w_exp < top <= 255 * 2.0 ** ql.w_exp  # the smallest that holds
        assert 127 * 2.0 ** ql.b_exp < BIAS_HEADROOM * 3.0 <= 255 * 2.0 ** ql.b_exp
        assert "u_bits" in sized.layers[i].fixed_point
    # the integers start from the initial parameters, not the trained ones
    np.testing.assert_array_equal(sized.initial_weights(0), net.initial_weights(0))
    # ... so their signals must fit too, even where training shrinks them (10x smaller)
    shrunk = net.with_parameters([0.1 * net.initial_weights(i) for i in range(2)],
                                 [np.zeros(ls.size) for ls in net.layers])
    small = formats_from_float(net, shrunk, x, y)
    for mine, start, end in zip(small.layers, calibrate(net, x, y).layers,
                                calibrate(shrunk, x, y).layers):
        assert mine.fixed_point["u_bits"] == start.fixed_point["u_bits"]
        assert start.fixed_point["u_bits"] < end.fixed_point["u_bits"]
        # the error formats too: the wider of the two (fewer bits, a larger trace range)
        for key, wider in (("error_bits", min), ("error_trace_range", max)):
            assert mine.fixed_point[key] == wider(start.fixed_point[key],
                                                  end.fixed_point[key])
    # 10x smaller weights pass 10x smaller errors down to the hidden layer
    assert (small.layers[0].fixed_point["error_trace_range"]
            > 5 * calibrate(shrunk, x, y).layers[0].fixed_point["error_trace_range"])


@pytest.mark.parametrize("tags, floors", [({"hidden": 7, "out": 5}, 1),
                                          ({"hidden": 0, "out": 0}, 2)])
def test_halving_eta_lowers_the_learning_rules_exponent_by_one(tags, floors):
    """Halving eta halves each rule's gain: one exponent lower (the error trace's mantissa
    kept), or where half the gain is below the least precise rule (exponent 0 exact, 1
    compensated; within :data:`GAIN_TOLERANCE`) one bit coarser traces. Untagged, both
    Yin-Yang projections are at the floor; with the default tags (rules 2^5-2^7 finer) the
    hidden one is not (the output's, on a wide error trace as calibration gives it, is)."""
    from lava_gle.commands.sweep import with_setting
    from lava_gle.quantize.rules import GAIN_TOLERANCE, MIN_PRECISE_GAIN, trace_scale
    config = replace(TINY, lr=0.02, weight_tag_bits=tags)
    net = with_setting(config.with_weight_tags(yinyang.build_network(config)),
                       "out.error_trace_range", 1.0)
    engine = FixedEngine(net)
    before = [(k.ql.rule, k.ql.trace_mant) for k in engine.kernels.layers]
    engine.kernels.set_eta(0.01)
    at_floor = 0
    for k, (old, mant) in zip(engine.kernels.layers, before):
        if old.gain() * trace_scale(mant) / 2 >= MIN_PRECISE_GAIN * (1 - GAIN_TOLERANCE):
            assert (k.ql.rule.mant, k.ql.rule.s_exp, k.ql.trace_mant) == (
                old.mant, old.s_exp - 1, mant)
            assert k.ql.rule.gain() == old.gain() / 2
        else:  # a trace gets one bit coarser instead (the hidden projection's input
            # trace, the output's error trace)
            assert k.ql.trace_coarsening + k.ql.pre_trace_coarsening >= 1
            at_floor += 1
    assert at_floor == floors
    float_engine = Engine(net)
    float_engine.kernels.set_eta(0.01)
    assert all(k.eta == 0.01 for k in float_engine.kernels.layers)


def test_prediction_in_place_matches_the_frozen_network_and_restores_the_engine():
    net = yinyang.build_network(TINY)
    data = yinyang.load_data(TINY)
    engine = Engine(net)
    targets = np.repeat(onehot_targets(data.y_train[:5], 3, 1.0)[None], 8, axis=0)
    engine.run(data.x_train[:5].transpose(1, 0, 2), targets)
    saved = engine.state_dict()
    logits, loss = predict_in_place(engine, data.x_test, data.y_test, 20, 2)
    ref_logits, ref_loss = predict(frozen_network(net, engine), data.x_test, data.y_test,
                                   batch=20, readout_start=2)
    np.testing.assert_array_equal(logits, ref_logits)
    assert loss == ref_loss and engine.learning
    after = engine.state_dict()
    assert sorted(after) == sorted(saved)
    for key in saved:
        np.testing.assert_array_equal(after[key], saved[key])


def test_float_sgd_batch1_with_mse_learns(tmp_path):
    config = replace(TINY, n_train=600, n_test=200, hidden=30)
    m = yinyang.run_yinyang(config, tmp_path, quiet=True)
    data = yinyang.load_data(config)  # tested in one stream too: the trained description's
    logits, _ = predict(load_network(tmp_path / "network_trained.json"), data.x_test,
                        data.y_test, batch=1, readout_start=config.readout_start)
    assert m["test_accuracy_one_stream"] == np.mean(np.argmax(logits, -1) == data.y_test)
    assert m["config"]["optimizer"] == "sgd" and m["config"]["batch"] == 1
    assert m["test_accuracy"] > 0.45  # chance is 1/3 (200 test points: +-0.033)
    assert "batch_semantics" not in m and "saturation" not in m
    assert m["history"]["lr"] == [yinyang.SGD_ETA] * 2


def test_yinyang_trains_in_fixed_point_online(tmp_path):
    config = replace(TINY, n_train=600, n_test=200, hidden=20)
    m = yinyang.run_yinyang(config, tmp_path, backend="numpy-fixed", quiet=True)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_accuracy"] == m["test_accuracy"]
    # learns: above chance (1/3) by 4 standard errors of 200 test points (0.033 each)
    assert m["best_test_accuracy"] > 1 / 3 + 4 * np.sqrt(1 / 3 * 2 / 3 / 200)
    assert m["formats"]["source"] == "float"  # sized from the float twin's trained network
    assert set(m["formats"]["layers"]["hidden"]) >= {"weight_exp", "bias_exp", "u_bits"}
    assert (tmp_path / "float_same_rule" / "checkpoint.npz").is_file()  # the float twin
    assert 0.0 <= m["test_accuracy_float_same_rule"] <= 1.0
    assert set(m["saturation"]) >= {"W.hidden", "W.out", "input", "target"}
    clipped = ", ".join(f"{k} {n:,}" for k, n in sorted(m["saturation"].items()) if n)
    assert (f"values clipped while training (metrics.json, saturation): {clipped or 'none'}"
            in (tmp_path / "log.txt").read_text())  # the log names what the metrics count
    assert "batch_semantics" not in m and m["lava_fixed_agreement"] is None
    # tested as a chip tests, too: the trained network, the test points in one stream
    data = yinyang.load_data(config)
    logits, _ = predict(load_network(tmp_path / "network_trained.json"), data.x_test,
                        data.y_test, "numpy-fixed", batch=1, readout_start=config.readout_start)
    assert m["test_accuracy_one_stream"] == np.mean(np.argmax(logits, -1) == data.y_test)
    assert 0.0 <= m["test_accuracy_float_same_rule_one_stream"] <= 1.0
    assert m["history"]["lr"] == [yinyang.SGD_ETA] * 2
    # re-quantised inference: not on the backend that trained (its accuracy is the
    # trained integers'), but under chip timing
    assert m["test_accuracy_fixed"] is None
    assert 0.0 <= m["test_accuracy_fixed_chip"] <= 1.0
    assert "fixed_point_loss" not in m  # trained in integers: nothing deployed after it

    # the compare case at the end: the float twin's trained parameters, the run's formats
    end = load_network(tmp_path / m["compare_case_end"]["dir"] / "network.json")
    twin = np.load(tmp_path / "float_same_rule" / "checkpoint.npz")
    np.testing.assert_array_equal(end.initial_weights(0), twin["train.W.0"])
    np.testing.assert_array_equal(end.initial_biases(1), twin["train.b.1"])
    assert end.layers[0].fixed_point == m["formats"]["layers"]["hidden"]
    assert end.learning.eta == yinyang.SGD_ETA and end.learning.enabled

    # where the integers ended against the twin, from the two checkpoints and the formats
    mine = np.load(tmp_path / "checkpoint.npz")
    apart = m["parameters_vs_float"]
    assert list(apart) == ["hidden", "out"] and list(apart["out"]) == ["W", "b"]
    for i, layer in enumerate(apart):
        for kind, exp in (("W", "weight_exp"), ("b", "bias_exp")):
            x = twin[f"train.{kind}.{i}"] / 2.0 ** m["formats"]["layers"][layer][exp]
            d = mine[f"train.{kind}.{i}"] - x
            assert apart[layer][kind]["rms_lsb"] == pytest.approx(np.sqrt(np.mean(d ** 2)))
            assert apart[layer][kind]["max_lsb"] == pytest.approx(np.abs(d).max())
            assert apart[layer][kind]["float_rms_lsb"] == pytest.approx(
                np.sqrt(np.mean(x ** 2)))
    assert apart["hidden"]["W"]["rms_lsb"] > 0.5  # more than the rounding of one number


def test_the_metrics_give_a_frozen_projections_exponents_as_the_integers_ran(tmp_path):
    """A frozen projection's exponents are the quantiser's own sizing, not an option the
    formats record: the metrics still give them, as the trained description pins them."""
    config = replace(TINY, n_train=200, n_test=100, hidden=20, epochs=1,
                     eta_scale={"out": 0.0})
    m = yinyang.run_yinyang(config, tmp_path, backend="numpy-fixed", quiet=True)
    assert "weight_exp" not in m["formats"]["layers"]["out"]
    trained = load_network(tmp_path / "network_trained.json")
    assert m["formats"]["exponents"] == {
        l.name: {k: l.fixed_point[k] for k in ("weight_exp", "bias_exp")}
        for l in trained.layers}


def test_parameters_vs_float_measure_the_integers_in_their_own_lsbs():
    """Untrained, the integers differ from the float network by their rounding only
    (at most half an LSB); a weight moved by 3 LSB and a bias at the format's end show as
    such, and a layer without a bias reports none."""
    from lava_gle.numerics.kernels import FixedKernels, FloatKernels
    net = yinyang.build_network(TINY)
    net = replace(net, layers=(replace(net.layers[0], bias=False), net.layers[1]))
    q, f = FixedKernels(quantize_network(net)).layers, FloatKernels(net).layers
    before = parameters_vs_float(q, f)
    assert list(before["hidden"]) == ["W"] and list(before["out"]) == ["W", "b"]
    for kinds in before.values():
        for v in kinds.values():
            assert v["max_lsb"] <= 0.5 and v["rms_lsb"] <= v["max_lsb"] and v["at_limit"] == 0
        assert kinds["W"]["float_rms_lsb"] > 1  # the weights span many LSBs
    assert before["out"]["b"]["float_rms_lsb"] == 0  # the biases start at zero
    q[0].W[2, 1] += 3
    q[1].b[0] = 255
    after = parameters_vs_float(q, f)
    assert 2.5 <= after["hidden"]["W"]["max_lsb"] <= 3.5
    assert after["hidden"]["W"]["rms_lsb"] > before["hidden"]["W"]["rms_lsb"]
    assert after["out"]["b"]["at_limit"] == 1 and after["out"]["b"]["max_lsb"] > 200
    assert after["out"]["W"] == before["out"]["W"]


def test_the_compare_case_is_the_fixed_point_runs_set_up_and_stream(tmp_path):
    from lava_gle.cli import main

    config = replace(TINY, epochs=1, n_train=30, halve_every=1, seed=3)
    net = config.with_eta_scales(yinyang.build_network(config), yinyang.SGD_ETA_SCALE)
    net = replace(net, layers=(replace(net.layers[0], fixed_point={"weight_exp": -3}),
                               net.layers[1]))
    data = yinyang.load_data(config)
    cfg = TrainConfig(epochs=1, batch=1, optimizer="sgd", lr=0.5, halve_every=1,
                      target_rate=0.8)
    case = write_compare_case(tmp_path / "case", scheduled_network(net, cfg), data, cfg, seed=3,
                              backend="lava-fixed", steps=20)
    assert case["steps"] == 20 and case["dir"] == "case"
    loaded = load_network(tmp_path / "case" / "network.json")
    assert loaded.learning.eta == 0.5 and loaded.learning.loss == "mse"
    assert [l.eta_scale for l in loaded.layers] == [1.0, 0.001]
    assert loaded.layers[0].fixed_point == {"weight_exp": -3}
    for i in range(2):
        np.testing.assert_array_equal(loaded.initial_weights(i), net.initial_weights(i))
    x, y = np.load(tmp_path / "case" / "inputs.npy"), np.load(tmp_path / "case" / "targets.npy")
    first = epoch_order(data.y_train, 3, 0)[0]  # the stream of seed 3's first epoch
    np.testing.assert_array_equal(x[:8, 0], data.x_train[first])
    np.testing.assert_array_equal(y[:8, 0], np.repeat(onehot_targets(
        data.y_train[first:first + 1], 3, 0.8), 8, axis=0))
    assert x.shape == (20, 1, 4) and y.shape == (20, 1, 3)
    cmd = case["command"].split()
    assert cmd[:2] == ["lava-gle", "compare"]
    assert "numpy,numpy-fixed-chip" in cmd  # the twin of the timing the run trained with
    out = tmp_path / "cmp"
    args = [str(tmp_path / a) if a.startswith("case/") else a for a in cmd[1:-1]]
    assert main(args + [str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["layers"]["hidden"]["e"]


def test_fixed_point_batch_above_one_is_labelled_an_approximation(tmp_path):
    m = yinyang.run_yinyang(replace(TINY, batch=10, epochs=1), tmp_path, backend="numpy-fixed",
                            quiet=True)
    assert m["batch_semantics"].startswith("approximation: 10 copies")


def test_fixed_point_schedule_and_resume_give_the_uninterrupted_integers(tmp_path, stop_after):
    config = replace(TINY, epochs=3, n_train=60, halve_every=2)
    whole = yinyang.run_yinyang(config, tmp_path / "whole", backend="numpy-fixed", quiet=True)
    assert whole["history"]["lr"] == [yinyang.SGD_ETA * f for f in (1, 1, 0.5)]
    with pytest.raises(ExperimentInterrupted):  # stops in epoch 2
        yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed", quiet=True,
                            guard=stop_after(70))
    resumed = yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed",
                                  quiet=True)
    assert resumed["history"]["test_acc"] == whole["history"]["test_acc"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]
    assert resumed["saturation"] == whole["saturation"]
    arrays = {p: np.load(tmp_path / p / "checkpoint.npz") for p in ("whole", "cut")}
    for key in ("train.W.0", "train.W.1", "train.b.0", "train.b.1"):
        assert arrays["whole"][key].dtype == np.int64
        np.testing.assert_array_equal(arrays["whole"][key], arrays["cut"][key])


def _edit_recorded_config(path, edit):
    """Edit the run record of the checkpoint at ``path``; its fingerprint of the integers'
    continuation, which the edited formats would change, is replaced by today's whole
    arithmetic's (as in checkpoints written before it existed)."""
    from lava_gle.numerics.fingerprint import fixed_arithmetic
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta["config"]["integer_arithmetic"] = fixed_arithmetic()
    edit(meta["config"])
    meta["progress"].pop("continuation", None)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_an_extended_fixed_point_run_keeps_the_formats_it_recorded(tmp_path):
    """Extending a run (more ``epochs``) trains its float twin on, from which the formats
    would now be sized differently: the integers resume in the formats their checkpoint
    recorded. A checkpoint without that record (older runs) is refused."""
    first = yinyang.run_yinyang(replace(TINY, epochs=1), tmp_path, backend="numpy-fixed",
                                quiet=True)
    w_exp = first["formats"]["layers"]["hidden"]["weight_exp"]

    def recorded_elsewhere(config):  # stands in for a twin that sized the formats otherwise
        config["fixed_point"]["layers"]["hidden"]["weight_exp"] = w_exp + 1

    _edit_recorded_config(tmp_path / "checkpoint.npz", recorded_elsewhere)
    longer = yinyang.run_yinyang(TINY, tmp_path, backend="numpy-fixed", quiet=True)
    assert len(longer["history"]["test_acc"]) == TINY.epochs == 2
    assert longer["formats"]["layers"]["hidden"]["weight_exp"] == w_exp + 1
    _edit_recorded_config(tmp_path / "checkpoint.npz", lambda c: c.pop("fixed_point"))
    with pytest.raises(LavaGleError, match=r"different settings \(fixed_point: \[None\]"):
        yinyang.run_yinyang(replace(TINY, epochs=3), tmp_path, backend="numpy-fixed",
                            quiet=True)


def test_an_ended_run_anneals_under_a_halving_schedule_that_keeps_its_rates(tmp_path):
    """A run that has ended may resume with a new ``--halve-every`` where the epochs it ran
    keep their rates: it then continues as a run with that schedule from the start (float:
    bit for bit), the integers in the formats their checkpoint recorded. A schedule that
    changes an epoch already run is refused, naming the epoch."""
    ended, annealed = replace(TINY, n_train=60), replace(TINY, epochs=3, n_train=60,
                                                         halve_every=2)
    yinyang.run_yinyang(ended, tmp_path / "float", quiet=True)
    resumed = yinyang.run_yinyang(annealed, tmp_path / "float", quiet=True)
    whole = yinyang.run_yinyang(annealed, tmp_path / "whole", quiet=True)
    assert resumed["history"]["lr"] == [yinyang.SGD_ETA * f for f in (1, 1, 0.5)]
    assert ("resuming at epoch 3, batch 0 of 60; the schedule changes from --halve-every 0 "
            f"to 2: epoch 3 at eta {yinyang.SGD_ETA / 2:g}\n") in \
        (tmp_path / "float" / "log.txt").read_text()
    assert resumed["history"]["test_acc"] == whole["history"]["test_acc"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]

    first = yinyang.run_yinyang(ended, tmp_path / "fixed", backend="numpy-fixed", quiet=True)
    w_exp = first["formats"]["layers"]["hidden"]["weight_exp"]
    _edit_recorded_config(tmp_path / "fixed" / "checkpoint.npz", lambda c: c["fixed_point"][
        "layers"]["hidden"].update(weight_exp=w_exp + 1))  # as if sized otherwise
    fixed = yinyang.run_yinyang(annealed, tmp_path / "fixed", backend="numpy-fixed",
                                quiet=True)
    assert fixed["history"]["test_acc"][:2] == first["history"]["test_acc"]
    assert fixed["history"]["lr"] == resumed["history"]["lr"]
    assert fixed["formats"]["layers"]["hidden"]["weight_exp"] == w_exp + 1
    eta = yinyang.SGD_ETA
    with pytest.raises(LavaGleError, match=rf"--halve-every 1: the run in .* has begun 3 "
                                           rf"epochs under --halve-every 2, and epoch 2 ran "
                                           rf"at eta {eta:g}, where this schedule gives "
                                           rf"{eta / 2:g}"):
        yinyang.run_yinyang(replace(annealed, epochs=4, halve_every=1), tmp_path / "fixed",
                            backend="numpy-fixed", quiet=True)


def test_an_ended_run_resumes_with_learning_epochs_of_another_length(tmp_path, stop_after):
    """``--epoch-steps`` may change where a training epoch starts: epoch 1 of one step,
    then epoch 2 of 4 steps (the integers and their float twin), said in the log and in
    the history; the integers' continuation is checked under the recorded length. The
    changed run, stopped inside epoch 2 and resumed, ends bit for bit where it ends
    uninterrupted; a length changed inside a training epoch is refused, naming the fix."""
    config = replace(TINY, n_train=60)
    longer = replace(config, epochs=2, epoch_steps=4)
    for run in ("whole", "cut"):
        first = yinyang.run_yinyang(replace(config, epochs=1), tmp_path / run,
                                    backend="numpy-fixed", quiet=True)
    whole = yinyang.run_yinyang(longer, tmp_path / "whole", backend="numpy-fixed", quiet=True)
    note = "resuming at epoch 2, batch 0 of 60; learning epochs change from 1 to 4 steps " \
           "from epoch 2 on\n"
    for log in ("log.txt", "float_same_rule/log.txt"):
        assert note in (tmp_path / "whole" / log).read_text()
    assert whole["history"]["epoch_steps"] == [1, 4]
    assert whole["history"]["test_acc"][0] == first["history"]["test_acc"][0]
    cases = {case: load_network(tmp_path / "whole" / whole[case]["dir"] / "network.json")
             for case in ("compare_case", "compare_case_end")}  # the run's start, its end
    assert [cases[c].learning.epoch_steps for c in sorted(cases)] == [1, 4]
    one_step = yinyang.run_yinyang(replace(config, epochs=2), tmp_path / "one", quiet=True,
                                   backend="numpy-fixed")
    assert one_step["history"]["epoch_steps"] == [1, 1]
    assert one_step["history"]["train_loss"][1] != whole["history"]["train_loss"][1]
    with pytest.raises(ExperimentInterrupted):  # the twin ended, the integers in epoch 2
        yinyang.run_yinyang(longer, tmp_path / "cut", backend="numpy-fixed", quiet=True,
                            guard=stop_after(90))
    with pytest.raises(LavaGleError, match=r"--epoch-steps 1: the run in \S*cut stopped "
                                           r"inside epoch 2 \(batch \d+\), which it began "
                                           r"with learning epochs of 4 steps; .*finish epoch "
                                           r"2 with --epoch-steps 4 --epochs 2, then resume"):
        yinyang.run_yinyang(replace(longer, epoch_steps=1), tmp_path / "cut",
                            backend="numpy-fixed", quiet=True)
    cut = yinyang.run_yinyang(longer, tmp_path / "cut", backend="numpy-fixed", quiet=True)
    for key in ("test_acc", "train_loss", "epoch_steps"):
        assert cut["history"][key] == whole["history"][key]
    assert cut["saturation"] == whole["saturation"]
    assert cut["test_accuracy_float_same_rule"] == whole["test_accuracy_float_same_rule"]
    arrays = {p: np.load(tmp_path / p / "checkpoint.npz") for p in ("whole", "cut")}
    for key in ("train.W.0", "train.W.1", "train.b.1", "train.epoch.1.count"):
        np.testing.assert_array_equal(arrays["whole"][key], arrays["cut"][key])


def test_learning_epochs_open_across_batches_and_epochs_resume_or_refuse_a_change(
        tmp_path, stop_after):
    """Learning epochs of 16 steps span two Yin-Yang samples: a run stopped inside one
    (after an odd batch) resumes as it was, bit for bit. Epochs of 64 steps leave one open
    where the next training epoch starts (480 steps an epoch): a change of length would
    drop its sums and is refused, naming the way on."""
    config = replace(TINY, n_train=60, epochs=1, epoch_steps=16)
    whole = yinyang.run_yinyang(config, tmp_path / "whole", backend="numpy-fixed", quiet=True)
    with pytest.raises(ExperimentInterrupted, match="batch 31 of 60"):  # after the twin
        yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed", quiet=True,
                            guard=stop_after(90))
    cut = yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed", quiet=True)
    assert cut["history"]["train_loss"] == whole["history"]["train_loss"]
    assert cut["saturation"] == whole["saturation"]
    yinyang.run_yinyang(replace(config, epoch_steps=64), tmp_path / "open",
                        backend="numpy-fixed", quiet=True)
    with pytest.raises(LavaGleError, match=r"--epoch-steps 4: the run in \S*open is inside a "
                                           r"learning epoch of 64 steps where its next "
                                           r"training epoch starts .*; keep --epoch-steps 64, "
                                           r"or pass --fresh"):
        yinyang.run_yinyang(replace(config, epochs=2, epoch_steps=4), tmp_path / "open",
                            backend="numpy-fixed", quiet=True)


def test_a_twin_and_integers_resumed_apart_change_the_length_at_one_epoch(tmp_path):
    """With ``--part``, a twin trained ahead under the old length is refused (it would not
    be the integers' rule), naming the command that brings both level; then both
    change at the same epoch."""
    config = replace(TINY, n_train=40, formats="initial")
    run = fixed_runner(tmp_path)
    run(replace(config, epochs=2), "twin")
    run(replace(config, epochs=1), "integers")
    with pytest.raises(LavaGleError, match=r"--epoch-steps 4: the float twin and the integers "
                                           r"differ in epoch 2: learning epochs of 1 steps in "
                                           r"the twin .*, 4 in the integers .* \(the twin has "
                                           r"begun 2 epochs, the integers 1\); run both to "
                                           r"epoch 2 with the setting they began it with "
                                           r"\(--epochs 2 --epoch-steps 1, without --part\), "
                                           r"then change both"):
        run(replace(config, epochs=3, epoch_steps=4))
    run(replace(config, epochs=2))  # the advice: both to epoch 2
    twin_ckpt = tmp_path / "float_same_rule" / "checkpoint.npz"
    kept = twin_ckpt.read_bytes()
    _edit_recorded_config(twin_ckpt, lambda c: c.update(hidden=c["hidden"] + 1))
    with pytest.raises(LavaGleError, match=r"float_same_rule/checkpoint.npz belongs to a run "
                                           r"with different settings \(hidden"):
        run(replace(config, epochs=3, epoch_steps=4))  # another run's twin: said so first
    twin_ckpt.write_bytes(kept)
    both = run(replace(config, epochs=3, epoch_steps=4))
    assert both["history"]["epoch_steps"] == [1, 1, 4]
    for log in ("log.txt", "float_same_rule/log.txt"):
        assert "learning epochs change from 1 to 4 steps from epoch 3 on" in \
            (tmp_path / log).read_text()


def test_a_twin_trained_ahead_under_another_window_or_rate_is_refused(tmp_path):
    """Found by a review helper: the twin and the integers could average (or halve their
    rate) from different epochs, and test_accuracy_float_same_rule then came from another
    rule. A twin ahead of integers that have not started is refused too."""
    config = replace(TINY, n_train=40, formats="initial", average_window=5.0)
    run = fixed_runner(tmp_path)
    run(replace(config, epochs=2), "twin")
    with pytest.raises(LavaGleError, match=r"^--average-window 50: the float twin and the "
                                           r"integers differ in epoch 1: an average over 5 "
                                           r"batches in the twin .*, 50 in the integers .*run "
                                           r"both to epoch 2 with the setting they began it "
                                           r"with \(--epochs 2 --average-window 5, without "
                                           r"--part\)"):
        run(replace(config, epochs=3, average_window=50.0))
    with pytest.raises(LavaGleError, match=r"^--halve-every 1: .* differ in epoch 2: eta "
                                           r"[\d.e-]+ in the twin .*--halve-every 0, without "
                                           r"--part\)"):
        run(replace(config, epochs=3, halve_every=1))
    run(replace(config, epochs=2), "integers")
    both = run(replace(config, epochs=3, average_window=50.0))
    assert both["history"]["average_window"] == [5.0, 5.0, 50.0]


def test_the_advice_for_a_twin_stopped_inside_an_epoch_can_be_followed(tmp_path, stop_after):
    """Found by review: with --formats float the integers wait for their twin, and a twin
    stopped inside epoch 2 cannot be run 'to epoch 1'; the advice names the command that
    works (both to epoch 2 under the old window, then the change)."""
    config = replace(TINY, n_train=40, average_window=3.0)
    run = fixed_runner(tmp_path)
    with pytest.raises(ExperimentInterrupted):
        run(replace(config, epochs=3), guard=stop_after(60))  # inside the twin's epoch 2
    with pytest.raises(LavaGleError, match=r"run both to epoch 2 with the setting they began "
                                           r"it with \(--epochs 2 --average-window 3, "
                                           r"without --part\)") as info:
        run(replace(config, epochs=3, average_window=5.0))
    assert "the twin has begun 2 epochs, the integers 0" in str(info.value)
    run(replace(config, epochs=2))
    done = run(replace(config, epochs=3, average_window=5.0))
    assert done["history"]["average_window"] == [3.0, 3.0, 5.0]


def test_a_fixed_point_checkpoint_of_a_run_whose_integers_would_change_is_refused(
        tmp_path, monkeypatch):
    """A fixed-point checkpoint records the fingerprint of its run's continuation
    (:func:`~lava_gle.numerics.fingerprint.continuation`): with one LSB more in the error
    sent down, the resumed run is refused before its float twin trains on (online, that
    takes hours: the twin's epoch 2 does not begin), and the checkpoint stays."""
    from lava_gle import __version__
    from lava_gle.numerics import ops
    from lava_gle.provenance import code_version
    yinyang.run_yinyang(replace(TINY, epochs=1), tmp_path, backend="numpy-fixed", quiet=True)
    meta = json.loads(str(np.load(tmp_path / "checkpoint.npz")["__meta__"]))
    assert "integer_arithmetic" not in meta["config"]
    assert meta["progress"]["lava_gle"] == code_version()
    saved = meta["progress"]["continuation"]["train."]
    backward = ops.backward_error

    def one_lsb_more(*args):
        eps, *counts = backward(*args)
        return (eps + 1, *counts)

    monkeypatch.setattr(ops, "backward_error", one_lsb_more)
    with pytest.raises(LavaGleError, match=rf"checkpoint.npz was written by lava-gle "
                                           rf"{__version__}.*, which continues this run's "
                                           rf"integers otherwise than this lava-gle "
                                           rf"{__version__}.*: 32 steps of 'train' from the saved "
                                           rf"state end in other integers \(fingerprint "
                                           rf"{saved} there, [0-9a-f]{{16}} now\); resume it "
                                           rf"with that lava-gle"):
        yinyang.run_yinyang(TINY, tmp_path, backend="numpy-fixed", quiet=True)
    assert "resuming" not in (tmp_path / "float_same_rule" / "log.txt").read_text()
    monkeypatch.undo()
    resumed = yinyang.run_yinyang(TINY, tmp_path, backend="numpy-fixed", quiet=True)
    assert len(resumed["history"]["test_acc"]) == 2


def test_a_change_of_integers_a_run_does_not_use_resumes_it(tmp_path, monkeypatch):
    """The error normalisers' gains changed by one LSB: another arithmetic (the whole
    arithmetic's fingerprint changes), but not for a run without normalisers, which
    resumes and continues bit for bit as a run that never stopped."""
    from lava_gle.numerics import fingerprint, ops
    config = replace(TINY, n_train=60)
    yinyang.run_yinyang(replace(config, epochs=1), tmp_path / "cut", backend="numpy-fixed",
                        quiet=True)
    whole = yinyang.run_yinyang(config, tmp_path / "whole", backend="numpy-fixed", quiet=True)
    today = fingerprint.fixed_arithmetic()
    inverse_rms = ops.inverse_rms
    monkeypatch.setattr(ops, "inverse_rms", lambda *args: inverse_rms(*args) + 1)
    fingerprint.fixed_arithmetic.cache_clear()
    try:
        assert fingerprint.fixed_arithmetic() != today
        resumed = yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed",
                                      quiet=True)
    finally:
        fingerprint.fixed_arithmetic.cache_clear()
    assert resumed["history"]["test_acc"] == whole["history"]["test_acc"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]


def test_a_fixed_point_checkpoint_of_before_the_continuation_of_another_arithmetic_is_refused(
        tmp_path):
    """A checkpoint written before the continuation's fingerprint recorded the whole
    arithmetic's (``integer_arithmetic``): it resumes only where that is today's, and is
    refused before the float twin trains on; one that records neither is refused too."""
    from lava_gle.numerics.fingerprint import fixed_arithmetic
    yinyang.run_yinyang(replace(TINY, epochs=1), tmp_path, backend="numpy-fixed", quiet=True)
    _edit_recorded_config(tmp_path / "checkpoint.npz", lambda c: None)  # today's
    yinyang.run_yinyang(replace(TINY, epochs=1), tmp_path, backend="numpy-fixed", quiet=True)
    _edit_recorded_config(tmp_path / "checkpoint.npz",
                          lambda c: c.update(integer_arithmetic="0123456789abcdef"))
    twin_log = tmp_path / "float_same_rule" / "log.txt"
    before = twin_log.read_text()
    with pytest.raises(LavaGleError, match=r"was written by a lava-gle whose fixed-point "
                                           r"integers differ from this one's "
                                           r"\(integer_arithmetic 0123456789abcdef there, "
                                           rf"{fixed_arithmetic()} now; a checkpoint this old"):
        yinyang.run_yinyang(TINY, tmp_path, backend="numpy-fixed", quiet=True)
    assert twin_log.read_text() == before
    _edit_recorded_config(tmp_path / "checkpoint.npz", lambda c: c.pop("integer_arithmetic"))
    with pytest.raises(LavaGleError, match=r"records no fingerprint of the integers of "
                                           r"'train' \(written by lava-gle .*, or edited\), "
                                           r"so whether this lava-gle .* continues them as "
                                           r"its writer did cannot be checked"):
        yinyang.run_yinyang(TINY, tmp_path, backend="numpy-fixed", quiet=True)
    assert twin_log.read_text() == before


@pytest.mark.lava
def test_runs_that_differ_in_integer_options_only_share_the_float_twin(tmp_path):
    """The float run with the same rule ignores the integers' options and the checks
    after training: a copy of one run's ``float_same_rule`` is resumed as finished by a run
    with other tags, weight range, rounding seed and checks, not trained again (nor
    refused)."""
    import shutil
    first = yinyang.run_yinyang(TINY, tmp_path / "a", backend="numpy-fixed", quiet=True)
    shutil.copytree(tmp_path / "a" / "float_same_rule", tmp_path / "b" / "float_same_rule")
    other = replace(TINY, weight_tag_bits={"hidden": 0}, weight_range=2.0, formats="initial",
                    agreement_steps=5, lava_sequences=0, rounding_seed=3)
    second = yinyang.run_yinyang(other, tmp_path / "b", backend="numpy-fixed", quiet=True)
    log = (tmp_path / "b" / "float_same_rule" / "log.txt").read_text()
    assert f"resuming at epoch {TINY.epochs + 1}" in log
    assert second["test_accuracy_float_same_rule"] == first["test_accuracy_float_same_rule"]
    assert second["history"] != first["history"]  # the integers did train differently
    assert (first["config"]["rounding_seed"], second["config"]["rounding_seed"]) == (None, 3)


def test_the_rounding_seed_is_the_integers_fixed_point_seed():
    """``--rounding-seed`` (``rounding_seed``) is ``fixed_point.seed``, the seed of the
    learning engines' random numbers; the float network does not depend on it."""
    net = yinyang.build_network(TINY)
    drawn = replace(TINY, rounding_seed=7).apply_to(net, {})
    assert quantize_network(net).seed == 0 and quantize_network(drawn).seed == 7
    assert drawn.fixed_point == {**TINY.apply_to(net, {}).fixed_point, "seed": 7}


@pytest.mark.lava
def test_lava_fixed_learns_the_integers_of_numpy_fixed(tmp_path):
    from lava_gle.backends import BACKENDS
    if "lava-fixed" not in BACKENDS:
        pytest.skip("lava-fixed is not built")
    m = yinyang.run_yinyang(replace(TINY, epochs=1, agreement_steps=60), tmp_path,
                            backend="numpy-fixed", quiet=True)
    agreement = m["lava_fixed_agreement"]
    assert agreement["identical"], agreement["differing"]
    assert agreement["steps"] == 60 and agreement["batch"] == 1
    assert {"W.hidden", "W.out", "e.hidden", "output"} <= set(agreement["compared"])


def test_a_schedule_below_the_learning_engines_smallest_gain_is_refused_before_training(
        tmp_path):
    config = replace(TINY, epochs=40, halve_every=1, formats="initial", weight_range=2.0)
    with pytest.raises(LavaGleError, match=r"--halve-every 1: eta 3\.6\d*e-12 of epoch 40 has "
                                           r"no learning-engine rule .*raise --sgd-eta"):
        yinyang.run_yinyang(config, tmp_path, backend="numpy-fixed", quiet=True)
    assert not (tmp_path / "checkpoint.npz").exists()  # nothing trained


def test_mnist1d_trains_in_fixed_point_with_its_default_rule(tmp_path):
    config = mnist1d.Mnist1dConfig.quick(epochs=1, n_train=20, n_test=20, fast=2, slow=4,
                                         batch=10, optimizer="sgd", loss="mse",
                                         agreement_steps=0)
    m = mnist1d.run_mnist1d(config, tmp_path, backend="numpy-fixed", quiet=True)
    assert m["history"]["lr"] == [mnist1d.SGD_ETA_PER_SEQUENCE * 10]  # batch 10
    assert m["formats"]["source"] == "float"  # the default
    names = [f"h{i}" for i in range(6)] + ["out"]
    assert sorted(m["formats"]["layers"]) == sorted(names)
    layers = m["formats"]["layers"]  # the defaults: measured error formats and tags
    assert layers["h0"]["error_bits"] == 12 and layers["h4"]["error_bits"] == 14
    assert layers["h5"]["error_bits"] > 0  # the others: calibrated from the errors
    # the SGD rule's error bounds: every trace spans its layer's bound
    assert not any("error_trace_range" in layers[n] for n in names)
    net = config.apply_to(mnist1d.build_network(config), mnist1d.SGD_ETA_SCALE,
                          mnist1d.ERROR_BOUNDS)
    assert {l.name: l.error_bound for l in net.layers} == mnist1d.ERROR_BOUNDS
    assert all(layers[n]["weight_tag_bits"] == mnist1d.WEIGHT_TAG_BITS for n in names)
    # exact learning products (mantissa 4 on the doubled error trace) for every rule
    rules = quantize_network(mnist1d.build_network(config)).layers
    assert all(l.rule.exact and l.bias_rule.exact and l.rule.mant == 4 for l in rules)
    tags = [v for k, v in np.load(tmp_path / "checkpoint.npz").items()
            if k.startswith("train.tag_W.")]
    assert len(tags) == 7 and any(np.any(t != 0) for t in tags)  # learned low bits
    assert {f"W.{n}" for n in names} <= set(m["saturation"])  # counted per projection
    assert m["batch_semantics"].startswith("approximation: 10 copies")
    assert 0.0 <= m["test_accuracy"] <= 1.0 and 0.0 <= m["test_accuracy_float_same_rule"] <= 1.0
    arrays = np.load(tmp_path / "checkpoint.npz")  # the integers trained, per projection
    assert all(arrays[f"train.W.{i}"].dtype == np.int64 for i in range(7))


def test_mnist1d_bounds_the_sgd_rules_errors_by_default():
    """ERROR_BOUNDS with the SGD rule, none with Adam; given bounds replace the defaults
    (LAYER=none: unbounded), and a bound replaces the layer's own error_trace_range."""
    def bounds(config):
        net = config.apply_to(mnist1d.build_network(config), mnist1d.SGD_ETA_SCALE,
                              mnist1d.ERROR_BOUNDS)
        return net, {layer.name: layer.error_bound for layer in net.layers}
    sgd = mnist1d.Mnist1dConfig.quick(optimizer="sgd", loss="mse")
    assert bounds(sgd)[1] == mnist1d.ERROR_BOUNDS
    assert set(bounds(mnist1d.Mnist1dConfig.quick())[1].values()) == {None}
    assert parse_error_bounds(["out=none", "h0=2"]) == {"out": None, "h0": 2.0}
    net, given = bounds(replace(sgd, error_bound=parse_error_bounds(["out=none", "h0=2"])))
    assert given == {"h0": 2.0, **{f"h{i}": None for i in range(1, 6)}, "out": None}
    assert "error_trace_range" not in net.layers[0].fixed_point
    assert net.layers[1].fixed_point["error_trace_range"] == 25.6  # ERROR_FORMATS
    with pytest.raises(LavaGleError, match="--error-bound h0=0: expected LAYER=BOUND"):
        parse_error_bounds(["h0=0"])


def test_mnist1d_normalizers_replace_the_plain_rules_defaults():
    """``normalizer_decay``: gains on the hidden layers, error normalisers on all; the
    plain rule's per-projection rates and error bounds give way to one eta and no bounds,
    while given ones still apply."""
    config = mnist1d.Mnist1dConfig.quick(optimizer="sgd", loss="mse", normalizer_decay=0.999)
    net = config.apply_to(mnist1d.build_network(config), mnist1d.SGD_ETA_SCALE,
                          mnist1d.ERROR_BOUNDS)
    assert [l.gain_decay for l in net.layers] == [0.999] * 6 + [None]
    assert [l.error_norm_decay for l in net.layers] == [0.999] * 7
    assert {l.eta_scale for l in net.layers} == {1.0}
    assert {l.error_bound for l in net.layers} == {None}
    assert {l.gain_max for l in net.layers} == {1000.0}  # the model's default
    slow = replace(config, gain_decay=0.9999, gain_max=100.0)
    net = slow.apply_to(mnist1d.build_network(slow), mnist1d.SGD_ETA_SCALE)
    assert [l.gain_decay for l in net.layers] == [0.9999] * 6 + [None]
    assert [l.gain_max for l in net.layers] == [100.0] * 6 + [1000.0]
    per_layer = replace(config, gain_max={"*": 100.0, "h0": 10.0})  # --gain-max 100 h0=10
    net = per_layer.apply_to(mnist1d.build_network(per_layer), mnist1d.SGD_ETA_SCALE)
    assert [l.gain_max for l in net.layers] == [10.0] + [100.0] * 5 + [1000.0]
    one = replace(config, gain_max={"h2": 7.0})  # the others keep the model's default
    net = one.apply_to(mnist1d.build_network(one), mnist1d.SGD_ETA_SCALE)
    assert [l.gain_max for l in net.layers] == [1000.0] * 2 + [7.0] + [1000.0] * 4
    assert [l.error_norm_decay for l in net.layers] == [0.999] * 7
    given = replace(config, eta_scale={"out": 0.5}, error_bound={"h0": 3.0})
    net = given.apply_to(mnist1d.build_network(given), mnist1d.SGD_ETA_SCALE,
                         mnist1d.ERROR_BOUNDS)
    assert net.layers[-1].eta_scale == 0.5 and net.layers[0].error_bound == 3.0
    assert "gain_payload_bits" not in net.fixed_point  # the quantiser's default
    narrow = replace(config, gain_payload_bits=8, normalizer_decay=0.9990234375)
    net = narrow.apply_to(mnist1d.build_network(narrow), mnist1d.SGD_ETA_SCALE)
    assert net.fixed_point["gain_payload_bits"] == 8
    assert quantize_network(net).layers[1].pre_wide_bits == 0  # 16 bits: 8 more
    assert quantize_network(replace(net, fixed_point={})).layers[1].pre_wide_bits == 8
    capped = replace(narrow, gain_max=100.0)  # in integers 100 * 2**GAIN_FRAC
    net = capped.apply_to(mnist1d.build_network(capped), mnist1d.SGD_ETA_SCALE)
    assert [ql.norm.gain_max for ql in quantize_network(net).layers[:6]] == [100 * 4096] * 6
    capped = replace(narrow, gain_max={"*": 100.0, "h0": 10.0})
    net = capped.apply_to(mnist1d.build_network(capped), mnist1d.SGD_ETA_SCALE)
    assert [ql.norm.gain_max for ql in quantize_network(net).layers[:6]] == \
        [10 * 4096] + [100 * 4096] * 5


@pytest.mark.lava
def test_mnist1d_trains_with_normalizers_in_both_arithmetics(tmp_path):
    """A short integer run with normalisers, end to end (its float twin trains first with
    the same rule): both checkpoints carry the running mean squares (of r on the hidden
    layers only, of e on all; integers in the integer run), metrics.json the decay, both
    accuracies, the gained payloads' clip counts, and lava-fixed's agreement with its
    twin."""
    from lava_gle.cli import main
    flags = ["experiment", "mnist1d", "--quick", "--quiet", "--backend", "numpy-fixed",
             "--normalizers", "0.9990234375", "--sgd-eta", "0.002", "--epochs", "1"]
    assert main([*flags, "--out", str(tmp_path)]) == 0
    for run, dtype in ((tmp_path, np.int64), (tmp_path / "float_same_rule", np.float32)):
        arrays = np.load(run / "checkpoint.npz")
        assert {f"train.gain_ms.{i}" for i in range(6)} <= set(arrays)
        assert "train.gain_ms.6" not in arrays and "train.error_ms.6" in arrays
        assert arrays["train.gain_ms.0"].dtype == dtype
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["config"]["normalizer_decay"] == 0.9990234375
    assert 0.0 < m["test_accuracy"] <= 1.0 and 0.0 < m["test_accuracy_float_same_rule"] <= 1.0
    assert {f"q.h{i}" for i in range(6)} <= set(m["saturation"])
    assert "q.out" not in m["saturation"]
    # the end case continues the twin where it ended: its weights (not folded with the
    # gains) and its normalisers' state
    end = load_network(tmp_path / m["compare_case_end"]["dir"] / "network.json")
    twin = np.load(tmp_path / "float_same_rule" / "checkpoint.npz")
    np.testing.assert_array_equal(end.initial_weights(3), twin["train.W.3"])
    state = end.layers[2].normaliser_state
    assert state.steps == int(twin["train.norm_steps.2"]) > 0
    np.testing.assert_array_equal(state.gain_ms, twin["train.gain_ms.2"])
    assert end.layers[-1].normaliser_state.gain_ms is None
    np.testing.assert_array_equal(end.layers[-1].normaliser_state.error_ms,
                                  twin["train.error_ms.6"])
    # the trained network keeps its gains in the neurons: its description quantises back
    # to the trained integers (weights, biases, gains), which chip timing with learning off
    # runs as the trained engine did
    trained = load_network(tmp_path / "network_trained.json")
    assert not trained.learning.enabled and trained.layers[0].gain_decay is not None
    q = quantize_network(trained)
    arrays = np.load(tmp_path / "checkpoint.npz")
    for i, ql in enumerate(q.layers):
        np.testing.assert_array_equal(ql.w, arrays[f"train.W.{i}"], err_msg=ql.name)
        np.testing.assert_array_equal(ql.b, arrays[f"train.b.{i}"], err_msg=ql.name)
    np.testing.assert_array_equal(q.layers[2].norm_state["gain_ms"], arrays["train.gain_ms.2"])
    assert m["test_accuracy_fixed"] is None  # the backend that trained
    # per epoch, each layer's gains at their cap; the last as the written network has them
    caps = {k: v for k, v in m["history"].items() if k.startswith("gains_at_cap.")}
    assert sorted(caps) == [f"gains_at_cap.h{i}" for i in range(6)]
    rebuilt = FixedEngine(trained)
    assert [v[-1] for v in caps.values()] == [k.gains_at_cap()
                                              for k in rebuilt.kernels.layers[:6]]
    assert m["test_accuracy_fixed_chip"] == m["test_accuracy"], m["not_measured"]
    # the normalisers run in the Lava models, under chip timing too
    assert m["lava_fixed_agreement"]["identical"], m["lava_fixed_agreement"]["differing"]
    assert "lava_fixed_agreement" not in m["not_measured"]
    assert (tmp_path / m["compare_case"]["dir"] / "network.json").is_file()


def test_a_chip_timing_run_reports_its_backward_arrays_drift(tmp_path):
    """Trained under chip timing, the backward array (of ``out``, the only layer above the
    first) learns with rounding numbers of its own and drifts from W^T: metrics.json
    gives the largest drift and its RMS in weight LSBs; exact timing has none to give."""
    m = yinyang.run_yinyang(TINY, tmp_path / "chip", backend="numpy-fixed-chip", quiet=True)
    drift = m["transpose_drift"]
    assert list(drift) == ["out"]
    assert drift["out"]["max_lsb"] >= 1 and drift["out"]["max_lsb"].is_integer()
    assert 0 < drift["out"]["rms_lsb"] <= drift["out"]["max_lsb"]
    exact = yinyang.run_yinyang(TINY, tmp_path / "exact", backend="numpy-fixed", quiet=True)
    assert "transpose_drift" not in exact


def test_gains_at_their_cap_are_recorded_per_epoch_and_older_checkpoints_resume(tmp_path):
    """A run with gains records, per epoch and layer, how many gains stand at their cap
    (``history["gains_at_cap.<layer>"]``). A checkpoint of an earlier lava-gle without that
    record resumes: its epochs read NaN there."""
    config = replace(TINY, epochs=1, normalizer_decay=0.99, gain_max=1.0)  # every gain capped
    first = yinyang.run_yinyang(config, tmp_path, quiet=True)
    assert first["history"]["gains_at_cap.hidden"] == [TINY.hidden]
    path = tmp_path / "checkpoint.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "history.gains_at_cap.hidden"}
    np.savez(path, **arrays)
    extended = yinyang.run_yinyang(replace(config, epochs=2), tmp_path, quiet=True)
    cap = extended["history"]["gains_at_cap.hidden"]
    assert np.isnan(cap[0]) and cap[1] == TINY.hidden
