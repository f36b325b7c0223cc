"""The mapper's front door: a layered GLE network -> blocks on cores on chips.

The passes run in order, each a function of its own module:

1. parse: :func:`lava_gle.description.load_network` and
   :func:`lava_gle.mappings.profiles.load_profile`;
2. resources: :func:`lava_gle.mappings.resources.layer_costs` (the cost of a block of each layer);
3. partition: :func:`lava_gle.mappings.partition.partition` (blocks packed onto cores; raises
   when a layer cannot fit);
4. place: :func:`lava_gle.mappings.placement.place` (cores onto chips, by strategy);
5. report / emit: :mod:`lava_gle.mappings.report`, :mod:`lava_gle.mappings.bundle`.

Only layer sizes are read: no weight array is allocated, so a description of billions of
synapses is counted, not stored.

Example
-------
>>> from lava_gle.description import network_from_dict
>>> net = network_from_dict({"gle_network": 1, "dt": 0.1, "input": {"size": 784},
...     "layers": [{"size": 100, "tau_m": 1, "tau_r": 1}, {"size": 10, "tau_m": 1, "tau_r": 1}]})
>>> m = map_network(net)
>>> m.cores, m.chips
(2, 1)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lava_gle.errors import LavaGleError
from lava_gle.counts import is_count
from lava_gle.description import check_network
from lava_gle.mappings.partition import Block, cores_per_layer, fewest_blocks, partition
from lava_gle.mappings.placement import Placement, check_chips, place
from lava_gle.mappings.profiles import HardwareProfile, load_profile
from lava_gle.mappings.resources import (
    LayerCost, capacities, layer_costs, neighbour_cores, per_layer,
)
from lava_gle.memory import require_memory
from lava_gle.network import Network

#: Above this many blocks (about a second of packing) a network that needs more chips than
#: are available is refused from a lower bound on its cores, before packing.
EXACT_COUNT_BLOCKS = 100_000


@dataclass(frozen=True)
class Mapping:
    """A network mapped onto a hardware profile.

    Attributes
    ----------
    net : Network
    profile : HardwareProfile
    costs : list of LayerCost
        One per layer, plus one per dendrite segment of a split layer (before its soma).
    blocks : list of Block
        In packing order; every neuron of every entry is in exactly one block.
    placement : Placement
        Chip of every core.
    block_size : int or None
        The user's cap on neurons per block.
    """

    net: Network
    profile: HardwareProfile
    costs: list[LayerCost]
    blocks: list[Block]
    placement: Placement
    block_size: int | None

    @property
    def cores(self) -> int:
        return len(self.placement.chip_of_core)

    @property
    def chips(self) -> int:
        return self.placement.chips

    @property
    def layer_cores(self) -> list[int]:
        """Cores holding each entry of ``costs`` (``k`` of the resource model)."""
        return cores_per_layer(self.blocks, len(self.costs))

    def block_demands(self) -> list[tuple[int, ...]]:
        """Demand of every block (ordered like ``blocks``) with the real neighbour core counts."""
        k = self.layer_cores
        fan = [neighbour_cores(c, k) for c in self.costs]
        seen: dict[tuple[int, int], tuple[int, ...]] = {}   # blocks of one size cost the same
        out = []
        for b in self.blocks:
            key = (b.layer, b.stop - b.start)
            if key not in seen:
                seen[key] = self.costs[b.layer].demand(key[1], *fan[b.layer])
            out.append(seen[key])
        return out


def map_network(net: Network, profile: str | Path | HardwareProfile = "loihi2",
                chips: int | None = None, strategy: str = "dense",
                block_size: int | None = None, weight_bits: int | None = None) -> Mapping:
    """Map ``net`` onto cores and chips of ``profile``.

    Parameters
    ----------
    net : Network
    profile : str, Path or HardwareProfile
        A shipped profile name, a profile file, or a loaded profile.
    chips : int, optional
        Chips available; ``None`` uses the profile's ``max_chips`` (as many as needed when
        that is null).
    strategy : str
        ``dense`` or ``traffic`` (see :mod:`lava_gle.mappings.placement`).
    block_size : int, optional
        At most this many neurons per block.
    weight_bits : int, optional
        Stored weight width for every layer (sign included), overriding the fixed-point
        settings and the profile.

    Raises
    ------
    DoesNotFitError
        A layer or the whole network does not fit (names the layer, resource, overshoot
        and a fix); more cores than the chips hold is found before packing.
    MemoryLimitError
        The mapping's per-block tables would not fit in the available memory (checked
        from per-layer counts before packing).
    """
    check_network(net)
    if not isinstance(profile, HardwareProfile):
        profile = load_profile(profile)
    if chips is not None and not is_count(chips):
        raise LavaGleError(f"--chips must be a whole number of chips, at least 1; got {chips!r}")
    costs = layer_costs(net, profile, weight_bits)
    caps = capacities(profile)
    available = chips if chips is not None else profile.max_chips
    # refuse too large a network from per-layer counts, before any per-core list exists
    # (a smaller one is packed first, so that the error names the exact chips needed)
    fewest = fewest_blocks(costs, caps, block_size)
    if sum(fewest) > EXACT_COUNT_BLOCKS:
        check_chips(sum(fewest) - (len(fewest) - 1), profile.cores_per_chip, available,
                    at_least=True)
    require_memory(net, "map", blocks=per_layer(costs, fewest))
    blocks = partition(costs, caps, block_size)
    placement = place(blocks, costs, profile.cores_per_chip, strategy, available)
    return Mapping(net, profile, costs, blocks, placement, block_size)
