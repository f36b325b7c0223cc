"""The resource arithmetic of a few networks, computed by hand (Loihi 2 profile unless noted).

Loihi 2: 4096 compartments, 8 groups, 16000 axons in and out, 12000 words of 32 bits, 16384
trace slots per core; 128 cores per chip. Synapses are 9 bits, bit-packed per input-axon row:
a row of n synapses takes ceil(9 n / 32) words (n <= 3: 1 word, n <= 53: 15 words).
"""
from __future__ import annotations

import pytest

from lava_gle.mappings.mapper import map_network
from lava_gle.mappings.profiles import load_profile
from lava_gle.mappings.report import build_report
from lava_gle.mappings.resources import DoesNotFitError, layer_costs
from lava_gle.network import InputSpec, LayerSpec, LearningSpec, Network


def chain(inp: int, sizes: list[int], learning: bool = False, backward: str = "transpose",
          name: str = "net") -> Network:
    layers = tuple(LayerSpec(f"l{i}", s, 1.0, 1.0) for i, s in enumerate(sizes))
    return Network(dt=0.1, input=InputSpec(inp), layers=layers, name=name,
                   learning=LearningSpec(enabled=learning, eta=0.1 if learning else 0.0,
                                         backward=backward))


def spans(m):
    return [(m.costs[b.layer].name, b.start, b.stop, b.core) for b in m.blocks]


def test_mnist_shaped_784_100_10():
    # l0 (100, fan-in 784, 10 errors from above, biases): a block of n has 784 + 10 + 1 rows
    # of ceil(9n/32) words; n = 53 -> 795 * 15 = 11925 <= 12000, n = 54 -> 795 * 16 > 12000.
    m = map_network(chain(784, [100, 10]))
    assert spans(m) == [("l0", 0, 53, 0), ("l0", 53, 100, 1), ("l1", 0, 10, 1)]
    d = m.block_demands()
    # (compartments, groups, axons in, axons out, words, traces)
    assert d[0] == (106, 2, 784 + 10 + 1, 53 * 1, 11925, 0)
    assert d[1] == (94, 2, 795, 47, 795 * 14, 0)
    # output layer: 100 rates + 10 targets + 1 bias axon in; 10 rates to the host + 10 errors
    # to each of l0's 2 cores out; 100 rows of ceil(90/32) words + 10 target rows of 1 word
    # + one bias row of 3 words
    assert d[2] == (20, 2, 111, 10 + 20, 300 + 10 + 3, 0)
    r = build_report(m)
    assert r.totals["cores"] == 2 and r.totals["chips"] == 1
    assert r.totals["demand"]["synapse_words"] == 11925 + 11130 + 313
    assert r.totals["lower_bound_cores"] == 2  # ceil(23368 / 12000)
    assert [l["binding"] for l in r.layers] == ["synapse_words", "layer size"]
    assert r.layers[0]["max_block"] == 53
    assert r.totals["synapses_forward"] == 78400 + 1000
    assert r.totals["synapses_backward"] == 1000
    assert r.totals["synapses_target"] == 10
    assert r.totals["synapses_bias"] == 110
    assert r.totals["segments"] == 0 and r.totals["synapses_relay"] == 0
    # traffic: each l0 block sends 8-bit rates to l1's core (53 on another core, 47 on
    # the same); l1 sends 24-bit errors to l0's two cores (core 0 only is remote)
    assert m.placement.intercore_bits == 53 * 8 + 10 * 24


def test_intel_row_packing_points():
    # Intel's published utilisation: a 100 x 50 dense layer takes 15 words per axon row
    # (reproduced exactly), a 784 x 50 layer 12 (the model charges 15: conservative)
    net = Network(dt=0.1, input=InputSpec(100),
                  layers=(LayerSpec("d", 50, 1.0, 1.0, bias=False),), name="d")
    cost = layer_costs(net, load_profile())[0]
    assert cost.row_words(50, 9) == 15
    assert cost.demand(50, 1, 0)[4] == 100 * 15 + 50  # + one 1-word row per target


def test_learning_traces_with_transpose_and_feedback():
    # l0 block of 46 (fan-in 784, 100 from above, biases): 885 rows of ceil(9*46/32) = 13
    # words = 11505; n = 47 -> 885 * 14 > 12000
    # traces: W_l0: 784 pre + 2*46 post (y2, y3); bias axon: 1; plastic W_l1^T: 100 pre +
    # 46 post (y2)
    m = map_network(chain(784, [300, 100, 10], learning=True))
    assert m.blocks[0].size == 46
    assert m.block_demands()[0][5] == 784 + 92 + 1 + 100 + 46
    # feedback alignment: the backward matrix is fixed, no traces for it
    m = map_network(chain(784, [300, 100, 10], learning=True, backward="feedback_alignment"))
    assert m.block_demands()[0][5] == 784 + 92 + 1


def test_weight_bits_override_packs_more_synapses_per_word():
    # 4-bit weights: l0 = 795 rows of ceil(400/32) = 13 words, l1 = 100 rows of
    # ceil(40/32) = 2 + 10 target rows + a 2-word bias row = 212 -> 10547 words on one core
    m = map_network(chain(784, [100, 10]), weight_bits=4)
    assert m.cores == 1
    assert build_report(m).totals["demand"]["synapse_words"] == 795 * 13 + 212


def test_loihi1_binds_on_compartments():
    # 64-bit words: eight 8-bit synapses; a 600-neuron layer with fan-in 10 needs 1200
    # compartments > 1024: blocks of 512
    m = map_network(chain(10, [600, 2]), "loihi1")
    assert spans(m)[:2] == [("l0", 0, 512, 0), ("l0", 512, 600, 1)]
    assert build_report(m).layers[0]["binding"] == "compartments"


def test_output_axons_follow_the_neighbours_core_count():
    # 50 neurons per block at most (--block-size): l1 (120) sits on 3 cores, so every
    # l0 neuron sends its rate to 3 cores, and every l2 neuron its error to 3 cores.
    m = map_network(chain(5, [40, 120, 30]), block_size=50)
    assert m.layer_cores == [1, 3, 1]
    d = m.block_demands()
    l0 = next(x for b, x in zip(m.blocks, d) if b.layer == 0)
    assert l0[3] == 40 * 3
    l2 = next(x for b, x in zip(m.blocks, d) if b.layer == 2)
    assert l2[3] == 30 * 1 + 30 * 3


def test_output_axon_limit_cuts_blocks_smaller():
    # at most 100 output axons per core: l0 neurons each send to k1 cores of l1 and
    # l1 neurons to k0 cores of l0, so blocks shrink until the counts settle
    # Settled counts k = [2, 3, 1]: l0 neurons reach 3 cores -> blocks of 33 (99 axons) and
    # 27; l1 neurons reach 2 + 1 cores: 6 fit the 19 axons left on core 1, then 33, then 21;
    # l2 neurons send 1 rate to the host + errors to 3 cores: 4 * 4 = 16.
    profile = load_profile().with_values(output_axons_per_core=100)
    m = map_network(chain(4, [60, 60, 4]), profile)
    assert m.layer_cores == [2, 3, 1]
    assert [b.size for b in m.blocks] == [33, 27, 6, 33, 21, 4]
    assert [d[3] for d in m.block_demands()] == [99, 81, 18, 99, 63, 16]
    caps = 100
    per_core: dict[int, int] = {}
    for b, d in zip(m.blocks, m.block_demands()):
        per_core[b.core] = per_core.get(b.core, 0) + d[3]
    assert max(per_core.values()) <= caps
    assert build_report(m).layers[0]["binding"] == "output_axons"


def test_output_axons_that_cannot_settle_are_reported():
    # 300-wide neighbours and 100 output axons: l1 is cut so fine that one l0 neuron
    # would have to reach more cores than it has axons
    profile = load_profile().with_values(output_axons_per_core=100)
    with pytest.raises(DoesNotFitError, match="output_axons.*--block-size"):
        map_network(chain(4, [300, 300, 4]), profile)


def test_no_weights_are_read_and_a_too_wide_fan_in_is_split():
    # one l0 neuron would need 8000 + 8000 + 1 input axons > 16000: its 8000 forward inputs
    # are split into 2 segments of 4000 (the fewest: one segment neuron holds 4000 rows of
    # 1 word <= 12000); the soma receives 2 partial sums per neuron instead
    costs = layer_costs(chain(8000, [8000, 8000]), load_profile())
    assert [(c.name, c.role, c.chunk) for c in costs] == [
        ("l0/f0", "forward", (0, 4000)), ("l0/f1", "forward", (4000, 8000)),
        ("l0", "soma", (0, 0)), ("l1", "soma", (0, 0))]
    assert costs[0].synapses(3) == (12000, 0, 0, 0)
    assert costs[2].synapses(3) == (0, 24000, 0, 3)
    # segment: 3 compartments, 1 group, 4000 axons in, 3 partial sums out, 4000 1-word rows
    assert costs[0].demand(3, 5, 5) == (3, 1, 4000, 3, 4000, 0)
    # soma: 8000 error rows + 2 * 3 partial-sum rows + 1 bias row
    assert costs[2].demand(3, 1, 0) == (6, 2, 8000 + 6 + 1, 3, 8000 + 6 + 1, 0)
    # l0's rates go to l1's soma; l1's errors to l0's soma (its backward side is not split)
    assert costs[2].up == (3,) and costs[3].down == (2,)


def test_a_layer_that_cannot_be_built_names_layer_resource_and_fix():
    # a GLE neuron is two compartments: a core of one compartment cannot hold it, whatever
    # the split (fan-in alone is never refused: see test_mapper_properties)
    profile = load_profile().with_values(compartments_per_core=1)
    with pytest.raises(DoesNotFitError) as info:
        map_network(chain(20000, [10, 2]), profile)
    err = info.value
    assert (err.layer, err.resource, err.demand, err.capacity) == ("l0", "compartments", 2, 1)
    assert "over by 1" in str(err)


def test_synapse_memory_overflow_suggests_a_lower_weight_width():
    # 2 words per core: the output neuron's target and bias rows alone fill them, so no
    # split helps; the refusal gives the unsplit demand, 15000 input rows + target + bias
    profile = load_profile().with_values(synapse_words_per_core=2)
    with pytest.raises(DoesNotFitError, match="synapse_words.*--weight-bits") as info:
        map_network(chain(15000, [1]), profile)
    assert info.value.demand == 15000 + 1 + 1


def test_too_few_chips_names_the_chips_needed():
    # 3000-wide layers: 8 neurons per core (1500 words each), hundreds of cores; a
    # Kapoho Point board cut to 1 core per chip has 8 cores in all
    profile = load_profile("kapoho_point").with_values(cores_per_chip=1)
    net = chain(3000, [3000, 3000, 10])
    m = map_network(net, load_profile().with_values(cores_per_chip=1))
    with pytest.raises(DoesNotFitError, match=rf"--chips {m.chips}") as info:
        map_network(net, profile)
    assert info.value.resource == "cores" and info.value.capacity == 8
    with pytest.raises(DoesNotFitError, match="more chips"):
        map_network(net, chips=1, profile=load_profile().with_values(cores_per_chip=4))


def test_traffic_strategy_moves_the_chip_boundary_to_the_cheapest_place():
    # 2 compartments per core: one neuron per core. Layers 2, 2, 1, 3 -> cores 0-1, 2-3, 4,
    # 5-7; 5 cores per chip -> 2 chips. A pair (rate up + error down) carries 8 + 24 bits.
    # Boundary b separates pairs p < b <= q: c[3] = 2 pairs l0-l1 + 1 pair l1-l2 = 96,
    # c[4] = the 2 pairs l1-l2 = 64, c[5] = the 3 pairs l2-l3 = 96 (dense cuts there).
    from lava_gle.mappings.placement import boundary_costs, entry_blocks
    profile = load_profile().with_values(compartments_per_core=2, cores_per_chip=5)
    net = chain(1, [2, 2, 1, 3])
    dense = map_network(net, profile, strategy="dense")
    entries = entry_blocks(dense.blocks, len(dense.costs))
    assert boundary_costs(entries, dense.costs, 8) == [0, 64, 128, 96, 64, 96, 64, 32, 0]
    assert dense.placement.chip_of_core == (0, 0, 0, 0, 0, 1, 1, 1)
    assert dense.placement.interchip_bits == 96
    traffic = map_network(net, profile, strategy="traffic")
    assert traffic.placement.chip_of_core == (0, 0, 0, 0, 1, 1, 1, 1)
    assert traffic.placement.interchip_bits == 64


def test_traffic_strategy_uses_a_spare_chip_when_two_cheap_cuts_beat_one():
    # One neuron per core; layers 1, 3, 1, 3, 3, 3, 1, 3, 1 -> 19 cores, l2 on core 4 and
    # l6 on core 14. With 10 cores per chip two chips must cut at 9 or 10, inside the wide
    # middle: 9 pairs of 32 bits = 288. Three chips can cut next to the narrow layers, where
    # 3 pairs cross (cuts 1..5 and 14..18 cost 96 each), with runs of at most 10: 192 bits.
    profile = load_profile().with_values(compartments_per_core=2, cores_per_chip=10)
    net = chain(1, [1, 3, 1, 3, 3, 3, 1, 3, 1])
    dense = map_network(net, profile, strategy="dense", chips=3)
    assert dense.chips == 2 and dense.placement.interchip_bits == 288
    assert map_network(net, profile, strategy="traffic").placement.interchip_bits == 288
    traffic = map_network(net, profile, strategy="traffic", chips=3)
    chip_of = traffic.placement.chip_of_core
    cuts = [b for b in range(1, 19) if chip_of[b] != chip_of[b - 1]]
    assert len(cuts) == 2 and 1 <= cuts[0] <= 5 and 14 <= cuts[1] <= 18
    assert cuts[1] - cuts[0] <= 10
    assert traffic.chips == 3 and traffic.placement.interchip_bits == 192


def test_mapper_docstring_example_runs():
    import doctest

    import lava_gle.mappings.mapper
    result = doctest.testmod(lava_gle.mappings.mapper, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def tagged_chain(bits: int = 6, **kw) -> Network:
    """``chain(20, [12, 6, 3])`` with ``weight_tag_bits`` on l1."""
    from dataclasses import replace
    net = chain(20, [12, 6, 3], **kw)
    l1 = replace(net.layers[1], fixed_point={"weight_tag_bits": bits})
    return replace(net, layers=(net.layers[0], l1, net.layers[2]))


def test_a_tagged_layer_stores_9_bit_tags_beside_its_plastic_weights():
    # words of a whole layer (one block) on a core; 9-bit weights, +9 tag bits where tagged.
    # l0 (12, fan-in 20, 6 errors from above, bias): 20 rows of ceil(12*9/32) = 4 words, the
    #   6 rows of W_l1^T: 4 words untagged, ceil(12*18/32) = 7 tagged; bias row 4.
    # l1 (6, fan-in 12, 3 errors, bias; tagged): 12 rows of ceil(6*9/32) = 2 words, 4
    #   tagged; 3 rows of W_l2^T, 2 words (l2 keeps no tags); bias row 2, 4 tagged.
    # l2 (3, output): 6 rows of 1 word + 3 target rows + a bias row: 10, tags or not.
    def words(net):
        return [c.demand(c.size, 1, 1)[4] for c in layer_costs(net, load_profile())]

    plain = [80 + 24 + 4, 24 + 6 + 2, 10]
    assert words(chain(20, [12, 6, 3], learning=True)) == plain
    assert words(tagged_chain(learning=True)) == [80 + 42 + 4, 48 + 6 + 4, 10]
    assert words(tagged_chain(bits=7, learning=True)) == [126, 58, 10]  # 9 bits, any k
    # feedback alignment: W_l1^T is fixed, so l0's backward rows keep no tags
    assert words(tagged_chain(learning=True, backward="feedback_alignment")) == [108, 58, 10]
    # no learning (off, or eta 0: the quantiser gives no tags): no tags anywhere
    assert words(tagged_chain()) == plain
    from dataclasses import replace
    net = tagged_chain(learning=True)
    assert words(replace(net, learning=replace(net.learning, eta=0.0))) == plain
    r = build_report(map_network(tagged_chain(learning=True)))
    assert [(l["tag_bits"], l["backward_tag_bits"]) for l in r.layers] == [(0, 9), (9, 0),
                                                                          (0, 0)]
    assert r.totals["demand"]["synapse_words"] == 126 + 58 + 10


def test_tagged_forward_segments_store_tags_too():
    # fan-in 17,000 > 16,000 input axons: l0's forward inputs are cut into segments; each
    # holds its chunk's rows of 2 synapses, ceil(2*18/32) = 2 words tagged (1 untagged), and
    # 2 one-word rows for the values its soma feeds back (never tagged)
    from dataclasses import replace
    net = chain(17000, [2], learning=True)
    tagged = replace(net, layers=(replace(net.layers[0], fixed_point={"weight_tag_bits": 5}),))
    for n, per_row in ((net, 1), (tagged, 2)):
        segments = [c for c in layer_costs(n, load_profile()) if c.role == "forward"]
        assert len(segments) > 1
        for c in segments:
            assert c.demand(2, 1, 1)[4] == (c.chunk[1] - c.chunk[0]) * per_row + 2


@pytest.mark.parametrize("payload_bits, extra", [(16, 5), (8, 0)])
def test_gains_send_their_payload_wide_with_a_learning_payload_beside_it(payload_bits, extra):
    """A layer with gains sends ``g r`` at ``gain_payload_bits``; wider than the learning
    engine's 8 bits, an 8-bit learning payload goes beside it: one more output axon per
    neuron (sigmoid rates need none otherwise) and one more input axon per rate into the
    layer above. Its normalisers' instructions join the neuron program, with the
    operations no public source shows (46-bit squares, inverse square roots)."""
    from dataclasses import replace
    plain = chain(3, [5, 2], learning=True)
    plain = replace(plain, layers=(replace(plain.layers[0], phi="sigmoid"), plain.layers[1]),
                    fixed_point={"gain_payload_bits": payload_bits})
    gained = replace(plain, layers=(replace(plain.layers[0], gain_decay=1 - 2 ** -10),
                                    plain.layers[1]))
    (a0, a1), (b0, b1) = (map_network(n).block_demands() for n in (plain, gained))
    assert b0[3] - a0[3] == extra and b1[2] - a1[2] == extra  # axons out of l0, into l1
    assert (b0[:3], b0[4:], b1[3:]) == (a0[:3], a0[4:], a1[3:])
    report = build_report(map_network(gained))
    assert [layer["rate_bits"] for layer in report.layers] == [payload_bits, 8]
    prog = report.totals["neuron_program"]
    # g d (multiply, clip), the mean square's schedule (6) and update (4), gamma, g r
    # (multiply, clip)
    assert prog["normaliser_instructions_per_neuron"] == {"l0": 15}
    plain_prog = build_report(map_network(plain)).totals["neuron_program"]
    assert (prog["instructions_per_neuron"]["l0"]
            == plain_prog["instructions_per_neuron"]["l0"] + 15)
    assert prog["without_public_counterpart"] == {"l0": ["mulw", "rsqrt"]}
    assert ("note: layer l0's neuron program needs mulw, rsqrt, which no public source "
            "shows on Loihi 2") in report.format_text()


def test_layers_needing_the_same_operations_share_one_note():
    from dataclasses import replace
    net = chain(3, [4, 4, 2], learning=True)
    net = replace(net, layers=tuple(replace(layer, gain_decay=1 - 2 ** -10)
                                    for layer in net.layers[:2]) + net.layers[2:])
    notes = [line for line in build_report(map_network(net)).format_text().splitlines()
             if "no public source" in line]
    assert notes == ["  note: the neuron programs of layers l0, l1 need mulw, rsqrt, which no "
                     "public source shows on Loihi 2 (docs/fixed-point.md, section 8)"]
