"""lava-gle sweep: parameter parsing, one comparison per setting, failures recorded."""
from __future__ import annotations

import json

import pytest

from lava_gle.cli import main
from lava_gle.commands.sweep import parse_param, with_setting
from lava_gle.errors import LavaGleError


def test_parse_ranges_lists_and_layer_keys(golden):
    net = golden.net
    assert parse_param("u_bits=8:12:2", net) == ("u_bits", [8, 10, 12])
    assert parse_param("weight_headroom=1,2.5", net) == ("weight_headroom", [1.0, 2.5])
    name = net.layer_names[0]
    assert parse_param(f"{name}.error_bits=6:7", net) == (f"{name}.error_bits", [6, 7])
    assert parse_param("rounding=shared,per_synapse", net) == ("rounding",
                                                                ["shared", "per_synapse"])


@pytest.mark.parametrize("text, match", [
    ("u_bits", "KEY=VALUES"), ("colour=1:2", "unknown fixed-point option"),
    ("nolayer.u_bits=1:2", "no layer 'nolayer'"), ("u_bits=5:2", "A <= B"),
    ("u_bits=a,b", "comma list"), ("rounding=fair", "not one of"),
])
def test_bad_params_are_explained(golden, text, match):
    with pytest.raises(LavaGleError, match=match):
        parse_param(text, golden.net)


def test_setting_lands_in_the_description(golden):
    name = golden.net.layer_names[-1]
    net = with_setting(golden.net, f"{name}.u_bits", 9)
    assert net.layer(name).fixed_point == {"u_bits": 9}
    assert golden.net.layers[0].fixed_point == net.layers[0].fixed_point
    net = with_setting(golden.net, "input_range", 3.0)
    assert net.fixed_point == {"input_range": 3.0}


def test_sweep_writes_one_row_per_setting_and_records_failures(tmp_path):
    from conftest import GOLDEN
    d = GOLDEN / "visible_mlp"
    args = ["sweep", str(d / "network.json"), "--inputs", str(d / "inputs.npy"), "--targets",
            str(d / "targets.npy"), "--param", "u_bits=10:14:4", "--param",
            "out.weight_exp=5,-5", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    res = json.loads((tmp_path / "sweep.json").read_text())["results"]
    assert [r["value"] for r in res["u_bits"]] == [10, 14]
    assert all(0 < r["output_rms_error"] < 1 for r in res["u_bits"])
    bad, good = res["out.weight_exp"]  # an LSB of 32: no learning gain is small enough
    assert "weight exponent" in bad["error"] and "output_rms_error" in good
    assert (tmp_path / "sweep_u_bits.png").is_file()
