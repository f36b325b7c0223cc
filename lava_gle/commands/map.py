"""``lava-gle map NET [--profile P] [--chips N] [--strategy S] [--out DIR] [--calibrate X] [--json]``"""
from __future__ import annotations

import argparse
import json

from lava_gle.commands.options import out_path, positive_int
from lava_gle.commands.simulate import calibrated, load_array
from lava_gle.description import load_network
from lava_gle.mappings.placement import STRATEGIES
from lava_gle.mappings.profiles import DEFAULT_PROFILE, available_profiles
from lava_gle.results import prepare_out_dir


def add_parser(sub) -> None:
    p = sub.add_parser(
        "map", help="map a network onto Loihi 2 cores and chips; print the resource report",
        description="Cut NET's layers into core-sized blocks, pack them onto cores and chips of "
                    "a hardware profile and report the resources per layer and per core, the "
                    "totals and each layer's binding constraint. Only layer sizes are read: no "
                    "weights are drawn. With --out, write the deployment bundle.")
    p.add_argument("net", help="network description (.json, .yaml)")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help=f"shipped profile ({', '.join(available_profiles())}) or a profile file "
                        f"(default {DEFAULT_PROFILE})")
    p.add_argument("--chips", type=positive_int,
                   help="chips available (default: as many as needed, up to the profile's "
                        "max_chips)")
    p.add_argument("--strategy", default="dense", choices=STRATEGIES,
                   help="chip placement: dense (fill chips in layer order) or traffic "
                        "(keep heavily connected cores on one chip)")
    p.add_argument("--block-size", type=positive_int, help="at most this many neurons per block")
    p.add_argument("--weight-bits", type=int,
                   help="stored weight width in bits, sign included (default: the profile's)")
    p.add_argument("--steps-per-sample", type=positive_int, default=1, metavar="N",
                   help="time steps of one sample (an experiment's sequence or held point) "
                        "for the time and energy estimate (default 1)")
    p.add_argument("--out", type=out_path, metavar="BUNDLE_DIR",
                   help="write the deployment bundle here")
    p.add_argument("--calibrate", metavar="INPUTS.npy",
                   help="size the bundle's fixed-point formats from a float run on these "
                        "inputs ([T, in] or [T, batch, in]; for a trained network)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--all", action="store_true", help="list every layer and core (default: 40)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lava_gle.mappings.estimate import estimate, format_estimate, no_estimate_note
    from lava_gle.mappings.mapper import map_network
    from lava_gle.mappings.report import build_report

    net = load_network(args.net)
    if args.out:
        prepare_out_dir(args.out)
    if args.calibrate:
        net = calibrated(net, load_array(args.calibrate, "calibrate"), True)
    mapping = map_network(net, args.profile, chips=args.chips, strategy=args.strategy,
                          block_size=args.block_size, weight_bits=args.weight_bits)
    report = build_report(mapping)
    cost = estimate(mapping, args.steps_per_sample)
    notes: list[str] = []
    bundle = None
    if args.out:
        from lava_gle.mappings.bundle import write_bundle
        bundle, notes = write_bundle(mapping, args.out, report, cost)
    if args.json:
        data = report.to_dict()
        data["estimate"] = cost
        data["bundle"] = None if bundle is None else {"path": str(bundle), "notes": notes}
        print(json.dumps(data, indent=1))
        return 0
    print(report.format_text(max_rows=None if args.all else 40))
    print("\n".join([""] + (format_estimate(cost) if cost is not None
                            else [no_estimate_note(mapping.profile)])))
    if bundle is not None:
        print(f"\nbundle written to {bundle}")
        for note in notes:
            print(f"  note: {note}")
    return 0
