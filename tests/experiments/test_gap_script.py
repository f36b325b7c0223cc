"""``benchmarks/mnist1d_gap.py``: with no effect its ``--train-integers`` and ``--train``
retrain a run's integers and its float twin bit for bit, in the run's own timing (exact
or chip), so an effect it adds is measured against the run itself."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import benchmark_module
from lava_gle.experiments import mnist1d, training


@pytest.fixture
def gap(monkeypatch):
    for name in ("make_engine", "evaluate"):  # the script replaces them: undone afterwards
        monkeypatch.setattr(training, name, getattr(training, name))
    module = benchmark_module("mnist1d_gap")

    def run(*argv: str) -> None:
        monkeypatch.setattr(sys, "argv", ["mnist1d_gap.py", *argv])
        module.main()
    return run


def _trained(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoint.npz") as f:
        return {k: f[k] for k in f.files
                if k.startswith("train.") and not k.startswith("train.sat")}


@pytest.mark.parametrize("backend", ["numpy-fixed", "numpy-fixed-chip"])
def test_train_integers_without_effects_is_the_run(tmp_path, gap, tiny_mnist1d, backend):
    run = tmp_path / "run"
    mnist1d.run_mnist1d(tiny_mnist1d(normalizer_decay=0.9990234375), run, backend=backend,
                        quiet=True)
    gap(str(run), "--train-integers", str(tmp_path / "again"))
    gap(str(run), "--train", str(tmp_path / "twin"))
    for got, want in ((tmp_path / "again", run), (tmp_path / "twin", run / "float_same_rule")):
        a, b = _trained(got), _trained(want)
        assert sorted(a) == sorted(b) and a
        for key in b:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{got.name}: {key}")


def test_learning_step_effects_are_refused_under_chip_timing(tmp_path, gap, tiny_mnist1d):
    run = tmp_path / "run"
    mnist1d.run_mnist1d(tiny_mnist1d(epochs=1), run, backend="numpy-fixed-chip", quiet=True)
    with pytest.raises(SystemExit, match="--float-learning, --error-feedback: replaces .* "
                                         "chip timing .* numpy-fixed run"):
        gap(str(run), "--train-integers", str(tmp_path / "out"), "--float-learning",
            "--error-feedback")
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


def test_engine_noise_sets_each_learning_projection_against_its_ideal_update(
        tmp_path, gap, tiny_mnist1d, capsys):
    """``--engine-noise``: a row per projection with a learning rule (the frozen one has
    none), and the error trace alone follows the ideal update of the same signals (it
    is the engine's factor before its products are rounded), so a wrong trace or payload
    convention in the probe shows as a low cosine. With ``--learning-epochs 1,4`` a second
    table: K = 1 repeats the run's own rule (the same update, an epoch ideal equal to the
    ideal), K = 4 learns otherwise; K = 3, which a shift cannot average, is refused."""
    run = tmp_path / "run"
    mnist1d.run_mnist1d(tiny_mnist1d(epochs=1, eta_scale={"h0": 0.0}), run,
                        backend="numpy-fixed-chip", quiet=True)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        gap(str(run), "--engine-noise", "--learning-epochs", "1,3")
    assert "each K is a power of two" in capsys.readouterr().err
    gap(str(run), "--engine-noise", "--batches", "3", "--learning-epochs", "1,4")
    out = capsys.readouterr().out
    first, second = out.split("learning epochs of K steps")
    rows = [line.split("|")[1:-1] for line in first.splitlines()
            if line.startswith(("| h", "| out"))]
    assert [r[0].strip() for r in rows] == ["h1", "h2", "h3", "h4", "h5", "out"]
    for r in rows:
        cos_trace = float(r[5])
        assert 0.9 < cos_trace <= 1.0, r
    epochs = [line.split("|")[1:-1] for line in second.splitlines()
              if line.startswith(("| h", "| out"))]
    assert [r[0].strip() for r in epochs] == [r[0].strip() for r in rows]
    for r, e in zip(rows, epochs):
        one, four = (cell.strip() for cell in e[1:])
        assert one == f"{r[3].strip()}, {r[4].strip()}; 1.000", (r, e)
        assert four != one and -1.0 <= float(four.split(";")[1]) <= 1.0


def test_the_probes_error_trace_is_the_engines_scaled_by_its_mantissa():
    """engine_trace (what the e/E/u steps, --updates and --engine-noise read) dequantises
    the engine's trace of a layer with a mantissa without bias: over dithers its mean is
    the error itself, clipped or not (below the clip), for doubled and plain traces."""
    from types import SimpleNamespace
    module = benchmark_module("mnist1d_gap")
    rng = np.random.default_rng(3)
    e_int = rng.integers(-600, 600, 50)  # the doubled trace clips at 31 * 2**8 / 13
    for exact in (False, True):
        ql = SimpleNamespace(trace_shift=8, trace_mant=13, rule=SimpleNamespace(exact=exact))
        for clipped in (True, False):
            mean = np.mean([np.multiply(*module.engine_trace(
                ql, e_int, rng.integers(0, 256, 50), clipped)) for _ in range(4000)], axis=0)
            # one draw is off by less than one trace step (2**8 / 13 LSB): 6 sigma of the
            # mean of 4000
            np.testing.assert_allclose(mean, e_int, atol=6 * 2**8 / 13 / np.sqrt(4000))


def test_the_e_step_runs_on_a_trace_with_a_mantissa_and_feedback_refuses_it(
        tmp_path, gap, tiny_mnist1d):
    """The tiny run's h2 learns at a gain between powers of two (mantissa 13): the e step
    follows it; --error-feedback, whose residual would be a fraction of an LSB, refuses."""
    run = tmp_path / "run"
    mnist1d.run_mnist1d(tiny_mnist1d(epochs=1), run, backend="numpy-fixed", quiet=True)
    gap(str(run), "--train-integers", str(tmp_path / "e"), "--float-learning", "e2")
    assert (tmp_path / "e" / "checkpoint.npz").exists()
    with pytest.raises(SystemExit, match="--error-feedback: layer 'h2' .* mantissa 13"):
        gap(str(run), "--train-integers", str(tmp_path / "f"), "--error-feedback")
