"""The lava-gle command line: simulate and demo, and one-line errors."""
from __future__ import annotations

import re

import numpy as np
import pytest

from lava_gle.cli import main
from lava_gle.traces import load_traces, max_relative_errors


def test_simulate_writes_the_golden_layout(golden, tmp_path):
    out = tmp_path / "t.npz"
    args = ["simulate", str(golden.dir / "network.json"), "--inputs",
            str(golden.dir / "inputs.npy"), "--targets", str(golden.dir / "targets.npy"),
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    errors = max_relative_errors(golden.expected, load_traces(out))
    assert max(errors.values()) <= 1e-9


def test_simulate_two_dimensional_inputs_mean_batch_one(golden, tmp_path):
    x2 = tmp_path / "x.npy"
    np.save(x2, golden.inputs[:50, 0])
    out = tmp_path / "t.npz"
    assert main(["simulate", str(golden.dir / "network.json"), "--inputs", str(x2),
                 "--out", str(out), "--quiet"]) == 0
    assert load_traces(out)["output"].shape == (50, 1, golden.net.output_size)


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gle_network: 1\ndt: 0.1\ninput: {size: 1}\nlayers: []\n")
    assert main(["simulate", str(bad), "--inputs", "x.npy", "--out", "o.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "layers: is empty" in err and "Traceback" not in err
    net = tmp_path / "ok.yaml"
    net.write_text("gle_network: 1\ndt: 0.1\ninput: {size: 1}\n"
                   "layers: [{size: 1, tau_m: 1, tau_r: 1}]\n")
    assert main(["simulate", str(net), "--inputs", str(tmp_path / "none.npy"),
                 "--out", "o.npz"]) == 2
    assert "--inputs: file not found" in capsys.readouterr().err


@pytest.mark.lava
def test_demo_trains_in_lava_float_and_fixed_and_writes_the_report(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--steps", "3000", "--quiet"]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.startswith(("lava-float ", "lava-fixed ", "teacher "))}
    start = [float(v) for v in re.search(r"starts at \(([\d.]+), ([\d.]+)\)", text).groups()]
    for backend in ("lava-float", "lava-fixed"):
        w = [float(rows[backend][1]), float(rows[backend][2])]
        # both weights moved from the student's start towards the teacher's (1, 2)
        assert abs(w[0] - 1.0) < abs(start[0] - 1.0) and abs(w[1] - 2.0) < abs(start[1] - 2.0)
        assert float(rows[backend][4]) < float(rows[backend][3]) / 10  # loss fell 10x
    assert (tmp_path / "compare" / "report.html").is_file()
    assert (tmp_path / "compare" / "traces.png").is_file()
