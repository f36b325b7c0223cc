"""Estimated Loihi 2 time and energy per sample of the three experiments, against the CPU
(measured steps/s of docs/performance.md) and published anchors; writes
docs/figures/loihi_cost.png. Run: python benchmarks/loihi_cost.py"""
from __future__ import annotations

from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lava_gle.experiments import lagline, mnist1d, yinyang  # noqa: E402
from lava_gle.mappings.estimate import estimate  # noqa: E402
from lava_gle.mappings.mapper import map_network  # noqa: E402

# name -> (network, steps per sample, CPU steps/s at batch 100 from docs/performance.md
# (training; inference for MNIST-1D 42k), sample = what one step of the batch advances)
LAG = lagline.LaglineConfig()
CASES = {
    "LagLine": (lagline.student_network(LAG), 1, 2500),
    "Yin-Yang": (yinyang.build_network(yinyang.YinyangConfig()), 8, 1300),
    "MNIST-1D": (mnist1d.build_network(mnist1d.Mnist1dConfig()), 360, 530),
}


def main() -> None:
    rows = []
    for name, (net, steps, cpu_steps_s) in CASES.items():
        est = estimate(map_network(net), steps)
        tr, inf = est["training"] or est["inference"], est["inference"]
        cpu_us = steps / (cpu_steps_s * 100) * 1e6        # batch 100: per-sample share
        rows.append((name, steps, tr["per_sample"]["time_us"], tr["per_sample"]["energy_uj"],
                     inf["per_sample"]["time_us"], inf["per_sample"]["energy_uj"], cpu_us))
        print(f"{name}: {steps} steps/sample; training {tr['per_sample']['time_us']} us "
              f"{tr['per_sample']['energy_uj']} uJ; inference {inf['per_sample']['time_us']} "
              f"us {inf['per_sample']['energy_uj']} uJ; CPU {cpu_us:.3g} us/sample")
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    for r in rows:
        ax[0].errorbar([r[0]], [sum(r[2]) / 2], yerr=[[sum(r[2]) / 2 - r[2][0]],
                       [r[2][1] - sum(r[2]) / 2]], fmt="o", color="C0")
        ax[0].plot([r[0]], [r[6]], "s", color="C1")
        ax[1].errorbar([r[0]], [sum(r[3]) / 2 * 1e-3], yerr=[[(sum(r[3]) / 2 - r[3][0]) * 1e-3],
                       [(r[3][1] - sum(r[3]) / 2) * 1e-3]], fmt="o", color="C0")
    ax[0].plot(["MNIST (Renner 2024)"], [1500], "^", color="C2")
    ax[0].plot(["MNIST-1D"], [85e6 / 4000], "v", color="C3")
    ax[1].plot(["MNIST (Renner 2024)"], [0.59], "^", color="C2")
    ax[0].set_ylabel("time per training sample (us)")
    ax[1].set_ylabel("energy per training sample (mJ)")
    for a in ax:
        a.set_yscale("log")
        a.tick_params(axis="x", rotation=20)
    ax[0].legend(["Loihi 2 (estimated)", "CPU, NumPy engine (measured)",
                  "Loihi 1 backprop (Renner 2024)", "H200, authors' code"], fontsize=7)
    fig.tight_layout()
    out = Path(__file__).resolve().parent.parent / "docs" / "figures" / "loihi_cost.png"
    fig.savefig(out, dpi=110)
    print("wrote", out)


if __name__ == "__main__":
    main()
