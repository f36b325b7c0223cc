"""Online (on-chip style) training speed: learning steps/s of numpy and numpy-fixed.

The classification models trained as a chip learns (GLE's own rule, MSE against one-hot
targets, learning on every step), at batch 1 and batch 100, from the initial weights on
uniform random inputs. BLAS on one thread; the best of ``--repeats`` runs.

    .venv/bin/python benchmarks/online.py [--steps 1000] [--repeats 2]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle.backends import make_engine  # noqa: E402
from lava_gle.experiments import mnist1d, yinyang  # noqa: E402
from lava_gle.experiments.training import onehot_targets  # noqa: E402

warnings.simplefilter("ignore")


def models():
    """(label, network) of the models trained online."""
    yield "Yin-Yang 4-120-3", yinyang.build_network(yinyang.YinyangConfig(loss="mse",
                                                                          lr=0.01))
    yield "MNIST-1D 42k", mnist1d.build_network(mnist1d.Mnist1dConfig(loss="mse", lr=0.002))


def steps_per_s(net, backend: str, batch: int, steps: int, repeats: int) -> float:
    """Best learning steps/s of ``backend`` over ``repeats`` runs of ``steps`` steps."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (steps, batch, net.input.size))
    labels = rng.integers(0, net.output_size, batch)
    y = np.broadcast_to(onehot_targets(labels, net.output_size, 1.0),
                        (steps, batch, net.output_size))
    best = 0.0
    for _ in range(repeats):
        engine = make_engine(net, backend)
        start = time.perf_counter()
        engine.run(x, y)
        best = max(best, steps / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print("| model | batch | numpy steps/s | numpy-fixed steps/s | fixed / float |")
    print("| --- | --- | --- | --- | --- |")
    for label, net in models():
        for batch in (1, 100):
            steps = args.steps if batch == 1 else max(args.steps // 10, 20)
            fl = steps_per_s(net, "numpy", batch, steps, args.repeats)
            fx = steps_per_s(net, "numpy-fixed", batch, steps, args.repeats)
            print(f"| {label} | {batch} | {fl:,.0f} | {fx:,.0f} | {fx / fl:.2f} |", flush=True)


if __name__ == "__main__":
    main()
