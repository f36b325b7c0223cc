"""The lava-gle command line: simulate and demo, one-line errors, and --out handling."""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from lava_gle.cli import COMMANDS, _show_warning, main
from lava_gle.errors import LavaGleWarning
from lava_gle.results import atomic_write, write_json
from lava_gle.traces import load_traces, max_relative_errors

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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


def test_version_names_the_commit_of_a_clone(capsys):
    from lava_gle.provenance import code_version, describe
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert out == describe(code_version()) + "\n"
    assert re.fullmatch(r"lava-gle \S+( \(commit [0-9a-f]{12}(, modified)?\))?\n", out)


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


def test_fixed_point_warnings_are_one_line_without_source(tmp_path, capsys):
    """Inputs beyond the fixed-point input format saturate: the command line says so in
    one ``warning:`` line naming the counter, with no Python source line, and still
    succeeds; so is every :class:`LavaGleWarning`, and other warnings are shown as Python
    shows them."""
    x = tmp_path / "x.npy"
    np.save(x, np.full((10, 2), 1e9))
    args = ["simulate", str(EXAMPLES / "mlp.yaml"), "--inputs", str(x), "--out",
            str(tmp_path / "t.npz"), "--backend", "numpy-fixed", "--quiet"]
    assert main(args) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line.lower()]
    assert warned == ["warning: fixed-point saturation (values clipped so far): input=20"]
    _show_warning(LavaGleWarning("advice"), LavaGleWarning, "f.py", 3)  # e.g. a recipe's
    assert capsys.readouterr().err == "warning: advice\n"
    with warnings.catch_warnings(record=True) as passed_on:  # Python's own handling
        _show_warning(RuntimeWarning("not ours"), RuntimeWarning, "f.py", 3)
    assert [(str(w.message), w.filename, w.lineno) for w in passed_on] == [("not ours", "f.py", 3)]
    assert "not ours" not in capsys.readouterr().err


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


MLP = Path(__file__).resolve().parent / "data" / "golden" / "visible_mlp"
NET, INPUTS = str(MLP / "network.json"), str(MLP / "inputs.npy")


@pytest.fixture
def nothing_runs(monkeypatch):
    """Every simulation, training and mapping entry the commands use fails the test."""
    def ran(*args, **kwargs):
        raise AssertionError("the run started before --out was checked")
    import lava_gle.commands.compare as compare_cmd
    import lava_gle.commands.demo as demo_cmd
    import lava_gle.commands.simulate as simulate_cmd
    import lava_gle.commands.sweep as sweep_cmd
    import lava_gle.experiments.lagline as lagline
    import lava_gle.mappings.deploy as deploy
    import lava_gle.mappings.mapper as mapper
    for module, name in ((simulate_cmd, "simulate"), (compare_cmd, "run_backend"),
                         (sweep_cmd, "run_backend"), (demo_cmd, "run_backend"),
                         (demo_cmd, "simulate"), (lagline, "run_lagline"),
                         (mapper, "map_network"), (deploy, "deploy")):
        monkeypatch.setattr(module, name, ran)


def command_with_out(command: str, out: Path) -> list[str]:
    """Arguments of a fast run of ``command`` writing to ``out``."""
    return {
        "simulate": ["simulate", NET, "--inputs", INPUTS, "--out", str(out / "t.npz")],
        "compare": ["compare", NET, "--inputs", INPUTS, "--out", str(out)],
        "sweep": ["sweep", NET, "--inputs", INPUTS, "--param", "weight_exp=-8:-7",
                  "--out", str(out)],
        "experiment": ["experiment", "lagline", "--quick", "--out", str(out)],
        "demo": ["demo", "--out", str(out)],
        "map": ["map", NET, "--out", str(out)],
        "deploy": ["deploy", NET, "--inputs", INPUTS, "--out", str(out / "t.npz")],
    }[command] + (["--quiet"] if command in ("simulate", "compare", "sweep", "experiment",
                                             "demo") else [])


@pytest.mark.parametrize("command", ["simulate", "compare", "sweep", "experiment", "demo",
                                     "map", "deploy"])
def test_unwritable_out_fails_before_the_run(tmp_path, capsys, nothing_runs, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way\n")
    assert main(command_with_out(command, blocker / "sub")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and str(blocker / "sub") in err
    assert "writable" in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["compare", "sweep", "experiment", "demo", "map"])
def test_out_directory_that_is_a_file_is_refused(tmp_path, capsys, nothing_runs, command):
    argv = command_with_out(command, tmp_path / "taken")
    (tmp_path / "taken").write_text("in the way\n")
    if command == "demo":  # demo writes into DIR/compare
        (tmp_path / "taken").unlink()
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "compare").write_text("in the way\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and "is not a directory" in err
    assert "Traceback" not in err


def test_simulate_refuses_a_directory_and_dev_null(tmp_path, capsys, nothing_runs):
    argv = ["simulate", NET, "--inputs", INPUTS, "--quiet", "--out"]
    assert main(argv + [str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path} is a directory" in err and str(tmp_path / "traces.npz") in err
    assert not tmp_path.with_name(tmp_path.name + ".npz").exists()
    assert main(argv + [os.devnull]) == 2
    assert f"--out {os.devnull} is not a regular file" in capsys.readouterr().err
    assert not Path(os.devnull + ".npz").exists()


@pytest.mark.parametrize("name, written", [("t.npz", "t.npz"), ("t", "t.npz"),
                                           ("t.data", "t.data.npz")])
def test_simulate_appends_npz_only_when_missing_and_prints_the_path(tmp_path, capsys, name,
                                                                   written):
    out = tmp_path / "new" / name
    assert main(["simulate", NET, "--inputs", INPUTS, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == [written]
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.endswith(f"-> {out.parent / written}")
    assert load_traces(out.parent / written)["output"].shape[0] == len(np.load(INPUTS))


def test_interrupted_trace_write_keeps_the_previous_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "t.npz"
    assert main(["simulate", NET, "--inputs", INPUTS, "--out", str(out), "--quiet"]) == 0
    before = out.read_bytes()

    def interrupted_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write
    monkeypatch.setattr(np, "savez", interrupted_savez)
    assert main(["simulate", NET, "--inputs", INPUTS, "--out", str(out), "--quiet"]) == 130
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temporary file left


def test_concurrent_writers_of_one_file_do_not_share_a_temporary_file(tmp_path):
    path = tmp_path / "metrics.json"
    with atomic_write(path, text=True) as first:
        with atomic_write(path, text=True) as second:
            assert first.name != second.name
            second.write("second\n")
        first.write("first\n")
    assert path.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_json_outputs_write_nan_as_null(tmp_path):
    path = write_json(tmp_path / "m.json", {"a": float("nan"), "b": np.float32(np.inf),
                                            "c": np.array([1.0, np.nan])})
    assert json.loads(path.read_text()) == {"a": None, "b": None, "c": [1.0, None]}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_prints_its_help(command, capsys):
    """argparse formats each help text with %: a stray one (e.g. "10 %") crashes --help
    with a TypeError instead of printing it."""
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: lava-gle {command}" in capsys.readouterr().out
