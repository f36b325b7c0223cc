"""Placement: assign the packed cores to chips.

Strategies (:data:`STRATEGIES`):

- ``dense``: fill chip 0 with cores ``0 .. cores_per_chip - 1``, then chip 1, ... in the
  packing order (layer order), so every chip is full except the last.
- ``traffic``: greedy growth over the core traffic graph (a networkx ``Graph`` whose edge
  weights are the graded-payload bits per step between two cores): each chip starts from
  the lowest unassigned core and repeatedly takes the unassigned core that exchanges the
  most traffic with the cores already on it, until the chip is full. The same number of
  chips is used as ``dense``; if the greedy result sends more bits between chips than the
  dense order, the dense order is kept, so ``traffic`` never does worse than ``dense``.

Traffic model: every GLE neuron sends a graded spike every step: its rate (``rate_bits``)
to each core holding the layer above and its error (``error_bits``) to each core of the
GLE layer below.
"""
from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

import networkx as nx

from lava_gle.errors import LavaGleError
from lava_gle.mappings.partition import Block
from lava_gle.mappings.resources import DoesNotFitError, LayerCost

STRATEGIES = ("dense", "traffic")
#: Core pairs above which the ``traffic`` strategy refuses to build its graph.
MAX_TRAFFIC_PAIRS = 2_000_000


@dataclass(frozen=True)
class Placement:
    """Chip of every core (``chip_of_core[c]``), the chip count and traffic figures.

    ``interchip_bits`` and ``intercore_bits``: graded-payload bits per step that cross a chip
    boundary / a core boundary. ``note`` says when a strategy kept the dense order.
    """

    strategy: str
    chip_of_core: tuple[int, ...]
    chips: int
    interchip_bits: int
    intercore_bits: int
    note: str = ""


def _by_layer(blocks: list[Block], n_layers: int) -> list[list[Block]]:
    out: list[list[Block]] = [[] for _ in range(n_layers)]
    for b in blocks:
        out[b.layer].append(b)
    return out


def traffic_between(blocks: list[Block], costs: list[LayerCost],
                    group_of_core: list[int] | tuple[int, ...]) -> int:
    """Bits per step exchanged between cores whose groups differ (chip or core ids).

    Computed per pair of adjacent layers from counts, without listing core pairs.
    """
    layers = _by_layer(blocks, len(costs))
    total = 0
    for lo in range(len(costs) - 1):
        below, above = layers[lo], layers[lo + 1]
        count_below = Counter(group_of_core[b.core] for b in below)
        count_above = Counter(group_of_core[b.core] for b in above)
        for b in below:
            total += costs[lo].traffic_up(b.size) * (len(above) - count_above[group_of_core[b.core]])
        for b in above:
            total += costs[lo + 1].traffic_down(b.size) * (
                len(below) - count_below[group_of_core[b.core]])
    return total


def core_pairs(blocks: list[Block], n_layers: int) -> int:
    """How many (core, core) pairs of adjacent layers exchange traffic."""
    layers = _by_layer(blocks, n_layers)
    return sum(len(layers[i]) * len(layers[i + 1]) for i in range(n_layers - 1))


def traffic_graph(blocks: list[Block], costs: list[LayerCost], n_cores: int) -> nx.Graph:
    """Undirected core graph; edge weight = bits per step exchanged by the two cores."""
    layers = _by_layer(blocks, len(costs))
    weights: Counter = Counter()
    for lo in range(len(costs) - 1):
        for b in layers[lo]:
            up = costs[lo].traffic_up(b.size)
            for c in layers[lo + 1]:
                if b.core != c.core:
                    key = (b.core, c.core) if b.core < c.core else (c.core, b.core)
                    weights[key] += up + costs[lo + 1].traffic_down(c.size)
    g = nx.Graph()
    g.add_nodes_from(range(n_cores))
    g.add_weighted_edges_from((a, b, w) for (a, b), w in weights.items())
    return g


def greedy_chips(g: nx.Graph, cores_per_chip: int) -> list[int]:
    """Greedy growth of chips over the traffic graph (see module docstring)."""
    n = g.number_of_nodes()
    chip_of = [-1] * n
    lowest, chip, assigned = 0, 0, 0
    while assigned < n:
        gain: Counter = Counter()
        heap: list[tuple[int, int]] = []
        members = 0
        while members < cores_per_chip and assigned < n:
            core = -1
            while heap:
                neg, cand = heapq.heappop(heap)
                if chip_of[cand] == -1 and -neg == gain[cand]:
                    core = cand
                    break
            if core == -1:
                while chip_of[lowest] != -1:
                    lowest += 1
                core = lowest
            chip_of[core] = chip
            members += 1
            assigned += 1
            for nbr, data in g[core].items():
                if chip_of[nbr] == -1:
                    gain[nbr] += data["weight"]
                    heapq.heappush(heap, (-gain[nbr], nbr))
        chip += 1
    return chip_of


def place(blocks: list[Block], costs: list[LayerCost], cores_per_chip: int,
          strategy: str = "dense", chips: int | None = None) -> Placement:
    """Assign the cores of ``blocks`` to chips.

    Parameters
    ----------
    chips : int, optional
        Chips available (``--chips`` or the profile's ``max_chips``); ``None`` uses as many
        as needed.

    Raises
    ------
    DoesNotFitError
        More cores are needed than ``chips * cores_per_chip``.
    """
    if strategy not in STRATEGIES:
        raise LavaGleError(f"unknown placement strategy {strategy!r}; choose one of "
                           f"{list(STRATEGIES)}")
    n_cores = max(b.core for b in blocks) + 1
    needed = -(-n_cores // cores_per_chip)
    if chips is not None and needed > chips:
        raise DoesNotFitError(None, "cores", n_cores, chips * cores_per_chip,
                              f"use more chips (--chips {needed}), lower the weight width "
                              "(--weight-bits) or shrink the network",
                              detail=f" ({needed} chips of {cores_per_chip} cores, {chips} available)")
    dense = [c // cores_per_chip for c in range(n_cores)]
    chip_of, note = dense, ""
    if strategy == "traffic" and needed > 1:
        pairs = core_pairs(blocks, len(costs))
        if pairs > MAX_TRAFFIC_PAIRS:
            note = (f"traffic: the core graph has {pairs:,} pairs (more than "
                    f"{MAX_TRAFFIC_PAIRS:,}); kept the dense order")
        else:
            greedy = greedy_chips(traffic_graph(blocks, costs, n_cores), cores_per_chip)
            if traffic_between(blocks, costs, greedy) < traffic_between(blocks, costs, dense):
                chip_of = greedy
            else:
                note = "traffic: greedy growth crossed chips more than the dense order; kept it"
    return Placement(strategy, tuple(chip_of), needed,
                     traffic_between(blocks, costs, chip_of),
                     traffic_between(blocks, costs, list(range(n_cores))), note)
