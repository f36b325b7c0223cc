"""The numpy-fixed engine: accuracy against the float engine on the golden cases, the
LagLine teacher-student learning in integers, determinism, batch semantics, saturation."""
import warnings

import numpy as np
import pytest

from lava_gle import load_network, network_from_dict
from lava_gle.backends import make_engine, simulate
from lava_gle.cli import main
from lava_gle.numerics.engine import Engine
from lava_gle.errors import LavaGleError
from lava_gle.numerics.engine import FixedEngine
from lava_gle.numerics.optim import Adam
from lava_gle.quantize import QuantizationWarning
from lava_gle.traces import STATE_VARS

from conftest import GOLDEN as GOLDEN_DIR

GOLDEN = str(GOLDEN_DIR / "{}")


def golden(case):
    d = GOLDEN.format(case)
    return load_network(f"{d}/network.json"), np.load(f"{d}/inputs.npy"), \
        np.load(f"{d}/targets.npy")


@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_golden_output_within_5_percent_of_the_float_range(case):
    net, x, y = golden(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        fixed = FixedEngine(net).run(x, y, record=True)
    ref = Engine(net).run(x, y, record=True)
    rms = np.sqrt(np.mean((fixed["output"] - ref["output"]) ** 2))
    assert rms <= 0.05 * np.ptp(ref["output"])
    for layer in net.layer_names:  # the golden layout, dequantised
        for var in STATE_VARS:
            assert fixed[f"{var}.{layer}"].shape == ref[f"{var}.{layer}"].shape
        assert int(fixed[f"sat.u.{layer}"]) == 0 and int(fixed[f"sat.e.{layer}"]) == 0


def test_integer_runs_are_deterministic_and_batch_copies_agree():
    net, x, y = golden("visible_mlp")
    x, y = x[:300], y[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        one = FixedEngine(net, dequantize=False).run(x, y, record=True)
        again = FixedEngine(net, dequantize=False).run(x, y, record=True)
        three = FixedEngine(net, dequantize=False).run(np.repeat(x, 3, axis=1),
                                                       np.repeat(y, 3, axis=1), record=True)
    for key, arr in one.items():
        assert np.array_equal(arr, again[key]), key
        if key.startswith("sat."):
            continue
        if arr.ndim == 3:  # identical copies in a batch behave exactly like batch 1
            for b in range(3):
                assert np.array_equal(three[key][:, b:b + 1], arr), key
        else:
            assert np.array_equal(three[key], arr), key
    assert one["W.hidden"].dtype.kind == "i"


def lagline(w, learning, layer_fp=None, fp=None):
    return network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": 1}, "fixed_point": fp or {},
        "layers": [{"name": f"l{i}", "size": 1, "tau_m": [1.0, 2.0][i], "tau_r": 0.1,
                    "phi": "softplus", "bias": False, "weights": [[w[i]]],
                    "fixed_point": layer_fp or {}} for i in range(2)],
        "learning": learning})


def student_at(cfg, weights, tau_m=None, eta=None):
    """The LagLine GLE student of ``cfg`` started at ``weights`` (and ``tau_m``), with
    ``eta`` (None: the config's) as its weight learning rate."""
    from lava_gle.description import network_to_dict
    from lava_gle.experiments.lagline import student_network
    d = network_to_dict(student_network(cfg), explicit_parameters=True)
    for i, layer in enumerate(d["layers"]):
        layer["weights"] = [[weights[i]]]
        if tau_m is not None:
            layer["tau_m"] = tau_m[i]
    if eta is not None:
        d["learning"]["eta"] = eta
    return network_from_dict(d)


def test_lagline_teacher_student_learns_in_fixed_point():
    """Teacher weights (1, 2), tau_m (1, 2), tau_r 0.1, dt 0.01, smoothed random steps:
    the integer student moves both weights towards the teacher's and its loss falls 10x."""
    from lava_gle.experiments.lagline import SmoothedSteps
    T, B = 5000, 4
    x = SmoothedSteps(0, B, T).window(0, T)
    y = Engine(lagline([1.0, 2.0], {"enabled": False})).run(x, record=["output"])["output"]
    student = lagline([0.64, 0.27], {"enabled": True, "eta": 1.0, "gamma": 1.0, "beta": 0.01},
                      layer_fp={"rate_bits": 6})  # rates up to 4: the teacher's range
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)  # error traces clip early on
        tr = FixedEngine(student).run(x, y, record=["output"])
    k = T // 10
    loss_start = np.mean((tr["output"][:k] - y[:k]) ** 2)
    loss_end = np.mean((tr["output"][-k:] - y[-k:]) ** 2)
    assert loss_start >= 10 * loss_end
    w0, w1 = tr["W.l0"][0, 0], tr["W.l1"][0, 0]
    assert abs(w0 - 1.0) < abs(0.64 - 1.0) and abs(w1 - 2.0) < abs(0.27 - 2.0) / 4


def test_saturation_is_counted_and_warned():
    # u_bits 23 holds potentials below 1.0: with a 26-bit accumulator the drive
    # 2 * softplus(1.5) ~ 3.4 is held at the state's limit of 1 - 2^-23
    x = np.full((50, 1, 1), 1.5)
    net = lagline([1.0, 2.0], {"enabled": False}, layer_fp={"u_bits": 23},
                  fp={"accumulator_bits": 26})
    with pytest.warns(QuantizationWarning, match=r"s\.l1=\d+"):
        tr = FixedEngine(net).run(x, record=True)
    assert int(tr["sat.s.l1"]) > 0 and tr["u.l1"].max() < 1.0
    assert int(tr["sat.acc.l1"]) == 0
    # the default 22-bit accumulator clips the sum first, at 2^21 - 1 LSB (0.25): u
    # rises towards 0.25 instead of 1.0
    net = lagline([1.0, 2.0], {"enabled": False}, layer_fp={"u_bits": 23})
    with pytest.warns(QuantizationWarning, match=r"acc\.l1=\d+"):
        narrow = FixedEngine(net).run(x, record=True)
    assert int(narrow["sat.acc.l1"]) > 0 and int(narrow["sat.s.l1"]) == 0
    assert narrow["u.l1"].max() < 0.25 * tr["u.l1"].max() * 1.01


def test_backend_front_doors():
    net, x, y = golden("visible_lagline")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        tr = simulate(net, x[:20], y[:20], backend="numpy-fixed")
        eng = make_engine(net, "numpy-fixed")
    assert tr["output"].shape == (20, 1, 1)
    assert np.allclose(eng.weights[1], [[0.90625]])  # 0.9 at exponent -5
    with pytest.raises(LavaGleError, match="optimizer Adam"):
        make_engine(net, "numpy-fixed", optimizer=Adam(1e-3))


def test_cli_simulate_numpy_fixed_and_microcode(tmp_path, capsys):
    d = GOLDEN.format("visible_lagline")
    out = tmp_path / "t.npz"
    assert main(["simulate", f"{d}/network.json", "--inputs", f"{d}/inputs.npy", "--targets",
                 f"{d}/targets.npy", "--backend", "numpy-fixed", "--out", str(out),
                 "--quiet"]) == 0
    with np.load(out) as data:
        assert data["r.out"].shape == (2000, 1, 1) and "sat.W.out" in data.files
    assert main(["microcode", f"{d}/network.json"]) == 0
    text = capsys.readouterr().out
    assert "x0*x1*y2 - " in text and "Product: dependency=x0" in text


@pytest.mark.parametrize("eta", [1.0, 0.0625])
def test_student_started_at_its_teacher_does_not_drift_away(eta):
    """Near the optimum the fixed-point update must not be biased. Before the precise
    rules and the dithered error trace, sub-unit products made it sign-SGD: from (1, 2)
    the student drifted to (1.28, 1.84) at eta 1 and (0.72, 1.03) at eta 1/16 (-9 and
    -31 LSB). Now the weights random-walk around the teacher by a few LSB (8-bit weights
    rounded stochastically every step; docs/fixed-point.md, section 3)."""
    from lava_gle.experiments.lagline import LaglineConfig, make_inputs, teacher_network
    cfg = LaglineConfig(optimizer="sgd", seed=0, batch=20, settle_time=0.0, train_time=150.0)
    x = make_inputs(cfg)
    y = Engine(teacher_network(cfg)).run(x, record=["output"])["output"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eng = FixedEngine(student_at(cfg, (1.0, 2.0), eta=eta))
        w = []
        for chunk in np.split(np.arange(len(x)), 15):  # the engine continues between runs
            tr = eng.run(x[chunk], y[chunk])
            w.append([tr["W.l0"][0, 0], tr["W.l1"][0, 0]])
    assert [ql.w_exp for ql in eng.q.layers] == [-5, -5]
    dev = (np.array(w) - [1.0, 2.0]) * 2 ** 5  # in LSB
    assert np.all(np.abs(dev[5:].mean(axis=0)) <= 6), dev.round()
    assert np.all(np.abs(dev) <= 12), dev.round()


def test_tau_m_learns_in_integers_as_in_float():
    """Integer tau_m learning (T in a 24-bit state, dithered SGD steps, Euler factors
    re-derived in integers) moves tau_m as the float engine does: LagLine students from
    random tau_m (seeds 0-5), 2000 steps; per layer, the fixed change deviates from the
    float one by at most 20 % in the median over seeds and 50 % in every seed.

    One seed's deviation is noisy (measured over seeds 0-7 on the tables' phi: l0 0.3-11 %,
    l1 0.5-93 %; on the segments' phi: l0 0.9-20 %, l1 3-37 % for seeds 0-6, the 37 % of
    seed 5 a small change, 0.02 in float); a tau rule that does not follow the float one
    deviates by about 100 % in every seed."""
    from lava_gle.experiments.lagline import (
        LaglineConfig, make_inputs, student_network, teacher_network,
    )
    dev, moved = [], []
    for seed in range(6):
        cfg = LaglineConfig(seed=seed, batch=20, settle_time=0.0, train_time=20.0,
                            learn_tau=True, optimizer="sgd", sgd_eta=1.0)
        x = make_inputs(cfg)
        y = Engine(teacher_network(cfg)).run(x, record=["output"])["output"]
        net = student_network(cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fl, fx = Engine(net).run(x, y), FixedEngine(net).run(x, y)
        t0 = [layer.tau_m_array()[0] for layer in net.layers]
        d_float = np.array([fl[f"tau_m.{ly.name}"][0] for ly in net.layers]) - t0
        d_fixed = np.array([fx[f"tau_m.{ly.name}"][0] for ly in net.layers]) - t0
        moved.append(np.abs(d_float))
        dev.append(np.abs(d_fixed - d_float) / np.abs(d_float))
    dev = np.array(dev)  # [seed, layer]
    assert np.all(np.median(moved, axis=0) > 0.2), np.round(moved, 3)  # it learns
    assert np.all(np.median(dev, axis=0) <= 0.2), dev.round(3)
    assert np.all(dev <= 0.5), dev.round(3)


def test_tau_m_of_a_student_at_its_teacher_stays_there():
    """At the optimum the integer tau_m gradient ``-e du`` must vanish on average. With
    gamma = 1 the error enters du, so any error noise gives ``-gamma e**2`` a mean: with
    the output rates on the 8-bit grid (LSB 1/64) the taus drifted from (1, 2) to (0.84,
    2.18) here. The output layer's 24-bit rate format removes that floor."""
    from lava_gle.experiments.lagline import LaglineConfig, make_inputs, teacher_network
    cfg = LaglineConfig(seed=0, batch=10, settle_time=0.0, train_time=100.0,
                        learn_tau=True, optimizer="sgd")
    x = make_inputs(cfg)
    y = Engine(teacher_network(cfg)).run(x, record=["output"])["output"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weights held at the teacher's (eta 0)
        tr = FixedEngine(student_at(cfg, (1.0, 2.0), (1.0, 2.0), eta=0.0)).run(x, y)
    tau = [tr["tau_m.l0"][0], tr["tau_m.l1"][0]]
    assert tau == pytest.approx([1.0, 2.0], rel=0.02), tau


@pytest.mark.slow
@pytest.mark.parametrize("eta, approaches", [(0.1, True), (1.0, False)])
def test_tau_m_learning_in_integers_needs_weights_slower_than_taus(eta, approaches):
    """From tau_m (2.2, 0.9), w (1, 2.05), batch 100, 80,000 steps, eta_tau 1: with the
    weights at eta 0.1 (the experiment's default) both taus close in on the teacher's;
    at eta 1 the weights keep moving near the optimum and the taus drift the other way
    (measured: (2.33, 0.89); float at eta 1 reaches (1.26, 1.59))."""
    from lava_gle.experiments.lagline import LaglineConfig, make_inputs, teacher_network
    cfg = LaglineConfig(seed=0, batch=100, settle_time=0.0, train_time=800.0, learn_tau=True,
                        optimizer="sgd", sgd_eta=eta)
    x = make_inputs(cfg)
    teacher = Engine(teacher_network(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eng = FixedEngine(student_at(cfg, (1.0, 2.05), (2.2, 0.9)))
        for chunk in np.split(np.arange(len(x)), 80):  # bounded memory
            eng.run(x[chunk], teacher.run(x[chunk], record=["output"])["output"])
    gap_before = np.abs(np.array([2.2, 0.9]) - [1.0, 2.0])
    gap_after = np.abs(np.array([t[0] for t in eng.tau_m]) - [1.0, 2.0])
    assert np.all(gap_after < 0.5 * gap_before) == approaches, gap_after


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("rounding", ["per_synapse", "shared"])
def test_learning_only_the_rows_with_an_error_trace_gives_the_integers_of_all_rows(
        monkeypatch, batch, rounding):
    # the engine updates only rows whose error trace is non-zero; updating every row (the
    # learning engine's full epoch, here in the NumPy reference) must give the same
    # integers, clip counts included
    from lava_gle.numerics import fixed as X
    from lava_gle.numerics import ops
    net = network_from_dict({
        "gle_network": 1, "dt": 0.1, "seed": 3, "input": {"size": 3},
        "fixed_point": {"rounding": rounding},
        "layers": [{"name": "h", "size": 16, "tau_m": 1.0, "tau_r": 1.0, "phi": "tanh"},
                   {"name": "out", "size": 4, "tau_m": 1.0, "tau_r": 1.0, "phi": "linear"}],
        "learning": {"enabled": True, "eta": 0.01, "beta": 1.0, "loss": "mse"}})
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (300, batch, 3))
    y = rng.uniform(-1, 1, (300, batch, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        sparse = FixedEngine(net, dequantize=False).run(x, y, record=["e", "output"])
        seen = []
        monkeypatch.setattr(X, "active_rows", lambda e_q: seen.append(
            np.count_nonzero(np.any(np.reshape(e_q, (-1, e_q.shape[-1])), axis=0)))
            or np.arange(e_q.shape[-1]))
        with ops.using("numpy"):
            full = FixedEngine(net, dequantize=False).run(x, y, record=["e", "output"])
    assert 0 < np.mean(seen) < 16  # some rows were skipped, some learned
    assert sorted(sparse) == sorted(full)
    for key in full:
        np.testing.assert_array_equal(sparse[key], full[key], err_msg=key)


def tagged(net, bits, **fp):
    """``net`` with ``fixed_point.weight_tag_bits`` on its first layer (and ``fp``)."""
    from dataclasses import replace
    first = replace(net.layers[0], fixed_point={**net.layers[0].fixed_point,
                                                "weight_tag_bits": bits})
    return replace(net, layers=(first,) + net.layers[1:],
                   fixed_point={**net.fixed_point, **fp})


def test_weight_tags_learn_and_are_checkpointed():
    """Tags learn (checkpointed as ``tag_W``/``tag_b``, counted as ``sat.tag.<layer>``) and
    their carries reach the weights; a width without a carry product is refused."""
    net, x, y = golden("visible_mlp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        plain, eng = FixedEngine(net), FixedEngine(tagged(net, 7))
        plain.run(x, y, record=False)
        traces = eng.run(x, y, record=False)
        state = eng.state_dict()
        assert np.any(state["tag_W.0"] != 0) and np.any(state["tag_b.0"] != 0)
        assert "tag_W.0" not in plain.state_dict() and "tag_W.1" not in state
        assert f"sat.tag.{net.layers[0].name}" in traces
        start = eng.kernels.layers[0].ql.w  # the initial integers
        assert np.any(state["W.0"] != start)  # the carries reached the weights
        with pytest.raises(LavaGleError, match="weight_tag_bits 4 has no"):
            FixedEngine(tagged(net, 4))


def test_a_trained_engine_that_learns_tau_m_quantises_back_to_its_integers():
    """``FixedEngine.network`` pins tau_m's format (``tau_bits``) too. The golden MLP's
    hidden tau_m is 1.0, a power of two: once learning lifts it, a format derived from the
    learned tau_m would hold half the resolution and round T, and the continuation would
    run on other integers."""
    from lava_gle.description import network_to_dict
    net, x, y = golden("visible_mlp")
    first = FixedEngine(net.with_learning(learn_tau=True, eta_tau=0.05))
    first.run(x[:400], y[:400])
    hidden = first.kernels.layers[0]
    assert hidden.t.max() > hidden.ql.tau.t_init.max()  # tau_m passed 1.0
    second = FixedEngine(network_from_dict(network_to_dict(first.network)))
    assert second.kernels.layers[0].ql.tau.tau_bits == hidden.ql.tau.tau_bits
    np.testing.assert_array_equal(second.kernels.layers[0].t, hidden.t)
    want = first.run(x[400:], y[400:], record=True, reset=True)
    got = second.run(x[400:], y[400:], record=True)
    for key in ("output", "W.hidden", "tau_m.hidden"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("case", ["visible_lagline", "visible_mlp"])
def test_the_network_of_a_trained_engine_quantises_back_to_its_integers(case):
    """``FixedEngine.network`` of a run whose description pins no format: the learned
    weights would size other exponents, formats and error traces, so the engine pins the
    ones it derived, and the description quantises to the very integers and rules it
    holds, and continues the run bit for bit (from the zero state, as the run itself with
    ``reset``)."""
    from conftest import GoldenCase
    from lava_gle.description import network_from_dict, network_to_dict
    g = GoldenCase(case)
    assert not any("weight_exp" in layer.fixed_point for layer in g.net.layers)
    first = FixedEngine(g.net)
    first.run(g.inputs[:400], g.targets[:400])
    second = FixedEngine(network_from_dict(network_to_dict(first.network)))
    for a, b in zip(first.q.layers, second.q.layers):
        for field in ("w_exp", "b_exp", "u_bits", "e_bits", "rate_bits", "trace_shift",
                      "trace_coarsening", "rule", "bias_rule", "w_shift", "b_shift",
                      "back_shift"):
            assert getattr(b, field) == getattr(a, field), (a.name, field)
    want = first.run(g.inputs[400:], g.targets[400:], record=True, reset=True)
    got = second.run(g.inputs[400:], g.targets[400:], record=True)
    for key in ("output", *(f"W.{layer.name}" for layer in g.net.layers)):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
