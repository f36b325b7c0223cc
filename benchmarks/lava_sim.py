"""Steps per second of lava-gle float networks in Lava, next to Lava's own LIF + Dense chain.

For depth k in (1, 2, 4) and width n in (10, 100, 1000):

- GLE, learning on: input n -> k layers of n neurons (tanh, linear output), MSE target,
  ``LavaNetwork(net, backend="float")`` structural (2k + 1 Lava processes) and fused
  (1 Lava process), recording off (``record=False``: only the final W, b are read);
- Lava's chain: ``RingBuffer`` (n channels, 20 % binary spikes) -> [``Dense`` (n x n)
  -> ``LIF`` (n)] x k, ``floating_pt`` (2k + 1 Lava processes).

Each network runs ``steps`` steps as 5 blocking chunks; the rate is measured over the
last 4 chunks (compilation and process start-up excluded), best of ``repeats`` fresh runs. BLAS is limited to one
thread per process, as Lava forks one OS process per Lava process on a small machine.
The issue's target is GLE structural >= 0.8x the chain.

    .venv/bin/python benchmarks/lava_sim.py [--steps 500] [--steps-1000 150] [--repeats 2]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle import network_from_dict  # noqa: E402
from lava_gle.runtime import LavaNetwork  # noqa: E402
from lava_gle.runtime.control import stop_runtime  # noqa: E402

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402

CHUNKS = 5


def gle_network(depth: int, width: int):
    return network_from_dict({
        "gle_network": 1, "name": f"gle-{depth}x{width}", "dt": 0.01, "input": {"size": width},
        "layers": [{"name": f"l{i}", "size": width, "tau_m": 1.0, "tau_r": 0.1,
                    "phi": "tanh" if i < depth - 1 else "linear",
                    "init": {"scheme": "lecun_normal", "seed": i}} for i in range(depth)],
        "learning": {"enabled": True, "eta": 1e-4, "gamma": 1.0, "beta": 0.1}})


def rate(stamps: list[tuple[int, float]]) -> float:
    """Steps per second between the first and the last chunk boundary."""
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return (s1 - s0) / (t1 - t0)


def gle_rate(depth: int, width: int, steps: int, fused: bool) -> float:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, width))
    y = rng.normal(size=(steps, width))
    stamps: list[tuple[int, float]] = []
    with LavaNetwork(gle_network(depth, width), fused=fused, chunk=steps // CHUNKS) as sim:
        sim.run(x, y, record=False,
                callback=lambda done: stamps.append((done, time.perf_counter())))
    return rate(stamps)


def lif_rate(depth: int, width: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    source = RingBuffer(data=(rng.random((width, steps)) < 0.2).astype(float))
    out = source.s_out
    for _ in range(depth):
        dense = Dense(weights=rng.normal(0.0, 2.0 / np.sqrt(width), (width, width)))
        lif = LIF(shape=(width,), du=0.1, dv=0.1, vth=1.0)
        out.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        out = lif.s_out
    cfg = Loihi2SimCfg(select_tag="floating_pt")
    stamps: list[tuple[int, float]] = []
    try:
        done = 0
        for _ in range(CHUNKS):
            source.run(condition=RunSteps(num_steps=steps // CHUNKS), run_cfg=cfg)
            done += steps // CHUNKS
            stamps.append((done, time.perf_counter()))
    finally:
        stop_runtime(source)
    return rate(stamps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="steps for widths 10 and 100")
    parser.add_argument("--steps-1000", type=int, default=150, help="steps for width 1000")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args()
    print("| layers | width | GLE structural steps/s | GLE fused steps/s | LIF+Dense chain "
          "steps/s | structural / chain | fused / chain |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for depth in args.depths:
        for width in args.widths:
            steps = args.steps_1000 if width >= 1000 else args.steps
            best = range(args.repeats)
            structural = max(gle_rate(depth, width, steps, fused=False) for _ in best)
            fused = max(gle_rate(depth, width, steps, fused=True) for _ in best)
            chain = max(lif_rate(depth, width, steps) for _ in best)
            print(f"| {depth} | {width} | {structural:,.0f} | {fused:,.0f} | {chain:,.0f} | "
                  f"{structural / chain:.2f}x | {fused / chain:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
