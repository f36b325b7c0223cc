"""Speed of the paper experiments on the NumPy engine, and what a full run costs.

- LagLine: steps/s of one experiment step (teacher + two Adam students, batch 100) and the
  wall time of the paper's 405,000 steps.
- MNIST-1D: training steps/s (Adam on the local signals, batch 100) and inference
  steps/s of the 42k and 15k models, the implied time of one epoch (4,000 training and
  1,000 test sequences of 360 steps) and of 150 epochs, against the authors' code on an
  NVIDIA H200 (85 s and 77 s per epoch).

BLAS is limited to one thread (the machine is shared).

    .venv/bin/python benchmarks/experiments.py [--steps 720]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle.backends import make_engine  # noqa: E402
from lava_gle.experiments import lagline, mnist1d  # noqa: E402
from lava_gle.experiments.training import inference_network  # noqa: E402
from lava_gle.numerics.optim import Adam  # noqa: E402

#: seconds per epoch of the authors' PyTorch code on an NVIDIA H200 (paper-experiments.md)
H200_EPOCH_S = {"42k": 85.0, "15k": 77.0}


def lagline_steps_per_s(steps: int) -> float:
    config = lagline.LaglineConfig()
    x = lagline.make_inputs(config, steps)
    teacher = make_engine(lagline.teacher_network(config))
    students = [make_engine(lagline.student_network(config, p), optimizer=Adam(config.lr))
                for p in lagline.VARIANTS.values()]
    t0 = time.perf_counter()
    y = teacher.run(x, record=["output"])["output"]
    for s in students:
        s.run(x, y, record=["output"])
    return steps / (time.perf_counter() - t0)


def mnist_steps_per_s(model: str, steps: int) -> tuple[float, float]:
    config = mnist1d.Mnist1dConfig(model=model)
    net = mnist1d.build_network(config)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, 100, 1))
    y = rng.integers(0, 10, size=(steps, 100))
    train = make_engine(net, optimizer=Adam(config.learning_rate), dtype=np.float32)
    t0 = time.perf_counter()
    train.run(x, y, record=["output"])
    t_train = time.perf_counter() - t0
    infer = make_engine(inference_network(net), dtype=np.float32)
    t0 = time.perf_counter()
    infer.run(x, record=["output"])
    t_infer = time.perf_counter() - t0
    return steps / t_train, steps / t_infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=720, help="steps per measurement")
    args = parser.parse_args()
    sps = lagline_steps_per_s(10 * args.steps)
    print(f"lagline (teacher + 2 Adam students, batch 100): {sps:,.0f} steps/s; "
          f"paper set-up (405,000 steps): {405_000 / sps:,.0f} s")
    for model in ("42k", "15k"):
        train, infer = mnist_steps_per_s(model, args.steps)
        epoch = 40 * 360 / train + 10 * 360 / infer
        print(f"mnist1d {model} (float32, batch 100): train {train:,.0f} steps/s, inference "
              f"{infer:,.0f} steps/s -> {epoch:.1f} s/epoch, 150 epochs {150 * epoch / 3600:.2f} h "
              f"(authors' code on an H200: {H200_EPOCH_S[model]:.0f} s/epoch, "
              f"{150 * H200_EPOCH_S[model] / 3600:.1f} h)")


if __name__ == "__main__":
    main()
