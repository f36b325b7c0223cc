"""Intel's PilotNet LIF SNN on one Loihi 2 chip: the measurement, and lava-gle's per-event
prices (lava_gle.mappings.estimate.price) applied to its reconstructed set-up.

Sources (repository lava-nc/lava-dl):

- measurement: tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb, stored cell outputs
  (commit b9e369172b46bb0aa5494ed91613c1a5338aa734, 2023-01-10): the layer table, the
  compiler's per-core distribution (74 cores), 408.91 fps at 16 steps per inference
  (reset_interval), total power 0.679234 W, static 0.232078 W, 1.661103 mJ per inference
  (1.093544 mJ dynamic), one chip ('oheogulch');
- spike rates: tests/lava/lib/dl/netx/gts/pilotnet_lif/{input,conv-0..4,fc-0..2}.npy
  (commit b79bc88856ba3aa1625d41d5f99063160e42e703): lava-dl's ground-truth run of the same
  network.net on one frame for 24 steps; a layer's rate is the fraction of its neurons that
  spike in a step, averaged over the 24 steps. The benchmark ran another frame with a reset
  every 16 steps: the rates are an approximation of its activity.

What is counted (event-driven: only a spike works): a layer's synaptic ops per step are the
rate of the layer below times its synapses (from the shapes); every neuron (one LIF
compartment) is updated every step; a spike is one message per core that holds one of its
targets (from the conv geometry and the compiler's blocks of output columns per core).
`--gts DIR` (a checkout's gts/pilotnet_lif) recounts the synaptic ops exactly from the
spike maps. Run: python benchmarks/pilotnet_validation.py [--gts DIR]
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lava_gle.mappings.estimate import price
from lava_gle.mappings.profiles import load_profile

#: The benchmark notebook's measurement (one chip).
MEASURED = {"cores": 74, "steps_per_inference": 16, "fps": 408.91, "total_power_w": 0.679234,
            "static_power_w": 0.232078, "energy_per_inference_mj": 1.661103,
            "dynamic_energy_per_inference_mj": 1.093544}


@dataclass(frozen=True)
class Layer:
    """One population of PilotNet LIF: its neurons ``W x H x C``, the connection from the
    layer below (3x3 conv with stride/padding ``(w, h)``, or dense when ``kernel`` is 0;
    none for the input), how the compiler cut it (``cores`` blocks of ``block`` output
    columns, or of neurons for a dense layer) and its spike rate (fraction per step)."""

    name: str
    shape: tuple[int, int, int]
    kernel: int
    stride: tuple[int, int]
    pad: tuple[int, int]
    block: int
    cores: int
    rate: float

    @property
    def neurons(self) -> int:
        return math.prod(self.shape)


#: The network (benchmark's layer table) with the compiler's blocks (its per-core table:
#: Conv(16, 66, 3) x 13, Conv(4, 32, 24) x 25, ..., dense 100 on 12 cores) and the rates.
PILOTNET = (
    Layer("input", (200, 66, 3), 0, (1, 1), (0, 0), 16, 13, 0.8871),
    Layer("conv0", (99, 32, 24), 3, (2, 2), (0, 0), 4, 25, 0.0915),
    Layer("conv1", (49, 15, 36), 3, (2, 2), (0, 0), 4, 13, 0.1003),
    Layer("conv2", (24, 7, 48), 3, (2, 2), (0, 0), 8, 3, 0.1201),
    Layer("conv3", (22, 4, 64), 3, (1, 2), (0, 1), 8, 3, 0.1078),
    Layer("conv4", (20, 2, 64), 3, (1, 1), (0, 0), 16, 2, 0.1102),
    Layer("fc0", (1, 1, 100), 0, (1, 1), (0, 0), 9, 12, 0.0942),
    Layer("fc1", (1, 1, 50), 0, (1, 1), (0, 0), 50, 1, 0.0408),
    Layer("fc2", (1, 1, 10), 0, (1, 1), (0, 0), 10, 1, 0.0333),
    Layer("fc3", (1, 1, 1), 0, (1, 1), (0, 0), 1, 1, 0.0),
)


def _taps(n_out: int, n_in: int, k: int, s: int, p: int) -> np.ndarray:
    """Valid kernel taps of each output position along one axis (padding has none)."""
    start = np.arange(n_out) * s - p
    return np.clip(np.minimum(start + k, n_in) - np.maximum(start, 0), 0, None)


def _units(layer: Layer) -> tuple[int, int]:
    """``(units, neurons per unit)``: the compiler cuts a conv layer (and the input) into
    output columns, a dense layer (shape ``1 x 1 x N``) into neurons."""
    w, h, c = layer.shape
    return (c, 1) if (w, h) == (1, 1) else (w, h * c)


def _unit_synapses(layer: Layer, below: Layer) -> np.ndarray:
    """Synapses into each unit (output column, or neuron) of ``layer`` from ``below``."""
    if not layer.kernel:
        return np.full(layer.neurons, below.neurons)
    (wo, ho, co), (wi, hi, ci) = layer.shape, below.shape
    tw = _taps(wo, wi, layer.kernel, layer.stride[0], layer.pad[0])
    th = _taps(ho, hi, layer.kernel, layer.stride[1], layer.pad[1])
    return tw * int(th.sum()) * ci * co


def synapses(layer: Layer, below: Layer) -> int:
    """Synapses of the connection from ``below`` into ``layer``."""
    return int(_unit_synapses(layer, below).sum())


def _targets(layer: Layer, above: Layer | None) -> np.ndarray:
    """Cores a spike of each unit of ``layer`` reaches (the output's: the host)."""
    units = _units(layer)[0]
    if above is None or not above.kernel:
        return np.full(units, 1 if above is None else above.cores)
    k, s, p = above.kernel, above.stride[0], above.pad[0]
    x = np.arange(units)
    lo = np.maximum(-(-(x + p - k + 1) // s), 0)     # first output column reached
    hi = np.minimum((x + p) // s, above.shape[0] - 1)
    return hi // above.block - lo // above.block + 1


def counts(layers: tuple[Layer, ...] = PILOTNET) -> dict:
    """Events per step, in :func:`lava_gle.mappings.estimate.price`'s form, and per layer."""
    syn, comp, msg, per_layer = [], [], [], {}
    for i, layer in enumerate(layers):
        below = layers[i - 1] if i else None
        above = layers[i + 1] if i + 1 < len(layers) else None
        units, size = _units(layer)
        into = _unit_synapses(layer, below) if below else np.zeros(units)
        targets = _targets(layer, above)
        rate_below = below.rate if below else 0.0
        blocks = [slice(a, min(a + layer.block, units)) for a in range(0, units, layer.block)]
        for b in blocks:
            syn.append(rate_below * float(into[b].sum()))
            comp.append((b.stop - b.start) * size)
            msg.append(layer.rate * size * float(targets[b].sum()))
        n = len(blocks)
        per_layer[layer.name] = {"cores": n, "neurons": layer.neurons,
                                 "synapses": int(into.sum()),
                                 "synaptic_ops": sum(syn[-n:]), "messages": sum(msg[-n:])}
    syn_a, comp_a, msg_a = (np.array(a, dtype=float) for a in (syn, comp, msg))
    return {"synaptic_ops": float(syn_a.sum()), "learning_updates": 0,
            "neuron_updates": int(comp_a.sum()), "messages": float(msg_a.sum()),
            "messages_off_core": float(msg_a.sum()), "messages_between_chips": 0,
            "per_core": (syn_a, np.zeros_like(syn_a), comp_a, msg_a), "per_layer": per_layer}


def compare(layers: tuple[Layer, ...] = PILOTNET) -> dict:
    """The estimate (``[low, high]``) next to the measurement, and estimate / measured."""
    c = counts(layers)
    steps = MEASURED["steps_per_inference"]
    est = price({k: v for k, v in c.items() if k != "per_layer"}, load_profile("loihi2"), 1,
                steps)
    t_meas = 1e6 / (MEASURED["fps"] * steps)
    dyn_meas = MEASURED["dynamic_energy_per_inference_mj"] * 1e3 / steps
    t_est = est["per_step"]["time_us"]
    by = est["per_step"]["energy_uj_by_component"]
    dyn_est = [sum(v[i] for k, v in by.items() if k != "static") for i in (0, 1)]
    e_est = [e * 1e-3 for e in est["per_sample"]["energy_uj"]]
    rows = {"time per step (us)": (t_est, t_meas),
            "dynamic energy per step (uJ)": (dyn_est, dyn_meas),
            "dynamic power (W)": ([d / t for d, t in zip(dyn_est, t_est)],
                                  MEASURED["total_power_w"] - MEASURED["static_power_w"]),
            "energy per inference (mJ)": (e_est, MEASURED["energy_per_inference_mj"])}
    return {"counts": c, "estimate": est,
            "rows": {k: {"estimate": sorted(v), "measured": m,
                         "ratio": sorted(x / m for x in v)} for k, (v, m) in rows.items()}}


def exact_synaptic_ops(gts: Path, layers: tuple[Layer, ...] = PILOTNET) -> dict[str, float]:
    """Synaptic ops per step of each conv layer counted from lava-dl's spike maps (active
    inputs in every receptive field times the output channels), mean over the steps."""
    files = {"input": "input", **{f"conv{i}": f"conv-{i}" for i in range(5)}}
    out = {}
    for below, layer in zip(layers, layers[1:]):
        if not layer.kernel:
            continue
        s = np.load(gts / f"{files[below.name]}.npy").sum(axis=2)     # (W, H, T) active
        (wo, ho, co), (k, (sw, sh), (pw, ph)) = layer.shape, (layer.kernel, layer.stride,
                                                                layer.pad)
        s = np.pad(s, ((pw, pw), (ph, ph), (0, 0)))
        total = sum(s[i:i + sw * wo:sw, j:j + sh * ho:sh].sum() for i in range(k)
                    for j in range(k))
        out[layer.name] = float(total) * co / s.shape[-1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gts", type=Path, help="lava-dl's tests/lava/lib/dl/netx/gts/"
                        "pilotnet_lif, to recount the synaptic ops from the spike maps")
    args = parser.parse_args()
    res = compare()
    c = res["counts"]
    exact = exact_synaptic_ops(args.gts) if args.gts else {}
    print("layer   cores  neurons   synapses  rate    syn ops/step  messages/step"
          + ("  exact syn ops" if exact else ""))
    for layer in PILOTNET:
        p = c["per_layer"][layer.name]
        print(f"{layer.name:7} {p['cores']:5} {p['neurons']:8,} {p['synapses']:10,} "
              f"{layer.rate:6.4f} {p['synaptic_ops']:13,.0f} {p['messages']:14,.0f}"
              + (f" {exact[layer.name]:14,.0f}" if layer.name in exact else ""))
    print(f"total   {len(c['per_core'][0]):5} {c['neuron_updates']:8,}            "
          f"       {c['synaptic_ops']:13,.0f} {c['messages']:14,.0f}")
    f = {k: v.low for k, v in load_profile("loihi2").events.items()}
    busy_us = 1e-3 * (c["per_core"][0] * f["synaptic_op_time"]
                      + c["per_core"][2] * f["neuron_update_time"]
                      + c["per_core"][3] * f["message_time"])
    core = int(np.argmax(busy_us))
    layer = next(k for k, n in zip(c["per_layer"], np.cumsum(
        [p["cores"] for p in c["per_layer"].values()])) if core < n)
    print(f"busiest core: {core} ({layer}), {busy_us[core]:.0f} us at the low prices")
    print("\nquantity                          estimate (low-high)      measured   est/measured")
    for name, r in res["rows"].items():
        lo, hi = r["estimate"]
        print(f"{name:32} {lo:10.4g} - {hi:<10.4g} {r['measured']:10.4g}   "
              f"{r['ratio'][0]:.2f} - {r['ratio'][1]:.2f}")


if __name__ == "__main__":
    main()
