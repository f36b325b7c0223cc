"""``lava-gle microcode NET [--json]``: each projection's learning rule as Lava microcode."""
from __future__ import annotations

import argparse
import json

from lava_gle.description import load_network


def add_parser(sub) -> None:
    p = sub.add_parser(
        "microcode", help="print each projection's Loihi learning-rule strings and product series",
        description="Quantise NET (docs/fixed-point.md) and print, per layer, the Lava "
                    "Loihi3FLearningRule strings of the forward, bias and backward weight "
                    "updates, what each trace carries, and the product series Lava compiles "
                    "them to.")
    p.add_argument("net", help="network description (.json, .yaml)")
    p.add_argument("--json", action="store_true", help="print the rules as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lava_gle.microcode import learning_rules
    from lava_gle.quantize import quantize_network
    net = load_network(args.net)
    rules = learning_rules(quantize_network(net))
    if args.json:
        print(json.dumps(rules, indent=1))
        return 0
    print(f"{net.describe()}: learning {'on' if net.learning.enabled else 'off'}")
    for layer, entry in rules.items():
        for kind, rule in entry.items():
            if rule is None:
                continue
            print(f"\n[{layer}] {kind}: dw = {rule['dw']}")
            print(f"  LearningDense(num_message_bits={rule['num_message_bits']}, "
                  f"graded_spike_cfg={rule['graded_spike_cfg']}), t_epoch={rule['t_epoch']}, "
                  f"x1_tau={rule['x1_tau']}, gain {rule['gain']:.4g} LSB per x1*e_q")
            for trace, meaning in rule["signals"].items():
                print(f"  {trace}: {meaning}")
            print("  " + rule["product_series"].replace("\n", "\n  "))
    if all(r is None for e in rules.values() for r in e.values()):
        print("no plastic projection (learning.enabled is false or eta is 0)")
    return 0
