"""``lava-gle experiment``: flags, clear errors for unavailable backends and bad input, the
lock of a live run, damaged checkpoints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lava_gle.backends import STEPPING
from lava_gle.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, message", [
    (["yinyang", "--learn-tau"], "--learn-tau applies to the lagline"),
    (["lagline", "--epochs", "3"], "--epochs applies to mnist1d and yinyang"),
    (["yinyang", "--model", "15k"], "--model and --balanced-batches apply to the mnist1d"),
    (["lagline", "--balanced-batches"], "--balanced-batches apply to the mnist1d"),
    (["mnist1d", "--sgd-eta-tau", "1"], "--sgd-eta-tau applies to the lagline experiment only"),
    (["yinyang", "--sgd-eta", "0.1"], "--sgd-eta applies to the SGD rule; add --optimizer sgd"),
    (["lagline", "--batch", "1"], "--batch applies to mnist1d and yinyang, not to lagline"),
    (["lagline", "--teach-start", "2", "--target-rate", "3"],
     "--teach-start and --target-rate apply to mnist1d and yinyang, not to lagline"),
    (["lagline", "--average-window", "45"], "--average-window applies to mnist1d"),
    (["lagline", "--train-samples", "10"], "--train-samples applies to mnist1d and yinyang"),
    (["lagline", "--average-every", "2"], "--average-every applies to mnist1d"),
    (["mnist1d", "--average-every", "2"], "--average-every sets how often the weights' "
                                          "average is updated; add --average-window"),
    (["mnist1d", "--average-window", "0.5"], "--average-window 0.5: the window is a number of "
                                             "batches, at least 1"),
    (["mnist1d", "--target-rate", "4"],
     "--target-rate sets the one-hot target rates of the MSE loss; add --loss mse"),
    (["yinyang", "--loss", "mse", "--target-rate", "0"],
     "--target-rate 0: the target rate must be > 0"),
    (["yinyang", "--weight-tag-bits", "hidden=7"],
     "--weight-tag-bits applies to the fixed-point backends; backend numpy is float"),
    (["mnist1d", "--rounding-seed", "1"],
     "--rounding-seed applies to the fixed-point backends; backend numpy is float"),
    (["yinyang", "--backend", "numpy-fixed", "--weight-tag-bits", "hidden=4"],
     "--weight-tag-bits hidden=4: expected LAYER=BITS with BITS one of 0, 5, 6, 7"),
    (["yinyang", "--backend", "numpy-fixed", "--weight-tag-bits", "h=7"],
     "--weight-tag-bits h=7: no layer 'h'"),
    (["yinyang", "--error-bound", "out=0"],
     "--error-bound out=0: expected LAYER=BOUND with a number BOUND > 0"),
    (["yinyang", "--error-bound", "outt=2"], "--error-bound outt=2: no layer 'outt'"),
    (["yinyang", "--no-bias", "hiden"], "--no-bias hiden: no layer 'hiden'; the layers are "
                                        "['hidden', 'out']"),
    (["lagline", "--no-bias", "l0"], "--no-bias applies to mnist1d"),
    (["lagline", "--error-bound", "out=2"], "--error-bound applies to mnist1d"),
    (["yinyang", "--optimizer", "sgd", "--gain-decay", "0.99"],
     "--gain-decay sets the decay of the normalisers' gains; add --normalizers"),
    (["mnist1d", "--backend", "numpy-fixed", "--normalizers", "0.9990234375",
      "--gain-decay", "0.9999"], "--gain-decay 0.9999: the integers average with a shift"),
    (["mnist1d", "--optimizer", "sgd", "--normalizers", "0.999", "--gain-payload-bits", "8"],
     "--gain-payload-bits sets an integer width; backend numpy is float"),
    (["mnist1d", "--backend", "numpy-fixed", "--gain-payload-bits", "8"],
     "--gain-payload-bits sets the width of the normalisers' gained payloads; add "
     "--normalizers"),
    (["yinyang", "--backend", "numpy-fixed", "--normalizers", "0.9990234375",
      "--gain-payload-bits", "25"], "--gain-payload-bits 25: the width must be 8-24 bits"),
    (["lagline", "--gain-payload-bits", "8"], "--gain-payload-bits applies to mnist1d"),
    (["yinyang", "--optimizer", "sgd", "--gain-max", "100"],
     "--gain-max caps the normalisers' gains; add --normalizers"),
    (["mnist1d", "--optimizer", "sgd", "--normalizers", "0.999", "--gain-max", "0.5"],
     "--gain-max 0.5: the cap must be 1-1000 (default 1000)"),
    (["lagline", "--gain-max", "100"], "--gain-max applies to mnist1d"),
    (["mnist1d", "--optimizer", "sgd", "--normalizers", "0.999", "--gain-max", "10",
      "--gain-max", "20"], "--gain-max 10 20: give one cap G for all hidden layers, and "
                           "LAYER=G for the ones that differ"),
    (["mnist1d", "--optimizer", "sgd", "--normalizers", "0.999", "--gain-max", "h0"],
     "--gain-max h0: expected a number G or LAYER=G"),
    (["mnist1d", "--optimizer", "sgd", "--normalizers", "0.999", "--gain-max", "h0=ten"],
     "--gain-max h0=ten: expected LAYER=G with a number G"),
    (["mnist1d", "--optimizer", "sgd", "--normalizers", "0.999", "--gain-max", "h0=2000"],
     "--gain-max h0=2000: the cap must be 1-1000"),
    (["mnist1d", "--optimizer", "sgd", "--loss", "mse", "--normalizers", "0.999",
      "--gain-max", "h9=10"],
     "--gain-max h9=10: no layer 'h9'"),
    (["yinyang", "--optimizer", "sgd", "--loss", "mse", "--normalizers", "0.999",
      "--gain-max", "out=10"],
     "--gain-max out=10: the output layer has no gains; cap the hidden layers ['hidden']"),
    (["yinyang", "--normalizers", "0.999"],
     "--normalizers applies to the SGD rule; add --optimizer sgd"),
    (["yinyang", "--optimizer", "sgd", "--normalizers", "1"],
     "--normalizers 1: the decay of the running averages must be in (0, 1)"),
    (["mnist1d", "--backend", "numpy-fixed", "--normalizers", "0.999"],
     "--normalizers 0.999: the integers average with a shift, so the decay is 1 - 2**-s; "
     "use 0.9990234375 (1 - 2**-10)"),
    (["yinyang", "--backend", "numpy-fixed", "--loss", "ce"],
     "--loss ce (softmax) has no fixed-point form; backend numpy-fixed needs --loss mse"),
    (["mnist1d", "--backend", "numpy-fixed", "--optimizer", "adam"],
     "--optimizer adam runs in float only; backend numpy-fixed learns with the learning "
     "engine's own rule: use --optimizer sgd"),
    (["yinyang", "--epoch-steps", "4"], "--epoch-steps applies to the SGD rule"),
    (["mnist1d", "--backend", "numpy-fixed", "--epoch-steps", "6"],
     "--epoch-steps 6: the integers average a learning epoch's payloads with a shift, so K "
     "is a power of two; use 4 or 8"),
    (["lagline", "--epoch-steps", "4"], "--epoch-steps applies to mnist1d"),
    (["lagline", "--part", "twin"], "--part applies to mnist1d and yinyang, not to lagline"),
    (["lagline", "--sgd-eta", "0.1"], "--sgd-eta sets a rate of the SGD rule; add --optimizer"),
    (["lagline", "--optimizer", "sgd", "--sgd-eta-tau", "0"], "--sgd-eta-tau must be > 0"),
])
def test_bad_flags_give_one_clear_error(tmp_path, capsys, argv, message):
    assert main(["experiment", *argv, "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_lagline_refuses_every_option_it_does_not_read():
    """An option added for the classification experiments must join
    ``CLASSIFICATION_OPTIONS``, or lagline would silently ignore it."""
    import argparse
    from lava_gle.cli import build_parser
    from lava_gle.commands.experiment import CLASSIFICATION_OPTIONS
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest for a in sub.choices["experiment"]._actions} - {"help"}
    lagline_reads = {"name", "backend", "seed", "quick", "learn_tau", "optimizer", "sgd_eta",
                     "sgd_eta_tau", "fresh", "quiet", "out"}
    refused_otherwise = {"epochs", "model", "balanced_batches"}  # their own messages
    assert dests - lagline_reads - refused_otherwise == set(CLASSIFICATION_OPTIONS)


@pytest.mark.parametrize("backend", ["lava-float", "lava-fixed"])
def test_backend_that_cannot_train_yinyang_is_a_clear_error(tmp_path, capsys, backend):
    # the Lava backends have no stepping engine for training loops
    assert main(["experiment", "yinyang", "--quick", "--backend", backend,
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert backend not in STEPPING and f"backend {backend!r} has no stepping engine" in err


def test_quick_yinyang_writes_its_files(tmp_path, capsys):
    assert main(["experiment", "yinyang", "--quick", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["experiment"] == "yinyang" and metrics["epochs"] == 2
    assert metrics["backend"] == "numpy" and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert {"log.txt", "checkpoint.npz", "yinyang.png"} <= {p.name for p in tmp_path.iterdir()}
    # a second run of the finished experiment resumes at the end: same numbers, no training
    assert main(["experiment", "yinyang", "--quick", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert again["history"] == metrics["history"]


@pytest.mark.parametrize("env", [None, "2"])
def test_experiments_run_on_one_blas_thread_unless_the_environment_says(tmp_path,
                                                                        monkeypatch, env):
    """``lava-gle experiment`` limits BLAS to one thread while it runs; a thread count set
    in the environment is left as it is."""
    from threadpoolctl import threadpool_info

    from lava_gle.commands.experiment import THREAD_ENV
    from lava_gle.experiments import yinyang
    for var in THREAD_ENV:
        monkeypatch.delenv(var, raising=False)
    if env is not None:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", env)
    outside = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    seen = []
    monkeypatch.setattr(yinyang, "run_yinyang", lambda *a, **k: seen.append(
        [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]) or {"ok": 1})
    assert main(["experiment", "yinyang", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    assert seen and seen[0]  # numpy's BLAS is there
    assert seen[0] == ([1] * len(outside) if env is None else outside)
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == outside


@pytest.mark.lava
def test_weight_tags_are_yinyangs_default_and_the_command_line_turns_them_off(tmp_path):
    """Yin-Yang's fixed-point layers keep 7 / 5 low weight bits in tags by default (they
    learn: the tags are in the checkpoint); ``--weight-tag-bits LAYER=0`` turns them off,
    and the trained weights differ. The float twin does not depend on the tags: the tagged
    run's, copied, serves the plain one as it is."""
    import shutil

    import numpy as np
    runs = {}
    for name, flags in (("tags", []), ("plain", ["--weight-tag-bits", "hidden=0",
                                                 "--weight-tag-bits", "out=0"])):
        out = tmp_path / name
        if name == "plain":
            shutil.copytree(tmp_path / "tags" / "float_same_rule", out / "float_same_rule")
        assert main(["experiment", "yinyang", "--quick", "--epochs", "1", "--batch", "1",
                     "--backend", "numpy-fixed", "--quiet", *flags, "--out", str(out)]) == 0
        runs[name] = (json.loads((out / "metrics.json").read_text()),
                      dict(np.load(out / "checkpoint.npz")))
    (m, ck), (m_plain, plain) = runs["tags"], runs["plain"]
    assert m["formats"]["layers"]["hidden"]["weight_tag_bits"] == 7
    assert m["formats"]["layers"]["out"]["weight_tag_bits"] == 5
    assert m_plain["formats"]["layers"]["hidden"]["weight_tag_bits"] == 0
    twin_log = (tmp_path / "plain" / "float_same_rule" / "log.txt").read_text()
    assert "resuming at epoch 2" in twin_log  # finished: not trained again
    assert m_plain["test_accuracy_float_same_rule"] == m["test_accuracy_float_same_rule"]
    tag_keys = [k for k in ck if "tag_W" in k]
    assert tag_keys and not [k for k in plain if "tag_W" in k]
    assert any(np.any(ck[k] != 0) for k in tag_keys)  # the tags hold learned low bits
    w = [k for k in ck if k.startswith("train.W.")]
    assert w and any(not np.array_equal(ck[k], plain[k]) for k in w)


def config_of(tmp_path, monkeypatch, name: str, *argv: str):
    """The config ``lava-gle experiment NAME --quiet ARGV`` passes to the experiment (the
    run itself replaced)."""
    import importlib
    experiment = importlib.import_module(f"lava_gle.experiments.{name}")
    seen = []
    monkeypatch.setattr(experiment, f"run_{name}",
                        lambda config, *a, **k: seen.append(config) or {"ok": 1})
    assert main(["experiment", name, "--quiet", *argv, "--out", str(tmp_path)]) == 0
    return seen[0]


def test_a_part_reaches_the_experiment_and_says_what_comes_next(tmp_path, monkeypatch,
                                                                capsys):
    from lava_gle.experiments import mnist1d
    seen = []
    monkeypatch.setattr(mnist1d, "run_mnist1d", lambda config, out, **k: seen.append(k))
    assert main(["experiment", "mnist1d", "--quick", "--backend", "numpy-fixed", "--optimizer",
                 "sgd", "--loss", "mse", "--part", "integers", "--out", str(tmp_path)]) == 0
    assert seen[0]["part"] == "integers"
    out = capsys.readouterr().out
    assert "the integers trained in " in out and "without --part for the metrics" in out


def mnist1d_network_of(tmp_path, monkeypatch, *flags: str):
    """The config and network of ``lava-gle experiment mnist1d --quick FLAGS``."""
    from lava_gle.experiments import mnist1d
    config = config_of(tmp_path, monkeypatch, "mnist1d", "--quick", *flags)
    return config, config.apply_to(mnist1d.build_network(config), mnist1d.SGD_ETA_SCALE)


@pytest.mark.parametrize("name, flags, expected", [
    ("mnist1d", [], dict(teach_start=0, target_rate=10.0, n_train=2000)),
    ("mnist1d", ["--teach-start", "120"], dict(teach_start=120)),
    ("mnist1d", ["--train-samples", "50"], dict(n_train=50)),
    ("yinyang", [], dict(teach_start=2, target_rate=1.0, n_train=1500)),
    ("yinyang", ["--teach-start", "5"], dict(teach_start=5)),
    ("yinyang", ["--loss", "mse", "--target-rate", "4"], dict(teach_start=2, target_rate=4.0)),
    ("yinyang", ["--train-samples", "300"], dict(n_train=300))])
def test_sample_options_reach_the_experiment(tmp_path, monkeypatch, name, flags, expected):
    """--teach-start, --target-rate and --train-samples set the config of the quick run
    (whose own defaults the empty rows show)."""
    config = config_of(tmp_path, monkeypatch, name, "--quick", *flags)
    assert {k: getattr(config, k) for k in expected} == expected


def test_mnist1d_refuses_more_training_sequences_than_it_has():
    from lava_gle.errors import LavaGleError
    from lava_gle.experiments.mnist1d import Mnist1dConfig, load_data
    assert len(load_data(Mnist1dConfig(n_train=25)).x_train) == 25
    with pytest.raises(LavaGleError, match=r"--train-samples\) 4001: MNIST-1D has 4000 "
                                           "training sequences"):
        load_data(Mnist1dConfig(n_train=4001))


@pytest.mark.parametrize("flags, batch, epochs, halve_every", [
    ([], 100, 150, 0),                                     # Adam + cross-entropy
    (["--optimizer", "sgd"], 1, 20, 5),                    # the chip's recipe
    (["--backend", "numpy-fixed"], 1, 20, 5),              # sgd is the default there
    (["--backend", "numpy-fixed", "--batch", "10", "--epochs", "3"], 10, 3, 5),
    (["--optimizer", "sgd", "--halve-every", "0"], 1, 20, 0),
    (["--backend", "numpy-fixed", "--quick"], 100, 20, 0),  # quick stays seconds
])
def test_yinyangs_sgd_rule_defaults_to_the_chips_recipe(tmp_path, monkeypatch, flags, batch,
                                                        epochs, halve_every):
    config = config_of(tmp_path, monkeypatch, "yinyang", *flags)
    assert (config.batch, config.epochs, config.halve_every) == (batch, epochs, halve_every)


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed"])
def test_error_bounds_reach_the_network_of_either_arithmetic(tmp_path, monkeypatch, backend):
    """``--error-bound LAYER=B`` sets the layers' error_bound on float and fixed-point
    runs alike (the float run with the same rule included: it is part of the config)."""
    from lava_gle.numerics.engine import FixedEngine
    config, net = mnist1d_network_of(tmp_path, monkeypatch, "--backend", backend,
                                     "--error-bound", "h0=4", "--error-bound", "out=20")
    assert config.error_bound == {"h0": 4.0, "out": 20.0}
    assert [layer.error_bound for layer in net.layers] == [4.0] + [None] * 5 + [20.0]
    if backend == "numpy-fixed":
        q = FixedEngine(net).q
        assert q.layers[0].consts.e_max == 4 * 2 ** q.layers[0].e_bits
        assert [ql.consts.e_max for ql in q.layers[1:6]] == [None] * 5


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed"])
def test_layers_without_bias_reach_the_network_of_either_arithmetic(tmp_path, monkeypatch,
                                                                     backend):
    """``--no-bias LAYER`` builds LAYER without a bias on float and fixed-point runs alike
    (the float run with the same rule included: it is part of the config); in integers
    the layer then has no bias rule, and the other layers keep theirs."""
    from lava_gle.numerics.engine import FixedEngine
    config, net = mnist1d_network_of(tmp_path, monkeypatch, "--backend", backend,
                                     "--no-bias", "h1", "--no-bias", "h0", "--no-bias", "h1")
    assert config.no_bias == ["h0", "h1"]
    assert [layer.bias for layer in net.layers] == [False, False] + [True] * 5
    assert not net.initial_biases(0).any() and not net.initial_biases(1).any()
    if backend == "numpy-fixed":
        q = FixedEngine(net).q
        assert [ql.bias_rule is None for ql in q.layers] == [True, True] + [False] * 5


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed"])
def test_learning_epochs_reach_the_network_of_either_arithmetic(tmp_path, monkeypatch,
                                                                backend):
    """``--epoch-steps K`` is part of the rule: the network (the float twin's too) learns
    in epochs of K steps, and in integers its learning engines get ``t_epoch`` K."""
    from lava_gle.microcode import learning_rules
    from lava_gle.numerics.engine import FixedEngine
    config, net = mnist1d_network_of(tmp_path, monkeypatch, "--backend", backend,
                                     "--optimizer", "sgd", "--loss", "mse",
                                     "--epoch-steps", "4")
    assert config.epoch_steps == 4
    assert net.learning.epoch_steps == 4
    if backend == "numpy-fixed":
        rules = learning_rules(FixedEngine(net).q)
        assert {r["t_epoch"] for e in rules.values() for r in e.values() if r} == {4}


@pytest.mark.parametrize("learn_tau, flags, rates", [
    (False, (None, None), (1.0, 0.0)),   # no tau learning: eta_tau 0
    (True, (None, None), (0.1, 1.0)),    # weights 10x slower than the taus
    (True, (0.5, 2.0), (0.5, 2.0)),
    (False, (0.3, None), (0.3, 0.0)),
])
def test_sgd_rates_reach_the_student(learn_tau, flags, rates):
    from lava_gle.experiments.lagline import config_from_args, student_network
    config = config_from_args(0, True, learn_tau, None, "numpy-fixed", *flags)
    assert config.optimizer == "sgd"
    lrn = student_network(config).learning
    assert (lrn.eta, lrn.eta_tau) == rates


#: A first run: holds the lock of the directory argv[1] until its stdin closes.
FIRST_RUN = """
import sys
from lava_gle.experiments.checkpoint import run_lock
with run_lock(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_second_run_on_a_live_runs_directory_is_refused(tmp_path, capsys, monkeypatch):
    import lava_gle.experiments.lagline as lagline

    def train(*args, **kwargs):
        raise AssertionError("the second run trained")
    monkeypatch.setattr(lagline, "make_engine", train)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-c", FIRST_RUN, str(tmp_path)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "holding\n"
        assert main(["experiment", "lagline", "--quick", "--quiet", "--out",
                     str(tmp_path)]) == 2
    finally:
        first.communicate("")
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {tmp_path} is in use by another run "
                          f"(pid {first.pid}, lock file {tmp_path / 'run.lock'})")
    assert err.count("\n") == 1
    assert not (tmp_path / "log.txt").exists()  # nothing written into the live run's files
    assert not (tmp_path / "run.lock").exists()  # the first run removed its lock on exit


def test_damaged_checkpoint_on_the_command_line(tmp_path, capsys):
    (tmp_path / "checkpoint.npz").write_bytes(b"")
    assert main(["experiment", "lagline", "--quick", "--quiet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: checkpoint {tmp_path / 'checkpoint.npz'} is damaged (EOFError: "
                   "No data left in file); pass --fresh to discard it and start afresh\n")


def test_a_float_run_of_the_chip_rule_is_told_its_default_loss_is_not_the_chips():
    from lava_gle.experiments.rules import loss_note, rule_overrides
    rule = rule_overrides("numpy", "sgd")
    assert "--loss mse" in loss_note(rule, None)
    assert loss_note(rule_overrides("numpy", "sgd", "ce"), "ce") is None
    assert loss_note(rule_overrides("numpy", "sgd", "mse"), "mse") is None
    assert loss_note(rule_overrides("numpy"), None) is None  # Adam: cross-entropy is its own
    assert loss_note(rule_overrides("numpy-fixed"), None) is None  # mse already
