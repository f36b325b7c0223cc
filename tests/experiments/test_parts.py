"""``--part twin|integers``: a fixed-point run's float twin and integers trained by two
processes (two cores) and then finished by the run's own command are the run trained in
one go, bit for bit; the parts lock only their own directories."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lava_gle.errors import LavaGleError
from lava_gle.experiments import mnist1d
from lava_gle.experiments.checkpoint import OutputInUseError, run_lock


def _trained(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoint.npz") as f:
        return {k: f[k] for k in f.files if k.startswith("train.")}


def _same_training(a: Path, b: Path) -> None:
    for got, want in ((a, b), (a / "float_same_rule", b / "float_same_rule")):
        x, y = _trained(got), _trained(want)
        assert sorted(x) == sorted(y) and x
        for key in y:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{got}: {key}")


def _same_metrics(a: Path, b: Path) -> None:
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    for key in ("test_accuracy", "test_accuracy_float_same_rule", "saturation"):
        assert ma[key] == mb[key], key


@pytest.mark.parametrize("formats", ["initial", "float"])
def test_the_parts_trained_apart_are_the_run_trained_at_once(tmp_path, tiny_mnist1d, formats):
    """With formats from the initial network the integers may come first (as they would
    beside the twin); with formats from the twin's end they wait for it, and say so."""
    config = tiny_mnist1d(formats=formats)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    mnist1d.run_mnist1d(config, whole, backend="numpy-fixed", quiet=True)
    if formats == "float":
        with pytest.raises(LavaGleError, match=r"--part integers: .*\(--formats float\).*"
                                               r"\(--part twin"):
            mnist1d.run_mnist1d(config, parts, backend="numpy-fixed", quiet=True,
                                part="integers")
        order = ("twin", "integers")
    else:
        order = ("integers", "twin")
    for part in order:
        assert mnist1d.run_mnist1d(config, parts, backend="numpy-fixed", quiet=True,
                                   part=part) is None
        assert not (parts / "metrics.json").exists()
    _same_training(parts, whole)  # each part trained to the end
    assert mnist1d.run_mnist1d(config, parts, backend="numpy-fixed", quiet=True) is not None
    _same_training(parts, whole)
    _same_metrics(parts, whole)


def test_each_part_holds_its_own_directory(tmp_path, tiny_mnist1d):
    """While a twin part runs (its lock held), the integers part trains, and a whole run,
    which trains both, is refused naming the twin's directory; a float run has no parts."""
    config = tiny_mnist1d(formats="initial")
    out = tmp_path / "run"
    (out / "float_same_rule").mkdir(parents=True)
    with run_lock(out / "float_same_rule"):
        mnist1d.run_mnist1d(config, out, backend="numpy-fixed", quiet=True, part="integers")
        with pytest.raises(OutputInUseError, match="float_same_rule"):
            mnist1d.run_mnist1d(config, out, backend="numpy-fixed", quiet=True)
    with pytest.raises(LavaGleError, match="--part twin: only a fixed-point run has parts"):
        mnist1d.run_mnist1d(config, tmp_path / "float", backend="numpy", quiet=True,
                            part="twin")
