"""Time and energy estimates: counted from the mapping, priced with the profile's figures."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from conftest import benchmark_module
from lava_gle.cli import main
from lava_gle.errors import LavaGleError
from lava_gle.mappings.estimate import estimate
from lava_gle.mappings.mapper import map_network
from lava_gle.mappings.profiles import load_profile
from lava_gle.network import InputSpec, LayerSpec, LearningSpec, Network


def chain(inp: int, sizes: list[int], learning: bool = False) -> Network:
    layers = tuple(LayerSpec(f"l{i}", s, 1.0, 1.0) for i, s in enumerate(sizes))
    return Network(dt=0.1, input=InputSpec(inp), layers=layers, name="net",
                   learning=LearningSpec(enabled=learning, eta=0.1 if learning else 0.0))


def test_counts_of_a_small_network_by_hand():
    # 3 -> 2 -> 1 with biases on one core: synapses 6 + 2 (forward), 2 (W_1^T), 1 target,
    # 3 bias = 14 ops per step; 6 compartments; messages: 2 rates up + 1 to the host +
    # 1 error down = 4, plus the learning payloads (docs/fixed-point.md, "One payload per
    # spike"): 2 for the signed (linear) rates into the plastic W_1 and 1 for the error into
    # the plastic transpose copy = 7; all on one core, none leaves it
    m = map_network(chain(3, [2, 1], learning=True))
    est = estimate(m, steps_per_sample=5)
    c = est["training"]["counts_per_step"]
    assert (c["synaptic_ops"], c["neuron_updates"], c["messages"]) == (14, 6, 7)
    assert c["messages_off_core"] == 0 and c["messages_between_chips"] == 0
    # plastic: W_0 (6) + W_1 (2) + biases (3) + the transpose copy of W_1 (2)
    assert c["learning_updates"] == 13
    assert est["inference"]["counts_per_step"]["learning_updates"] == 0
    assert est["latency_steps"] == 2
    fig = load_profile().events
    lo = est["training"]["per_step"]["energy_uj_by_component"]
    assert lo["synaptic_ops"][0] == pytest.approx(14 * fig["synaptic_op_energy"].low * 1e-6)
    assert lo["learning_updates"][1] == pytest.approx(13 * 120 * 1e-6)
    step = est["training"]["per_step"]["time_us"]
    busy_lo = (14 * 3.1 + 13 * 3.8 + 6 * 9.7 + 7 * 5.1) * 1e-3
    assert step[0] == pytest.approx(busy_lo + 0.6)
    sample = est["training"]["per_sample"]
    assert sample["time_us"] == pytest.approx([5 * t for t in step])


def test_a_frozen_projection_has_no_plastic_synapses_nor_learning_payloads():
    """``eta_scale`` 0 (``Network.plastic``): the chip runs no learning rule there. Frozen
    W_0: its 6 synapses and 2 biases stop learning; W_1 (2), its bias (1) and its transpose
    copy (2) learn: 5. Frozen W_1: W_0's 8 learn, and the learning payloads only W_1 and its
    copy read (the 2 signed rates up, the 1 error down) are not sent: 4 messages, not 7."""
    net = chain(3, [2, 1], learning=True)
    counts = [estimate(map_network(replace(net, layers=tuple(
        replace(layer, eta_scale=0.0) if j == i else layer for j, layer in enumerate(net.layers)
    ))))["training"]["counts_per_step"] for i in (0, 1)]
    assert [c["learning_updates"] for c in counts] == [5, 8]
    assert [c["messages"] for c in counts] == [7, 4]
    assert [c["synaptic_ops"] for c in counts] == [14, 14]


def test_a_split_layer_adds_a_step_of_latency_and_relay_work():
    plain = estimate(map_network(chain(8000, [10])))
    split = estimate(map_network(chain(8000, [8000, 10])))   # l0: 8000 + 10 + 1 axons fit
    assert plain["latency_steps"] == 1 and split["latency_steps"] == 2
    wide = map_network(chain(20000, [10, 2]))                # 20,003 axons: split
    assert any(c.role == "forward" for c in wide.costs)
    assert estimate(wide)["latency_steps"] == 3


@settings(max_examples=30, deadline=None)
@given(inp=st.integers(1, 300), width=st.integers(1, 300), extra=st.integers(1, 300),
       learning=st.booleans())
def test_estimates_grow_with_work(inp, width, extra, learning):
    # a wider layer is more work: no count, energy or time may fall
    small = estimate(map_network(chain(inp, [width, 3], learning)))
    large = estimate(map_network(chain(inp, [width + extra, 3], learning)))
    mode = "training" if learning else "inference"
    a, b = small[mode], large[mode]
    for k in ("synaptic_ops", "learning_updates", "neuron_updates", "messages"):
        assert b["counts_per_step"][k] >= a["counts_per_step"][k]
    assert b["counts_per_step"]["synaptic_ops"] > a["counts_per_step"]["synaptic_ops"]
    for side in (0, 1):
        assert b["per_step"]["energy_uj"][side] > a["per_step"]["energy_uj"][side]
        assert b["per_step"]["time_us"][side] >= a["per_step"]["time_us"][side]
        assert a["per_step"]["energy_uj"][0] <= a["per_step"]["energy_uj"][1]


def test_bad_steps_per_sample_is_a_clear_error_and_missing_figures_give_no_estimate(
        tmp_path, capsys):
    """A profile without per-event figures maps, with a note in place of the estimate
    (found by a new-user audit: 'map --profile loihi1', a shipped profile, printed only an
    error)."""
    m = map_network(chain(3, [2]))
    with pytest.raises(LavaGleError, match="--steps-per-sample"):
        estimate(m, 0)
    bare = load_profile()
    bare = type(bare)(bare.name, bare.description, bare.numbers, bare.path, {})
    assert estimate(map_network(chain(3, [2]), bare)) is None
    net = tmp_path / "n.yaml"
    net.write_text("gle_network: 1\ndt: 0.1\ninput: {size: 4}\nlayers:\n"
                   "  - {size: 5, tau_m: 1, tau_r: 1}\n")
    assert main(["map", str(net), "--profile", "loihi1", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "cores" in out and "no time and energy estimate: profile 'loihi1' has no " \
        "figure for synaptic_op_energy" in out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["estimate"] is None and any("no time and energy" in n
                                                for n in manifest["notes"])


def test_map_prints_and_bundles_the_estimate(tmp_path, capsys):
    net = tmp_path / "n.yaml"
    net.write_text("gle_network: 1\ndt: 0.1\ninput: {size: 4}\nlayers:\n"
                   "  - {size: 5, tau_m: 1, tau_r: 1}\n  - {size: 2, tau_m: 1, tau_r: 1}\n")
    assert main(["map", str(net), "--steps-per-sample", "7"]) == 0
    out = capsys.readouterr().out
    assert "estimate (low-high; Loihi 1 figures stand in" in out
    assert "a sample is 7 step(s)" in out and "per sample" in out
    assert main(["map", str(net), "--json", "--out", str(tmp_path / "b")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["estimate"]["figures"]["static_power"]["stand_in"] is None
    assert data["estimate"]["figures"]["synaptic_op_energy"]["stand_in"] == "loihi1"
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["estimate"]["inference"]["per_step"] == \
        data["estimate"]["inference"]["per_step"]


def test_rates_traced_coarser_than_their_payload_need_a_learning_payload():
    """Unsigned (relu) rates are their own trace: no second message, until the layer above
    traces them coarser (``pre_trace_coarsening``): then each of the 2 rates into l1 needs a
    learning payload of its own, one more message per neuron and step."""
    from dataclasses import replace
    net = chain(3, [2, 1], learning=True)
    relu = replace(net, layers=tuple(replace(l, phi="relu") for l in net.layers))
    coarse = replace(relu, layers=(relu.layers[0], replace(
        relu.layers[1], fixed_point={"pre_trace_coarsening": 2})))
    count = [estimate(map_network(n))["training"]["counts_per_step"]["messages"]
             for n in (relu, coarse)]
    assert count == [5, 7]  # 2 rates + 1 to the host + 1 error + 1 error payload; + 2


def test_an_inference_sends_no_errors_and_no_learning_payloads():
    """The 3 -> 2 -> 1 network of the first test, inference: no targets, so every error is
    zero and nothing learns. Of its 7 messages per training step, the error (1), the
    learning payloads of the 2 signed rates and of the error (3) are training's: 3 remain
    (2 rates up, 1 to the host); of its 14 synaptic ops, W_1^T (2) and the target (1) are
    training's: 11 remain (6 + 2 forward, 3 bias)."""
    fig = load_profile().events
    est = estimate(map_network(chain(3, [2, 1], learning=True)))
    tr, inf = est["training"], est["inference"]
    c = inf["counts_per_step"]
    assert (c["synaptic_ops"], c["neuron_updates"], c["messages"]) == (11, 6, 3)
    assert c["learning_updates"] == 0 and c["messages_off_core"] == 0
    msg_pj = fig["message_energy"].low, fig["message_energy"].high
    by_tr, by_inf = (e["per_step"]["energy_uj_by_component"] for e in (tr, inf))
    for side in (0, 1):
        # exactly the 4 training-only messages and 3 training-only synaptic ops less
        assert by_tr["messages"][side] - by_inf["messages"][side] == \
            pytest.approx(4 * msg_pj[side] * 1e-6)
    assert by_tr["synaptic_ops"][0] - by_inf["synaptic_ops"][0] == \
        pytest.approx(3 * fig["synaptic_op_energy"].low * 1e-6)
    assert inf["per_step"]["time_us"][0] == \
        pytest.approx((11 * 3.1 + 6 * 9.7 + 3 * 5.1) * 1e-3 + 0.6)
    # the same network mapped with learning off (no learning payload exists) infers alike
    off = estimate(map_network(chain(3, [2, 1], learning=False)))
    assert off["training"] is None
    assert off["inference"]["counts_per_step"] == c


def test_an_inference_of_a_split_layer_uses_its_forward_partial_sums_only():
    # l0's 20,000 inputs are split into forward segments; l1 sends its error down to l0
    m = map_network(chain(20000, [10, 2], learning=True))
    parts = sum(c.role == "forward" for c in m.costs)
    assert parts >= 2
    c = estimate(m)["inference"]["counts_per_step"]
    # forward synapses 20,000 x 10 + 10 x 2, biases 12, one partial sum per neuron and part
    assert c["synaptic_ops"] == 200_000 + 20 + 12 + 10 * parts
    # messages: each segment's 10 partial sums, l0's 10 rates to l1's one core, 2 to the host
    assert c["messages"] == 10 * parts + 10 + 2


def test_pilotnet_set_up_and_the_estimate_against_intels_measurement():
    """Intel's PilotNet LIF SNN on Loihi 2 (benchmarks/pilotnet_validation.py; sources
    there): the synapses from the published layer shapes by hand, the compiler's 74 cores,
    and the estimate's error against the measurement, as docs/mapping.md states it."""
    pn = benchmark_module("pilotnet_validation")
    c = pn.counts()
    layer = c["per_layer"]
    hand = {"conv0": 99 * 32 * 24 * 3 * 3 * 3, "conv1": 49 * 15 * 36 * 3 * 3 * 24,
            "conv2": 24 * 7 * 48 * 3 * 3 * 36,
            # stride 2 over H = 7 padded by 1: the 4 output rows see 2, 3, 3, 2 input rows
            "conv3": 22 * (2 + 3 + 3 + 2) * 3 * 48 * 64, "conv4": 20 * 2 * 64 * 3 * 3 * 64,
            "fc0": 20 * 2 * 64 * 100, "fc1": 100 * 50, "fc2": 50 * 10, "fc3": 10}
    assert {k: layer[k]["synapses"] for k in hand} == hand
    assert sum(v["cores"] for v in layer.values()) == 74
    assert c["neuron_updates"] == 200 * 66 * 3 + 99 * 32 * 24 + 49 * 15 * 36 + 24 * 7 * 48 \
        + 22 * 4 * 64 + 20 * 2 * 64 + 100 + 50 + 10 + 1
    # event-driven: a layer's synaptic ops are the rate below times its synapses; every
    # conv4 spike goes to the 12 cores of fc0
    assert layer["conv1"]["synaptic_ops"] == pytest.approx(0.0915 * hand["conv1"])
    assert layer["conv4"]["messages"] == pytest.approx(2560 * 0.1102 * 12)
    rows = pn.compare()["rows"]
    assert rows["time per step (us)"]["measured"] == pytest.approx(152.84, abs=0.01)
    assert rows["time per step (us)"]["ratio"] == pytest.approx([2.80, 4.58], abs=0.01)
    assert rows["dynamic energy per step (uJ)"]["ratio"] == pytest.approx([1.22, 1.88],
                                                                            abs=0.01)
    assert rows["energy per inference (mJ)"]["ratio"] == pytest.approx([1.75, 2.79], abs=0.01)
