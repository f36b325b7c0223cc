"""Time and energy of a mapped network on the chip, per time step and per sample.

Every GLE neuron sends a graded spike every step (its rate up, its error down), so every
synapse is read every step: the work of a step follows from the mapping alone, without
running the network. Per step the estimator counts

- synaptic operations: every synapse a core holds (forward, backward, target, bias, and the
  fan-in split's partial-sum and feedback synapses);
- learning-engine updates (learning on): every plastic synapse (``W_l``, biases, the
  transpose copy, and the synapses of plastic dendrite segments);
- neuron updates: every compartment;
- messages: every output axon (a neuron's spike to one core), the messages that leave
  their core (mesh hops) and those that cross chips;

for a training step, and for an inference step what an inference uses (learning off, no
targets, so every error is zero: the forward, bias and forward partial-sum synapses, the
rates and forward partial sums; no errors, no learning payloads, no fed-back values), and
prices them with the profile's per-event figures (``events:`` of
``lava_gle/profiles/loihi2.yaml``; Loihi 1 figures stand in where Loihi 2's are not
public, and each figure is a low-high range where sources differ). The cores run in
parallel and meet at a barrier: a step takes the busiest core's time plus the barrier. Static
power is charged for every chip over the step's time. A sample is ``steps_per_sample``
steps (an experiment's sequence or held point); the first output of a sample appears after
``latency_steps`` steps (one per layer, one more per layer whose forward inputs are split:
every synaptic hop costs a step). Validation against published measurements is in
``docs/mapping.md``.
"""
from __future__ import annotations

import numpy as np

from lava_gle.counts import is_count
from lava_gle.errors import LavaGleError
from lava_gle.mappings.mapper import Mapping
from lava_gle.mappings.placement import entry_blocks, traffic_between
from lava_gle.mappings.profiles import EVENTS, HardwareProfile
from lava_gle.mappings.resources import BACKWARD, FORWARD, SOMA, neighbour_cores

#: Energy components, in the order of the report.
COMPONENTS = ("synaptic_ops", "learning_updates", "neuron_updates", "messages", "hops",
              "chip_crossings", "static")


def event_counts(mapping: Mapping) -> dict[str, dict | None]:
    """Events per step, ``{"training": counts or None (learning off), "inference": counts}``.

    Each ``counts`` holds the totals (``synaptic_ops``, ``learning_updates``,
    ``neuron_updates``, ``messages``, ``messages_off_core``, ``messages_between_chips``)
    and ``per_core``: the per-core arrays (synaptic ops, learning updates, compartments,
    messages) the step time needs. Training counts every synapse and output axon
    (:meth:`~lava_gle.mappings.resources.LayerCost.synapse_ops`, ``.sends``), inference
    only their inference part.
    """
    learn = mapping.net.learning.enabled
    costs, blocks = mapping.costs, mapping.blocks
    n_cores = mapping.cores
    entry = np.fromiter((b.layer for b in blocks), np.int64, len(blocks))
    size = np.fromiter((b.stop - b.start for b in blocks), np.int64, len(blocks))
    core = np.fromiter((b.core for b in blocks), np.int64, len(blocks))
    k = mapping.layer_cores
    # blocks of one entry and size cost the same: price each pair once
    pairs, which = np.unique(np.stack([entry, size]), axis=1, return_inverse=True)
    per_pair = []
    for e, n in pairs.T.tolist():
        cost = costs[e]
        fwd, back, _, bias = cost.synapses(n)
        plastic = 0
        if cost.role == SOMA:
            plastic = ((fwd + bias if cost.learning else 0)
                       + (back if cost.plastic_backward else 0))
        elif cost.feedback and cost.role in (FORWARD, BACKWARD):
            plastic = fwd + back
        nb = neighbour_cores(cost, k)
        per_pair.append((*cost.synapse_ops(n), plastic, cost.demand(n, *nb)[0],
                         *cost.sends(n, *nb)))
    values = np.array(per_pair, dtype=float)[np.asarray(which).ravel()]
    syn_inf, syn_tr, upd, comp, msg_inf, msg_tr = (
        np.bincount(core, weights=values[:, j], minlength=n_cores) for j in range(6))
    chip_of = mapping.placement.chip_of_core
    entries = entry_blocks(blocks, len(costs))
    cores = list(range(n_cores))

    def counts(syn, upd, msg, inference: bool) -> dict:
        return {"synaptic_ops": int(syn.sum()), "learning_updates": int(upd.sum()),
                "neuron_updates": int(comp.sum()), "messages": int(msg.sum()),
                "messages_off_core": traffic_between(entries, costs, cores, True, inference),
                "messages_between_chips": traffic_between(entries, costs, chip_of, True,
                                                          inference),
                "per_core": (syn, upd, comp, msg)}

    return {"training": counts(syn_inf + syn_tr, upd, msg_inf + msg_tr, False)
            if learn else None,
            "inference": counts(syn_inf, np.zeros_like(upd), msg_inf, True)}


def _figure(profile, name: str) -> tuple[float, float]:
    fig = profile.events.get(name)
    if fig is None:
        raise LavaGleError(f"profile {profile.name!r} has no events.{name} figure; give one in "
                           "the profile (see docs/mapping.md) to estimate time and energy")
    return fig.low, fig.high


def price(counts: dict, profile: HardwareProfile, chips: int, steps: int = 1) -> dict:
    """Time (us) and energy (uJ) of ``counts`` (events per step, as one mode of
    :func:`event_counts` gives them) on ``chips`` chips, priced with the profile's
    ``events`` figures, as ``[low, high]``: ``per_step`` (time, barrier, energy and energy
    by component of :data:`COMPONENTS`), ``per_sample`` (``steps`` steps) and
    ``counts_per_step`` (the totals). A step takes the busiest core's time plus the
    barrier; static power is charged for every chip over the step's time.
    """
    syn, upd, comp, msg = (np.asarray(a, dtype=float) for a in counts["per_core"])
    step_time = []
    energy: dict[str, list[float]] = {k: [] for k in COMPONENTS}
    for side in (0, 1):
        f = {name: _figure(profile, name)[side] for name in EVENTS}
        busy_ns = (syn * f["synaptic_op_time"] + upd * f["learning_update_time"]
                   + comp * f["neuron_update_time"] + msg * f["message_time"])
        t_us = float(busy_ns.max()) * 1e-3 + f["barrier_time"]
        step_time.append(t_us)
        pj = {"synaptic_ops": counts["synaptic_ops"] * f["synaptic_op_energy"],
              "learning_updates": counts["learning_updates"] * f["learning_update_energy"],
              "neuron_updates": counts["neuron_updates"] * f["neuron_update_energy"],
              "messages": counts["messages"] * f["message_energy"],
              "hops": counts["messages_off_core"] * f["hops_per_message"] * f["hop_energy"],
              "chip_crossings": counts["messages_between_chips"] * f["chip_crossing_energy"],
              "static": f["static_power"] * chips * t_us * 1e6}
        for k in COMPONENTS:
            energy[k].append(pj[k] * 1e-6)              # pJ -> uJ
    total = [sum(energy[k][i] for k in COMPONENTS) for i in (0, 1)]
    return {"per_step": {"time_us": step_time, "barrier_us": list(_figure(profile,
                                                                          "barrier_time")),
                         "energy_uj": total, "energy_uj_by_component": energy},
            "per_sample": {"time_us": [t * steps for t in step_time],
                           "energy_uj": [e * steps for e in total],
                           "energy_uj_by_component": {k: [v * steps for v in energy[k]]
                                                      for k in COMPONENTS}},
            "counts_per_step": {k: v for k, v in counts.items() if k != "per_core"}}


def missing_figures(profile: HardwareProfile) -> list[str]:
    """The per-event figures (:data:`~lava_gle.mappings.profiles.EVENTS`) ``profile`` lacks:
    without them there is no time and energy estimate (``loihi1`` has none)."""
    return [name for name in EVENTS if name not in profile.events]


def no_estimate_note(profile: HardwareProfile) -> str:
    """Why a mapping onto ``profile`` has no time and energy estimate."""
    missing = missing_figures(profile)
    return (f"no time and energy estimate: profile {profile.name!r} has no figure for "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} (events:, see "
            "docs/mapping.md)")


def estimate(mapping: Mapping, steps_per_sample: int = 1) -> dict | None:
    """Time (us) and energy (uJ) per step and per sample, as ``[low, high]`` ranges; None
    when the profile lacks per-event figures (:func:`missing_figures`).

    Returns a JSON-ready dict: ``steps_per_sample``, ``latency_steps``, ``training`` (when
    the network learns) and ``inference`` (learning off, no targets), each with
    ``per_step``, ``per_sample`` and ``counts_per_step`` (:func:`price`), and ``figures``
    (every per-event figure with its source, confidence and whether a Loihi 1 figure stands
    in).
    """
    if not is_count(steps_per_sample):
        raise LavaGleError(f"--steps-per-sample must be a positive integer, got "
                           f"{steps_per_sample!r}")
    if missing_figures(mapping.profile):
        return None
    counts = event_counts(mapping)
    split_forward = {mapping.costs[c.up[0]].layer for c in mapping.costs if c.role == FORWARD}
    return {"steps_per_sample": steps_per_sample,
            "latency_steps": len(mapping.net.layers) + len(split_forward),
            **{mode: None if c is None else price(c, mapping.profile, mapping.chips,
                                                  steps_per_sample)
               for mode, c in counts.items()},
            "figures": {k: f.to_dict() for k, f in mapping.profile.events.items()}}


def _range(v: list[float], unit: str) -> str:
    lo, hi = v
    return f"{lo:.3g} {unit}" if abs(hi - lo) <= 1e-9 * max(abs(hi), 1.0) \
        else f"{lo:.3g}-{hi:.3g} {unit}"


def format_estimate(est: dict) -> list[str]:
    """The text lines of ``lava-gle map``'s estimate section."""
    stand_in = sorted(k for k, f in est["figures"].items() if f["stand_in"] == "loihi1")
    lines = ["estimate (low-high; Loihi 1 figures stand in for Loihi 2's: "
             f"{', '.join(stand_in) or 'none'}; sources in --json):",
             f"  a sample is {est['steps_per_sample']:,} step(s) (--steps-per-sample); its "
             f"first output appears after {est['latency_steps']:,} steps"]
    for mode in ("training", "inference"):
        e = est[mode]
        if e is None:
            continue
        step, sample = e["per_step"], e["per_sample"]
        parts = ", ".join(f"{k.replace('_', ' ')} {_range(v, 'uJ')}"
                          for k, v in step["energy_uj_by_component"].items() if max(v) > 0)
        lines += [f"  {mode}: per step {_range(step['time_us'], 'us')} (barrier "
                  f"{_range(step['barrier_us'], 'us')}), {_range(step['energy_uj'], 'uJ')}",
                  f"    per step by part: {parts}",
                  f"    per sample {_range(sample['time_us'], 'us')}, "
                  f"{_range(sample['energy_uj'], 'uJ')}"]
    return lines
