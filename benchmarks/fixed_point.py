"""Fixed-point GLE figures for docs/fixed-point.md: accuracy, learning mechanism, speed.

1. Per-variable error of numpy-fixed against the float engine on both golden cases
   (default quantisation): RMS error / range of the float trajectory.
2. The LagLine teacher-student in integers with the chosen learning-engine rule, and
   with the two alternatives it replaces (no y1 rate code: the nearest two-factor gain;
   no rounding compensation).
3. Steps per second of the fixed engine on the engine benchmark's networks.
4. With ``--lava``: steps per second of lava-fixed (structural and fused) against
   lava-float on the golden networks (batch 1, learning on; start-up excluded by timing
   runs of 2200 and 200 steps).

    .venv/bin/python benchmarks/fixed_point.py [--steps 20000] [--lava]
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
from lava_gle.arithmetic import fixed as X  # noqa: E402
from lava_gle.engine import Engine  # noqa: E402
from lava_gle.experiments.lagline import SmoothedSteps  # noqa: E402
from lava_gle.fixed_engine import FixedEngine  # noqa: E402
from lava_gle.quantize import quantize_network  # noqa: E402
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


def mechanism(steps: int) -> None:
    B = 4
    x = SmoothedSteps(0, B, steps).window(0, steps)
    y = Engine(lagline_net([1.0, 2.0], {"enabled": False})).run(x, record=["output"])["output"]
    student = lagline_net([0.64, 0.27], {"enabled": True, "eta": 1.0, "gamma": 1.0,
                                         "beta": 0.01})
    q = quantize_network(student)

    def with_rules(f):
        return dataclasses.replace(q, layers=[dataclasses.replace(l, rule=f(l.rule))
                                              for l in q.layers])

    def two_factor(r):
        best = min((X.LearningRuleConstants(m, s, None, r.pre_signed)
                    for m in range(1, 8) for s in range(1, 16)),
                   key=lambda c: abs(np.log(c.gain() / r.gain())))
        return best

    variants = {"default: y1 rate code + compensation": (q, False),
                "same, one shared rounding number (as Lava)": (
                    dataclasses.replace(q, per_synapse_rounding=False), False),
                "two factors only (nearest gain)": (with_rules(two_factor), False)}
    r0 = q.layers[0].rule
    if r0.y1 is not None and 2 * r0.y1 < 128:
        variants["y1 rate code, no compensation"] = (
            dataclasses.replace(q, layers=[dataclasses.replace(
                l, rule=dataclasses.replace(l.rule, s_exp=l.rule.s_exp - 1, y1=2 * l.rule.y1))
                for l in q.layers]), True)
    k = steps // 10
    print("| learning rule | gains (l0, l1) | W.l0 | W.l1 | loss first 10% | last 10% | fall |")
    print("|---|---|---|---|---|---|---|")
    fl = Engine(student).run(x, y, record=["output"])
    loss0 = np.mean((fl["output"][:k] - y[:k]) ** 2)
    loss1 = np.mean((fl["output"][-k:] - y[-k:]) ** 2)
    print(f"| float engine (SGD, eta 1) | - | {fl['W.l0'][0, 0]:.3f} | {fl['W.l1'][0, 0]:.3f} "
          f"| {loss0:.3g} | {loss1:.3g} | {loss0 / loss1:.0f}x |")
    for name, (qn, no_comp) in variants.items():
        saved = X.learning_accumulator
        if no_comp:
            def no_compensation(w, x0, x1, e_q, rule, _f=saved):
                # subtract the compensation product the arithmetic adds
                comp = X.int_matmul((np.atleast_2d(e_q) != 0).T, np.atleast_2d(x0))
                return _f(w, x0, x1, e_q, rule) - (comp << (rule.s_exp - 1)) // len(
                    np.atleast_2d(x0))
            X.learning_accumulator = no_compensation
        try:
            tr = FixedEngine(student, qnet=qn).run(x, y, record=["output"])
        finally:
            X.learning_accumulator = saved
        l0 = np.mean((tr["output"][:k] - y[:k]) ** 2)
        l1 = np.mean((tr["output"][-k:] - y[-k:]) ** 2)
        gains = ", ".join(f"{l.rule.gain():.3g}" for l in qn.layers)
        print(f"| {name} | {gains} | {tr['W.l0'][0, 0]:.3f} | {tr['W.l1'][0, 0]:.3f} | "
              f"{l0:.3g} | {l1:.3g} | {l0 / l1:.1f}x |")
    print(f"(target gains {', '.join(f'{l.gain_target:.3g}' for l in q.layers)}; teacher "
          f"W = 1, 2; student starts at 0.64, 0.27; {steps} steps, batch {B})")


def lava_speed() -> None:
    from lava_gle.mappings import LavaNetwork
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lava", action="store_true", help="only time the Lava backends")
    args = ap.parse_args()
    if args.lava:
        lava_speed()
        return
    accuracy()
    print()
    mechanism(args.steps)
    print()
    print("| network | batch | fixed steps/s | float steps/s |")
    print("|---|---|---|---|")
    for sizes, phis, batch in (([1, 1, 1], ["softplus"] * 2, 100),
                               ([40, 100, 100, 10], ["relu", "relu", "linear"], 32)):
        net = network_from_dict({
            "gle_network": 1, "dt": 0.01, "input": {"size": sizes[0]},
            "layers": [{"size": s, "tau_m": 1.0, "tau_r": 0.1, "phi": p}
                       for s, p in zip(sizes[1:], phis)],
            "learning": {"enabled": True, "eta": 0.5, "gamma": 1.0, "beta": 0.1}})
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


if __name__ == "__main__":
    main()
