"""The resource report of a mapping: per layer, per core, totals; as text or as a dict (JSON).

Utilisation is demand / capacity in percent. A layer's *binding constraint* is what stops a
core-filling block of it from taking one more neuron (a resource, ``layer size`` when the
whole layer fits on one core, or ``block size`` when the user capped blocks). The *lower
bound* on cores is ``max over resources of ceil(total demand / per-core capacity)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lava_gle.mappings.mapper import Mapping
from lava_gle.mappings.partition import binding_resource, max_fit
from lava_gle.mappings.resources import RESOURCES, SOMA, capacities, neighbour_cores
from lava_gle.numerics.neuron_program import (epoch_shape, normaliser_shape, program_shape,
                                              trace_shape, unsupported_ops)

#: Short column titles of the resources in the text tables.
SHORT = {"compartments": "comp", "neuron_groups": "groups", "input_axons": "ax_in",
         "output_axons": "ax_out", "synapse_words": "syn_words", "learning_traces": "traces"}


@dataclass(frozen=True)
class MappingReport:
    """Everything the report shows, as plain data (:meth:`to_dict` is the ``--json`` output)."""

    network: dict
    profile: dict
    strategy: str
    totals: dict
    layers: list[dict]
    cores: CoreRows

    def to_dict(self) -> dict:
        return {"network": self.network, "profile": self.profile, "strategy": self.strategy,
                "totals": self.totals, "layers": self.layers, "cores": list(self.cores)}

    def format_text(self, max_rows: int | None = 40) -> str:
        """Human-readable tables; at most ``max_rows`` layer and core rows (None: all)."""
        t = self.totals
        lines = [f"{self.network['name']}: {self.network['neurons']:,} neurons, "
                 f"{t['synapses']:,} synapses ({t['synapses_forward']:,} forward, "
                 f"{t['synapses_backward']:,} backward, {t['synapses_target']:,} target, "
                 f"{t['synapses_bias']:,} bias)",
                 f"profile {self.profile['name']}, strategy {self.strategy}", "",
                 "layers:"]
        head = ["layer", "neurons", "comp", "cores", "ax_in", "ax_out", "syn_words", "util%",
                "binding"]
        rows = [[r["name"], r["neurons"], r["compartments"], r["cores"], r["input_axons"],
                 r["output_axons"], r["synapse_words"], f"{r['utilisation_pct']:.1f}",
                 r["binding"]] for r in self.layers[:max_rows]]
        lines += _table(head, rows, len(self.layers), "layers")
        lines += ["", "cores:"]
        head = ["core", "chip", "blocks", "neurons"] + [SHORT[r] for r in RESOURCES] + \
               ["util%", "fullest"]
        rows = [[c["core"], c["chip"], " ".join(c["blocks"]), c["neurons"]]
                + [c[r] for r in RESOURCES]
                + [f"{c['utilisation_pct']:.1f}", c["fullest"]] for c in self.cores[:max_rows]]
        lines += _table(head, rows, len(self.cores), "cores")
        lines += ["", "totals:",
                  f"  cores {t['cores']:,} on {t['chips']:,} chip(s) of {t['cores_per_chip']} "
                  f"cores; lower bound {t['lower_bound_cores']:,} cores "
                  f"({t['cores_over_lower_bound']:.3f}x)"]
        for r in RESOURCES:
            lines.append(f"  {r:16s} {t['demand'][r]:>14,} of {t['capacity'][r]:>14,} "
                         f"({t['utilisation_pct'][r]:5.1f}%)")
        lines.append(f"  traffic: {t['intercore_bits_per_step']:,} bits/step between cores, "
                     f"{t['interchip_bits_per_step']:,} between chips")
        prog = t["neuron_program"]
        per = ", ".join(f"{n} {k}" for n, k in prog["instructions_per_neuron"].items())
        lines.append(f"  neuron program: {prog['instructions_per_step']:,} instructions/step "
                     f"(per neuron and step: {per})")
        needing: dict[tuple[str, ...], list[str]] = {}  # the same operations: one note
        for n, ops in prog["without_public_counterpart"].items():
            needing.setdefault(tuple(ops), []).append(n)
        for ops, names in needing.items():
            who = (f"layer {names[0]}'s neuron program needs" if len(names) == 1 else
                   f"the neuron programs of layers {', '.join(names)} need")
            lines.append(f"  note: {who} {', '.join(ops)}, which no public source shows on "
                         "Loihi 2 (docs/fixed-point.md, section 8)")
        if prog.get("normaliser_instructions_per_neuron"):
            lines.append("  note: of these, the neuron-local normalisers take " + ", ".join(
                f"{n} {k}" for n, k in prog["normaliser_instructions_per_neuron"].items())
                + " per neuron and step (gain products; while learning, 46-bit mean squares "
                "and inverse square roots: docs/fixed-point.md, \"Neuron-local normalisers "
                "in integers\")")
        if prog.get("epoch_instructions_per_neuron"):
            lines.append("  note: of these, the learning epochs take " + ", ".join(
                f"{n} {k}" for n, k in prog["epoch_instructions_per_neuron"].items())
                + " per neuron and step (the summed learning error and payload: "
                "docs/model.md, \"Learning epochs\")")
        if prog.get("trace_instructions_per_neuron"):
            lines.append("  note: of these, forming the learning error trace takes " + ", ".join(
                f"{n} {k}" for n, k in prog["trace_instructions_per_neuron"].items())
                + " per neuron and step (at most: with a mantissa and an exact rule's "
                "doubling; docs/fixed-point.md, section 3)")
        tagged = [r["name"] for r in self.layers if r["tag_bits"] or r["backward_tag_bits"]]
        if tagged:
            lines.append(f"  note: {', '.join(tagged)} store a synaptic tag beside each weight "
                         "of their plastic arrays (weight_tag_bits; counted in syn_words, "
                         "docs/mapping.md)")
        if t["placement_note"]:
            lines.append(f"  note: {t['placement_note']}")
        return "\n".join(lines)


def _table(head: list[str], shown: list[list], total: int, what: str) -> list[str]:
    """Aligned rows ``shown`` (the first of ``total``) under ``head``."""
    cells = [head] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in shown]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    out = ["  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                            for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    if total > len(shown):
        out.append(f"  ... {total - len(shown):,} more {what} (--all or --json lists them)")
    return out


class CoreRows(Sequence):
    """The report's per-core rows, built when read (a mapping may hold a million cores and
    the text shows 40): row ``c`` is ``{"core", "chip", "blocks" (``"layer[start:stop]"``),
    "neurons", <each resource's demand>, "utilisation_pct", "fullest"}``."""

    def __init__(self, chip_of: Sequence[int], neurons: np.ndarray, demand: np.ndarray,
                 ratios: np.ndarray, blocks: Sequence, block_core: np.ndarray,
                 names: list[str]) -> None:
        self._chip_of, self._neurons, self._demand = chip_of, neurons, demand
        self._ratios, self._blocks, self._names = ratios, blocks, names
        self._order = np.argsort(block_core, kind="stable")  # blocks grouped by core
        self._first = np.searchsorted(block_core[self._order], np.arange(len(demand) + 1))

    def __len__(self) -> int:
        return len(self._demand)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        c = range(len(self))[index]
        ratio = self._ratios[c]
        j = int(np.argmax(ratio))
        blocks = [self._blocks[int(b)] for b in self._order[self._first[c]:self._first[c + 1]]]
        return {"core": c, "chip": int(self._chip_of[c]),
                "blocks": [f"{self._names[b.layer]}[{b.start}:{b.stop}]" for b in blocks],
                "neurons": int(self._neurons[c]),
                **dict(zip(RESOURCES, self._demand[c].tolist())),
                "utilisation_pct": 100.0 * float(ratio[j]), "fullest": RESOURCES[j]}


def build_report(mapping: Mapping) -> MappingReport:
    """Compute the report of ``mapping`` (per layer, per core, totals)."""
    net, profile, costs = mapping.net, mapping.profile, mapping.costs
    caps = capacities(profile)
    demands = mapping.block_demands()
    k = mapping.layer_cores
    chip_of = mapping.placement.chip_of_core
    n_cores = mapping.cores

    n_res = len(RESOURCES)
    blocks = mapping.blocks
    d_arr = np.array(demands, dtype=np.int64).reshape(len(blocks), n_res)
    entry = np.fromiter((b.layer for b in blocks), np.int64, len(blocks))
    core = np.fromiter((b.core for b in blocks), np.int64, len(blocks))
    size = np.fromiter((b.stop - b.start for b in blocks), np.int64, len(blocks))
    core_demand = np.zeros((n_cores, n_res), dtype=np.int64)
    np.add.at(core_demand, core, d_arr)
    layer_demand = np.zeros((len(costs), n_res), dtype=np.int64)
    np.add.at(layer_demand, entry, d_arr)
    is_soma = np.array([c.role == SOMA for c in costs])
    core_neurons = np.bincount(core, weights=size * is_soma[entry], minlength=n_cores)
    entry_neurons = np.bincount(entry, weights=size, minlength=len(costs)).astype(np.int64)
    # per-entry synapses are linear in the neurons held
    layer_syn = [list(c.synapses(int(n))) for c, n in zip(costs, entry_neurons)]
    layer_relay = [c.relay_synapses(int(n)) for c, n in zip(costs, entry_neurons)]
    layer_demand = layer_demand.tolist()

    layers = []
    for cost in costs:
        i = cost.index
        k_up, k_down = neighbour_cores(cost, k)
        limit = min(mapping.block_size or cost.size, cost.size)
        n_max = max_fit(cost, caps, k_up, k_down, limit)
        ld = layer_demand[i]
        util = max(ld[j] / (k[i] * caps[j]) for j in range(len(RESOURCES)))
        layers.append({
            "name": cost.name, "role": cost.role, "neurons": cost.size, "cores": k[i],
            **{r: ld[j] for j, r in enumerate(RESOURCES)},
            "synapses_forward": layer_syn[i][0], "synapses_backward": layer_syn[i][1],
            "synapses_target": layer_syn[i][2], "synapses_bias": layer_syn[i][3],
            "synapses_relay": layer_relay[i], "inputs": list(cost.chunk),
            "weight_bits": cost.weight_bits_forward, "rate_bits": cost.widths.rate_bits,
            "tag_bits": cost.tag_bits_forward, "backward_tag_bits": cost.tag_bits_backward,
            "error_bits": cost.widths.error_bits,
            "max_block": n_max,
            "binding": binding_resource(cost, caps, k_up, k_down, n_max, mapping.block_size),
            "utilisation_pct": 100.0 * util,
        })

    ratios = core_demand / np.asarray(caps, dtype=float)
    cores = CoreRows(chip_of, core_neurons, core_demand, ratios, blocks, core,
                     [c.name for c in costs])

    total = [sum(ld[j] for ld in layer_demand) for j in range(len(RESOURCES))]
    lower = max(-(-total[j] // caps[j]) for j in range(len(RESOURCES)))
    syn = [sum(s[j] for s in layer_syn) for j in range(4)]
    totals = {
        "cores": n_cores, "chips": mapping.chips, "cores_per_chip": profile.cores_per_chip,
        "neurons": sum(c.size for c in costs if c.role == SOMA),
        "split_layers": sorted({costs[c.up[0]].name for c in costs if c.role != SOMA}),
        "segments": sum(c.role != SOMA for c in costs),
        "synapses_relay": sum(layer_relay),
        "synapses": sum(syn), "synapses_forward": syn[0], "synapses_backward": syn[1],
        "synapses_target": syn[2], "synapses_bias": syn[3],
        "demand": {r: total[j] for j, r in enumerate(RESOURCES)},
        "capacity": {r: n_cores * caps[j] for j, r in enumerate(RESOURCES)},
        "utilisation_pct": {r: 100.0 * total[j] / (n_cores * caps[j])
                            for j, r in enumerate(RESOURCES)},
        "lower_bound_cores": lower,
        "cores_over_lower_bound": n_cores / lower,
        "interchip_bits_per_step": mapping.placement.interchip_bits,
        "intercore_bits_per_step": mapping.placement.intercore_bits,
        "placement_note": mapping.placement.note,
    }
    lrn = net.learning
    # hidden layers: the segments of the finest 8-bit payload (an upper bound); the
    # output layer: those of its 24-bit payload
    top = net.layers[-1].name
    last = len(net.layers) - 1
    # a layer's epoch sums its error for the projection into it and averages its payload
    # for the one out of it: it runs where either learns
    epochs = [net.plastic(i) or (i < last and net.plastic(i + 1))
              for i in range(len(net.layers))]
    programs = {l.name: [program_shape(l.phi, lrn.prospective_errors, lrn.gamma != 0,
                                       rate_bits=22 if l.name == top else 8,
                                       wide=l.name == top,
                                       product_bits=profile.product_bits,
                                       bounded_error=l.error_bound is not None),
                         normaliser_shape(l.gain_decay is not None,
                                          l.error_norm_decay is not None, lrn.enabled),
                         epoch_shape(lrn.epoch_steps) if learns else None,
                         trace_shape() if net.plastic(i) else None]
                for i, (l, learns) in enumerate(zip(net.layers, epochs))}
    length = {n: sum(len(p) for p in progs if p is not None) for n, progs in programs.items()}
    missing = {n: sorted({op for p in progs if p is not None for op in unsupported_ops(p)})
               for n, progs in programs.items()}
    totals["neuron_program"] = {
        "instructions_per_neuron": length,
        "normaliser_instructions_per_neuron": {n: len(progs[1]) for n, progs in
                                               programs.items() if progs[1] is not None},
        "epoch_instructions_per_neuron": {n: len(progs[2]) for n, progs in
                                          programs.items() if progs[2] is not None},
        "trace_instructions_per_neuron": {n: len(progs[3]) for n, progs in
                                          programs.items() if progs[3] is not None},
        "instructions_per_step": sum(length[l.name] * l.size for l in net.layers),
        "without_public_counterpart": {n: ops for n, ops in missing.items() if ops}}
    network = {"name": net.name, "input": net.input.size, "layers": len(net.layers),
               "neurons": totals["neurons"], "sizes": net.sizes}
    return MappingReport(network, profile.to_dict(), mapping.placement.strategy, totals,
                         layers, cores)
