"""Yin-Yang and MNIST-1D: data, networks, the streamed training loop, resume, quick runs."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from lava_gle import load_network
from lava_gle.backends import make_engine
from lava_gle.errors import LavaGleError
from lava_gle.experiments import mnist1d, yinyang
from lava_gle.experiments.checkpoint import ExperimentInterrupted
from lava_gle.experiments.training import ReduceLROnPlateau, step_cross_entropy


def test_yinyang_classes_and_balance():
    cls = yinyang.yinyang_class
    # dot centres, the yin dot's surroundings, the upper and lower halves far from the dots
    assert cls(np.array([0.25, 0.75]), np.array([0.5, 0.5])).tolist() == [2, 2]
    assert cls(np.array([0.25]), np.array([0.35])).tolist() == [1]   # ring around left dot
    assert cls(np.array([0.75]), np.array([0.35])).tolist() == [0]   # ring around right dot
    assert cls(np.array([0.5]), np.array([0.95])).tolist() == [1]
    assert cls(np.array([0.5]), np.array([0.05])).tolist() == [0]
    x, y = yinyang.make_points(3000, seed=7)
    assert x.shape == (3000, 4)
    np.testing.assert_allclose(x[:, 2:], 1.0 - x[:, :2])
    assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5)
    np.testing.assert_array_equal(cls(x[:, 0], x[:, 1]), y)
    counts = np.bincount(y, minlength=3)
    assert counts.min() > 900  # balanced: ~1000 each
    x2, y2 = yinyang.make_points(3000, seed=7)
    np.testing.assert_array_equal(x, x2)


def test_plateau_schedule_halves_after_patience():
    sched = ReduceLROnPlateau(patience=2, factor=0.5)
    lrs = [sched.step(loss, 1.0) for loss in (1.0, 0.9, 0.95, 0.95, 0.95)]
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5]


def test_step_cross_entropy_matches_definition():
    out = np.array([[[2.0, 0.0]], [[0.0, 0.0]]])  # T=2, B=1, C=2
    ce = step_cross_entropy(out, np.array([0]))
    expected = 0.5 * (np.log(1 + np.exp(-2.0)) + np.log(2.0))
    np.testing.assert_allclose(ce, [expected])


def test_yinyang_quick_learns(tmp_path):
    m = yinyang.run_yinyang(yinyang.YinyangConfig.quick(), tmp_path, quiet=True)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_accuracy"] == m["test_accuracy"]
    assert "test_accuracy_fixed" in saved
    assert m["test_accuracy"] > 0.65  # chance is 1/3
    assert_chip_timing_infers_like_exact_timing(saved)
    h = m["history"]
    assert h["train_loss"][-1] < 0.8 * h["train_loss"][0]
    assert (tmp_path / "yinyang.png").is_file() and (tmp_path / "yinyang_decisions.png").is_file()


def test_yinyang_interrupted_run_resumes_to_the_same_result(tmp_path, stop_after):
    config = yinyang.YinyangConfig.quick(epochs=3, n_train=600, n_test=200)
    whole = yinyang.run_yinyang(config, tmp_path / "whole", quiet=True)
    with pytest.raises(ExperimentInterrupted):  # stops in the middle of epoch 2
        yinyang.run_yinyang(config, tmp_path / "cut", quiet=True, guard=stop_after(8))
    resumed = yinyang.run_yinyang(config, tmp_path / "cut", quiet=True)
    assert resumed["history"]["test_acc"] == whole["history"]["test_acc"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]
    assert "resuming at epoch 2, batch 3" in (tmp_path / "cut" / "log.txt").read_text()


def test_mnist1d_network_has_the_paper_sizes():
    for model, params in (("42k", 42_040), ("15k", 14_956)):
        net = mnist1d.build_network(mnist1d.Mnist1dConfig(model=model))
        assert mnist1d.parameter_count(net) == params and net.name == f"mnist1d_{model}"
    quick = mnist1d.Mnist1dConfig.quick()  # 10 + 20 units: not named for the 42k model
    assert quick.label == "10+20 units"
    assert mnist1d.build_network(quick).name == "mnist1d_10_20_units"
    net = mnist1d.build_network(mnist1d.Mnist1dConfig())
    assert net.dt == pytest.approx(0.2) and len(net.layers) == 7
    h = net.layers[0]
    assert h.phi == "linear" and net.layers[1].phi == "tanh" and net.layers[-1].phi == "linear"
    tau_m, tau_r = h.tau_m_array(), h.tau_r_array()
    assert np.sum(tau_r == 1.2) == 30 and np.sum(np.isclose(tau_r, 0.2)) == 60
    assert np.sum(tau_m == 0.6) == 30
    assert net.learning.gamma == 0.0 and net.learning.loss == "ce" and net.learning.beta == 1.0


def test_mnist1d_quick_learns(tmp_path):
    m = mnist1d.run_mnist1d(mnist1d.Mnist1dConfig.quick(), tmp_path, quiet=True)
    h = m["history"]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert m["test_accuracy"] >= 0.2  # chance is 0.1
    assert m["steps_per_s"] > 0 and (tmp_path / "mnist1d.png").is_file()
    assert_chip_timing_infers_like_exact_timing(m)
    assert m["fixed_point_loss"] == {
        "numpy-fixed": m["test_accuracy"] - m["test_accuracy_fixed"],
        "numpy-fixed-chip": m["test_accuracy"] - m["test_accuracy_fixed_chip"]}


def test_a_large_fixed_point_loss_is_named_in_the_log():
    """A float-trained network that loses more than 2 points in fixed point gets a warning
    naming the backend, the loss and the compare command of its case; a measured backend
    below the mark and an unmeasured one get none."""
    from lava_gle.experiments.classification import fixed_point_loss
    lines = []
    case = {"command": "lava-gle compare compare_case_fixed/network.json ..."}
    metrics = {"test_accuracy": 0.9, "test_accuracy_fixed": 0.8,
               "test_accuracy_fixed_chip": 0.885, "compare_case_fixed": case}
    loss = fixed_point_loss(metrics, lines.append)["fixed_point_loss"]
    assert loss == pytest.approx({"numpy-fixed": 0.1, "numpy-fixed-chip": 0.015})
    assert len(lines) == 1
    assert "(numpy-fixed)" in lines[0] and "10.0 points below float's 90.0%" in lines[0]
    assert f"`{case['command']}`" in lines[0]
    metrics["test_accuracy_fixed"] = None
    assert fixed_point_loss(metrics, lines.append) == {
        "fixed_point_loss": {"numpy-fixed-chip": pytest.approx(0.015)}}
    assert len(lines) == 1


def test_a_float_run_writes_the_compare_case_of_its_fixed_point_inference(
        tmp_path, monkeypatch):
    """The case holds the network as its fixed-point accuracy was measured (the calibrated
    formats, learning off) and test sequences; its command runs from the run's directory."""
    from lava_gle.cli import main
    from lava_gle.description import load_network
    config = yinyang.YinyangConfig.quick(epochs=1, n_train=200, n_test=100)
    m = yinyang.run_yinyang(config, tmp_path, quiet=True)
    case = m["compare_case_fixed"]
    net = load_network(tmp_path / case["dir"] / "network.json")
    assert not net.learning.enabled
    calibration = m["fixed_point_calibration"]["layers"]
    assert {l.name: l.fixed_point for l in net.layers} == calibration
    x = np.load(tmp_path / case["dir"] / "inputs.npy")
    assert x.shape[1] == case["sequences"] == max(config.lava_sequences, 1)
    monkeypatch.chdir(tmp_path)
    assert main(case["command"].split()[1:] + ["--quiet"]) == 0
    report = json.loads((tmp_path / "compare_fixed" / "metrics.json").read_text())
    assert set(report["layers"]) == {l.name for l in net.layers}


def assert_chip_timing_infers_like_exact_timing(m: dict) -> None:
    """Learning off, no backward array learns and chip timing's forward path is exact
    timing's: the same integers, so the same test accuracy (a float-trained run)."""
    exact, chip = m["test_accuracy_fixed"], m["test_accuracy_fixed_chip"]
    assert exact is not None and chip is not None, m["not_measured"]
    assert abs(exact - m["test_accuracy"]) < 0.1  # the calibrated formats lose little
    assert chip == exact


def test_epoch_order_is_a_seeded_permutation_and_balances_classes():
    from lava_gle.experiments.training import epoch_order
    labels = np.random.default_rng(0).integers(0, 10, size=4000)
    for balanced in (False, True):
        order = epoch_order(labels, seed=1, epoch=2, balanced=balanced)
        assert sorted(order.tolist()) == list(range(4000))
        np.testing.assert_array_equal(order, epoch_order(labels, 1, 2, balanced))
        assert not np.array_equal(order, epoch_order(labels, 1, 3, balanced))
    counts = np.array([np.bincount(labels[order[i:i + 100]], minlength=10)
                       for i in range(0, 4000, 100)])
    expected = np.bincount(labels) / 40
    assert np.all(np.abs(counts - expected) <= 2)


@pytest.mark.lava
def test_yinyang_fixed_point_and_lava_twins(tmp_path):
    from lava_gle.backends import BACKENDS
    m = yinyang.run_yinyang(yinyang.YinyangConfig.quick(lava_sequences=3), tmp_path,
                            quiet=True)
    assert m["test_accuracy_fixed"] is not None, m["not_measured"]
    assert abs(m["test_accuracy_fixed"] - m["test_accuracy"]) < 0.05
    lava = [b for b in ("lava-float", "lava-fixed") if b in BACKENDS]
    assert sorted(m["lava_agreement_by_backend"]) == sorted(lava)
    if lava:
        assert m["lava_agreement"] == 1.0


def test_a_finished_run_can_be_extended_with_more_epochs(tmp_path):
    config = yinyang.YinyangConfig.quick(epochs=3, n_train=600, n_test=200)
    whole = yinyang.run_yinyang(config, tmp_path / "whole", quiet=True)
    yinyang.run_yinyang(replace(config, epochs=2), tmp_path / "extended", quiet=True)
    extended = yinyang.run_yinyang(config, tmp_path / "extended", quiet=True)
    assert extended["history"]["test_acc"] == whole["history"]["test_acc"]
    trained = load_network(tmp_path / "whole" / "network_trained.json")  # trained with ce:
    assert config.loss == "ce" and trained.learning.loss == "mse"  # as fixed point runs it
    make_engine(trained, "numpy-fixed")
    metrics = (tmp_path / "extended" / "metrics.json").read_bytes()
    with pytest.raises(LavaGleError, match="--epochs 2: the run in .* has begun 3 epochs"):
        yinyang.run_yinyang(replace(config, epochs=2), tmp_path / "extended", quiet=True)
    assert (tmp_path / "extended" / "metrics.json").read_bytes() == metrics
    with pytest.raises(LavaGleError, match="different settings.*hidden"):
        yinyang.run_yinyang(replace(config, hidden=10), tmp_path / "extended", quiet=True)


@pytest.mark.parametrize("teach_start", [0, 39])
def test_mnist1d_teach_start_keeps_the_first_steps_free_of_output_error(tmp_path, monkeypatch,
                                                                        teach_start):
    """With ``teach_start`` k the output error starts at step k of each sequence: one batch
    of 40-step sequences taught from step 39 on changes only the output projection (the
    error has no step to reach h5), taught from step 0 every projection."""
    from lava_gle.experiments.training import Dataset
    rng = np.random.default_rng(0)
    data = Dataset(rng.normal(size=(4, 40, 1)), np.arange(4), rng.normal(size=(4, 40, 1)),
                   np.arange(4))
    monkeypatch.setattr(mnist1d, "load_data", lambda config: data)
    config = mnist1d.Mnist1dConfig.quick(epochs=1, batch=4, optimizer="sgd", loss="mse",
                                         teach_start=teach_start)
    mnist1d.run_mnist1d(config, tmp_path, quiet=True)
    start = mnist1d.build_network(config)
    trained = dict(np.load(tmp_path / "checkpoint.npz"))
    moved = [not np.allclose(trained[f"train.W.{i}"], start.initial_weights(i), rtol=0,
                             atol=1e-7) for i in range(len(start.layers))]
    assert moved == ([True] * 7 if teach_start == 0 else [False] * 6 + [True])


def test_teach_start_beyond_the_sequence_is_refused(tmp_path, monkeypatch):
    from lava_gle.experiments.training import Dataset
    x = np.zeros((4, 40, 1))
    monkeypatch.setattr(mnist1d, "load_data", lambda config: Dataset(x, np.arange(4), x,
                                                                     np.arange(4)))
    config = mnist1d.Mnist1dConfig.quick(epochs=1, batch=4, teach_start=40)
    with pytest.raises(LavaGleError, match="--teach-start 40: must be a step of the 40-step"):
        mnist1d.run_mnist1d(config, tmp_path, quiet=True)


def test_a_fresh_run_sets_the_discarded_runs_log_and_metrics_aside(tmp_path):
    """Found by a review helper: --fresh kept log.txt, so the new run's epochs were
    appended to the old run's, and benchmarks/mnist1d_draws.py read the old run's later
    epochs as the new one's."""
    config = yinyang.YinyangConfig.quick(epochs=2, n_train=300, n_test=100)
    yinyang.run_yinyang(config, tmp_path, quiet=True)
    yinyang.run_yinyang(replace(config, epochs=1), tmp_path, quiet=True, fresh=True)
    log = (tmp_path / "log.txt").read_text()
    assert "epoch 1/1" in log and "epoch 2/2" not in log and "epoch 1/2" not in log
    assert "epoch 2/2" in (tmp_path / "log.discarded.txt").read_text()
    assert json.loads((tmp_path / "metrics.discarded.json").read_text())["epochs"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 1


def test_training_figures_count_a_short_last_batch_once(tmp_path, monkeypatch):
    """150 points at batch 100: the last batch is padded with 50 of the epoch's first
    points to keep the batch axis; the training loss and accuracy count the 150, not the
    200 (found by a review helper). A stand-in batch loss of the row's position tells."""
    from lava_gle.experiments import training
    real = training.stream_batch

    def positions(engine, x, labels, readout_start, teach, **kw):
        lg, _ = real(engine, x, labels, readout_start, teach, **kw)
        return lg, np.arange(len(x), dtype=float)
    monkeypatch.setattr(training, "stream_batch", positions)
    config = yinyang.YinyangConfig.quick(epochs=1, n_train=150, n_test=100)
    m = yinyang.run_yinyang(config, tmp_path, quiet=True)
    assert m["history"]["train_loss"] == [(sum(range(100)) + sum(range(50))) / 150]
