"""Test accuracy of trained classification runs in one stream, as a chip at batch 1 tests.

A run's per-epoch test accuracy streams its test sequences ``test_batch`` side by side (100
for online runs), so each sequence starts from the state the sequence 100 places before it
left; a chip at batch 1 streams them one after the other. Both are streams without resets,
and the figures differ by a few tenths of a point either way. This reads finished
``lava-gle experiment mnist1d|yinyang`` runs (``network_trained.json``, and the float twin's
``float_same_rule/network_trained.json`` where there is one), tests each network both ways,
checks that the side-by-side figure reproduces the run's own ``test_accuracy`` (so that the
description holds the network the run tested), and prints per run and averaged over the
runs. Since session 50 online runs record the one-stream figure themselves
(``test_accuracy_one_stream`` in ``metrics.json``).

    .venv/bin/python benchmarks/one_stream.py RUN [RUN ...]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # before NumPy

import argparse  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle import load_network  # noqa: E402
from lava_gle.experiments import mnist1d, yinyang  # noqa: E402
from lava_gle.experiments.training import predict  # noqa: E402
from lava_gle.quantize import QuantizationWarning  # noqa: E402

EXPERIMENTS = {"mnist1d": (mnist1d.Mnist1dConfig, mnist1d.load_data),
               "yinyang": (yinyang.YinyangConfig, yinyang.load_data)}


def both_ways(net_file: Path, backend: str, data, readout_start: int, width: int,
              dtype: str) -> tuple[float, float]:
    """(accuracy with ``width`` streams side by side, accuracy in one stream); ``dtype``:
    the float engine's (the run's own)."""
    net = load_network(net_file)
    out = []
    for batch in (width, 1):
        logits, _ = predict(net, data.x_test, data.y_test, backend, batch=batch,
                            readout_start=readout_start, dtype=np.dtype(dtype).type)
        out.append(float(np.mean(np.argmax(logits, -1) == data.y_test)))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore", QuantizationWarning)
    rows = []
    for run in args.runs:
        metrics = json.loads((run / "metrics.json").read_text())
        make_config, load_data = EXPERIMENTS[metrics["experiment"]]
        config = make_config(**metrics["config"])
        data = load_data(config)
        width = 100 if config.batch < 100 else config.batch
        parts = [("integers" if metrics["backend"] != "numpy" else "float", run,
                  metrics["backend"], metrics["test_accuracy"])]
        if (run / "float_same_rule" / "network_trained.json").exists():
            parts.append(("twin", run / "float_same_rule", "numpy",
                          metrics.get("test_accuracy_float_same_rule")))
        for part, where, backend, reported in parts:
            side, one = both_ways(where / "network_trained.json", backend, data,
                                  getattr(config, "readout_start", 0), width,
                                  getattr(config, "dtype", "float64"))
            same = "yes" if reported is not None and side == reported else \
                f"NO (metrics.json: {reported})"
            rows.append((part, one - side))
            print(f"{run} {part}: {width} side by side {100 * side:.2f} % (reproduces "
                  f"metrics.json: {same}), one stream {100 * one:.2f} %", flush=True)
    for part in sorted({p for p, _ in rows}):
        d = [x for p, x in rows if p == part]
        print(f"{part}: one stream minus side by side, mean over {len(d)} run(s): "
              f"{100 * np.mean(d):+.2f} points")


if __name__ == "__main__":
    main()
