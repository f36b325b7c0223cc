"""Polyak averaging of a run's weights (``--average-window``): the moving average itself,
its integers in fixed point, and a run that tests, checkpoints and ends with it."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from lava_gle import load_network
from lava_gle.errors import LavaGleError
from lava_gle.experiments import training, yinyang
from lava_gle.experiments.averaging import WeightAverage
from lava_gle.experiments.checkpoint import ExperimentInterrupted
from lava_gle.experiments.rules import rule_overrides
from lava_gle.numerics.engine import Engine, FixedEngine

TINY = yinyang.YinyangConfig.quick(epochs=2, n_train=60, n_test=60, hidden=12,
                                   optimizer="sgd", loss="mse", batch=1, agreement_steps=0)


def _set(engine, kind, values):
    for k, v in zip(engine.kernels.layers, values):
        k.load({kind: v})


def test_the_average_follows_the_moving_average_recurrence_in_closed_form():
    """After updates with the weights at v_1..v_n the average is
    (1-r)^n v_0 + sum_k r (1-r)^(n-k) v_k, r = 1/window, v_0 the start; biases likewise."""
    engine = Engine(yinyang.build_network(TINY))
    rng = np.random.default_rng(0)
    start = [k.W.copy() for k in engine.kernels.layers]
    avg = WeightAverage(engine, window=4.0)
    seen = []
    for _ in range(5):
        seen.append([rng.normal(size=k.W.shape) for k in engine.kernels.layers])
        _set(engine, "W", seen[-1])
        avg.update(engine)
    r, n = 0.25, len(seen)
    for layer, mean in enumerate(avg.means):
        expected = (1 - r) ** n * start[layer] + sum(
            r * (1 - r) ** (n - 1 - i) * v[layer] for i, v in enumerate(seen))
        np.testing.assert_allclose(mean["W"], expected, rtol=1e-12, atol=1e-12)
    arrays = avg.arrays()
    assert sorted(arrays) == sorted(f"average.{kind}.{l}" for l in range(2)
                                    for kind in ("W", "b"))
    fresh = WeightAverage(engine, window=4.0)
    fresh.load(arrays)
    for a, b in zip(fresh.means, avg.means):
        np.testing.assert_array_equal(a["W"], b["W"])


def test_an_average_updated_every_k_batches_moves_k_over_the_window_each_time():
    engine = Engine(yinyang.build_network(TINY))
    start = [k.W.copy() for k in engine.kernels.layers]
    avg = WeightAverage(engine, window=8.0, every=2)
    _set(engine, "W", [w + 1.0 for w in start])
    avg.update(engine)
    for mean, w in zip(avg.means, start):
        np.testing.assert_allclose(mean["W"], w + 0.25, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="every must be 1 to the window"):
        WeightAverage(engine, window=2.0, every=3)


def test_an_update_every_window_batches_tests_the_weights_of_the_last_update(tmp_path):
    """window = every: each update replaces the average by the weights, so with an even
    number of batches per epoch (60) the tested weights are those the epoch ended with;
    every batch with the same window keeps an average that differs from them."""
    h = yinyang.run_yinyang(replace(TINY, average_window=2.0, average_every=2),
                            tmp_path / "every2", quiet=True)["history"]
    assert h["test_acc"] == h["test_acc_unaveraged"]
    h1 = yinyang.run_yinyang(replace(TINY, average_window=2.0), tmp_path / "every1",
                             quiet=True)["history"]
    assert h1["test_acc_unaveraged"] == h["test_acc_unaveraged"]  # learning untouched
    assert h1["test_acc"] != h1["test_acc_unaveraged"]


def test_the_average_is_updated_after_every_kth_batch_of_each_epoch(tmp_path, monkeypatch):
    """60 batches per epoch, every 7th: batches 7 .. 56, 8 updates per epoch; the count
    restarts with each epoch."""
    calls = []

    class Counting(WeightAverage):
        def update(self, engine):
            calls.append(self.rate)
            super().update(engine)

    monkeypatch.setattr(training, "WeightAverage", Counting)
    yinyang.run_yinyang(replace(TINY, average_window=14.0, average_every=7), tmp_path,
                        quiet=True)
    assert calls == [0.5] * 16


@pytest.mark.parametrize("window, every, message", [
    (None, 2, "--average-every sets how often .* add --average-window"),
    (4.0, 5, r"--average-every 5: .* must be 1 to the window \(4\)"),
    (4.0, 0, r"--average-every 0: .* must be 1 to the window \(4\)")])
def test_average_every_needs_a_window_that_spans_it(window, every, message):
    with pytest.raises(LavaGleError, match=message):
        rule_overrides("numpy", average_window=window, average_every=every)


def test_fixed_point_kernels_get_the_average_rounded_to_their_integers_and_back():
    engine = FixedEngine(yinyang.build_network(TINY))
    own = [k.W.copy() for k in engine.kernels.layers]
    avg = WeightAverage(engine, window=2.0)
    _set(engine, "W", [w + 3 for w in own])  # (w + w + 3) / 2 = w + 1.5 -> w + 2 (even)
    avg.update(engine)
    with avg.applied(engine):
        for k, w in zip(engine.kernels.layers, own):
            assert k.W.dtype == np.int64
            np.testing.assert_array_equal(k.W, np.rint(w + 1.5).astype(np.int64))
    for k, w in zip(engine.kernels.layers, own):
        np.testing.assert_array_equal(k.W, w + 3)  # its own integers are back


def test_a_window_of_one_batch_tests_the_weights_as_they_learned(tmp_path):
    m = yinyang.run_yinyang(replace(TINY, average_window=1.0), tmp_path, quiet=True)
    h = m["history"]
    assert h["test_acc"] == h["test_acc_unaveraged"]
    assert m["test_accuracy_unaveraged"] == m["test_accuracy"]


def test_an_averaged_fixed_point_run_resumes_its_averages_and_ends_with_them(tmp_path,
                                                                              stop_after):
    config = replace(TINY, average_window=20.0)
    whole = yinyang.run_yinyang(config, tmp_path / "whole", backend="numpy-fixed", quiet=True)
    assert whole["history"]["test_acc"] != whole["history"]["test_acc_unaveraged"]
    with pytest.raises(ExperimentInterrupted):  # stops in epoch 2
        yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed", quiet=True,
                            guard=stop_after(70))
    resumed = yinyang.run_yinyang(config, tmp_path / "cut", backend="numpy-fixed", quiet=True)
    assert resumed["history"] == whole["history"] | {"time_s": resumed["history"]["time_s"]}
    arrays = {p: np.load(tmp_path / p / "checkpoint.npz") for p in ("whole", "cut")}
    for key in ("average.W.0", "average.b.1", "train.W.1"):
        np.testing.assert_array_equal(arrays["whole"][key], arrays["cut"][key])
    # the written network is the average, as the fixed-point backends quantise it back
    trained = FixedEngine(load_network(tmp_path / "whole" / "network_trained.json"))
    for l, k in enumerate(trained.kernels.layers):
        np.testing.assert_array_equal(k.W, np.rint(arrays["whole"][f"average.W.{l}"]))
    assert whole["test_accuracy_fixed_chip"] == whole["test_accuracy"]


@pytest.mark.parametrize("batch", [1, 2])
def test_averaging_a_batched_fixed_point_run_is_warned_about(tmp_path, batch):
    """Measured harmful at batch 100 in integers ("Session 30"), helpful online: the
    warning names the measurement at batch > 1 only."""
    config = replace(TINY, epochs=1, n_train=4, n_test=4, batch=batch, average_window=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yinyang.run_yinyang(config, tmp_path, backend="numpy-fixed", quiet=True)
    ours = [str(w.message) for w in caught if "--average-window" in str(w.message)]
    assert ours == ([] if batch == 1 else
                    [f"--average-window at batch {batch} in fixed point: on MNIST-1D at batch "
                     "100 it cost the integers 1.8 final test points (four seeds, "
                     "docs/experiments-log.md, 'Session 30'); it helps online training "
                     "(--batch 1)"])


@pytest.mark.parametrize("window", [0.5, 0.0])
def test_a_window_below_one_batch_is_refused(window):
    with pytest.raises(LavaGleError, match=rf"--average-window {window:g}: .* at least 1"):
        rule_overrides("numpy", average_window=window)


def test_a_resumed_run_may_change_the_window_and_the_average_carries_on(tmp_path, stop_after):
    """Tail averaging: a run cut in epoch 2 and resumed with another window learns exactly
    as the uninterrupted run (averaging never touches learning), and its average carries
    on from the checkpointed one: with a window of 1e9 batches it stays where it stood."""
    short = replace(TINY, average_window=4.0)
    whole = yinyang.run_yinyang(short, tmp_path / "whole", quiet=True)
    with pytest.raises(ExperimentInterrupted):  # stops after 70 of the 120 batches
        yinyang.run_yinyang(short, tmp_path / "cut", quiet=True, guard=stop_after(70))
    at_cut = dict(np.load(tmp_path / "cut" / "checkpoint.npz"))
    resumed = yinyang.run_yinyang(replace(short, average_window=1e9), tmp_path / "cut",
                                  quiet=True)
    assert (resumed["history"]["test_acc_unaveraged"]
            == whole["history"]["test_acc_unaveraged"])
    end = {p: dict(np.load(tmp_path / p / "checkpoint.npz")) for p in ("whole", "cut")}
    for key in ("train.W.0", "train.W.1", "train.b.1"):
        np.testing.assert_array_equal(end["cut"][key], end["whole"][key])
        average = key.replace("train.", "average.")
        moved = np.abs(end["cut"][key] - at_cut[average]).max()  # weights since the cut
        assert moved > 1e-3
        np.testing.assert_allclose(end["cut"][average], at_cut[average], rtol=0,
                                   atol=100 * 1e-9 * moved)  # 50 updates at rate 1e-9
    assert ("the average's window changes from 4 to 1e+09 batches; the average carries on "
            "from where it stood") in (tmp_path / "cut" / "log.txt").read_text()


@pytest.mark.parametrize("before, after, message", [
    (4.0, None, r"checkpointed with an average of its weights \(window 4\); .* give "
                r"--average-window \(4 keeps it\), or pass --fresh"),
    (None, 4.0, r"checkpointed without an average of its weights; .* drop --average-window")])
def test_a_resumed_run_may_not_turn_averaging_on_or_off(tmp_path, stop_after, before, after,
                                                         message):
    with pytest.raises(ExperimentInterrupted):
        yinyang.run_yinyang(replace(TINY, average_window=before), tmp_path, quiet=True,
                            guard=stop_after(10))
    with pytest.raises(LavaGleError, match=r"--average-window: the run in .* " + message):
        yinyang.run_yinyang(replace(TINY, average_window=after), tmp_path, quiet=True)
