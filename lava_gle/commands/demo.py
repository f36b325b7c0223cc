"""``lava-gle demo``: the paper's LagLine student learns its teacher in Lava, in float and
in Loihi 2 fixed point, and the two runs are compared in a report.

A teacher chain input -> 1 softplus neuron -> 1 softplus neuron (weights 1 and 2, tau_m 1
and 2, tau_r 0.1) turns a smoothed random step input into the target. A student of the
same shape, starting from random weights, learns from the output error alone with GLE's
local rule, run as Lava Processes (``lava-float``, then ``lava-fixed``, which computes
the integers Loihi 2 would). ``lava-gle compare`` then writes ``DIR/compare/report.html``.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from lava_gle.backends import simulate
from lava_gle.commands.options import natural_int, out_path, positive_int
from lava_gle.analysis.comparison import compare_runs, run_backend
from lava_gle.experiments.lagline import (
    LaglineConfig, make_inputs, student_network, teacher_network,
)
from lava_gle.analysis.report import write_report
from lava_gle.results import prepare_out_dir

BACKENDS = ("lava-float", "lava-fixed")


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="LagLine: a GLE student learns its teacher in Lava "
                                    "(float and fixed point) and the runs are compared")
    p.add_argument("--out", type=out_path, default="runs/demo",
                   help="output directory (default runs/demo)")
    p.add_argument("--steps", type=positive_int, default=12_000,
                   help="training steps (dt = 0.01)")
    p.add_argument("--seed", type=natural_int, default=0,
                   help="seed of the input and the student")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report_dir = prepare_out_dir(Path(args.out) / "compare")
    config = LaglineConfig(seed=args.seed, batch=1, optimizer="sgd", settle_time=0.0,
                           train_time=args.steps * 0.01)
    student = student_network(config)
    w0 = [float(student.initial_weights(i)[0, 0]) for i in range(2)]
    print("LagLine (paper Fig. 5): input -> 1 softplus -> 1 softplus, tau_m (1, 2), "
          f"tau_r {config.tau_r}, dt {config.dt}")
    print(f"teacher weights {config.w_teacher}; student starts at ({w0[0]:.3f}, {w0[1]:.3f}) "
          f"and learns for {args.steps} steps with GLE's local rule (eta {config.sgd_rates()[0]}, "
          f"beta {config.beta})\n")
    x = make_inputs(config)
    y = simulate(teacher_network(config), x, record=["output"])["output"]
    runs, seconds = {}, {}
    for backend in BACKENDS:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # saturation and rounding go into the report
            runs[backend] = run_backend(student, x, y, backend, progress=not args.quiet)
        seconds[backend] = time.perf_counter() - t0
    metrics = compare_runs(student, runs["lava-float"], runs["lava-fixed"], y)
    files = write_report(report_dir, student, runs["lava-float"], runs["lava-fixed"],
                         metrics)

    print(f"{'backend':<11} {'w_l0':>7} {'w_l1':>7} {'MSE first 10%':>14} {'MSE last 10%':>13}"
          f" {'steps/s':>8}")
    for backend, r in runs.items():
        w = [float(r.weights[n][-1].ravel()[0]) for n in student.layer_names]
        task = metrics["task"][backend]
        print(f"{backend:<11} {w[0]:>7.3f} {w[1]:>7.3f} {task['loss_first']:>14.2e} "
              f"{task['loss_final']:>13.2e} {len(x) / seconds[backend]:>8.0f}")
    print(f"{'teacher':<11} {config.w_teacher[0]:>7.3f} {config.w_teacher[1]:>7.3f}\n")
    out_err = metrics["output"]["rms_error"]
    print(f"fixed point against float: output RMS error {out_err:.3f} of the float output's "
          f"range; {len(metrics['verdicts'])} variable(s) over {metrics['tolerance']:g}:")
    by_cause: dict[str, list[str]] = {}
    for v in metrics["verdicts"]:
        by_cause.setdefault(v["cause"], []).append(
            f"{v['layer']}.{v['variable']} ({v['rms_error']:.3f})")
    for cause, where in by_cause.items():
        print(f"  {', '.join(where)}: {cause}")
    sat = {k: n for k, n in metrics["saturation"]["lava-fixed"].items() if n}
    if sat:
        print("  clipped values: " + ", ".join(f"{k}={n}" for k, n in sorted(sat.items())))
    print(f"\nreport: {files['report']}  (metrics: {files['metrics']})")
    return 0
