"""``benchmarks/mnist1d_draws.py``, the judge of the MNIST-1D targets: its means and gaps
against figures worked out by hand from synthetic run logs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mnist1d_draws.py"


def _log(run: Path, test_acc: list[float], resumed: dict[int, float] | None = None) -> None:
    """``run/log.txt`` in the experiments' format, one line per epoch (``resumed``: an
    epoch's earlier line, written before the one that counts)."""
    run.mkdir(parents=True, exist_ok=True)
    lines = ["2026-12-03 04:26:09 mnist1d: 4000 training / 1000 test sequences"]
    n = len(test_acc)
    for epoch, acc in enumerate(test_acc, 1):
        if resumed and epoch in resumed:
            lines.append(f"2026-12-03 04:27:00 mnist1d epoch {epoch}/{n}: train loss 2.0 acc "
                         f"0.5, test loss 2.2 acc {resumed[epoch]:.4f}, eta 0.002, 60 s")
        lines.append(f"2026-12-03 04:27:12 mnist1d epoch {epoch}/{n}: train loss 2.0650 acc "
                     f"0.7173, test loss 2.2072 acc {acc:.4f}, eta 0.002, 63.2 s, h0 10 at "
                     "the gains' cap")
    (run / "log.txt").write_text("\n".join(lines) + "\n")


def test_draws_table_means_and_gaps(tmp_path):
    """Twin 0.90, 0.93, 0.94 (final 94.0, last 2 93.5); draws final 92.0 and 88.0 (mean
    90.0, gap 4.0), last 2 91.0 and 87.0 (mean 89.0, gap 4.5); a resumed epoch's
    earlier line is overridden by its last."""
    run, other = tmp_path / "run", tmp_path / "draw1"
    _log(run / "float_same_rule", [0.90, 0.93, 0.94])
    _log(run, [0.80, 0.90, 0.92], resumed={3: 0.10})
    _log(other, [0.70, 0.86, 0.88])
    out = subprocess.run([sys.executable, str(SCRIPT), str(run), str(other), "--last", "2"],
                         capture_output=True, text=True, check=True).stdout
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines()}
    assert rows["float twin"] == "| float twin | 3 | 94.0 | 93.5 | | |"
    assert rows[str(run)] == f"| {run} | 3 | 92.0 | 91.0 | 2.0 | 2.5 |"
    assert rows[str(other)] == f"| {other} | 3 | 88.0 | 87.0 | 6.0 | 6.5 |"
    assert rows["mean of 2"] == "| mean of 2 | | 90.0 | 89.0 | 4.0 | 4.5 |"
    assert "scatter (largest - smallest) of the draws: final 4.0, last 2 4.0 points" in out
