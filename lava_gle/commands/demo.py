"""``lava-gle demo``: a GLE chain learns its teacher's weights (the paper's LagLine idea).

A 1 -> 1 -> 1 softplus chain with lagging neurons (tau_r < tau_m) is trained on the
output of a teacher chain of the same shape, from a smoothed random step input, with
GLE's local rule only. The demo prints how the student's weights approach the
teacher's and how the output error falls, and writes the traces to ``--out``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lava_gle.description import network_from_dict
from lava_gle.engine import Engine
from lava_gle.traces import save_traces

TEACHER_W = (1.0, 2.0)
STUDENT_W = (1.4, 0.9)


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="a GLE chain learns its teacher (LagLine, NumPy engine)")
    p.add_argument("--out", default="runs/demo", help="output directory")
    p.add_argument("--steps", type=int, default=20_000, help="training steps")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def chain(weights: tuple[float, float], learning: bool) -> dict:
    layers = [{"name": name, "size": 1, "tau_m": tau_m, "tau_r": 0.2, "phi": "softplus",
               "bias": False, "weights": [[w]]}
              for name, tau_m, w in zip(("hidden", "out"), (0.8, 1.5), weights)]
    return {"gle_network": 1, "name": "lagline", "dt": 0.01, "input": {"size": 1},
            "layers": layers, "learning": {"enabled": learning, "eta": 1.0, "gamma": 1.0,
                                           "beta": 0.01, "loss": "mse"}}


def step_input(steps: int, batch: int, seed: int) -> np.ndarray:
    """Random levels in [-1.5, 1.5] held 100-300 steps, Gaussian-smoothed (sigma 5 steps)."""
    rng = np.random.default_rng(seed)
    x = np.empty((steps, batch))
    for b in range(batch):
        t = 0
        while t < steps:
            hold = int(rng.integers(100, 301))
            x[t:t + hold, b] = rng.uniform(-1.5, 1.5)
            t += hold
    return gaussian_filter1d(x, 5.0, axis=0)[..., None]


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x = step_input(args.steps, 10, args.seed)
    teacher = Engine(network_from_dict(chain(TEACHER_W, learning=False)))
    targets = teacher.run(x, record=["output"])["output"]
    student = Engine(network_from_dict(chain(STUDENT_W, learning=True)))
    print("LagLine demo: 1 -> 1 -> 1 softplus chain, tau_m (0.8, 1.5), tau_r 0.2, dt 0.01")
    print(f"teacher weights {TEACHER_W}, student starts at {STUDENT_W}, batch 10, "
          f"{args.steps} steps of GLE learning (eta 1.0, beta 0.01)\n")
    print(f"{'step':>8} {'w_hidden':>9} {'w_out':>7} {'output MSE':>11}")
    chunks = np.array_split(np.arange(args.steps), 10)
    mses = []
    for chunk in chunks:
        tr = student.run(x[chunk], targets[chunk], record=["output"])
        mse = float(np.mean((tr["output"] - targets[chunk]) ** 2))
        mses.append(mse)
        print(f"{chunk[-1] + 1:>8} {student.weights[0][0, 0]:>9.4f} "
              f"{student.weights[1][0, 0]:>7.4f} {mse:>11.2e}")
    save_traces(out / "student_final.npz", tr)
    w = [float(student.weights[0][0, 0]), float(student.weights[1][0, 0])]
    print(f"\nlearned weights {w[0]:.3f}, {w[1]:.3f} (teacher {TEACHER_W[0]}, {TEACHER_W[1]}); "
          f"output MSE fell from {mses[0]:.1e} to {mses[-1]:.1e}. Traces of the last chunk: "
          f"{out / 'student_final.npz'}")
    return 0
