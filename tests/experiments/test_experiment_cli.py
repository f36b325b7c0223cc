"""``lava-gle experiment``: flags, clear errors for unavailable backends and bad input."""
from __future__ import annotations

import json

import pytest

from lava_gle.backends import ENGINES
from lava_gle.cli import main


@pytest.mark.parametrize("argv, message", [
    (["yinyang", "--learn-tau"], "--learn-tau applies to the lagline"),
    (["lagline", "--epochs", "3"], "--epochs applies to mnist1d and yinyang"),
    (["yinyang", "--model", "15k"], "--model and --balanced-batches apply to the mnist1d"),
    (["lagline", "--balanced-batches"], "--balanced-batches apply to the mnist1d"),
    (["mnist1d", "--optimizer", "sgd"], "--optimizer, --sgd-eta and --sgd-eta-tau apply to "
                                         "the lagline"),
    (["yinyang", "--sgd-eta", "0.1"], "apply to the lagline experiment only"),
    (["lagline", "--sgd-eta", "0.1"], "--sgd-eta sets a rate of the SGD rule; add --optimizer"),
    (["lagline", "--optimizer", "sgd", "--sgd-eta-tau", "0"], "--sgd-eta-tau must be > 0"),
])
def test_bad_flags_give_one_clear_error(tmp_path, capsys, argv, message):
    assert main(["experiment", *argv, "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("backend", ["numpy-fixed", "lava-float", "lava-fixed"])
def test_backend_that_cannot_train_yinyang_is_a_clear_error(tmp_path, capsys, backend):
    # yinyang trains with Adam: numpy-fixed has only its own SGD rule, and the Lava
    # backends have no stepping engine for training loops
    assert main(["experiment", "yinyang", "--quick", "--backend", backend,
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    if backend in ENGINES:
        assert "optimizer Adam" in err
    else:
        assert f"backend {backend!r} has no stepping engine" in err


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
