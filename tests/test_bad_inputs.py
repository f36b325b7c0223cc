"""Bad inputs and faults found by trying the CLI as a new user would (issue #12).

Where each reported case is tested (each test reproduces the case and fails on the code
before its fix):

1. Inputs or targets beyond int64 flipped sign in fixed point: test_overflow.py
   (test_numpy_fixed_input_1e20_saturates_like_1e6, test_lava_fixed_input_1e20_...,
   test_numpy_fixed_targets_beyond_the_format_saturate_with_their_sign).
2. Float divergence (eta 1000) was silent and compare blamed saturation: test_divergence.py
   (test_simulate_cli_stops_with_the_error_..., test_compare_names_the_diverged_float_run_...,
   test_lava_float_divergence_is_an_error_naming_the_first_recorded_step).
3. SIGKILL of the host or of one Lava process leaked or hung: runtime/test_sigkill.py.
4. No size guard (1e9-neuron microcode and simulate, 1e12-neuron map): test_memory.py
   (test_microcode_of_a_billion_neuron_layer_..., test_simulate_of_a_billion_neuron_layer_...,
   test_simulate_reports_the_input_shape_before_drawing_a_billion_inputs) and
   mappings/test_map_sizes.py (test_map_of_a_trillion_neurons_is_refused_...).
5. --out unwritable, written non-atomically, /dev/null, a directory: test_cli.py
   (test_unwritable_out_fails_before_the_run, test_interrupted_trace_write_keeps_...,
   test_simulate_refuses_a_directory_and_dev_null, test_simulate_appends_npz_only_...).
6. Damaged checkpoints and two runs on one --out: experiments/test_lagline.py
   (test_damaged_checkpoint_is_one_clear_error_pointing_to_fresh,
   test_lock_of_a_dead_run_is_taken_over) and experiments/test_experiment_cli.py
   (test_damaged_checkpoint_on_the_command_line,
   test_second_run_on_a_live_runs_directory_is_refused).
7. The smaller ones: the table :data:`CASES` below, test_yaml_exponent_numbers_are_numbers
   and test_duplicate_keys_are_refused.
8. A new-user audit (session 50): the rows of :data:`CASES` from "misspelt backend" on;
   experiments/test_checkpoint.py (test_an_ended_run_resumes_only_with_its_epochs_...);
   experiments/test_classification.py (test_a_finished_run_can_be_extended_...: fewer
   epochs refused, a ce run's network_trained.json runs in fixed point).
9. An audit of the Python API (session 51): test_api_inputs.py, and the Lava runs'
   saturation warning in models/test_fixed_models.py (lava_and_twin_counts).

And the suite that failed on an AMD CPU (BLAS): tolerances.py and its users.

Each row of :data:`CASES` is one case of item 7: the command line that reproduces it and
the words the one-line error must contain. A row fails if the command exits 0, prints a
traceback, or says something else.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lava_gle.cli import main
from lava_gle.description import load_network, parse_text

from conftest import GOLDEN

MLP = GOLDEN / "visible_mlp"  # input 2, output 2, mse
NET = str(MLP / "network.json")


def _files(tmp: Path) -> dict[str, str]:
    """The files the table's command lines name: {placeholder: path}."""
    x = np.load(MLP / "inputs.npy")[:20]
    np.save(tmp / "x.npy", x)
    (tmp / "empty.npy").write_bytes(b"")
    np.savez(tmp / "archive.npz", inputs=x)
    shutil.copy(tmp / "archive.npz", tmp / "archive_named.npy")
    np.save(tmp / "complex_y.npy", np.ones((20, 1, 2)) * (1 + 1j))
    np.save(tmp / "bool_y.npy", np.ones((20, 1, 2), dtype=bool))
    np.savetxt(tmp / "x.csv", x[:, 0], delimiter=",")
    ce = json.loads((MLP / "network.json").read_text())
    ce["learning"]["loss"] = "ce"
    (tmp / "ce.json").write_text(json.dumps(ce))
    return {**{name: str(tmp / f"{name}.npy") for name in
               ("x", "empty", "archive_named", "complex_y", "bool_y")},
            "ce": str(tmp / "ce.json"), "dir": str(tmp), "csv": str(tmp / "x.csv")}


#: (case, argv with {file} placeholders, words of the error)
CASES = [
    ("empty .npy", ["simulate", NET, "--inputs", "{empty}", "--out", "{out}"],
     "--inputs: {empty} is empty"),
    ("an .npz named .npy", ["simulate", NET, "--inputs", "{archive_named}", "--out", "{out}"],
     "is an .npz archive (arrays ['inputs']), not a .npy array"),
    ("complex targets", ["simulate", NET, "--inputs", "{x}", "--targets", "{complex_y}",
                         "--out", "{out}"], "targets must be real numbers"),
    ("bool targets", ["simulate", NET, "--inputs", "{x}", "--targets", "{bool_y}",
                      "--out", "{out}"], "targets must be real numbers"),
    ("compare --chunks 0", ["compare", NET, "--inputs", "{x}", "--chunks", "0",
                            "--out", "{out}"], "argument --chunks: must be a whole number >= 1"),
    ("compare --chunks -2", ["compare", NET, "--inputs", "{x}", "--chunks", "-2",
                             "--out", "{out}"], "argument --chunks: must be a whole number >= 1"),
    ("compare --tolerance -1", ["compare", NET, "--inputs", "{x}", "--tolerance", "-1",
                                "--out", "{out}"], "argument --tolerance: must be a finite"),
    ("compare --tolerance nan", ["compare", NET, "--inputs", "{x}", "--tolerance", "nan",
                                 "--out", "{out}"], "argument --tolerance: must be a finite"),
    ("sweep --tolerance inf", ["sweep", NET, "--inputs", "{x}", "--param", "weight_exp=-6",
                               "--tolerance", "inf", "--out", "{out}"],
     "argument --tolerance: must be a finite"),
    ("demo --steps 0", ["demo", "--steps", "0", "--out", "{out}"],
     "argument --steps: must be a whole number >= 1"),
    ("experiment --epochs 0", ["experiment", "yinyang", "--quick", "--epochs", "0",
                               "--out", "{out}"], "argument --epochs: must be a whole number >= 1"),
    ("experiment --seed -1", ["experiment", "lagline", "--quick", "--seed", "-1",
                              "--out", "{out}"], "argument --seed: must be a whole number >= 0"),
    ("map --chips 0", ["map", NET, "--chips", "0"], "argument --chips: must be a whole number"),
    ("map --block-size 0", ["map", NET, "--block-size", "0"],
     "argument --block-size: must be a whole number >= 1"),
    ("sweep, every setting invalid", ["sweep", NET, "--inputs", "{x}", "--param",
                                      "weight_exp=40,50", "--quiet", "--out", "{out}"],
     "every setting of the sweep failed"),
    ("compare, misspelt backend", ["compare", NET, "--inputs", "{x}", "--backends",
                                   "numpy,nump", "--out", "{out}"],
     "--backends: unknown backend 'nump'; choose two of ['numpy', "),
    ("sweep, misspelt backend", ["sweep", NET, "--inputs", "{x}", "--backends", "Numpy,numpy",
                                 "--param", "seed=0", "--out", "{out}"],
     "--backends: unknown backend 'Numpy'"),
    ("sweep, a fraction of an integer option", ["sweep", NET, "--inputs", "{x}", "--param",
                                                "rate_bits=4.5", "--out", "{out}"],
     "--param 'rate_bits=4.5': rate_bits takes whole numbers, got 4.5"),
    ("sweep, a fractional step of an integer option", [
        "sweep", NET, "--inputs", "{x}", "--param", "seed=0:2:0.5", "--out", "{out}"],
     "seed takes whole numbers, got 0.5 (from the range)"),
    ("a directory as inputs", ["simulate", NET, "--inputs", "{dir}", "--out", "{out}"],
     "--inputs: cannot read {dir} as a .npy array ("),
    ("a .csv as inputs", ["simulate", NET, "--inputs", "{csv}", "--out", "{out}"],
     "--inputs: {csv} is not a .npy file (no NumPy header); write the array with numpy.save"),
    ("a directory as NET", ["map", "{dir}"], "is a directory, not a network description"),
    ("simulate --out ''", ["simulate", NET, "--inputs", "{x}", "--out", ""],
     "argument --out: is empty; give a path"),
    ("map --out ' '", ["map", NET, "--out", " "], "argument --out: is empty"),
    ("compare, loss ce in fixed point", [
        "compare", "{ce}", "--inputs", "{x}", "--backends", "numpy,numpy-fixed", "--quiet",
        "--out", "{out}"], "loss 'ce' has no fixed-point form yet"),
]


def test_compare_refuses_a_backend_before_the_other_runs(tmp_path, capsys, monkeypatch):
    """The fixed-point side's refusal came after the float side had run (minutes, on a
    long stream)."""
    from lava_gle.commands import compare
    ran = []
    monkeypatch.setattr(compare, "run_backend", lambda *args, **kw: ran.append(args[3]))
    files = _files(tmp_path)
    assert main(["compare", files["ce"], "--inputs", files["x"], "--out",
                 str(tmp_path / "out")]) == 2
    assert "loss 'ce' has no fixed-point form yet" in capsys.readouterr().err and ran == []


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_error(tmp_path, capsys, argv, words):
    files = {**_files(tmp_path), "out": str(tmp_path / "out")}
    argv = [a.format_map(files) for a in argv]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refuses an option value before any work
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert words.format_map(files) in err
    assert "Traceback" not in err


def test_yaml_exponent_numbers_are_numbers(tmp_path):
    """YAML 1.1 reads ``5e-2`` as a string; descriptions read it as the number it is."""
    text = (MLP / "network.json").read_text()
    d = json.loads(text)
    d["dt"] = "DT"
    path = tmp_path / "net.yaml"
    path.write_text(json.dumps(d).replace('"DT"', "5e-2"))  # JSON is YAML
    assert load_network(path).dt == 0.05
    assert parse_text("a: 1e3\nb: -2.5E+1\nc: 1.0\nd: e5\n", ".yaml") == {
        "a": 1000.0, "b": -25.0, "c": 1.0, "d": "e5"}


@pytest.mark.parametrize("text, read_as", [("010", 8), ("0x10", 16), ("1_000", 1000)])
def test_yaml_integers_not_in_plain_decimal_are_refused(tmp_path, capsys, text, read_as):
    """YAML 1.1 reads ``size: 010`` as 8 (found by a new-user audit); plain decimal is
    kept (0, -3, +7)."""
    path = tmp_path / "net.yaml"
    path.write_text(f"gle_network: 1\ndt: 0.1\ninput: {{size: {text}}}\nlayers:\n"
                    "  - {size: 2, tau_m: 1, tau_r: 1}\n")
    assert main(["map", str(path)]) == 2
    assert (f"invalid YAML at line 3, column 15: the integer '{text}' is not plain decimal "
            f"(YAML 1.1 would read it as {read_as})") in capsys.readouterr().err
    assert parse_text("a: 0\nb: -3\nc: +7\n", ".yaml") == {"a": 0, "b": -3, "c": 7}


@pytest.mark.parametrize("suffix, text, line", [
    (".json", '{"gle_network": 1, "dt": 0.1, "dt": 0.2}', None),
    (".yaml", "gle_network: 1\ndt: 0.1\ndt: 0.2\n", 3),
    (".yaml", "learning:\n  eta: 0.1\n  eta: 0.2\n", 3),
])
def test_duplicate_keys_are_refused(tmp_path, capsys, suffix, text, line):
    path = tmp_path / f"net{suffix}"
    path.write_text(text)
    assert main(["map", str(path)]) == 2
    err = capsys.readouterr().err
    key = "'eta'" if "eta" in text else "'dt'"
    assert f"key {key} appears twice" in err
    if line is not None:
        assert f"(line {line})" in err


def test_python_api_refuses_a_bad_rate_and_names_the_layers():
    """Found by a new-user audit: Adam(-1.0) was accepted, Adam(nan) blamed learning.eta
    later, and initial_weights(5) raised a bare IndexError."""
    from lava_gle.errors import LavaGleError
    from lava_gle.numerics.optim import Adam
    for lr in (-1.0, 0.0, float("nan")):
        with pytest.raises(LavaGleError, match="Adam lr must be a finite number > 0"):
            Adam(lr)
    with pytest.raises(LavaGleError, match="betas must lie in"):
        Adam(1e-3, betas=(0.9, 1.0))
    net = load_network(NET)
    with pytest.raises(IndexError, match=r"network 'visible_mlp' has layers 0..1 "
                                         r"\(hidden, out\), not 5"):
        net.initial_weights(5)
