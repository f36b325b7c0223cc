"""The resource report of a mapping: per layer, per core, totals; as text or as a dict (JSON).

Utilisation is demand / capacity in percent. A layer's *binding constraint* is what stops a
core-filling block of it from taking one more neuron (a resource, ``layer size`` when the
whole layer fits on one core, or ``block size`` when the user capped blocks). The *lower
bound* on cores is ``max over resources of ceil(total demand / per-core capacity)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from lava_gle.mappings.mapper import Mapping
from lava_gle.mappings.partition import binding_resource, max_fit
from lava_gle.mappings.resources import RESOURCES, capacities

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
    cores: list[dict]

    def to_dict(self) -> dict:
        return {"network": self.network, "profile": self.profile, "strategy": self.strategy,
                "totals": self.totals, "layers": self.layers, "cores": self.cores}

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
                 r["binding"]] for r in self.layers]
        lines += _table(head, rows, max_rows, "layers")
        lines += ["", "cores:"]
        head = ["core", "chip", "blocks", "neurons"] + [SHORT[r] for r in RESOURCES] + \
               ["util%", "fullest"]
        rows = [[c["core"], c["chip"], " ".join(c["blocks"]), c["neurons"]]
                + [c[r] for r in RESOURCES]
                + [f"{c['utilisation_pct']:.1f}", c["fullest"]] for c in self.cores]
        lines += _table(head, rows, max_rows, "cores")
        lines += ["", "totals:",
                  f"  cores {t['cores']:,} on {t['chips']:,} chip(s) of {t['cores_per_chip']} "
                  f"cores; lower bound {t['lower_bound_cores']:,} cores "
                  f"({t['cores_over_lower_bound']:.3f}x)"]
        for r in RESOURCES:
            lines.append(f"  {r:16s} {t['demand'][r]:>14,} of {t['capacity'][r]:>14,} "
                         f"({t['utilisation_pct'][r]:5.1f}%)")
        lines.append(f"  traffic: {t['intercore_bits_per_step']:,} bits/step between cores, "
                     f"{t['interchip_bits_per_step']:,} between chips")
        if t["placement_note"]:
            lines.append(f"  note: {t['placement_note']}")
        return "\n".join(lines)


def _table(head: list[str], rows: list[list], max_rows: int | None, what: str) -> list[str]:
    shown = rows if max_rows is None else rows[:max_rows]
    cells = [head] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in shown]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    out = ["  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                            for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    if len(rows) > len(shown):
        out.append(f"  ... {len(rows) - len(shown):,} more {what} (--all or --json lists them)")
    return out


def build_report(mapping: Mapping) -> MappingReport:
    """Compute the report of ``mapping`` (per layer, per core, totals)."""
    net, profile, costs = mapping.net, mapping.profile, mapping.costs
    caps = capacities(profile)
    demands = mapping.block_demands()
    k = mapping.layer_cores
    last = len(costs) - 1
    chip_of = mapping.placement.chip_of_core
    n_cores = mapping.cores

    core_demand = [[0] * len(RESOURCES) for _ in range(n_cores)]
    core_blocks: list[list[str]] = [[] for _ in range(n_cores)]
    core_neurons = [0] * n_cores
    layer_demand = [[0] * len(RESOURCES) for _ in costs]
    layer_syn = [[0, 0, 0, 0] for _ in costs]
    for b, d in zip(mapping.blocks, demands):
        cd, ld = core_demand[b.core], layer_demand[b.layer]
        for j, v in enumerate(d):
            cd[j] += v
            ld[j] += v
        core_blocks[b.core].append(f"{costs[b.layer].name}[{b.start}:{b.stop}]")
        core_neurons[b.core] += b.size
        for j, v in enumerate(costs[b.layer].synapses(b.size)):
            layer_syn[b.layer][j] += v

    layers = []
    for cost in costs:
        i = cost.index
        k_up = k[i + 1] if i < last else 1
        k_down = k[i - 1] if i > 0 else 0
        limit = min(mapping.block_size or cost.size, cost.size)
        n_max = max_fit(cost, caps, k_up, k_down, limit)
        ld = layer_demand[i]
        util = max(ld[j] / (k[i] * caps[j]) for j in range(len(RESOURCES)))
        layers.append({
            "name": cost.name, "neurons": cost.size, "cores": k[i],
            **{r: ld[j] for j, r in enumerate(RESOURCES)},
            "synapses_forward": layer_syn[i][0], "synapses_backward": layer_syn[i][1],
            "synapses_target": layer_syn[i][2], "synapses_bias": layer_syn[i][3],
            "weight_bits": cost.widths.weight_bits, "rate_bits": cost.widths.rate_bits,
            "error_bits": cost.widths.error_bits,
            "max_block": n_max,
            "binding": binding_resource(cost, caps, k_up, k_down, n_max, mapping.block_size),
            "utilisation_pct": 100.0 * util,
        })

    cores = []
    for c in range(n_cores):
        cd = core_demand[c]
        ratios = [cd[j] / caps[j] for j in range(len(RESOURCES))]
        j_max = max(range(len(RESOURCES)), key=ratios.__getitem__)
        cores.append({"core": c, "chip": chip_of[c], "blocks": core_blocks[c],
                      "neurons": core_neurons[c], **{r: cd[j] for j, r in enumerate(RESOURCES)},
                      "utilisation_pct": 100.0 * ratios[j_max], "fullest": RESOURCES[j_max]})

    total = [sum(ld[j] for ld in layer_demand) for j in range(len(RESOURCES))]
    lower = max(-(-total[j] // caps[j]) for j in range(len(RESOURCES)))
    syn = [sum(s[j] for s in layer_syn) for j in range(4)]
    totals = {
        "cores": n_cores, "chips": mapping.chips, "cores_per_chip": profile.cores_per_chip,
        "neurons": sum(c.size for c in costs),
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
    network = {"name": net.name, "input": net.input.size, "layers": len(costs),
               "neurons": totals["neurons"], "sizes": net.sizes}
    return MappingReport(network, profile.to_dict(), mapping.placement.strategy, totals,
                         layers, cores)
