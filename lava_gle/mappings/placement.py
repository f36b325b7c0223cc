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


class EntryBlocks:
    """The blocks of one entry (a layer or a segment) as arrays, sorted by start."""

    __slots__ = ("start", "stop", "core")

    def __init__(self, start: np.ndarray, stop: np.ndarray, core: np.ndarray) -> None:
        self.start, self.stop, self.core = start, stop, core

    def __len__(self) -> int:
        return len(self.core)


def entry_blocks(blocks: list[Block], n_entries: int) -> list[EntryBlocks]:
    """Every entry's blocks as arrays (one pass over the blocks, then NumPy); the traffic
    functions below take this, so a caller converts the blocks once."""
    n = len(blocks)
    cols = {f: np.fromiter((getattr(b, f) for b in blocks), np.int64, n)
            for f in ("layer", "start", "stop", "core")}
    order = np.lexsort((cols["start"], cols["layer"]))
    cols = {f: v[order] for f, v in cols.items()}
    bounds = np.searchsorted(cols["layer"], np.arange(n_entries + 1))
    return [EntryBlocks(cols["start"][a:b], cols["stop"][a:b], cols["core"][a:b])
            for a, b in zip(bounds[:-1], bounds[1:])]


def _overlap(e: EntryBlocks, lo: int, hi: int) -> np.ndarray:
    """Neurons of each block of ``e`` inside ``lo:hi``."""
    return np.clip(np.minimum(e.stop, hi) - np.maximum(e.start, lo), 0, None)


def _pairs(src: EntryBlocks, dst: EntryBlocks, lo: int, hi: int):
    """``(sender core, receiver core, neurons)`` arrays of a one-to-one link: neuron ``i`` of
    the senders' range ``lo:hi`` goes to the receiver block holding neuron ``i`` (both
    entries sorted by start and covering their entry)."""
    cuts = np.union1d(np.union1d(src.start, dst.start), [lo, hi])
    cuts = cuts[(cuts >= lo) & (cuts <= hi)]
    left, width = cuts[:-1], np.diff(cuts)
    return (src.core[np.searchsorted(src.start, left, "right") - 1],
            dst.core[np.searchsorted(dst.start, left, "right") - 1], width)


def traffic_between(entries: list[EntryBlocks], costs: list[LayerCost],
                    group_of_core: list[int] | tuple[int, ...], messages: bool = False,
                    inference: bool = False) -> int:
    """Bits per step exchanged between cores whose groups differ (chip or core ids); with
    ``messages``, the number of messages (one per neuron and receiving core) instead; with
    ``inference``, only what an inference sends (no ``training_only`` link).

    Computed per link (:func:`~lava_gle.mappings.resources.links`) from counts, without
    listing the core pairs of a broadcast.
    """
    group = np.asarray(group_of_core, dtype=np.int64)
    total = 0
    for link in links(costs):
        src, dst = entries[link.src], entries[link.dst]
        bits = 1 if messages else link.bits
        if not len(src) or not len(dst) or (inference and link.training_only):
            continue
        if link.to_all:
            ids, counts = np.unique(group[dst.core], return_counts=True)
            s_group = group[src.core]
            pos = np.clip(np.searchsorted(ids, s_group), 0, len(ids) - 1)
            same = np.where(ids[pos] == s_group, counts[pos], 0)
            n = _overlap(src, link.lo, link.hi)
            total += int(np.sum(n * (len(dst) - same))) * bits
        else:
            s_core, d_core, n = _pairs(src, dst, link.lo, link.hi)
            total += int(np.sum(n[group[s_core] != group[d_core]])) * bits
    return total


def boundary_costs(entries: list[EntryBlocks], costs: list[LayerCost],
                   n_cores: int) -> list[int]:
    """``c[b]``: bits per step exchanged between cores ``< b`` and cores ``>= b`` (b = 0..n).

    A broadcast link with senders on cores ``p`` (bits ``u(p)``) and receivers on cores
    ``q`` crosses boundary b for ``p < b <= q`` and ``q < b <= p``:
    ``c[b] += U(p < b) * #(q >= b) + U(p >= b) * #(q < b)`` from prefix sums over the
    cores the link spans; a one-to-one link adds its bits to every boundary between its
    two cores (a difference array).
    """
    c = [0] * (n_cores + 1)
    diff = np.zeros(n_cores + 2, dtype=np.int64)
    for link in links(costs):
        src, dst = entries[link.src], entries[link.dst]
        if not len(src) or not len(dst):
            continue
        if not link.to_all:
            s_core, d_core, n = _pairs(src, dst, link.lo, link.hi)
            np.add.at(diff, np.minimum(s_core, d_core) + 1, n * link.bits)
            np.subtract.at(diff, np.maximum(s_core, d_core) + 1, n * link.bits)
            continue
        first = int(min(src.core[0], dst.core[0]))
        width = int(max(src.core[-1], dst.core[-1])) - first + 1
        up = np.bincount(src.core - first, _overlap(src, link.lo, link.hi) * link.bits,
                         width).astype(np.int64)
        n_dst = np.bincount(dst.core - first, minlength=width)
        up_before = np.concatenate([[0], np.cumsum(up)])
        count_before = np.concatenate([[0], np.cumsum(n_dst)])
        all_up, all_n = up_before[-1], count_before[-1]
        k = np.arange(1, width)
        crossing = (up_before[k] * (all_n - count_before[k])
                    + (all_up - up_before[k]) * count_before[k])
        for b, v in zip(range(first + 1, first + width), crossing.tolist()):
            c[b] += v
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
    entries = entry_blocks(blocks, len(costs))
    n_cores = max(int(e.core.max()) for e in entries if len(e)) + 1
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
        moved = cheapest_boundaries(boundary_costs(entries, costs, n_cores), n_cores, budget,
                                    cores_per_chip)
        if traffic_between(entries, costs, moved) <= traffic_between(entries, costs, dense):
            chip_of = moved
        else:
            note = "traffic: moved boundaries crossed chips more than the dense order; kept it"
    return Placement(strategy, tuple(chip_of), max(chip_of) + 1,
                     traffic_between(entries, costs, chip_of),
                     traffic_between(entries, costs, list(range(n_cores))), note)
