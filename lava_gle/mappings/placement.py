"""Placement: assign the packed cores to chips.

Strategies (:data:`STRATEGIES`):

- ``dense``: fill chip 0 with cores ``0 .. cores_per_chip - 1``, then chip 1, ... in the
  packing order (layer order), so every chip is full except the last.
- ``traffic``: contiguous runs of cores in packing order, one per chip, with the chip
  boundaries moved to where the least traffic crosses them, within the spare room of the
  chips available (``--chips`` or the profile's ``max_chips``; the smallest number of chips
  when neither is set). Extra chips are used only when two cheap cuts beat one expensive one. The traffic over a boundary is summed over every core pair it
  separates (a message crossing two boundaries counts twice, as it uses two chip-to-chip
  links in a row of chips); a dynamic programme over boundary positions finds the optimum.
  If that sends more bits between chips than the dense order, the dense order is kept, so
  ``traffic`` never does worse than ``dense``.

Traffic model: every GLE neuron sends a graded spike every step: its rate (``rate_bits``)
to each core holding the layer above and its error (``error_bits``) to each core of the
GLE layer below. Packing keeps one block per layer per core, and a layer's cores are
consecutive, which the boundary costs below rely on.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from lava_gle.errors import LavaGleError
from lava_gle.mappings.partition import Block
from lava_gle.mappings.resources import DoesNotFitError, LayerCost, links

STRATEGIES = ("dense", "traffic")
#: Largest (chips x spare cores) the ``traffic`` search takes on when given extra chips.
MAX_DP_STEPS = 5_000_000


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


def _by_entry(blocks: list[Block], n_entries: int) -> list[list[Block]]:
    out: list[list[Block]] = [[] for _ in range(n_entries)]
    for b in blocks:
        out[b.layer].append(b)
    return out


def _overlap(b: Block, lo: int, hi: int) -> int:
    return max(0, min(b.stop, hi) - max(b.start, lo))


def _pairs(src: list[Block], dst: list[Block], lo: int, hi: int):
    """``(sender core, receiver core, neurons)`` arrays of a one-to-one link: neuron ``i`` of
    the senders' range ``lo:hi`` goes to the receiver block holding neuron ``i`` (both lists
    sorted by start and covering their entry)."""
    s_start = np.fromiter((b.start for b in src), np.int64, len(src))
    d_start = np.fromiter((b.start for b in dst), np.int64, len(dst))
    cuts = np.union1d(np.union1d(s_start, d_start), [lo, hi])
    cuts = cuts[(cuts >= lo) & (cuts <= hi)]
    left, width = cuts[:-1], np.diff(cuts)
    s_core = np.fromiter((b.core for b in src), np.int64, len(src))
    d_core = np.fromiter((b.core for b in dst), np.int64, len(dst))
    return (s_core[np.searchsorted(s_start, left, "right") - 1],
            d_core[np.searchsorted(d_start, left, "right") - 1], width)


def traffic_between(blocks: list[Block], costs: list[LayerCost],
                    group_of_core: list[int] | tuple[int, ...], messages: bool = False) -> int:
    """Bits per step exchanged between cores whose groups differ (chip or core ids); with
    ``messages``, the number of messages (one per neuron and receiving core) instead.

    Computed per link (:func:`~lava_gle.mappings.resources.links`) from counts, without
    listing the core pairs of a broadcast.
    """
    entries = _by_entry(blocks, len(costs))
    group = np.asarray(group_of_core, dtype=np.int64)
    total = 0
    for link in links(costs):
        src, dst = entries[link.src], entries[link.dst]
        bits = 1 if messages else link.bits
        if not src or not dst:
            continue
        if link.to_all:
            s = np.array([(b.start, b.stop, b.core) for b in src], dtype=np.int64)
            d_group = group[np.fromiter((b.core for b in dst), np.int64, len(dst))]
            ids, counts = np.unique(d_group, return_counts=True)
            s_group = group[s[:, 2]]
            pos = np.clip(np.searchsorted(ids, s_group), 0, len(ids) - 1)
            same = np.where(ids[pos] == s_group, counts[pos], 0)
            n = np.clip(np.minimum(s[:, 1], link.hi) - np.maximum(s[:, 0], link.lo), 0, None)
            total += int(np.sum(n * (len(dst) - same))) * bits
        else:
            s_core, d_core, n = _pairs(src, dst, link.lo, link.hi)
            total += int(np.sum(n[group[s_core] != group[d_core]])) * bits
    return total


def boundary_costs(blocks: list[Block], costs: list[LayerCost], n_cores: int) -> list[int]:
    """``c[b]``: bits per step exchanged between cores ``< b`` and cores ``>= b`` (b = 0..n).

    A broadcast link with senders on cores ``p`` (bits ``u(p)``) and receivers on cores
    ``q`` crosses boundary b for ``p < b <= q`` and ``q < b <= p``:
    ``c[b] += U(p < b) * #(q >= b) + U(p >= b) * #(q < b)`` from prefix sums over the
    cores the link spans; a one-to-one link adds its bits to every boundary between its
    two cores (a difference array).
    """
    entries = _by_entry(blocks, len(costs))
    c = [0] * (n_cores + 1)
    diff = np.zeros(n_cores + 2, dtype=np.int64)
    for link in links(costs):
        src, dst = entries[link.src], entries[link.dst]
        if not src or not dst:
            continue
        if not link.to_all:
            s_core, d_core, n = _pairs(src, dst, link.lo, link.hi)
            np.add.at(diff, np.minimum(s_core, d_core) + 1, n * link.bits)
            np.subtract.at(diff, np.maximum(s_core, d_core) + 1, n * link.bits)
            continue
        first = min(src[0].core, dst[0].core)
        width = max(src[-1].core, dst[-1].core) - first + 1
        up = [0] * width
        n_dst = [0] * width
        for blk in src:
            up[blk.core - first] += _overlap(blk, link.lo, link.hi) * link.bits
        for blk in dst:
            n_dst[blk.core - first] += 1
        up_before = list(accumulate(up, initial=0))
        count_before = list(accumulate(n_dst, initial=0))
        all_up, all_n = up_before[-1], count_before[-1]
        for i in range(1, width):
            c[first + i] += (up_before[i] * (all_n - count_before[i])
                             + (all_up - up_before[i]) * count_before[i])
    for b, v in enumerate(np.cumsum(diff[:n_cores + 1]).tolist()):
        c[b] += v
    return c


def cheapest_boundaries(c: list[int], n_cores: int, chips: int, cores_per_chip: int) -> list[int]:
    """Chip of every core: at most ``chips`` contiguous runs of at most ``cores_per_chip``
    cores whose inner boundaries ``b`` minimise ``sum c[b]``; chips are numbered in order.

    Dynamic programme over boundary positions: after ``k`` runs the boundary lies in
    ``[n - (chips - k) * cores_per_chip, k * cores_per_chip]``; each position takes the
    cheapest predecessor within ``cores_per_chip`` (sliding-window minimum) or stays put (an
    unused chip, preferred on ties), so the cost is ``O(chips * spare room)``.
    """
    prev_lo, prev = 0, [0]                # least cost of each boundary position after k-1 runs
    back: list[tuple[int, list[int]]] = []
    for k in range(1, chips + 1):
        lo = max(0, n_cores - (chips - k) * cores_per_chip)
        hi = min(k * cores_per_chip, n_cores)
        prev_hi = prev_lo + len(prev) - 1
        row, arg = [], []
        window: deque[int] = deque()      # predecessor positions, costs increasing
        nxt = prev_lo
        for i in range(lo, hi + 1):
            while nxt <= min(prev_hi, i - 1):
                while window and prev[window[-1] - prev_lo] >= prev[nxt - prev_lo]:
                    window.pop()
                window.append(nxt)
                nxt += 1
            while window and window[0] < i - cores_per_chip:
                window.popleft()
            best, j = float("inf"), -1
            if window:
                best, j = prev[window[0] - prev_lo] + c[i], window[0]
            if prev_lo <= i <= prev_hi and prev[i - prev_lo] <= best:
                best, j = prev[i - prev_lo], i
            row.append(best)
            arg.append(j)
        back.append((lo, arg))
        prev_lo, prev = lo, row
    runs = []
    end = n_cores
    for k in range(chips, 0, -1):
        lo, arg = back[k - 1]
        start = arg[end - lo]
        if start < end:
            runs.append((start, end))
        end = start
    chip_of = [0] * n_cores
    for chip, (start, end) in enumerate(reversed(runs)):
        chip_of[start:end] = [chip] * (end - start)
    return chip_of


def check_chips(n_cores: int, cores_per_chip: int, chips: int | None,
                at_least: bool = False) -> None:
    """Raise :class:`DoesNotFitError` when ``n_cores`` need more than ``chips`` chips.

    ``at_least``: ``n_cores`` is a lower bound counted before packing (the message says so).
    """
    needed = -(-n_cores // cores_per_chip)
    if chips is None or needed <= chips:
        return
    bound = "at least " if at_least else ""
    raise DoesNotFitError(None, "cores", n_cores, chips * cores_per_chip,
                          f"use more chips ({bound}--chips {needed}), lower the weight width "
                          "(--weight-bits) or shrink the network",
                          detail=f" ({bound}{needed:,} chips of {cores_per_chip} cores, "
                                 f"{chips:,} available)")


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
    check_chips(n_cores, cores_per_chip, chips)
    dense = [c // cores_per_chip for c in range(n_cores)]
    chip_of, note = dense, ""
    if strategy == "traffic" and (chips or needed) > 1:
        budget = chips or needed
        if budget > needed and budget * (budget * cores_per_chip - n_cores) > MAX_DP_STEPS:
            budget = needed
            note = (f"traffic: {chips} chips give too much room to search; used the "
                    f"smallest number, {needed}")
        moved = cheapest_boundaries(boundary_costs(blocks, costs, n_cores), n_cores, budget,
                                    cores_per_chip)
        if traffic_between(blocks, costs, moved) <= traffic_between(blocks, costs, dense):
            chip_of = moved
        else:
            note = "traffic: moved boundaries crossed chips more than the dense order; kept it"
    return Placement(strategy, tuple(chip_of), max(chip_of) + 1,
                     traffic_between(blocks, costs, chip_of),
                     traffic_between(blocks, costs, list(range(n_cores))), note)
