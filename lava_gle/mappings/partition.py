"""Partition: cut every layer into blocks that fit a core and pack the blocks onto cores.

The packer streams the layers in order (input side first) through a sequence of cores. A
core takes as many neurons of the current layer as fit into what is left of every resource;
when nothing more fits, the next core opens. So layers share cores where they are small,
large layers are cut where cores fill up, and neighbouring layers end up on neighbouring
cores (which the chip placement then keeps together).

Output axons depend on how many cores the neighbouring layers occupy (``k_up``, ``k_down``),
which is only known after packing. :func:`partition` therefore packs with estimates, and
repacks with the counts it found until the estimates cover them; every block's final
demand (with the real counts) is then at most what was reserved for it.
"""
from __future__ import annotations

from typing import NamedTuple

from lava_gle.counts import is_count
from lava_gle.errors import LavaGleError
from lava_gle.mappings.resources import (
    RESOURCES, SUGGESTIONS, DoesNotFitError, LayerCost, neighbour_cores,
)

#: Repacking rounds before giving up on output-axon estimates.
MAX_ROUNDS = 60


class Block(NamedTuple):
    """Neurons ``start:stop`` of entry ``layer`` (index into the mapping's ``costs``: a
    layer, or a dendrite segment of a split layer) on core ``core``. A named tuple: a
    million blocks are made in a second."""

    layer: int
    start: int
    stop: int
    core: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def check_block_size(block_size: int | None) -> None:
    """Refuse a block size (``--block-size``) that is not a whole number of neurons >= 1."""
    if block_size is not None and not is_count(block_size):
        raise LavaGleError(f"block size must be a whole number of neurons, at least 1; got "
                           f"{block_size!r}")


def max_fit(cost: LayerCost, room: tuple[int, ...], k_up: int, k_down: int, limit: int) -> int:
    """The largest ``n <= limit`` whose block demand fits ``room`` in every resource (0 if none).

    The demand grows monotonically with ``n``, so a bisection finds it.
    """
    def fits(n: int) -> bool:
        return all(d <= r for d, r in zip(cost.demand(n, k_up, k_down), room))

    if limit < 1 or not fits(1):
        return 0
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def binding_resource(cost: LayerCost, caps: tuple[int, ...], k_up: int, k_down: int,
                     n: int, block_size: int | None) -> str:
    """What stops a core-filling block of ``n`` neurons from taking one more neuron.

    One of :data:`RESOURCES`, ``layer size`` (the whole layer fits) or ``block size``
    (the user's ``--block-size``).
    """
    if n >= cost.size:
        return "layer size"
    if block_size is not None and n >= block_size:
        return "block size"
    over = cost.demand(n + 1, k_up, k_down)
    ratios = [(d / c, r) for d, c, r in zip(over, caps, RESOURCES) if d > c]
    return max(ratios)[1] if ratios else "layer size"


def check_single_neuron(cost: LayerCost, caps: tuple[int, ...], k_up: int, k_down: int) -> None:
    """Raise :class:`DoesNotFitError` when not even one neuron of the layer fits a core."""
    demand = cost.demand(1, k_up, k_down)
    worst = None
    for d, c, r in zip(demand, caps, RESOURCES):
        if d > c and (worst is None or d / c > worst[0] / worst[1]):
            worst = (d, c, r)
    if worst is not None:
        d, c, r = worst
        raise DoesNotFitError(cost.name, r, d, c, SUGGESTIONS[r],
                              detail=" for a single neuron on an empty core")


#: A run of ``count`` blocks of entry ``layer``, ``size`` neurons each from neuron ``start``,
#: on the consecutive cores from ``core`` on (what a layer that fills cores packs into).
Run = tuple  # (layer, start, size, core, count)


def _pack(costs: list[LayerCost], caps: tuple[int, ...], k_est: list[int],
          block_size: int | None) -> list[Run]:
    """One packing pass with neighbour core counts ``k_est`` (see module docstring), as
    runs of equal blocks (a million-neuron layer is a few runs, not thousands of blocks)."""
    runs: list[Run] = []
    core = 0
    used = [0] * len(caps)
    empty_fit: dict[int, int] = {}
    for cost in costs:
        i = cost.index
        k_up, k_down = neighbour_cores(cost, k_est)
        limit = block_size if block_size is not None else cost.size
        start = 0
        while start < cost.size:
            want = min(limit, cost.size - start)
            if any(used):
                room = tuple(c - u for c, u in zip(caps, used))
                n = max_fit(cost, room, k_up, k_down, want)
                if n == 0:
                    core, used = core + 1, [0] * len(caps)
                    continue
            else:
                if i not in empty_fit:
                    check_single_neuron(cost, caps, k_up, k_down)
                    empty_fit[i] = max_fit(cost, caps, k_up, k_down, min(limit, cost.size))
                n = min(empty_fit[i], want)
                # cores this layer fills completely and leaves: no other block joins them
                full = (cost.size - start) // n - 1
                if full > 0:
                    runs.append((i, start, n, core, full))
                    start, core = start + full * n, core + full
            runs.append((i, start, n, core, 1))
            used = [u + d for u, d in zip(used, cost.demand(n, k_up, k_down))]
            start += n
            if start < cost.size:
                core, used = core + 1, [0] * len(caps)
    return runs


def _blocks(runs: list[Run]) -> list[Block]:
    """The blocks of packing runs, in packing order."""
    blocks: list[Block] = []
    for i, start, n, core, count in runs:
        blocks.extend(Block(i, start + j * n, start + (j + 1) * n, core + j)
                      for j in range(count))
    return blocks


def fewest_blocks(costs: list[LayerCost], caps: tuple[int, ...],
                  block_size: int | None = None) -> list[int]:
    """A lower bound on the blocks of every layer, from per-layer counts alone (no packing).

    A block never holds more neurons than fit an empty core with one core above and below
    (the packer's first estimates; more cores only add output axons), nor more than
    ``block_size``. Blocks share a core only across a layer boundary, so the cores number
    at least ``sum(blocks) - (layers - 1)``. Raises :class:`DoesNotFitError` as
    :func:`partition` does when not even one neuron of a layer fits a core.
    """
    check_block_size(block_size)
    out = []
    for cost in costs:
        k_down = 1 if cost.index > 0 else 0
        check_single_neuron(cost, caps, 1, k_down)
        limit = min(block_size or cost.size, cost.size)
        out.append(-(-cost.size // max_fit(cost, caps, 1, k_down, limit)))
    return out


def cores_per_layer(blocks: list[Block], n_layers: int) -> list[int]:
    """How many cores hold a block of each entry (``k`` of the resource model)."""
    seen: list[set[int]] = [set() for _ in range(n_layers)]
    for b in blocks:
        seen[b.layer].add(b.core)
    return [len(s) for s in seen]


def partition(costs: list[LayerCost], caps: tuple[int, ...],
              block_size: int | None = None) -> list[Block]:
    """Cut the layers into blocks and pack them onto cores ``0, 1, ...`` (see module doc).

    Parameters
    ----------
    costs : list of LayerCost
        The layers' cost models (:func:`~lava_gle.mappings.resources.layer_costs`).
    caps : tuple of int
        Per-core capacity of each resource (:func:`~lava_gle.mappings.resources.capacities`).
    block_size : int, optional
        At most this many neurons per block.

    Raises
    ------
    DoesNotFitError
        A single neuron of some layer exceeds a core, or the output-axon estimates do not
        settle (the neighbouring layers are too wide for any block size).
    """
    check_block_size(block_size)
    k_est = [1] * len(costs)
    for _ in range(MAX_ROUNDS):
        runs = _pack(costs, caps, k_est, block_size)
        k = [0] * len(costs)  # a layer's blocks sit on distinct cores: cores = blocks
        for i, *_, count in runs:
            k[i] += count
        grown = [i for i, (a, e) in enumerate(zip(k, k_est)) if a > e]
        if not grown:
            return _blocks(runs)
        k_est = [max(a, e) for a, e in zip(k, k_est)]
    raise _unsettled(costs, caps, k_est, grown[0])


def _unsettled(costs: list[LayerCost], caps: tuple[int, ...], k_est: list[int],
               i: int) -> DoesNotFitError:
    """The error for output-axon counts that keep growing around layer ``i``: what a block
    of the size the other resources allow would need in output axons."""
    out = RESOURCES.index("output_axons")
    no_axon_limit = tuple(c if j != out else 2 ** 62 for j, c in enumerate(caps))
    cost = costs[i]
    k_up, k_down = neighbour_cores(cost, k_est)
    n = max(1, max_fit(cost, no_axon_limit, k_up, k_down, cost.size))
    return DoesNotFitError(cost.name, "output_axons", cost.demand(n, k_up, k_down)[out],
                           caps[out], SUGGESTIONS["output_axons"],
                           detail=f" for a block of {n} neurons that reach {k_up + k_down} "
                                  "cores each; cutting the layers finer only adds cores to "
                                  "reach")
