"""``lava-gle deploy BUNDLE_DIR|NET --inputs X.npy [--targets Y.npy] [--out TRACES.npz]``"""
from __future__ import annotations

import argparse

from lava_gle.commands.options import out_path, positive_int
from lava_gle.commands.simulate import load_array
from lava_gle.mappings.placement import STRATEGIES
from lava_gle.mappings.profiles import DEFAULT_PROFILE
from lava_gle.results import prepare_out_file


def add_parser(sub) -> None:
    p = sub.add_parser(
        "deploy", help="run a bundle (or a network, mapped first) on Loihi 2 hardware",
        description="Run a deployment bundle on Loihi 2 with Lava's Loihi2HwCfg. Needs Intel's "
                    "lava-loihi extension and a Loihi 2 system; without them it stops before "
                    "touching Lava's hardware path, says what is missing and where the bundle is.")
    p.add_argument("source", metavar="BUNDLE_DIR|NET",
                   help="a bundle directory from 'lava-gle map --out', or a network description")
    p.add_argument("--inputs", required=True, help=".npy of shape [T, in]")
    p.add_argument("--targets", help=".npy of shape [T, out]")
    p.add_argument("--bundle", metavar="DIR",
                   help="where to write the bundle of a network (default NAME.bundle)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="hardware profile for a network")
    p.add_argument("--strategy", default="dense", choices=STRATEGIES)
    p.add_argument("--chips", type=positive_int, help="chips available")
    p.add_argument("--out", type=out_path, help="write the traces to this .npz")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lava_gle.mappings.deploy import deploy
    from lava_gle.traces import save_traces

    x = load_array(args.inputs, "inputs")
    y = load_array(args.targets, "targets")
    out = prepare_out_file(args.out, ".npz") if args.out else None
    traces = deploy(args.source, x, y, bundle_dir=args.bundle, profile=args.profile,
                    strategy=args.strategy, chips=args.chips)
    if out is not None:
        print(f"traces written to {save_traces(out, traces)}")
    return 0
