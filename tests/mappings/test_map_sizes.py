"""Huge networks are refused by the mapper from per-layer counts, before any per-core list.

A network of 10^12 neurons needs about 5 * 10^8 Loihi 2 cores; listing them (blocks,
placement, report) would take terabytes. The command-line case runs under a small
address-space limit (RLIMIT_AS) so that such an allocation would fail loudly instead of
giving the one-line refusal.
"""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest
import yaml

from lava_gle import memory
from lava_gle.errors import MemoryLimitError
from lava_gle.mappings import mapper
from lava_gle.mappings.mapper import map_network
from lava_gle.mappings.partition import fewest_blocks
from lava_gle.mappings.profiles import load_profile
from lava_gle.mappings.resources import DoesNotFitError, capacities, layer_costs
from lava_gle.network import InputSpec, LayerSpec, LearningSpec, Network

TRILLION = 10 ** 12


def chain(inp: int, sizes: list[int], learning: bool = False) -> Network:
    layers = tuple(LayerSpec(f"l{i}", s, 1.0, 1.0) for i, s in enumerate(sizes))
    return Network(dt=0.1, input=InputSpec(inp), layers=layers, name="net",
                   learning=LearningSpec(enabled=learning, eta=0.1 if learning else 0.0))


@pytest.mark.parametrize("inp, sizes, learning, block_size", [
    (784, [100, 10], False, None),
    (5, [40, 120, 30], False, 50),
    (3000, [3000, 3000, 10], True, None),
    (10, [8000, 30, 7], True, None),
    (2, [1, 1, 1, 1, 1], False, None),
])
def test_fewest_blocks_bounds_the_packing(inp, sizes, learning, block_size):
    net = chain(inp, sizes, learning)
    profile = load_profile()
    m = map_network(net, profile, block_size=block_size)
    fewest = fewest_blocks(layer_costs(net, profile), capacities(profile), block_size)
    packed = [sum(1 for b in m.blocks if b.layer == i) for i in range(len(sizes))]
    assert all(f <= p for f, p in zip(fewest, packed))
    assert sum(fewest) - (len(sizes) - 1) <= m.cores


def _no_packing(*args, **kwargs):
    raise AssertionError("packed a network that was to be refused from its counts")


def test_trillion_neurons_need_more_chips_than_a_board_before_packing(monkeypatch):
    monkeypatch.setattr(mapper, "partition", _no_packing)
    with pytest.raises(DoesNotFitError, match=r"cores needs 488,281,250 .*\(at least "
                                              r"3,814,698 chips of 128 cores, 8 available"):
        map_network(chain(10, [TRILLION]), "kapoho_point")


def test_trillion_neurons_without_a_chip_limit_are_refused_for_memory(monkeypatch):
    monkeypatch.setattr(mapper, "partition", _no_packing)
    monkeypatch.setattr(memory, "available_memory", lambda: (8 * 2 ** 30, "a test limit"))
    with pytest.raises(MemoryLimitError, match=r"layer 'l0' needs .* the mapping entries of "
                                               r"488,281,250 blocks") as info:
        map_network(chain(10, [TRILLION]), "loihi2")
    assert info.value.needed > 488_281_250 * 1024


def test_map_of_a_trillion_neurons_is_refused_under_an_address_limit(tmp_path):
    d = {"gle_network": 1, "dt": 0.1, "name": "huge", "input": {"size": 10},
         "layers": [{"name": "big", "size": TRILLION, "tau_m": 1.0, "tau_r": 1.0}]}
    (tmp_path / "net.yaml").write_text(yaml.safe_dump(d))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2 ** 30, 2 * 2 ** 30))

    out = subprocess.run([sys.executable, "-m", "lava_gle.cli", "map", "net.yaml"],
                         cwd=tmp_path, capture_output=True, text=True, preexec_fn=limit,
                         timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: the mapping of network 'huge' would need about ")
    assert "layer 'big' needs" in out.stderr and "488,281,250 blocks" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
