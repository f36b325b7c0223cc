"""MNIST-1D integers against their float twin over several rounding draws of one run.

One integer run is one draw of its rounding: runs that differ only in
``fixed_point.seed`` (the learning engines' random numbers and the error trace's dither)
ended 1.5-4.7 test points apart in session 20 (``docs/experiments.md``). This reads a
``lava-gle experiment mnist1d --backend numpy-fixed`` run (its integers: rounding seed 0;
its ``float_same_rule``: the twin) and other draws of the same configuration: runs with
``--rounding-seed N`` (each with a copy of RUN's ``float_same_rule``, so the twin is not
trained again) or ``mnist1d_gap.py RUN --train-integers OUT --rounding-seed N`` runs, which
take RUN's recorded formats; it prints per draw and over the
draws the final and last-5 test accuracy and the gap to the twin: the protocol by which
the targets of ``docs/experiments.md`` ("Status") are judged.

    .venv/bin/python benchmarks/mnist1d_draws.py RUN [OUT ...] [--last 5]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

#: An epoch's line in a run's ``log.txt`` (training accuracy with the outputs nudged).
EPOCH = re.compile(r"epoch (\d+)/\d+: train loss \S+ acc ([\d.]+), test loss \S+ acc ([\d.]+)")


def test_accuracy(run: Path) -> np.ndarray:
    """Test accuracy per epoch [epochs] from ``run/log.txt`` (a resumed epoch: its last
    line)."""
    log = run / "log.txt"
    if not log.exists():
        raise SystemExit(f"{run}: no log.txt (not a run directory)")
    by_epoch = {int(m[1]): float(m[3]) for m in EPOCH.finditer(log.read_text())}
    if not by_epoch:
        raise SystemExit(f"{log}: no finished epoch yet")
    return np.array([by_epoch[e] for e in sorted(by_epoch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the experiment's directory (rounding seed 0)")
    parser.add_argument("draws", type=Path, nargs="*",
                        help="--train-integers directories of the same run, other seeds")
    parser.add_argument("--last", type=int, default=5, help="epochs averaged (default 5)")
    args = parser.parse_args()
    twin = test_accuracy(args.run / "float_same_rule")
    rows = [(str(d), test_accuracy(d)) for d in (args.run, *args.draws)]
    epochs = {len(acc) for _, acc in rows}
    if epochs != {len(twin)}:
        print(f"note: epochs differ (twin {len(twin)}, draws {sorted(epochs)}): "
              "a draw still training is read as it stands")
    k = args.last
    print(f"| draw | epochs | test, final | last {k} | gap to twin, final | last {k} |")
    print("| --- | --- | --- | --- | --- | --- |")
    t_final, t_last = 100 * twin[-1], 100 * twin[-k:].mean()
    print(f"| float twin | {len(twin)} | {t_final:.1f} | {t_last:.1f} | | |")
    finals, lasts = [], []
    for name, acc in rows:
        finals.append(100 * acc[-1])
        lasts.append(100 * acc[-k:].mean())
        print(f"| {name} | {len(acc)} | {finals[-1]:.1f} | {lasts[-1]:.1f} | "
              f"{t_final - finals[-1]:.1f} | {t_last - lasts[-1]:.1f} |")
    print(f"| mean of {len(rows)} | | {np.mean(finals):.1f} | {np.mean(lasts):.1f} | "
          f"{t_final - np.mean(finals):.1f} | {t_last - np.mean(lasts):.1f} |")
    print(f"scatter (largest - smallest) of the draws: final {np.ptp(finals):.1f}, "
          f"last {k} {np.ptp(lasts):.1f} points")


if __name__ == "__main__":
    main()
