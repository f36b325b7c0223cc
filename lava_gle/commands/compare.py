"""``lava-gle compare NET --inputs X.npy [--targets Y.npy] [--backends A,B] --out DIR``"""
from __future__ import annotations

import argparse

from lava_gle.commands.options import nonnegative_float, out_path, positive_int
from lava_gle.commands.simulate import (add_allow_nan_option, add_calibrate_option, calibrated,
                                       load_array)
from lava_gle.analysis.comparison import DEFAULT_TOLERANCE, compare_runs, run_backend
from lava_gle.backends import BACKENDS, check_runnable
from lava_gle.description import load_network
from lava_gle.errors import LavaGleError
from lava_gle.analysis.report import write_report
from lava_gle.results import prepare_out_dir

DEFAULT_BACKENDS = "numpy,numpy-fixed"


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two backends (default: float vs fixed point)",
                       description="Run NET through two backends on the same streams and write "
                                   "DIR/metrics.json, PNG figures and DIR/report.html.")
    p.add_argument("net", help="network description (.json, .yaml)")
    p.add_argument("--inputs", required=True, help=".npy [T, in] or [T, batch, in]")
    p.add_argument("--targets", help=".npy targets (see lava-gle simulate)")
    p.add_argument("--backends", default=DEFAULT_BACKENDS,
                   help=f"reference,candidate (default {DEFAULT_BACKENDS})")
    p.add_argument("--tolerance", type=nonnegative_float, default=DEFAULT_TOLERANCE,
                   help="normalised RMS error above which a variable gets a verdict")
    p.add_argument("--chunks", type=positive_int, default=20, help="weight snapshots along the run")
    p.add_argument("--out", type=out_path, required=True, help="output directory")
    add_calibrate_option(p)
    add_allow_nan_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(run=run)


def parse_pair(text: str) -> tuple[str, str]:
    """The two backend names of ``--backends A,B``, each a known backend."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) != 2:
        raise LavaGleError(f"--backends needs two names separated by a comma, got {text!r}")
    for name in parts:
        if name not in BACKENDS:
            raise LavaGleError(f"--backends: unknown backend {name!r}; choose two of "
                               f"{list(BACKENDS)}")
    return parts[0], parts[1]


def run(args: argparse.Namespace) -> int:
    net = load_network(args.net)
    x = load_array(args.inputs, "inputs")
    y = load_array(args.targets, "targets")
    out = prepare_out_dir(args.out)
    net = calibrated(net, x, args.calibrate)
    a, b = parse_pair(args.backends)
    for name in (a, b):  # before either runs
        check_runnable(net, name)
    ref = run_backend(net, x, y, a, args.chunks, progress=not args.quiet,
                      allow_nan=args.allow_nan)
    cand = run_backend(net, x, y, b, args.chunks, progress=not args.quiet,
                       allow_nan=args.allow_nan)
    metrics = compare_runs(net, ref, cand, y, args.tolerance)
    files = write_report(out, net, ref, cand, metrics)
    if not args.quiet:
        worst = max(((n, v, m["rms_error"]) for n, d in metrics["layers"].items()
                     for v, m in d.items()), key=lambda item: item[2])
        print(f"{b} vs {a} on {net.describe()}: worst RMS error {worst[2]:.3g} "
              f"({worst[1]}.{worst[0]}), {len(metrics['verdicts'])} verdict(s)")
        for v in metrics["verdicts"]:
            print(f"  {v['layer']}.{v['variable']}: {v['rms_error']:.3g} - {v['cause']}")
        for name, p in metrics["projections"].items():
            for backend, d in p.get("transpose_drift_lsb", {}).items():
                print(f"  {name}: {backend}'s backward array drifted from W^T by "
                      f"{d['max']:.3g} LSB at most, {d['rms']:.3g} LSB RMS over the run")
        print(f"wrote {files['metrics']} and {files['report']}")
        if not files["plots_available"]:
            print("no figures: matplotlib is missing; install it with "
                  "`pip install lava-gle[plot]`")
    return 0
