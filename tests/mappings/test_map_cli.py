"""``lava-gle map``: tables, --json, --out bundles, one-line errors; no weights allocated."""
from __future__ import annotations

import json
import tracemalloc

import pytest
import yaml

from lava_gle.cli import main
from lava_gle.mappings.mapper import map_network
from lava_gle.mappings.report import build_report
from lava_gle.network import InputSpec, LayerSpec, Network


def write_net(path, inp, sizes, **extra):
    data = {"gle_network": 1, "name": "clinet", "dt": 0.1, "input": {"size": inp},
            "layers": [{"name": f"h{i}", "size": s, "tau_m": 1.0, "tau_r": 0.5,
                        "init": {"scheme": "lecun_normal", "seed": 3}}
                       for i, s in enumerate(sizes)], **extra}
    path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data))
    return path


def test_map_prints_layer_and_core_tables_and_totals(tmp_path, capsys):
    net = write_net(tmp_path / "n.yaml", 784, [100, 10])
    assert main(["map", str(net)]) == 0
    out = capsys.readouterr().out
    assert "layers:" in out and "cores:" in out and "totals:" in out
    # hand-computed in test_mapper_resources: l0 is cut at 53 neurons by synapse memory
    assert "h0[0:53]" in out and "h0[53:100] h1[0:10]" in out
    assert "synapse_words" in out and "layer size" in out
    assert "cores 2 on 1 chip(s) of 128 cores; lower bound 2 cores" in out


def test_map_json_is_the_report(tmp_path, capsys):
    net = write_net(tmp_path / "n.json", 784, [100, 10])
    assert main(["map", str(net), "--json", "--strategy", "traffic"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "traffic"
    assert data["totals"]["cores"] == 2 and data["totals"]["chips"] == 1
    assert [l["binding"] for l in data["layers"]] == ["synapse_words", "layer size"]
    assert [c["neurons"] for c in data["cores"]] == [53, 57]
    assert data["profile"]["values"]["synapse_words_per_core"]["confidence"] == "primary"
    assert data["bundle"] is None


def test_map_without_chips_reports_how_many_it_needs(tmp_path, capsys):
    # 3000-wide layers: 8 neurons per core -> 375 cores per hidden layer -> several chips
    net = write_net(tmp_path / "n.yaml", 3000, [3000, 3000, 10])
    assert main(["map", str(net), "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["totals"]
    assert t["chips"] == -(-t["cores"] // 128) and t["chips"] > 1
    assert main(["map", str(net), "--chips", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the network does not fit: cores needs")
    assert f"--chips {t['chips']}" in err
    assert "Traceback" not in err


def test_map_profile_and_weight_bits_options(tmp_path, capsys):
    net = write_net(tmp_path / "n.yaml", 784, [100, 10])
    prof = tmp_path / "half.yaml"
    prof.write_text("base: loihi2\nvalues:\n  synapse_words_per_core: 6000\n")
    assert main(["map", str(net), "--json", "--profile", str(prof)]) == 0
    # l0 blocks of 24 (795 rows of ceil(9*24/32) = 7 words <= 6000): 24, 24, 24, 24, 4 + h1
    assert json.loads(capsys.readouterr().out)["totals"]["cores"] == 5
    assert main(["map", str(net), "--json", "--weight-bits", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["cores"] == 1
    assert main(["map", str(net), "--json", "--block-size", "25"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][0]["cores"] == 4 and data["layers"][0]["binding"] == "block size"


@pytest.mark.parametrize("args, message", [
    (["--profile", "loihi9"], "unknown profile 'loihi9'"),
    (["--weight-bits", "40"], "weight width 40 bits: must be 1..32"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    net = write_net(tmp_path / "n.yaml", 10, [5])
    assert main(["map", str(net)] + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"chips": 0}, "--chips must be a whole number of chips, at least 1"),
    ({"block_size": 0}, "block size must be a whole number of neurons, at least 1"),
])
def test_bad_mapper_arguments_from_python_are_clear_errors(tmp_path, kwargs, message):
    """The CLI refuses these while parsing (tests/test_bad_inputs.py); the API checks too."""
    from lava_gle import load_network
    from lava_gle.errors import LavaGleError
    net = load_network(write_net(tmp_path / "n.yaml", 10, [5]))
    with pytest.raises(LavaGleError, match=message):
        map_network(net, **kwargs)


def test_a_network_that_cannot_fit_names_layer_resource_overshoot_and_fix(tmp_path, capsys):
    net = write_net(tmp_path / "n.yaml", 20000, [10, 2])
    prof = tmp_path / "tiny.yaml"
    prof.write_text("base: loihi2\nvalues:\n  compartments_per_core: 1\n")
    assert main(["map", str(net), "--profile", str(prof)]) == 2
    err = capsys.readouterr().err
    assert "layer 'h0' does not fit: compartments needs 2 but the limit is 1" in err
    assert "over by 1" in err and "compartments" in err


def test_map_out_writes_a_bundle(tmp_path, capsys):
    net = write_net(tmp_path / "n.yaml", 784, [100, 10])
    out = tmp_path / "bundle"
    assert main(["map", str(net), "--out", str(out)]) == 0
    assert f"bundle written to {out}" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["placement"]["cores"] == 2
    assert (out / "network.json").is_file()


def test_huge_networks_are_counted_not_stored():
    # 7900 -> 7900 -> 7900 -> 7900: 187 million forward synapses (1.5 GB as float64)
    layers = tuple(LayerSpec(f"l{i}", 7900, 1.0, 1.0) for i in range(3))
    net = Network(dt=0.1, input=InputSpec(7900), layers=layers)
    tracemalloc.start()
    try:
        report = build_report(map_network(net))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.totals["synapses_forward"] == 3 * 7900 * 7900
    assert peak < 100 * 2 ** 20


def test_map_counts_the_tags_of_a_tagged_layer(tmp_path, capsys):
    # h1 keeps 7-bit weight tags: its 12 forward rows and bias row hold 6 synapses of
    # 9 + 9 bits (4 words instead of 2), h0's 6 rows of the plastic W_h1^T 12 synapses
    # (7 words instead of 4): 13 * 2 + 6 * 3 = 44 words more (tests/mappings/
    # test_mapper_resources.py counts every row)
    learning = {"learning": {"enabled": True, "eta": 0.1}}
    plain = write_net(tmp_path / "plain.json", 20, [12, 6, 3], **learning)
    data = json.loads(plain.read_text())
    data["layers"][1]["fixed_point"] = {"weight_tag_bits": 7}
    tagged = tmp_path / "tagged.json"
    tagged.write_text(json.dumps(data))
    reports = []
    for net in (plain, tagged):
        assert main(["map", str(net), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    words = [[l["synapse_words"] for l in r["layers"]] for r in reports]
    assert [b - a for a, b in zip(*words)] == [18, 26, 0]
    assert [l["tag_bits"] for l in reports[1]["layers"]] == [0, 9, 0]
    assert main(["map", str(tagged)]) == 0
    assert "note: h0, h1 store a synaptic tag beside each weight" in capsys.readouterr().out
