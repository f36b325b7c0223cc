"""Online (on-chip style) training speed: learning steps/s of numpy and numpy-fixed.

The models trained as a chip learns (GLE's rule, MSE against one-hot targets, learning on
every step), at batch 1 and batch 100, from the initial weights on uniform random inputs:
the float engine, the fixed-point engine's NumPy reference and its compiled (numba)
kernels (``lava_gle.numerics.ops``; the same integers). BLAS on one thread. The backends
take turns in every repeat, so that load from other jobs spreads over all of them; the
table gives the best and the median of ``--repeats`` runs.

    .venv/bin/python benchmarks/online.py [--steps 1000] [--repeats 5] [--models mnist]
                                          [--chip | --recipe | --fingerprint]

``--chip``: the compiled fixed-point engine under exact timing against chip timing
(``numpy-fixed-chip``: backward arrays that learn with epochs of their own) instead.
``--recipe``: MNIST-1D 42k as the online recipe of ``docs/experiments.md`` trains it
(:data:`RECIPE`: normalisers, gains, weight tags, eta scales; batch 1, the formats sized
from the initial network), the float engine against the compiled fixed-point engine
under chip timing. ``--fingerprint``: the milliseconds a fixed-point checkpoint's
fingerprint of its run's continuation takes (at every save) instead.
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle import network_from_dict  # noqa: E402
from lava_gle.backends import make_engine  # noqa: E402
from lava_gle.experiments import mnist1d, yinyang  # noqa: E402
from lava_gle.experiments.rules import rule_overrides  # noqa: E402
from lava_gle.experiments.training import onehot_targets  # noqa: E402
from lava_gle.numerics import ops  # noqa: E402

warnings.simplefilter("ignore")

#: (column, backend, fixed-point kernels)
ENGINES = (("numpy", "numpy", None), ("fixed reference", "numpy-fixed", "numpy"),
           ("fixed compiled", "numpy-fixed", "numba"))
#: The same for ``--chip``: exact against chip timing, compiled.
CHIP_ENGINES = (("fixed compiled", "numpy-fixed", "numba"),
                ("fixed chip compiled", "numpy-fixed-chip", "numba"))

#: The online MNIST-1D recipe's rule options (``docs/experiments-log.md``, "Session 29"),
#: as :func:`lava_gle.experiments.rules.rule_overrides` takes them.
RECIPE = dict(optimizer="sgd", loss="mse", batch=1, sgd_eta=4e-6, halve_every=4,
              normalizers=0.9990234375, gain_decay=0.99993896484375,
              eta_scale=["h0=0.1", "h1=0.1"], gain_max=["10"])
RECIPE_ENGINES = (("numpy", "numpy", None),
                  ("fixed chip compiled", "numpy-fixed-chip", "numba"))


def recipe_network():
    """MNIST-1D 42k with the options of :data:`RECIPE` applied, learning at its rate."""
    rule = rule_overrides("numpy-fixed-chip", formats="initial", **RECIPE)
    config = mnist1d.config_from_args(0, False, None, None, balanced_batches=True, **rule)
    net, cfg = mnist1d.training_setup(config)
    return net.with_learning(eta=cfg.eta(0))


def mlp_40_100_100_10():
    """The engine benchmark's 40-100-100-10 network (relu, relu, linear)."""
    sizes, phis = [40, 100, 100, 10], ["relu", "relu", "linear"]
    return network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": sizes[0]},
        "layers": [{"size": s, "tau_m": 1.0, "tau_r": 0.1, "phi": p}
                   for s, p in zip(sizes[1:], phis)],
        "learning": {"enabled": True, "eta": 0.05, "gamma": 1.0, "beta": 0.1}})


def models():
    """(label, network) of the models trained online."""
    yield "MNIST-1D 42k", mnist1d.build_network(mnist1d.Mnist1dConfig(loss="mse", lr=0.002))
    yield "40-100-100-10", mlp_40_100_100_10()
    yield "Yin-Yang 4-120-3", yinyang.build_network(yinyang.YinyangConfig(loss="mse",
                                                                          lr=0.01))


def streams(net, batch: int, steps: int):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (steps, batch, net.input.size))
    labels = rng.integers(0, net.output_size, batch)
    y = np.broadcast_to(onehot_targets(labels, net.output_size, 1.0),
                        (steps, batch, net.output_size))
    return x, y


def steps_per_s(net, backend: str, kernels: str | None, x, y) -> float:
    """Learning steps/s of one run of a new engine over the streams (compilation, if
    any, done before: a first short run)."""
    with ops.using(kernels or ops.current()):
        engine = make_engine(net, backend)
        engine.run(x[:2], y[:2])
        engine = make_engine(net, backend)
        start = time.perf_counter()
        engine.run(x, y)
        return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per timed run at "
                        "batch 1 (batch 100: a tenth, at least 20)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="", help="only models whose label contains "
                        "this (case-insensitive)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--chip", action="store_true", help="exact against chip timing "
                      "(compiled fixed point) instead")
    mode.add_argument("--recipe", action="store_true", help="MNIST-1D's online recipe, "
                      "float against chip timing, batch 1")
    mode.add_argument("--fingerprint", action="store_true", help="what a fixed-point "
                      "checkpoint's fingerprint of the run's continuation costs instead")
    args = parser.parse_args()
    if args.fingerprint:
        fingerprint_cost(args.repeats, args.models)
        return
    engines = (CHIP_ENGINES if args.chip else RECIPE_ENGINES if args.recipe else ENGINES)
    num, den = ("fixed compiled", "numpy") if engines is ENGINES else (engines[1][0],
                                                                      engines[0][0])
    chosen = ([("MNIST-1D 42k, online recipe", recipe_network())] if args.recipe
              else models())
    cols = " | ".join(f"{c} best / median" for c, _, _ in engines)
    print(f"| model | batch | {cols} | {num} / {den} (medians) |")
    print("| --- | --- |" + " --- |" * (len(engines) + 1))
    for label, net in chosen:
        if args.models.lower() not in label.lower():
            continue
        for batch in (1,) if args.recipe else (1, 100):
            steps = args.steps if batch == 1 else max(args.steps // 10, 20)
            x, y = streams(net, batch, steps)
            rates: dict[str, list[float]] = {c: [] for c, _, _ in engines}
            for _ in range(args.repeats):
                for col, backend, kernels in engines:
                    rates[col].append(steps_per_s(net, backend, kernels, x, y))
            med = {c: statistics.median(r) for c, r in rates.items()}
            cells = " | ".join(f"{max(r):,.0f} / {med[c]:,.0f}" for c, r in rates.items())
            ratio = med[num] / med[den]
            print(f"| {label} | {batch} | {cells} | {ratio:.2f} |", flush=True)


def fingerprint_cost(repeats: int, only: str) -> None:
    """Milliseconds of :func:`lava_gle.numerics.fingerprint.continuation` (a checkpoint of a
    fixed-point run records it at every save, by default every 60 s of training) on the
    compiled fixed-point engine of each model after a short run, best / median."""
    from lava_gle.numerics.fingerprint import continuation
    print("| model | batch | fingerprint ms best / median | median share of 60 s |")
    print("| --- | --- | --- | --- |")
    chosen = [("MNIST-1D 42k, online recipe", recipe_network()), *models()]
    for label, net in chosen:
        if only.lower() not in label.lower():
            continue
        backend = "numpy-fixed-chip" if "recipe" in label else "numpy-fixed"
        for batch in (1, 100):
            x, y = streams(net, batch, 4)
            with ops.using("numba"):
                engine = make_engine(net, backend)
                engine.run(x, y)
                continuation(engine)  # compiled and cached
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    continuation(engine)
                    times.append(1e3 * (time.perf_counter() - start))
            med = statistics.median(times)
            print(f"| {label} | {batch} | {min(times):.0f} / {med:.0f} | "
                  f"{med / 600:.2f} % |", flush=True)


if __name__ == "__main__":
    main()
