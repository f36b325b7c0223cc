"""Mapper speed and packing quality on layered networks up to 1 M neurons / 100 M synapses.

For each network and strategy it prints the time to map (partition + place) and to build the
report, the cores used, the lower bound (max over resources of ceil(total demand / per-core
capacity)) and their ratio, the chips and the bits per step that cross chips.

    .venv/bin/python benchmarks/mapper.py [--profile loihi2] [--only NAME] [--huge]

Only layer sizes are read: none of these networks allocates a weight array.
"""
from __future__ import annotations

import argparse
import time

from lava_gle.mappings.mapper import map_network
from lava_gle.mappings.report import build_report
from lava_gle.network import InputSpec, LayerSpec, LearningSpec, Network


def layered(name: str, inp: int, sizes: list[int], learning: bool = True) -> Network:
    layers = tuple(LayerSpec(f"l{i}", s, 1.0, 1.0) for i, s in enumerate(sizes))
    return Network(dt=0.1, input=InputSpec(inp), layers=layers, name=name,
                   learning=LearningSpec(enabled=learning, eta=0.01))


#: name -> network; the last one is the largest (1 M neurons, 100 M forward synapses).
NETWORKS = {
    "mnist 784-1000-1000-10": layered("mnist", 784, [1000, 1000, 10]),
    "wide 784-4x5000-10": layered("wide", 784, [5000] * 4 + [10]),
    "bottleneck 784-...-20-...": layered("bottleneck", 784, ([1000] * 3 + [20]) * 2 + [1000] * 3),
    "deep 1000-100x1000": layered("medium", 1000, [1000] * 100),
    "deep 100-10000x100": layered("deep", 100, [100] * 10000),
}
#: With --huge: 10 billion forward synapses, counted, never stored. (160 layers of 7900,
#: the first choice, no longer map: one neuron needs 17,382 output axons, a core 16,000.)
HUGE = {"huge 5000-400x5000": layered("huge", 5000, [5000] * 400)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="loihi2")
    parser.add_argument("--only", help="run only the networks whose name contains this")
    parser.add_argument("--huge", action="store_true",
                        help="also map 400 layers of 5000 (10 billion synapses; ~5 s, dense only)")
    args = parser.parse_args()
    head = (f"{'network':24s} {'strategy':8s} {'neurons':>9s} {'fwd syn':>12s} {'map s':>6s} "
            f"{'report s':>8s} {'cores':>6s} {'bound':>6s} {'ratio':>6s} {'chips':>5s} "
            f"{'interchip bits/step':>20s}")
    print(f"profile {args.profile}\n{head}\n{'-' * len(head)}")
    networks = dict(NETWORKS, **(HUGE if args.huge else {}))
    for title, net in networks.items():
        if args.only and args.only not in title:
            continue
        for strategy in ("dense",) if title in HUGE else ("dense", "traffic"):
            t0 = time.perf_counter()
            mapping = map_network(net, args.profile, strategy=strategy)
            t1 = time.perf_counter()
            report = build_report(mapping)
            t2 = time.perf_counter()
            t = report.totals
            print(f"{title:24s} {strategy:8s} {t['neurons']:>9,} {t['synapses_forward']:>12,} "
                  f"{t1 - t0:>6.2f} {t2 - t1:>8.2f} {t['cores']:>6,} {t['lower_bound_cores']:>6,} "
                  f"{t['cores_over_lower_bound']:>6.3f} {t['chips']:>5,} "
                  f"{t['interchip_bits_per_step']:>20,}")
            if t["placement_note"]:
                print(f"{'':24s} note: {t['placement_note']}")


if __name__ == "__main__":
    main()
