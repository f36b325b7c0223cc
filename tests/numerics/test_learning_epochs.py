"""Learning epochs of K steps (``learning.epoch_steps``, the learning engine's ``t_epoch``):
W and b learn once every K steps from the learning error summed over the epoch and the
presynaptic rate averaged over it, in float and in integers, in the engine and in Lava,
and a run resumed in the middle of an epoch continues it."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from conftest import GoldenCase, with_normalisers
from lava_gle import network_from_dict
from lava_gle.backends import make_engine, simulate
from lava_gle.description import network_to_dict
from lava_gle.errors import LavaGleError, NetworkSpecError
from lava_gle.microcode import learning_rules
from lava_gle.numerics.kernels import FixedKernels
from lava_gle.numerics.optim import Adam
from lava_gle.quantize import QuantizationError, QuantizationWarning, quantize_network


def with_epochs(net, k: int):
    return net.with_learning(epoch_steps=k)


def quiet_engine(net, backend: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        return make_engine(net, backend)


def one_layer(k: int, batch: int):
    """An input -> 3 linear neurons network learning at eta 0.05, K steps per epoch, and its
    streams: random inputs and targets, ``batch`` copies."""
    net = network_from_dict({
        "gle_network": 1, "dt": 0.1, "input": {"size": 2},
        "layers": [{"name": "out", "size": 3, "tau_m": 0.5, "tau_r": 0.5, "phi": "linear"}],
        "learning": {"enabled": True, "eta": 0.05, "beta": 1.0, "epoch_steps": k}})
    rng = np.random.default_rng(3)
    return net, rng.uniform(-1, 1, (24, batch, 2)), rng.uniform(-0.5, 0.5, (24, batch, 3))


@pytest.mark.parametrize("k", [1, 4, 3])
def test_float_epochs_learn_the_summed_error_times_the_mean_rate(k):
    """From the errors the run recorded and its inputs: W and b move by eta mean_b (sum e)
    (mean x)^T and eta mean_b(sum e) at the end of every epoch and nowhere else (24 steps:
    whole epochs of 1, 3 and 4 steps)."""
    net, x, y = one_layer(k, batch=2)
    engine = make_engine(net, "numpy")
    w0, b0 = engine.kernels.layers[0].W.copy(), engine.kernels.layers[0].b.copy()
    e = engine.run(x, y, record=["e"])["e.out"]  # [T, B, 3]
    w, b = w0.copy(), b0.copy()
    for start in range(0, len(x), k):
        e_sum, x_mean = e[start:start + k].sum(0), x[start:start + k].mean(0)
        w += 0.05 * np.einsum("bn,bm->nm", e_sum, x_mean) / x.shape[1]
        b += 0.05 * e_sum.mean(0)
    scale = np.abs(w - w0).max()
    np.testing.assert_allclose(engine.kernels.layers[0].W, w, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(engine.kernels.layers[0].b, b, rtol=0, atol=1e-12 * scale)
    if k > 1:  # the per-step rule on the same signals ends elsewhere
        per_step = w0 + 0.05 * np.einsum("tbn,tbm->nm", e, x) / x.shape[1]
        assert np.abs(per_step - w).max() > 1e-3 * scale


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed-chip"])
def test_an_epoch_of_one_step_is_gles_rule_bit_for_bit(backend):
    """The epoch machinery itself, run with epochs of one step (every layer given a
    ``LearningEpoch`` of 1, which the description's default skips), gives the per-step
    rule's numbers exactly: the sums start from the step's own pair, the mean of one
    payload is the payload."""
    from lava_gle.numerics import fixed as X
    from lava_gle.numerics.kernels import LearningEpoch
    g = GoldenCase("visible_mlp")
    net = with_normalisers(g.net)
    plain, epochs = quiet_engine(net, backend), quiet_engine(net, backend)
    floating = epochs.kernels.arithmetic == "float"
    for k in epochs.kernels.layers:
        assert k.epoch is None
        k.epoch = LearningEpoch(1, np.add if floating else k._add_error,
                                (lambda p: p / 1) if floating else (lambda p: X.shift_round(p, 0)))
    ra = plain.run(g.inputs, g.targets, record=["e"])
    rb = epochs.run(g.inputs, g.targets, record=["e"])
    start = quiet_engine(net, backend).kernels.layers[1]
    assert not np.array_equal(ra["W.out"], start.decode("W", start.W))  # it learned
    for key in ra:
        np.testing.assert_array_equal(ra[key], rb[key], err_msg=f"{backend} {key}")


def test_fixed_epochs_sum_the_errors_in_24_bits_and_round_the_mean_payload():
    """The integer epoch: errors summed and clipped to the 24-bit state (counted as
    ``esum``), payloads averaged by a rounding shift (ties up)."""
    q = quantize_network(with_epochs(GoldenCase("visible_mlp").net, 4))
    kernels = FixedKernels(q)
    layer = kernels.layers[1]
    big = np.full((1, layer.size), (1 << 23) - 10, np.int64)
    pays = [np.array([[1, 2, -3, 5]]), np.array([[0, 0, 0, 0]]), np.array([[0, 0, 0, 1]]),
            np.array([[1, 0, 0, 0]])]
    pays = [p[:, :layer.W.shape[1]] for p in pays]
    pairs = [layer.epoch.pair(big if i == 0 else np.full_like(big, 7), p)
             for i, p in enumerate(pays)]
    assert pairs[:3] == [None, None, None]
    l_sum, p_mean = pairs[3]
    np.testing.assert_array_equal(l_sum, np.full_like(big, (1 << 23) - 1))
    assert kernels.saturation.counts["esum.out"] == 2 * layer.size  # steps 2 and 3 clipped
    total = sum(pays)
    np.testing.assert_array_equal(p_mean, (total + 2) >> 2)  # 2/4 -> 1, 6/4 -> 2, -3/4 -> -1


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed", "numpy-fixed-chip"])
def test_a_run_resumed_inside_an_epoch_continues_it(backend):
    """``state_dict`` holds the begun epoch's sums: 2 + 2 + 3 steps of 4-step epochs give
    the parameters of 7 steps in one run."""
    g = GoldenCase("visible_mlp")
    net = with_epochs(with_normalisers(g.net), 4)
    x, y = g.inputs[:7], g.targets[:7]
    whole = quiet_engine(net, backend)
    whole.run(x, y)
    first = quiet_engine(net, backend)
    first.run(x[:2], y[:2])
    first.run(x[2:4], y[2:4])  # continues: no reset between runs
    resumed = quiet_engine(net, backend)
    resumed.load_state_dict(first.state_dict())
    assert int(resumed.state_dict()["epoch.0.count"]) == 0  # 4 steps: an epoch ended
    first.run(x[4:6], y[4:6])
    resumed = quiet_engine(net, backend)
    resumed.load_state_dict(first.state_dict())
    assert int(resumed.state_dict()["epoch.0.count"]) == 2
    resumed.run(x[6:], y[6:])
    for key, value in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed", "numpy-fixed-chip"])
def test_a_change_of_epoch_length_continues_as_an_engine_built_with_it(backend):
    """``set_epoch_steps`` between runs: 6 steps at K = 1, then K = 4, ends bit for bit
    where an engine built for K = 4 ends from the same state (given empty sums and zero
    summed-error counts by hand, as a checkpoint of K = 1 lacks them); then back to K = 1
    after a whole epoch, keeping a nonzero summed-error count (an engine at K = 1
    restores it), and the other way refused inside one."""
    g = GoldenCase("visible_mlp")
    net = with_normalisers(g.net)
    x, y = g.inputs[:14], g.targets[:14]
    changed = quiet_engine(net, backend)
    changed.run(x[:6], y[:6])
    saved = changed.state_dict()
    changed.set_epoch_steps(4)
    assert changed.net.learning.epoch_steps == 4
    built = quiet_engine(with_epochs(net, 4), backend)
    extra = {f"epoch.{l}.count": np.array(0) for l in range(len(net.layers))}
    if built.kernels.saturation is not None:
        extra.update({f"sat.{key}": np.array(0) for key in built.kernels.saturation.counts
                      if key.startswith("esum.")})
        assert sorted(changed.kernels.saturation.counts) == sorted(
            built.kernels.saturation.counts)
    built.load_state_dict({**saved, **extra})
    changed.run(x[6:12], y[6:12])
    built.run(x[6:12], y[6:12])
    after = built.state_dict()
    assert int(after["epoch.0.count"]) == 2  # 6 steps of 4-step epochs
    for key, value in after.items():
        np.testing.assert_array_equal(changed.state_dict()[key], value, err_msg=key)
    assert not np.array_equal(after["W.1"], saved["W.1"])  # it learned
    with pytest.raises(LavaGleError, match=r"layer 'hidden' is 2 steps into a learning "
                                           r"epoch of 4, whose sums the change would drop"):
        changed.set_epoch_steps(1)
    changed.run(x[12:14], y[12:14])
    if changed.kernels.saturation is not None:  # a count without a counter at K = 1
        changed.kernels.saturation.counts["esum.out"] = 5
    changed.set_epoch_steps(1)
    state = changed.state_dict()
    if changed.kernels.saturation is not None:  # kept, and restored by an engine at K = 1
        assert state["sat.esum.out"] == 5 and "sat.esum.hidden" not in state
        back = quiet_engine(net, backend)
        back.load_state_dict(state)
        assert back.kernels.saturation.counts == changed.kernels.saturation.counts
    assert "epoch.0.count" not in state
    assert changed.net.learning.epoch_steps == 1


@pytest.mark.lava
@pytest.mark.parametrize("lava_backend, twin_backend", [("lava-fixed", "numpy-fixed-chip"),
                                                        ("lava-fixed-exact", "numpy-fixed")])
def test_lava_learns_the_engines_integers_with_learning_epochs(lava_backend, twin_backend):
    """The structural Lava build (each Process that learns an array keeps the epoch's sums of
    its own pairs) gives the engine's integers, normalisers on, epochs of 4 steps."""
    g = GoldenCase("visible_mlp")
    net = with_epochs(with_normalisers(g.net), 4)
    x, y = g.inputs[:30], g.targets[:30]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        twin = simulate(net, x, y, backend=twin_backend, record=["output", "e"])
        lava = simulate(net, x, y, backend=lava_backend, record=["output", "e"])
        per_step = simulate(with_epochs(net, 1), x, y, backend=twin_backend, record=["e"])
    keys = sorted(k for k in twin.keys() & lava.keys() if not k.startswith("sat."))
    assert {"W.hidden", "W.out"} <= set(keys)
    for k in keys:
        np.testing.assert_array_equal(lava[k], twin[k], err_msg=k)
    assert not np.array_equal(per_step["W.out"], twin["W.out"])


def test_epoch_steps_are_checked_where_they_are_given():
    d = network_to_dict(GoldenCase("visible_mlp").net)
    d["learning"]["epoch_steps"] = 0
    with pytest.raises(NetworkSpecError, match=r"learning.epoch_steps.*>= 1"):
        network_from_dict(d)
    d["learning"]["epoch_steps"] = 4
    net = network_from_dict(d)
    assert net.learning.epoch_steps == 4
    assert network_to_dict(net)["learning"]["epoch_steps"] == 4
    assert "epoch_steps" not in network_to_dict(with_epochs(net, 1))["learning"]
    with pytest.raises(QuantizationError, match=r"learning.epoch_steps 6 .* give 4 or 8"):
        quantize_network(with_epochs(net, 6))
    with pytest.raises(LavaGleError, match=r"epoch_steps 4.*Adam"):
        make_engine(net, "numpy", optimizer=Adam(lr=1e-3))


def test_the_microcode_runs_one_epoch_every_k_steps(tmp_path, capsys):
    from lava_gle.cli import main
    from lava_gle.description import save_network
    g = GoldenCase("visible_mlp")
    save_network(with_epochs(g.net, 8), tmp_path / "net.json")
    assert main(["microcode", str(tmp_path / "net.json")]) == 0
    printed = capsys.readouterr().out
    assert "t_epoch=8" in printed and "one epoch every 8 steps" in printed
    assert printed.count("learning epoch: 9 instructions per neuron and step\n") == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        plain = learning_rules(quantize_network(g.net))
        rules = learning_rules(quantize_network(with_epochs(g.net, 8)))
    for layer, entry in rules.items():
        for key, rule in entry.items():
            if rule is not None:
                assert rule["t_epoch"] == 8 and "8 steps" in rule["epoch"]
                assert rule["product_series"] == plain[layer][key]["product_series"]
                assert plain[layer][key]["t_epoch"] == 1 and "epoch" not in plain[layer][key]


def test_the_neurons_epoch_program_gives_the_kernels_sums_with_public_operations():
    """``epoch_program``: each step's error and payload summed, the count, and at every
    K-th step the summed error and the rounded mean payload the kernel's epoch gives
    (clips counted alike), in operations public sources show."""
    from lava_gle.numerics.neuron_program import epoch_program, execute, unsupported_ops
    q = quantize_network(with_epochs(GoldenCase("visible_mlp").net, 4))
    layer = FixedKernels(q).layers[1]
    program = epoch_program(2)
    assert unsupported_ops(program) == []
    rng = np.random.default_rng(5)
    regs = {"lsum": np.zeros((1, 4), np.int64), "psum": np.zeros((1, 4), np.int64),
            "c": np.zeros((1, 4), np.int64)}
    clipped = 0
    for step in range(12):
        l = rng.integers(-(1 << 22), 1 << 22, (1, 4)) * (4 if step == 5 else 1)
        p = rng.integers(-127, 128, (1, 4))
        regs, counts = execute(program, {**regs, "l": l, "p": p})
        clipped += counts["esum"]
        pair = layer.epoch.pair(l, p)
        assert (pair is not None) == bool(regs["end"].all()), step
        if pair is not None:
            np.testing.assert_array_equal(regs["lout"], pair[0])
            np.testing.assert_array_equal(regs["pout"], pair[1])
    assert clipped == layer.sat.counts["esum.out"] > 0


def test_the_mapper_counts_the_epoch_program_per_neuron():
    from lava_gle.mappings.mapper import map_network
    from lava_gle.mappings.report import build_report
    net = GoldenCase("visible_mlp").net
    report = build_report(map_network(with_epochs(net, 4)))
    assert "the learning epochs take hidden 9, out 9 per neuron" in report.format_text()
    plain, epochs = (build_report(map_network(n)).totals["neuron_program"]
                     for n in (net, with_epochs(net, 4)))
    assert epochs["epoch_instructions_per_neuron"] == {"hidden": 9, "out": 9}
    assert plain["epoch_instructions_per_neuron"] == {}
    assert {n: k - plain["instructions_per_neuron"][n]
            for n, k in epochs["instructions_per_neuron"].items()} == {"hidden": 9, "out": 9}
    # a layer runs its epoch where the projection into it or out of it learns
    net = with_epochs(net, 4)
    frozen = {name: replace(net, layers=tuple(replace(l, eta_scale=0.0) if l.name == name
                                              else l for l in net.layers))
              for name in ("hidden", "out")}
    still = replace(net, learning=replace(net.learning, eta=0.0))
    counts = {k: build_report(map_network(n)).totals["neuron_program"][
        "epoch_instructions_per_neuron"] for k, n in (*frozen.items(), ("eta 0", still))}
    assert counts == {"hidden": {"hidden": 9, "out": 9}, "out": {"hidden": 9}, "eta 0": {}}
