"""``benchmarks/mnist1d_draws.py``, the judge of the MNIST-1D targets: its means and gaps
against figures worked out by hand from synthetic run logs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mnist1d_draws.py"


def _log(run: Path, test_acc: list[float], resumed: dict[int, float] | None = None,
         unaveraged: list[float] | None = None) -> None:
    """``run/log.txt`` in the experiments' format, one line per epoch (``resumed``: an
    epoch's earlier line, written before the one that counts; ``unaveraged``: the weights'
    own accuracy of a run with ``--average-window``)."""
    run.mkdir(parents=True, exist_ok=True)
    lines = ["2026-12-03 04:26:09 mnist1d: 4000 training / 1000 test sequences"]
    n = len(test_acc)
    for epoch, acc in enumerate(test_acc, 1):
        if resumed and epoch in resumed:
            lines.append(f"2026-12-03 04:27:00 mnist1d epoch {epoch}/{n}: train loss 2.0 acc "
                         f"0.5, test loss 2.2 acc {resumed[epoch]:.4f}, eta 0.002, 60 s")
        lines.append(f"2026-12-03 04:27:12 mnist1d epoch {epoch}/{n}: train loss 2.0650 acc "
                     f"0.7173, test loss 2.2072 acc {acc:.4f}, eta 0.002, 63.2 s"
                     + ("" if unaveraged is None else
                        f", unaveraged acc {unaveraged[epoch - 1]:.4f}")
                     + ", h0 10 at the gains' cap")
    (run / "log.txt").write_text("\n".join(lines) + "\n")


def _table(*args: Path, flags: tuple[str, ...] = ()) -> tuple[dict[str, str], str]:
    out = subprocess.run([sys.executable, str(SCRIPT), *map(str, args), "--last", "2", *flags],
                         capture_output=True, text=True, check=True).stdout
    return {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines()}, out


def test_draws_table_means_and_gaps(tmp_path):
    """Twin 0.90, 0.93, 0.94 (final 94.0, last 2 93.5); draws final 92.0 and 88.0 (mean
    90.0, gap 4.0), last 2 91.0 and 87.0 (mean 89.0, gap 4.5); a resumed epoch's
    earlier line is overridden by its last; two draws give no interval."""
    run, other = tmp_path / "run", tmp_path / "draw1"
    _log(run / "float_same_rule", [0.90, 0.93, 0.94])
    _log(run, [0.80, 0.90, 0.92], resumed={3: 0.10})
    _log(other, [0.70, 0.86, 0.88])
    rows, out = _table(run, other)
    assert rows[str(run)] == f"| {run} | 3 | 94.0 | 93.5 | 92.0 | 91.0 | 2.0 | 2.5 |"
    assert rows[str(other)] == f"| {other} | 3 | 94.0 | 93.5 | 88.0 | 87.0 | 6.0 | 6.5 |"
    assert rows["mean of 2"] == "| mean of 2 | | 94.0 | 93.5 | 90.0 | 89.0 | 4.0 | 4.5 |"
    assert "scatter (largest - smallest) of the draws: final 4.0, last 2 4.0 points" in out
    assert ("test final 90.00, last 2 89.00; gap final 4.00, last 2 4.50 points") in out


def test_draws_of_another_seed_take_their_own_twin(tmp_path):
    """A third draw with its own twin (final 96.0, last 2 95.5) and final 93.0, last 2
    92.0: gaps 3.0 and 3.5. Finals 92, 88, 93: mean 91.00, sd sqrt(7), t(0.975, 2) =
    4.3027 (a table's value), half-width 6.57; gaps 2, 6, 3: mean 3.67, sd 2.082, half-width
    5.17."""
    run, other, seed2 = tmp_path / "run", tmp_path / "draw1", tmp_path / "seed2"
    _log(run / "float_same_rule", [0.90, 0.93, 0.94])
    _log(run, [0.80, 0.90, 0.92])
    _log(other, [0.70, 0.86, 0.88])
    _log(seed2 / "float_same_rule", [0.50, 0.95, 0.96])
    _log(seed2, [0.50, 0.91, 0.93])
    rows, out = _table(run, other, seed2)
    assert rows[str(seed2)] == f"| {seed2} | 3 | 96.0 | 95.5 | 93.0 | 92.0 | 3.0 | 3.5 |"
    assert rows["mean of 3"] == "| mean of 3 | | 94.7 | 94.2 | 91.0 | 90.0 | 3.7 | 4.2 |"
    assert "test final 91.00 [84.43, 97.57]" in out
    assert "gap final 3.67 [-1.50, 8.84]" in out


def test_averaged_runs_are_judged_averaged_or_unaveraged(tmp_path):
    """A run with --average-window: by default its averaged accuracy (twin final 94.0, last
    2 93.5; run 92.0, 91.0), with --unaveraged the weights' own (twin 0.91, 0.92: final
    92.0, last 2 91.5; run 0.85, 0.89: final 89.0, last 2 87.0; gaps 3.0 and 4.5). A run
    without averages is refused under --unaveraged, naming the flag."""
    run = tmp_path / "run"
    _log(run / "float_same_rule", [0.90, 0.93, 0.94], unaveraged=[0.88, 0.91, 0.92])
    _log(run, [0.80, 0.90, 0.92], unaveraged=[0.70, 0.85, 0.89])
    rows, _ = _table(run)
    assert rows[str(run)] == f"| {run} | 3 | 94.0 | 93.5 | 92.0 | 91.0 | 2.0 | 2.5 |"
    rows, _ = _table(run, flags=("--unaveraged",))
    assert rows[str(run)] == f"| {run} | 3 | 92.0 | 91.5 | 89.0 | 87.0 | 3.0 | 4.5 |"
    plain = tmp_path / "plain"
    _log(plain / "float_same_rule", [0.90, 0.93, 0.94])
    _log(plain, [0.80, 0.90, 0.92])
    refused = subprocess.run([sys.executable, str(SCRIPT), str(plain), "--unaveraged"],
                             capture_output=True, text=True)
    assert refused.returncode != 0
    assert "--average-window" in refused.stderr and "unaveraged acc" in refused.stderr
