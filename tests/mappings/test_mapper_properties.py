"""Property tests: for random layered networks and profiles the mapping respects every limit
and accounts for every neuron and synapse exactly once."""
from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings, strategies as st

from lava_gle.mappings.mapper import map_network
from lava_gle.mappings.profiles import load_profile
from lava_gle.mappings.report import build_report
from lava_gle.mappings.resources import RESOURCES, DoesNotFitError, capacities
from lava_gle.network import InputSpec, LayerSpec, LearningSpec, Network

BASE = load_profile()


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 400), min_size=1, max_size=6))
    learning = draw(st.booleans())
    backward = draw(st.sampled_from(["transpose", "feedback_alignment"]))
    layers = tuple(LayerSpec(f"l{i}", s, 1.0, 1.0, bias=draw(st.booleans()))
                   for i, s in enumerate(sizes))
    return Network(dt=0.1, input=InputSpec(draw(st.integers(1, 400))), layers=layers,
                   learning=LearningSpec(enabled=learning, eta=0.1, backward=backward))


@st.composite
def profiles(draw):
    word_bits = draw(st.sampled_from([8, 16, 32, 64]))
    return BASE.with_values(
        compartments_per_core=draw(st.integers(2, 2048)),
        neuron_groups_per_core=draw(st.integers(2, 16)),
        input_axons_per_core=draw(st.integers(200, 3000)),
        output_axons_per_core=draw(st.integers(50, 4000)),
        synapse_words_per_core=draw(st.integers(50, 12000)),
        synapse_word_bits=word_bits,
        learning_traces_per_core=draw(st.integers(200, 4000)),
        cores_per_chip=draw(st.integers(1, 128)),
        weight_bits=draw(st.integers(1, word_bits)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks(), profile=profiles(), strategy=st.sampled_from(["dense", "traffic"]),
       block_size=st.one_of(st.none(), st.integers(1, 300)))
def test_mapping_invariants(net, profile, strategy, block_size):
    try:
        m = map_network(net, profile, strategy=strategy, block_size=block_size)
    except DoesNotFitError as err:
        # a refusal names a real layer and resource with a real overshoot
        assert err.layer in net.layer_names
        assert err.resource in RESOURCES
        assert err.demand > err.capacity
        return
    caps = capacities(profile)
    demands = m.block_demands()

    # no core exceeds any limit
    per_core = defaultdict(lambda: [0] * len(RESOURCES))
    for b, d in zip(m.blocks, demands):
        for j, v in enumerate(d):
            per_core[b.core][j] += v
    for core, used in per_core.items():
        assert all(u <= c for u, c in zip(used, caps)), (core, used, caps)
    assert sorted(per_core) == list(range(m.cores))

    # every neuron of every entry (layer soma, dendrite segment) placed exactly once, at
    # most one block per entry per core
    for i, cost in enumerate(m.costs):
        pieces = sorted((b.start, b.stop) for b in m.blocks if b.layer == i)
        assert pieces[0][0] == 0 and pieces[-1][1] == net.layers[cost.layer].size
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
        assert all(s < e for s, e in pieces)
        if block_size is not None:
            assert all(e - s <= block_size for s, e in pieces)
        cores = [b.core for b in m.blocks if b.layer == i]
        assert len(cores) == len(set(cores))

    # synapses and totals: independent of the model's per-block arithmetic
    sizes = net.sizes
    report = build_report(m)
    t = report.totals
    assert t["synapses_forward"] == sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert t["synapses_backward"] == sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    assert t["synapses_target"] == sizes[-1]
    assert t["synapses_bias"] == sum(layer.size for layer in net.layers if layer.bias)
    assert t["neurons"] == sum(sizes[1:])
    assert sum(c["neurons"] for c in report.cores) == t["neurons"]
    # every block listed once, on its own core, in the mapping's order (rows built lazily)
    rows = list(report.cores)
    assert [c["core"] for c in rows] == list(range(m.cores)) and report.cores[-1] == rows[-1]
    assert report.cores[1:3] == rows[1:3]
    listed = [(c["core"], name) for c in rows for name in c["blocks"]]
    names = [cost.name for cost in m.costs]
    assert listed == sorted(((b.core, f"{names[b.layer]}[{b.start}:{b.stop}]") for b in m.blocks),
                            key=lambda cb: cb[0])
    for r in RESOURCES:
        assert t["demand"][r] == sum(c[r] for c in report.cores)
        assert t["demand"][r] == sum(l[r] for l in report.layers)
    segments = [c for c in m.costs if c.role != "soma"]
    assert t["demand"]["compartments"] == 2 * t["neurons"] + sum(c.size for c in segments)
    # a split covers every input of its side exactly once, in consecutive chunks
    for i, layer in enumerate(net.layers):
        for role, total in (("forward", sizes[i]),
                            ("backward", sizes[i + 2] if i + 2 < len(sizes) else 0)):
            chunks = [c.chunk for c in segments if c.layer == i and c.role == role]
            if chunks:
                assert chunks[0][0] == 0 and chunks[-1][1] == total
                assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(chunks, chunks[1:]))
    assert t["lower_bound_cores"] <= m.cores

    # chips: full chips in order, never more cores on a chip than it has
    chips = defaultdict(int)
    for c in report.cores:
        chips[c["chip"]] += 1
    assert max(chips.values()) <= profile.cores_per_chip
    assert m.chips == len(chips) == -(-m.cores // profile.cores_per_chip)


@settings(max_examples=60, deadline=None)
@given(net=networks(), cores_per_chip=st.integers(1, 6),
       chips=st.one_of(st.none(), st.integers(1, 40)))
def test_traffic_strategy_never_crosses_chips_more_than_dense(net, cores_per_chip, chips):
    profile = BASE.with_values(cores_per_chip=cores_per_chip, synapse_words_per_core=500,
                               input_axons_per_core=2000)
    try:
        dense = map_network(net, profile, strategy="dense", chips=chips)
    except DoesNotFitError:
        return
    traffic = map_network(net, profile, strategy="traffic", chips=chips)
    assert traffic.blocks == dense.blocks
    assert traffic.placement.interchip_bits <= dense.placement.interchip_bits
    assert traffic.placement.intercore_bits == dense.placement.intercore_bits
    # chips are contiguous runs of cores, numbered in order, none over its size
    chip_of = traffic.placement.chip_of_core
    assert list(chip_of) == sorted(chip_of) and chip_of[0] == 0
    assert set(chip_of) == set(range(traffic.chips))
    assert max(chip_of.count(c) for c in set(chip_of)) <= cores_per_chip
    assert dense.chips <= traffic.chips <= (chips or dense.chips)


@settings(max_examples=40, deadline=None)
@given(inp=st.integers(1, 200_000), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
       wide=st.integers(0, 3), learning=st.booleans())
def test_fan_in_is_never_refused(inp, sizes, wide, learning):
    # any fan-in (inputs up to 200,000, one layer up to 60,000 wide so that the layer below
    # it receives 60,000 errors) is split over dendrite segments, never refused, and the
    # split keeps every synapse exactly once
    sizes = list(sizes)
    if wide < len(sizes):
        sizes[wide] = 60_000 if len(sizes) > 1 else sizes[wide]
    layers = tuple(LayerSpec(f"l{i}", s, 1.0, 1.0) for i, s in enumerate(sizes))
    net = Network(dt=0.1, input=InputSpec(inp), layers=layers,
                  learning=LearningSpec(enabled=learning, eta=0.1))
    m = map_network(net)
    t = build_report(m).totals
    full = [inp] + sizes
    assert t["synapses_forward"] == sum(a * b for a, b in zip(full[:-1], full[1:]))
    assert t["synapses_backward"] == sum(a * b for a, b in zip(full[1:-1], full[2:]))
