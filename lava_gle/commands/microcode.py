"""``lava-gle microcode NET [--json]``: each projection's learning rule as Lava microcode,
and each layer's neuron step (and neuron-local normalisers) as a program in the
instruction set of :mod:`lava_gle.numerics.neuron_program`."""
from __future__ import annotations

import argparse
import json

from lava_gle.description import load_network


def add_parser(sub) -> None:
    p = sub.add_parser(
        "microcode", help="print each projection's Loihi learning-rule strings and product "
                          "series, and each layer's neuron program",
        description="Quantise NET (docs/fixed-point.md) and print, per layer, the Lava "
                    "Loihi3FLearningRule strings of the forward, bias and backward weight "
                    "updates, what each trace carries, the product series Lava compiles "
                    "them to, and the neuron step (and a layer's neuron-local normalisers, "
                    "learning epoch and error trace) as integer programs (instructions per "
                    "neuron and step, and the operations no public source shows on "
                    "Loihi 2).")
    p.add_argument("net", help="network description (.json, .yaml)")
    p.add_argument("--json", action="store_true", help="print the rules as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lava_gle.microcode import learning_rules
    from lava_gle.numerics.neuron_program import (epoch_program, neuron_program,
                                                  normaliser_program, trace_program,
                                                  unsupported_ops)
    from lava_gle.quantize import quantize_network
    net = load_network(args.net)
    q = quantize_network(net)
    rules = learning_rules(q)
    programs = {ql.name: neuron_program(ql.consts) for ql in q.layers}
    normalisers = {ql.name: normaliser_program(ql.norm, ql.rate_signed, net.learning.enabled)
                   for ql in q.layers}
    normalisers = {name: prog for name, prog in normalisers.items() if prog is not None}
    epochs = ({ql.name: epoch_program(q.epoch_shift) for ql in q.layers}
              if q.epoch_shift and net.learns else {})
    traces = {ql.name: trace_program(ql.trace_shift, ql.trace_mant, ql.rule.exact)
              for ql in q.layers if ql.rule is not None}
    if args.json:
        def listed(progs):
            return {name: {"instructions": [str(i) for i in prog.instrs],
                           "unsupported_ops": unsupported_ops(prog)}
                    for name, prog in progs.items()}
        print(json.dumps({**rules, "neuron_programs": listed(programs),
                          "normaliser_programs": listed(normalisers),
                          "epoch_programs": listed(epochs),
                          "trace_programs": listed(traces)}, indent=1))
        return 0
    print(f"{net.describe()}: learning {'on' if net.learning.enabled else 'off'}")
    for layer, entry in rules.items():
        if net.learns and not net.plastic(net.index(layer)):
            print(f"\n[{layer}] frozen (eta_scale 0): no learning rule")
        for kind, rule in entry.items():
            if rule is None:
                continue
            print(f"\n[{layer}] {kind}: dw = {rule['dw']}")
            if "dt" in rule:
                print(f"  dt = {rule['dt']}  (tag: the low {rule['tag_bits']} bits of w)")
            print(f"  LearningDense(num_message_bits={rule['num_message_bits']}, "
                  f"graded_spike_cfg={rule['graded_spike_cfg']}), t_epoch={rule['t_epoch']}, "
                  f"x1_tau={rule['x1_tau']}, gain {rule['gain']:.4g} LSB per x1*e_q")
            for trace, meaning in rule["signals"].items():
                print(f"  {trace}: {meaning}")
            if "epoch" in rule:
                print(f"  {rule['epoch']}")
            print("  " + rule["product_series"].replace("\n", "\n  "))
    if all(r is None for e in rules.values() for r in e.values()):
        print("no plastic projection (learning.enabled is false or eta is 0)")
    for kind, progs in (("neuron step", programs), ("normalisers", normalisers),
                        ("learning epoch", epochs), ("error trace", traces)):
        for name, prog in progs.items():
            missing = unsupported_ops(prog)
            print(f"\n[{name}] {kind}: {len(prog)} instructions per neuron and step"
                  + (f"; no public Loihi 2 counterpart: {', '.join(missing)}" if missing
                     else ""))
            print("  " + str(prog).replace("\n", "\n  "))
    return 0
