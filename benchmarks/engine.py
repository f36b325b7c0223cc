"""Steps per second of the NumPy engine, learning on (issue: >= 5,000 and >= 1,200).

Networks: 1 -> 1 -> 1 softplus at batch 100, and 40 -> 100 (relu) -> 100 (relu) -> 10
at batch 32; float64 and float32; BLAS limited to one thread like the reference figures
(the paper authors' PyTorch code: ~2,300-2,900 and 525-620 steps/s, float32, one thread).

    .venv/bin/python benchmarks/engine.py [--steps 5000] [--repeats 5]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle import network_from_dict  # noqa: E402
from lava_gle.numerics.engine import Engine  # noqa: E402

CASES = [("1 -> 1 -> 1 softplus", [1, 1, 1], ["softplus", "softplus"], 100, 5000),
         ("40 -> 100 -> 100 -> 10 relu", [40, 100, 100, 10], ["relu", "relu", "linear"], 32,
          1200)]


def network(sizes, phis):
    return network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": sizes[0]},
        "layers": [{"size": s, "tau_m": 1.0, "tau_r": 0.1, "phi": p}
                   for s, p in zip(sizes[1:], phis)],
        "learning": {"enabled": True, "eta": 1e-3, "gamma": 1.0, "beta": 0.1}})


def measure(sizes, phis, batch, dtype, steps, repeats) -> float:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, batch, sizes[0]))
    y = rng.normal(size=(steps, batch, sizes[-1]))
    best = 0.0
    for _ in range(repeats):
        engine = Engine(network(sizes, phis), dtype=dtype)
        engine.run(x[:20], y[:20])
        t0 = time.perf_counter()
        engine.run(x, y)
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"{'network':<30} {'batch':>5} {'dtype':>8} {'steps/s':>9} {'target':>7}")
    for name, sizes, phis, batch, target in CASES:
        for dtype in (np.float64, np.float32):
            rate = measure(sizes, phis, batch, dtype, args.steps, args.repeats)
            print(f"{name:<30} {batch:>5} {dtype.__name__:>8} {rate:>9,.0f} {target:>7,}"
                  f"  {'ok' if rate >= target else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
