"""The NumPy engine against golden trajectories and closed-form solutions."""
from __future__ import annotations

import numpy as np
import pytest

from lava_gle import network_from_dict
from lava_gle.numerics.engine import Engine
from lava_gle.errors import ShapeError
from lava_gle.traces import max_relative_errors, state_keys

from tolerances import assert_close_at_scale


def make_net(sizes, phis, tau_m=1.0, tau_r=0.1, dt=0.01, learning=None, **layer_kw):
    return network_from_dict({
        "gle_network": 1, "dt": dt, "input": {"size": sizes[0]},
        "layers": [dict(size=s, tau_m=tau_m, tau_r=tau_r, phi=p, **layer_kw)
                   for s, p in zip(sizes[1:], phis)],
        "learning": learning or {"enabled": False}})


def test_golden_cases_reproduced(golden):
    traces = Engine(golden.net).run(golden.inputs, golden.targets, record=True)
    errors = max_relative_errors(golden.expected, traces)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-9, f"{golden.name}: {worst} off by {errors[worst]:.2e}"
    assert set(golden.expected) <= set(traces)


def test_golden_cases_run_in_float32_close_to_float64(golden):
    traces = Engine(golden.net, dtype=np.float32).run(golden.inputs, golden.targets, record=["r"])
    for name in golden.net.layer_names:
        exp = golden.expected[f"r.{name}"]
        assert np.max(np.abs(traces[f"r.{name}"] - exp)) <= 1e-4 * np.max(np.abs(exp)) + 1e-6


def test_single_linear_neuron_step_response_matches_closed_form():
    # u_t = (1 - a)^(t+1)... with a = dt/tau_m and constant drive w*x: u_t = w x (1 - (1 - a)^(t+1))
    dt, tau_m, tau_r, w, x = 0.01, 0.5, 0.2, 1.7, 0.8
    net = make_net([1, 1], ["linear"], tau_m=tau_m, tau_r=tau_r, dt=dt, bias=False,
                   weights=[[w]])
    T = 400
    tr = Engine(net).run(np.full((T, 1), x), record=True)
    t = np.arange(T)
    a = dt / tau_m
    u = w * x * (1 - (1 - a) ** (t + 1))
    u_prev = np.concatenate([[0.0], u[:-1]])
    u_prosp = u_prev + tau_r / tau_m * (w * x - u_prev)
    np.testing.assert_allclose(tr["u.layer0"][:, 0, 0], u, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tr["u_prosp.layer0"][:, 0, 0], u_prosp, rtol=1e-12)
    np.testing.assert_allclose(tr["r.layer0"][:, 0, 0], u_prosp, rtol=1e-12)
    # the membrane approaches the drive with time constant tau_m
    assert abs(tr["u.layer0"][-1, 0, 0] - w * x) < w * x * np.exp(-T * dt / tau_m) * 1.1


def test_latent_equilibrium_prospective_potential_equals_input_after_one_step():
    # tau_r == tau_m: u_prosp = u + tau_m * (s - u) / tau_m = s, whatever u was.
    net = make_net([3, 2], ["linear"], tau_m=0.3, tau_r=0.3, dt=0.01,
                   weights=[[0.5, -1.0, 2.0], [1.5, 0.2, -0.7]], biases=[0.1, -0.2])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4, 3))
    tr = Engine(net).run(x, record=True)
    w = np.array(net.layers[0].weights)
    s = x @ w.T + np.array(net.layers[0].biases)
    np.testing.assert_allclose(tr["u_prosp.layer0"], s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tr["r.layer0"], s, rtol=1e-12, atol=1e-12)


def test_one_step_per_layer_hop_forwards_and_backwards():
    net = make_net([1, 1, 1, 1], ["linear"] * 3, tau_m=0.1, tau_r=0.1, dt=0.01, bias=False,
                   learning={"enabled": False, "gamma": 0.0, "beta": 1.0})
    x = np.zeros((10, 1))
    x[3] = 1.0
    tr = Engine(net).run(x, record=True)
    first = [int(np.flatnonzero(tr[f"r.layer{l}"][:, 0, 0])[0]) for l in range(3)]
    assert first == [3, 4, 5]
    assert int(np.flatnonzero(tr["output"][:, 0, 0])[0]) == 6
    # backwards: a constant target gives the first output error at step 1 (r' is 0 at step 0),
    # which needs one more step per layer below.
    tr = Engine(net).run(np.zeros((10, 1)), np.ones((10, 1)), record=True)
    first_e = [int(np.flatnonzero(tr[f"e.layer{l}"][:, 0, 0])[0]) for l in range(3)]
    assert first_e == [3, 2, 1]


def test_learning_off_never_changes_parameters_but_errors_flow(golden):
    net = golden.net
    frozen = network_from_dict({**_as_dict(net), "learning": {
        **_as_dict(net)["learning"], "enabled": False}})
    tr = Engine(frozen).run(golden.inputs, golden.targets, record=["e"])
    for i, name in enumerate(net.layer_names):
        np.testing.assert_array_equal(tr[f"W.{name}"], net.initial_weights(i))
        np.testing.assert_array_equal(tr[f"b.{name}"], net.initial_biases(i))
        assert np.any(tr[f"e.{name}"] != 0)


def test_batch_elements_are_independent_copies_without_learning():
    net = make_net([2, 3, 2], ["tanh", "linear"], learning={"enabled": False, "gamma": 1.0,
                                                             "beta": 0.5})
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 3, 2)), rng.normal(size=(60, 3, 2))
    batched = Engine(net).run(x, y, record=True)
    # batch 3 and batch 1 take different BLAS paths: measured up to 12 ulps of each key's
    # scale over these 60 steps with the OpenBLAS kernels of x86-64 (Prescott to Cooperlake)
    for b in range(3):
        single = Engine(net).run(x[:, b], y[:, b], record=True)
        for key in state_keys(net.layer_names):
            assert_close_at_scale(batched[key][:, b], single[key][:, 0], ulps=64,
                                  what=f"{key}[batch {b}]")


def test_batch_learning_uses_the_mean_of_local_signals():
    net = make_net([2, 2], ["linear"], learning={"enabled": True, "eta": 0.3, "gamma": 0.0,
                                                  "beta": 1.0})
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1, 4, 2)), rng.normal(size=(1, 4, 2))
    e = Engine(net)
    e.run(x, y)  # step 0: r' is zero, so no error and no change
    np.testing.assert_array_equal(e.weights[0], net.initial_weights(0))
    e.run(x, y)
    st = e.state[0]
    expect = net.initial_weights(0) + 0.3 * (st.e.T @ x[0]) / 4
    # one update, a sum of 4 products, the same formula in another order: a few ulps
    assert_close_at_scale(e.weights[0], expect, ulps=8)


def test_cross_entropy_error_is_onehot_minus_softmax():
    net = make_net([2, 3], ["linear"], learning={"enabled": False, "loss": "ce", "beta": 2.0,
                                                  "prospective_errors": False})
    x = np.ones((3, 2))
    tr = Engine(net).run(x, np.array([2, 2, 2]), record=True)
    r1 = tr["r.layer0"][1, 0]
    soft = np.exp(r1) / np.exp(r1).sum()
    # instantaneous errors: e = r'(prev) * beta * (onehot - softmax(r_prev)), r' = 1 for linear
    np.testing.assert_allclose(tr["e.layer0"][2, 0], 2.0 * (np.eye(3)[2] - soft), rtol=1e-13)


def test_feedback_alignment_sends_errors_through_fixed_random_weights():
    base = {"enabled": True, "eta": 0.1, "gamma": 0.0, "beta": 1.0}
    fa = make_net([2, 3, 2], ["tanh", "linear"], learning={**base,
                                                           "backward": "feedback_alignment"})
    e = Engine(fa)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    e.run(x, y)
    B = fa.feedback_weights(1)
    assert not np.allclose(B, fa.initial_weights(1))
    np.testing.assert_allclose(e.eps[1], e.state[1].e @ B, rtol=1e-13)
    np.testing.assert_array_equal(fa.feedback_weights(1), B)  # fixed, reproducible


def test_tau_m_learning_respects_the_clamp():
    net = make_net([1, 1], ["linear"], tau_m=0.2, tau_r=0.05, dt=0.01,
                   learning={"enabled": True, "eta": 0.0, "learn_tau": True, "eta_tau": 50.0,
                             "tau_m_min": 0.15, "beta": 1.0})
    e = Engine(net)
    tr = e.run(np.ones((300, 1)), np.full((300, 1), 5.0))
    assert tr["tau_m.layer0"][0] != 0.2
    assert tr["tau_m.layer0"][0] >= 0.15


def test_runs_continue_from_the_last_state_unless_reset():
    net = make_net([1, 2], ["tanh"])
    x = np.random.default_rng(4).normal(size=(40, 1))
    whole = Engine(net).run(x, record=["u"])
    e = Engine(net)
    a, b = e.run(x[:25], record=["u"]), e.run(x[25:], record=["u"])
    np.testing.assert_array_equal(np.concatenate([a["u.layer0"], b["u.layer0"]]),
                                  whole["u.layer0"])
    again = e.run(x[:25], record=["u"], reset=True)
    np.testing.assert_array_equal(again["u.layer0"], a["u.layer0"])


def test_recording_nothing_still_returns_final_parameters():
    net = make_net([1, 2], ["tanh"])
    tr = Engine(net).run(np.zeros((5, 1)))
    assert sorted(tr) == ["W.layer0", "b.layer0"]


@pytest.mark.parametrize("inputs, targets, match", [
    (np.zeros((5, 3)), None, r"needs \[T, 2\]"),
    (np.zeros((5, 1, 2)), np.zeros((4, 1, 2)), r"targets have shape \[4, 1, 2\]"),
    (np.zeros((5, 2, 2)), np.zeros((5, 2)), r"targets have shape \[5, 2\]; loss 'mse' "
                                            r"needs \[5, 2, 2\] to match"),  # not [5, 2]
    (np.zeros((5, 1, 2)), np.zeros((5, 3)), r"needs \[5, 2\] or \[5, 1, 2\] to match"),
    (np.full((5, 2), np.nan), None, "non-finite value at step 0"),
    (np.zeros((0, 2)), None, "T and batch must be >= 1"),
])
def test_mismatched_streams_give_clear_errors(inputs, targets, match):
    net = make_net([2, 2], ["linear"])
    with pytest.raises(ShapeError, match=match):
        Engine(net).run(inputs, targets)


def test_changing_batch_without_reset_is_refused():
    net = make_net([2, 2], ["linear"])
    e = Engine(net)
    e.run(np.zeros((3, 2, 2)))
    with pytest.raises(ShapeError, match="reset=True"):
        e.run(np.zeros((3, 4, 2)))


def _as_dict(net):
    from lava_gle.description import network_to_dict
    return network_to_dict(net, explicit_parameters=True)
