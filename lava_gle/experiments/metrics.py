"""Output files of an experiment run: the log, ``metrics.json`` and figures.

Every experiment writes into one directory ``DIR``:

- ``DIR/log.txt``: timestamped progress lines (also echoed to the console above
  the progress bars);
- ``DIR/metrics.json``: the results (experiment-specific keys, plus ``experiment``,
  ``backend``, ``seed``, ``quick``, ``wall_time_s`` and ``steps_per_s``);
- ``DIR/*.png``: figures (matplotlib, Agg backend);
- ``DIR/checkpoint.npz`` and, while a run is alive, ``DIR/run.lock``: see
  :mod:`lava_gle.experiments.checkpoint`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm



class RunLog:
    """Append timestamped lines to ``DIR/log.txt`` and echo them (unless ``quiet``)."""

    def __init__(self, out_dir: str | Path, quiet: bool = False):
        self.path = Path(out_dir) / "log.txt"
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if not self.quiet:
            tqdm.write(message)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows of ``logits`` [N, classes] whose argmax equals ``labels`` [N]."""
    return float(np.mean(np.argmax(logits, axis=-1) == labels))

