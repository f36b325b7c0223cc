"""Bad inputs found by trying the CLI as a new user would (issue #12): each row is one case,
the command line that reproduces it and the words the one-line error must contain.

A row fails if the command exits 0, prints a traceback, or says something else. Cases that
need a running Lava network or a long run live beside the code they exercise (saturation
and divergence in tests/test_overflow.py and tests/test_divergence.py, outputs and
checkpoints in tests/test_cli.py and tests/experiments/, leaks in tests/mappings/).
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
    return {name: str(tmp / f"{name}.npy") for name in
            ("x", "empty", "archive_named", "complex_y", "bool_y")}


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
]


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
