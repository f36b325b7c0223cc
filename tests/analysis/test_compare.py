"""lava-gle compare: exact zero against itself, known offsets recovered, a readable report."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from lava_gle.cli import main
from lava_gle.analysis.comparison import Run, compare_runs, run_backend, signal_errors
from lava_gle.analysis import report


def test_backend_against_itself_is_exactly_zero(golden, tmp_path):
    args = ["compare", str(golden.dir / "network.json"), "--inputs",
            str(golden.dir / "inputs.npy"), "--targets", str(golden.dir / "targets.npy"),
            "--backends", "numpy,numpy", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    for layer in m["layers"].values():
        for var in layer.values():
            assert var["rms_error"] == 0 and var["max_error"] == 0
            assert var["correlation"] == 1.0 and var["first_exceed_step"] is None
    assert all(p["weight_diff_max"] == 0 for p in m["projections"].values())
    assert m["verdicts"] == []
    for name in ("traces", "error_over_time", "weights", "loss"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "stays within" in page


def test_known_offset_is_reported(golden):
    ref = run_backend(golden.net, golden.inputs, golden.targets, "numpy", chunks=4)
    offset = 0.03
    name = golden.net.layer_names[-1]
    traces = dict(ref.traces)
    scale = np.ptp(ref.traces[f"u.{name}"])
    traces[f"u.{name}"] = ref.traces[f"u.{name}"] + offset * scale
    traces[f"r.{name}"] = ref.traces[f"r.{name}"] + 0.2 * np.ptp(ref.traces[f"r.{name}"])
    weights = dict(ref.weights)
    weights[name] = ref.weights[name] + 0.5
    cand = Run("shifted", traces, ref.checkpoints, weights, ref.biases)
    m = compare_runs(golden.net, ref, cand, golden.targets, tolerance=0.05)
    u = m["layers"][name]["u"]
    assert u["rms_error"] == pytest.approx(offset, rel=1e-9)
    assert u["max_error"] == pytest.approx(offset, rel=1e-9)
    assert u["first_exceed_step"] is None
    r = m["layers"][name]["r"]
    assert r["rms_error"] == pytest.approx(0.2, rel=1e-9) and r["first_exceed_step"] == 0
    assert m["projections"][name]["weight_diff_max"] == pytest.approx(0.5)
    assert [(v["layer"], v["variable"]) for v in m["verdicts"]] == [(name, "r")]
    untouched = golden.net.layer_names[0]
    assert m["layers"][untouched]["e"]["rms_error"] == 0


def test_first_exceed_step_and_correlation():
    ref = np.sin(np.linspace(0, 6, 100))[:, None, None]
    cand = ref.copy()
    cand[70:] += 0.5
    m = signal_errors(ref, cand, tolerance=0.1)
    assert m["first_exceed_step"] == 70
    assert m["max_error"] == pytest.approx(0.5 / np.ptp(ref))
    assert 0 < m["correlation"] < 1


def test_without_matplotlib_metrics_are_still_written(golden, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "pyplot", lambda: None)
    args = ["compare", str(golden.dir / "network.json"), "--inputs",
            str(golden.dir / "inputs.npy"), "--backends", "numpy,numpy", "--out",
            str(tmp_path)]
    assert main(args) == 0
    assert (tmp_path / "metrics.json").is_file() and not list(tmp_path.glob("*.png"))
    assert "pip install lava-gle[plot]" in capsys.readouterr().out


def test_backends_flag_needs_two_names(golden, tmp_path, capsys):
    args = ["compare", str(golden.dir / "network.json"), "--inputs",
            str(golden.dir / "inputs.npy"), "--backends", "numpy", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "two names" in capsys.readouterr().err


@pytest.mark.lava
def test_lava_fixed_against_its_numpy_twin_is_exactly_zero_along_the_run():
    from conftest import GoldenCase
    case = GoldenCase("visible_mlp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = run_backend(case.net, case.inputs, case.targets, "numpy-fixed-chip", chunks=5)
        lava = run_backend(case.net, case.inputs, case.targets, "lava-fixed", chunks=5)
    np.testing.assert_array_equal(twin.checkpoints, lava.checkpoints)
    for name in case.net.layer_names:
        np.testing.assert_array_equal(twin.weights[name], lava.weights[name])
        assert not np.array_equal(lava.weights[name][0], lava.weights[name][-1])  # learned
    m = compare_runs(case.net, twin, lava, case.targets)
    assert all(v["max_error"] == 0 for d in m["layers"].values() for v in d.values())
