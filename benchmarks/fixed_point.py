"""Fixed-point GLE figures for docs/fixed-point.md: accuracy, learning mechanism, speed.

1. Per-variable error of numpy-fixed against the float engine on both golden cases
   (default quantisation): RMS error / range of the float trajectory.
2. The LagLine teacher-student in integers with the default learning rule, from a far
   start and started at the teacher, against the float engine, the same rule without the
   error trace's dither, and the replaced design (the rule nearest to the wanted gain at
   the trace format of the range, however far below the engine's product quantum).
3. Steps per second of the fixed engine on the engine benchmark's networks.
4. With ``--lava``: steps per second of lava-fixed (structural and fused) against
   lava-float on the golden networks (batch 1, learning on; start-up excluded by timing
   runs of 2200 and 200 steps).

    .venv/bin/python benchmarks/fixed_point.py [--steps 20000] [--lava | --speed]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle import load_network, network_from_dict  # noqa: E402
from lava_gle.numerics import fixed as X  # noqa: E402
from lava_gle.numerics import ops  # noqa: E402
from lava_gle.numerics.engine import Engine  # noqa: E402
from lava_gle.experiments.lagline import SmoothedSteps  # noqa: E402
from lava_gle.numerics.engine import FixedEngine  # noqa: E402
from lava_gle.quantize import quantize_network  # noqa: E402
from lava_gle.quantize.rules import mantissa_shift, trace_scale  # noqa: E402
from lava_gle.traces import STATE_VARS  # noqa: E402

warnings.simplefilter("ignore")


def accuracy() -> None:
    print("| case | variable | float range | RMS error | RMS / range |")
    print("|---|---|---|---|---|")
    for case in ("visible_lagline", "visible_mlp"):
        d = f"tests/data/golden/{case}"
        net = load_network(f"{d}/network.json")
        x, y = np.load(f"{d}/inputs.npy"), np.load(f"{d}/targets.npy")
        fx = FixedEngine(net).run(x, y, record=True)
        fl = Engine(net).run(x, y, record=True)
        keys = ["output"] + [f"{v}.{n}" for n in net.layer_names for v in STATE_VARS] + \
            [f"{p}.{n}" for n in net.layer_names for p in ("W", "b")]
        for k in keys:
            rng = float(np.ptp(fl[k])) if fl[k].size > 1 else float(np.abs(fl[k]).max())
            if k.startswith(("W.", "b.")):
                rng = float(np.abs(fl[k]).max())
            if rng == 0:
                continue
            rms = float(np.sqrt(np.mean((fx[k] - fl[k]) ** 2)))
            print(f"| {case} | `{k}` | {rng:.3g} | {rms:.3g} | {100 * rms / rng:.2f}% |")
        sat = {k[4:]: int(v) for k, v in fx.items() if k.startswith("sat.") and v}
        print(f"| {case} | saturations | {sat or 'none'} | | |")
    print()
    print("output RMS / float range over rounding seeds 0-4:")
    print("| case | rounding | seed 0 | 1 | 2 | 3 | 4 |")
    print("|---|---|---|---|---|---|---|")
    for case in ("visible_lagline", "visible_mlp"):
        d = f"tests/data/golden/{case}"
        x, y = np.load(f"{d}/inputs.npy"), np.load(f"{d}/targets.npy")
        net = load_network(f"{d}/network.json")
        ref = Engine(net).run(x, y, record=["output"])["output"]
        for rounding in ("per_synapse", "shared"):
            errs = []
            for seed in range(5):
                fp = dict(net.fixed_point, seed=seed, rounding=rounding)
                out = FixedEngine(dataclasses.replace(net, fixed_point=fp)).run(
                    x, y, record=["output"])["output"]
                errs.append(np.sqrt(np.mean((out - ref) ** 2)) / np.ptp(ref))
            print(f"| {case} | {rounding} | " + " | ".join(f"{100 * e:.1f}%" for e in errs)
                  + " |")


def lagline_net(w, learning):
    return network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": 1},
        "layers": [{"name": f"l{i}", "size": 1, "tau_m": [1.0, 2.0][i], "tau_r": 0.1,
                    "phi": "softplus", "bias": False, "weights": [[w[i]]],
                    "fixed_point": {"rate_bits": 6}} for i in range(2)],
        "learning": learning})


def _nearest_rule_at_range(q):
    """No coarsening: the error trace at the format its range asks for, and the two-factor
    rule (any mantissa) nearest to the wanted gain (at least 2^-9)."""
    layers = []
    for l in q.layers:  # the trace unscaled by its mantissa too
        gain = l.gain_target * trace_scale(l.trace_mant) * 2.0 ** -l.trace_coarsening
        rule = min((X.LearningRuleConstants(m, e, l.pre_signed) for m in range(1, 8)
                    for e in range(1, 16)), key=lambda r: abs(np.log(r.gain() / gain)))
        layers.append(dataclasses.replace(l, rule=rule, trace_coarsening=0, trace_mant=1,
                                          trace_shift=l.trace_shift - l.trace_coarsening
                                          - mantissa_shift(l.trace_mant)))
    return dataclasses.replace(q, layers=layers)


def _round_to_nearest(e, shift, dither, *args, _f=X.error_trace):
    """The error trace without its dither: round half up (the other arguments as
    :func:`~lava_gle.numerics.fixed.error_trace` takes them)."""
    return _f(e, shift, None if dither is None else np.full_like(dither, 1 << (shift - 1)),
              *args)


def _run(student, q, x, y, trace=None):
    if trace is None:
        return FixedEngine(student, qnet=q).run(x, y, record=["output"])
    saved = X.error_trace
    X.error_trace = trace
    try:  # the NumPy reference calls X.error_trace (the compiled kernels have their own)
        with ops.using("numpy"):
            return FixedEngine(student, qnet=q).run(x, y, record=["output"])
    finally:
        X.error_trace = saved


def mechanism(steps: int) -> None:
    """LagLine student in integers: learning from a far start (eta 1) and staying at the
    teacher (eta 1 and 1/16), with the default rule and the two designs it replaces."""
    B = 20
    x = SmoothedSteps(0, B, steps).window(0, steps)
    y = Engine(lagline_net([1.0, 2.0], {"enabled": False})).run(x, record=["output"])["output"]
    k = steps // 10
    print("| learning rule | start | eta | W.l0 | W.l1 | loss first 10% | last 10% |")
    print("|---|---|---|---|---|---|---|")
    for start, eta in (((0.64, 0.27), 1.0), ((1.0, 2.0), 1.0), ((1.0, 2.0), 0.0625)):
        student = lagline_net(list(start), {"enabled": True, "eta": eta, "gamma": 1.0,
                                            "beta": 0.01})
        q = quantize_network(student)
        fl = Engine(student).run(x, y, record=["output"])
        variants = {"float engine (SGD)": None,
                    "**default: precise rule, coarser dithered trace**": (q, None),
                    "same trace, rounded to nearest (no dither)": (q, _round_to_nearest),
                    "nearest rule (mant 1..7) at the range's trace, no dither": (
                        _nearest_rule_at_range(q), _round_to_nearest)}
        for name, v in variants.items():
            tr = fl if v is None else _run(student, v[0], x, y, v[1])
            l0 = np.mean((tr["output"][:k] - y[:k]) ** 2)
            l1 = np.mean((tr["output"][-k:] - y[-k:]) ** 2)
            print(f"| {name} | {start} | {eta:g} | {tr['W.l0'][0, 0]:.3f} | "
                  f"{tr['W.l1'][0, 0]:.3f} | {l0:.3g} | {l1:.3g} |")
    print(f"(teacher W = 1, 2; {steps} steps, batch {B}; LSB of W = 2^-5 = 0.031)")


def lava_speed() -> None:
    from lava_gle.runtime import LavaNetwork
    print("| network | backend | steps/s (start-up excluded) |")
    print("|---|---|---|")
    for case in ("visible_lagline", "visible_mlp"):
        d = f"tests/data/golden/{case}"
        net = load_network(f"{d}/network.json")
        x, y = np.load(f"{d}/inputs.npy"), np.load(f"{d}/targets.npy")
        reps = -(-2200 // len(x))
        x, y = np.concatenate([x] * reps)[:2200], np.concatenate([y] * reps)[:2200]
        for backend, fused in (("float", False), ("fixed", False), ("float", True),
                               ("fixed", True)):
            times = {}
            for T in (200, 2200):
                with LavaNetwork(net, backend=backend, fused=fused, chunk=T) as sim:
                    t0 = time.perf_counter()
                    sim.run(x[:T], y[:T], record=True)
                    times[T] = time.perf_counter() - t0
            name = f"lava-{backend}{'-fused' if fused else ''}"
            print(f"| {case} | {name} | {2000 / (times[2200] - times[200]):,.0f} |")


def engine_speed() -> None:
    print("| network | batch | fixed steps/s | float steps/s |")
    print("|---|---|---|---|")
    for sizes, phis, batch in (([1, 1, 1], ["softplus"] * 2, 100),
                               ([40, 100, 100, 10], ["relu", "relu", "linear"], 32)):
        net = network_from_dict({
            "gle_network": 1, "dt": 0.01, "input": {"size": sizes[0]},
            "layers": [{"size": s, "tau_m": 1.0, "tau_r": 0.1, "phi": p}
                       for s, p in zip(sizes[1:], phis)],
            # at eta 0.5 (and 0.1) the float 40-100-100-10 run diverges on these inputs
            "learning": {"enabled": True, "eta": 0.05, "gamma": 1.0, "beta": 0.1}})
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, batch, sizes[0]))
        y = rng.normal(size=(2000, batch, sizes[-1]))
        rates = []
        for E in (FixedEngine, Engine):
            best = 0.0
            for _ in range(3):
                eng = E(net)
                eng.run(x[:20], y[:20])
                t0 = time.perf_counter()
                eng.run(x, y)
                best = max(best, len(x) / (time.perf_counter() - t0))
            rates.append(best)
        print(f"| {' -> '.join(map(str, sizes))} | {batch} | {rates[0]:,.0f} | {rates[1]:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lava", action="store_true", help="only time the Lava backends")
    ap.add_argument("--speed", action="store_true", help="only time the NumPy engines")
    args = ap.parse_args()
    if args.lava:
        lava_speed()
        return
    if not args.speed:
        accuracy()
        print()
        mechanism(args.steps)
        print()
    engine_speed()


if __name__ == "__main__":
    main()
