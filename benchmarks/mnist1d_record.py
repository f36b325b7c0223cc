"""A batch-by-batch record of an MNIST-1D integer run: where a run's accuracy collapses.

Runs ``lava-gle experiment mnist1d ...`` (fresh, or resuming a copy of a run directory
with a larger ``--epochs``) and, after each training batch of the integer engine (the
float twin is not recorded), writes one JSON line to OUT: the batch (counted from this
start), its training accuracy (outputs nudged, as the run's log) and cross-entropy, the
values each saturation counter clipped during it, and per layer: W and b as
``[min, median, max]`` integers, the peak |payload| a neuron sent up during the batch
(``[min, median, max]`` over the neurons), and with normalisers the gains ``gamma``
(``2**GAIN_FRAC`` = 1) with the neurons at their cap. From batch ``--neurons-from`` on
the line also holds per neuron: peak payload, bias, gain and the summed |W| of its row
(inputs) and column (outputs). ``--steps B NPZ`` writes every step of batch B instead
(payloads ``q``, potentials ``u`` and errors ``e`` of every layer, [T, batch, n]) and stops.
Nothing of the run changes: its integers are those of the plain command.

    .venv/bin/python benchmarks/mnist1d_record.py OUT.jsonl [--neurons-from B]
        [--steps B NPZ] -- <lava-gle experiment arguments>

Measured with it: ``docs/experiments-log.md``, "Session 24" (the collapse of seed 3).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lava_gle.cli import main as lava_gle
from lava_gle.experiments import training


def spread(a) -> list[float]:
    """``[min, median, max]`` of ``a`` as floats."""
    a = np.asarray(a, dtype=np.float64)
    return [float(a.min()), float(np.median(a)), float(a.max())]


class Recorder:
    """Wraps :func:`training.stream_batch` and the integer layers' ``rate``."""

    def __init__(self, out: Path, neurons_from: int | None, steps: tuple[int, Path] | None):
        self.out, self.neurons_from, self.steps = out, neurons_from, steps
        self.batch, self.engine, self.clipped = 0, None, {}
        self.peak: dict[str, np.ndarray] = {}
        self.trace: dict[str, list[np.ndarray]] = {}
        self.stream = training.stream_batch

    def watch(self, engine) -> None:
        """Record the peak payloads (and, in the batch of ``--steps``, every step)."""
        self.engine, self.clipped = engine, dict(engine.kernels.saturation.counts)
        for k in engine.kernels.layers:
            def rate(st, rate=k.rate, name=k.name):
                q = rate(st)
                peak = np.abs(q).max(axis=tuple(range(q.ndim - 1)))
                self.peak[name] = np.maximum(self.peak.get(name, peak), peak)
                if self.steps is not None and self.batch == self.steps[0]:
                    for var, value in (("q", q), ("u", st.u), ("e", st.e)):
                        self.trace.setdefault(f"{var}.{name}", []).append(value.copy())
                return q
            k.rate = rate

    def __call__(self, engine, x, labels, readout_start, teach, teach_start=0,
                 target_rate=None):
        plain = (x, labels, readout_start, teach, teach_start, target_rate)
        if not teach or getattr(engine.kernels, "saturation", None) is None:
            return self.stream(engine, *plain)  # evaluation, or the float twin
        if engine is not self.engine:
            self.watch(engine)
        self.peak = {}
        logits, ce = self.stream(engine, *plain)
        if self.steps is not None and self.batch == self.steps[0]:
            np.savez_compressed(self.steps[1], labels=labels,
                                **{k: np.array(v) for k, v in self.trace.items()})
            raise SystemExit(f"batch {self.batch}: steps written to {self.steps[1]}")
        self.write(engine, logits, labels, ce)
        self.batch += 1
        return logits, ce

    def write(self, engine, logits, labels, ce) -> None:
        now = dict(engine.kernels.saturation.counts)
        rec = {"batch": self.batch, "acc": float(np.mean(np.argmax(logits, -1) == labels)),
               "ce": float(np.mean(ce)),
               "clipped": {k: int(n - self.clipped.get(k, 0)) for k, n in now.items()
                           if n != self.clipped.get(k, 0)}, "layers": {}}
        self.clipped = now
        per_neuron = self.neurons_from is not None and self.batch >= self.neurons_from
        for k in engine.kernels.layers:
            peak = self.peak[k.name]
            layer = {"W": spread(k.W), "b": spread(k.b), "peak": spread(peak)}
            if k.gamma is not None:
                at_cap = np.flatnonzero(k.gamma >= k.norm.gain_max)
                layer.update(gamma=spread(k.gamma), at_cap=at_cap.tolist(),
                             peak_at_cap=peak[at_cap].tolist())
            if per_neuron:
                absw = np.abs(k.W.astype(np.float64))
                layer.update(peak_all=peak.tolist(), b_all=k.b.tolist(),
                             row_abs=absw.sum(axis=1).tolist(),
                             col_abs=absw.sum(axis=0).tolist())
                if k.gamma is not None:
                    layer["gamma_all"] = k.gamma.tolist()
            rec["layers"][k.name] = layer
        with self.out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")


def main() -> None:
    argv = sys.argv[1:]
    if "--" not in argv:
        raise SystemExit("usage: mnist1d_record.py OUT.jsonl [--neurons-from B] "
                         "[--steps B NPZ] -- <lava-gle experiment arguments>")
    cut = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--neurons-from", type=int, default=None, metavar="B")
    parser.add_argument("--steps", nargs=2, default=None, metavar=("B", "NPZ"))
    args = parser.parse_args(argv[:cut])
    steps = None if args.steps is None else (int(args.steps[0]), Path(args.steps[1]))
    training.stream_batch = Recorder(args.out, args.neurons_from, steps)
    sys.exit(lava_gle(argv[cut + 1:]))


if __name__ == "__main__":
    main()
