"""MNIST-1D integers against their float twin over several rounding draws of one run.

One integer run is one draw of its rounding: runs that differ only in
``fixed_point.seed`` (the learning engines' random numbers and the error trace's dither)
ended 1.5-4.7 test points apart in session 20 (``docs/experiments-log.md``). This reads a
``lava-gle experiment mnist1d --backend numpy-fixed`` run (its integers: rounding seed 0;
its ``float_same_rule``: the twin) and other draws of the same configuration: runs with
``--rounding-seed N`` (each with a copy of RUN's ``float_same_rule``, so the twin is not
trained again) or ``mnist1d_gap.py RUN --train-integers OUT --rounding-seed N`` runs, which
take RUN's recorded formats. Draws of other data seeds (runs of ``--seed S``) are judged
against their own ``float_same_rule``. Runs with ``--average-window`` log the averaged
weights' test accuracy and the weights' own (``unaveraged acc``); ``--unaveraged`` judges
the latter. It prints per draw and over the draws the final and
last-5 test accuracy and the gap to the twin, with each mean's 95 % Student-t interval
(the draws taken as independent): the protocol by which the targets of
``docs/experiments.md`` ("Where the MNIST-1D targets stand") are judged.

    .venv/bin/python benchmarks/mnist1d_draws.py RUN [OUT ...] [--last 5] [--unaveraged]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from scipy import stats

#: An epoch's line in a run's ``log.txt`` (training accuracy with the outputs nudged).
EPOCH = re.compile(r"epoch (\d+)/\d+: train loss \S+ acc ([\d.]+), test loss \S+ acc ([\d.]+)"
                   r"(?:.*?, unaveraged acc ([\d.]+))?")


def test_accuracy(run: Path, unaveraged: bool = False) -> np.ndarray:
    """Test accuracy per epoch [epochs] from ``run/log.txt`` (a resumed epoch: its last
    line); ``unaveraged``: the weights' own accuracy of a run with ``--average-window``."""
    log = run / "log.txt"
    if not log.exists():
        raise SystemExit(f"{run}: no log.txt (not a run directory)")
    group = 4 if unaveraged else 3
    lines = list(EPOCH.finditer(log.read_text()))
    if unaveraged and any(m[4] is None for m in lines):
        raise SystemExit(f"{log}: --unaveraged, but the run was not trained with "
                         "--average-window (no 'unaveraged acc' in its epochs)")
    by_epoch = {int(m[1]): float(m[group]) for m in lines}
    if not by_epoch:
        raise SystemExit(f"{log}: no finished epoch yet")
    return np.array([by_epoch[e] for e in sorted(by_epoch)])


def _twin(draw: Path, run: Path) -> Path:
    """A draw's float twin: its own ``float_same_rule`` (a copy of its data seed's twin),
    else RUN's."""
    own = draw / "float_same_rule"
    return own if (own / "log.txt").exists() else run / "float_same_rule"


def _mean_interval(values: list[float]) -> str:
    """``mean [lo, hi]``: the mean and its 95 % Student-t interval (draws taken as
    independent; the interval needs three draws or more)."""
    x = np.asarray(values)
    if x.size < 3:
        return f"{x.mean():.2f}"
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return f"{x.mean():.2f} [{x.mean() - half:.2f}, {x.mean() + half:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the experiment's directory (rounding seed 0)")
    parser.add_argument("draws", type=Path, nargs="*",
                        help="other draws: runs with --rounding-seed N or --train-integers "
                        "directories; each is judged against its own float_same_rule if it "
                        "has one (other data seeds), else RUN's")
    parser.add_argument("--last", type=int, default=5, help="epochs averaged (default 5)")
    parser.add_argument("--unaveraged", action="store_true",
                        help="runs with --average-window: judge the weights' own test "
                        "accuracy, not the averaged weights'")
    args = parser.parse_args()
    k = args.last
    print(f"| draw | epochs | twin, final | last {k} | test, final | last {k} | "
          f"gap to twin, final | last {k} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    cols: dict[str, list[float]] = {c: [] for c in ("twin", "twin_last", "final", "last")}
    for draw in (args.run, *args.draws):
        twin = test_accuracy(_twin(draw, args.run), args.unaveraged)
        acc = test_accuracy(draw, args.unaveraged)
        if len(acc) != len(twin):
            print(f"note: {draw} has {len(acc)} epochs, its twin {len(twin)}: "
                  "a draw still training is read as it stands")
        row = (100 * twin[-1], 100 * twin[-k:].mean(), 100 * acc[-1], 100 * acc[-k:].mean())
        for c, v in zip(cols, row):
            cols[c].append(v)
        print(f"| {draw} | {len(acc)} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f} | "
              f"{row[3]:.1f} | {row[0] - row[2]:.1f} | {row[1] - row[3]:.1f} |")
    mean = {c: float(np.mean(v)) for c, v in cols.items()}
    print(f"| mean of {len(cols['final'])} | | {mean['twin']:.1f} | {mean['twin_last']:.1f} | "
          f"{mean['final']:.1f} | {mean['last']:.1f} | {mean['twin'] - mean['final']:.1f} | "
          f"{mean['twin_last'] - mean['last']:.1f} |")
    print(f"scatter (largest - smallest) of the draws: final {np.ptp(cols['final']):.1f}, "
          f"last {k} {np.ptp(cols['last']):.1f} points")
    gap = np.subtract(cols["twin"], cols["final"])
    gap_last = np.subtract(cols["twin_last"], cols["last"])
    print(f"mean with its 95 % interval: test final {_mean_interval(cols['final'])}, "
          f"last {k} {_mean_interval(cols['last'])}; gap final {_mean_interval(list(gap))}, "
          f"last {k} {_mean_interval(list(gap_last))} points")


if __name__ == "__main__":
    main()
