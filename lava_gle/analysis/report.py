"""Write a comparison's results: ``metrics.json``, PNG figures and a self-contained HTML page.

Figures need matplotlib (``pip install lava-gle[plot]``); without it
:func:`write_report` still writes ``metrics.json`` and says how to get the figures.
"""
from __future__ import annotations

import base64
import contextlib
import html
from pathlib import Path

import numpy as np

from lava_gle.analysis.comparison import Run
from lava_gle.network import Network
from lava_gle.results import pyplot, save_figure, write_metrics, write_text

#: Neurons per layer drawn in the trace figure.
TRACE_NEURONS = 3


def figures(out_dir: Path, net: Network, ref: Run, cand: Run, metrics: dict) -> list[Path]:
    """Draw the comparison figures into ``out_dir``; return their paths ([] without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return []
    paths = []
    names = net.layer_names
    dt = net.dt
    T = metrics["steps"]
    t = np.arange(T) * dt
    a, b = ref.backend, cand.backend

    fig, axes = plt.subplots(len(names), 2, figsize=(11, 2.6 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        for col, var in enumerate(("r", "e")):
            ax = axes[row, col]
            key = f"{var}.{name}"
            for k in range(min(TRACE_NEURONS, ref.traces[key].shape[2])):
                line, = ax.plot(t, ref.traces[key][:, 0, k], lw=1.2, label=f"{a} #{k}")
                ax.plot(t, cand.traces[key][:, 0, k], lw=1.0, ls="--", color=line.get_color(),
                        label=f"{b} #{k}")
            ax.set_title(f"{key} (batch element 0)", fontsize=10)
            ax.set_xlabel("time")
            if row == 0 and col == 0:
                ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths.append(save_figure(fig, out_dir / "traces.png", dpi=110))

    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.4), squeeze=False)
    series = metrics["_series"]["error_over_time"]
    for ax, name in zip(axes[0], names):
        curves = [series[f"{var}.{name}"] for var in ("u", "u_prosp", "r", "v", "e")]
        positive = np.concatenate([c[c > 0] for c in curves] + [np.array([1.0])])
        floor = max(float(positive.min()), 1e-6 * metrics["tolerance"])
        for var, curve in zip(("u", "u_prosp", "r", "v", "e"), curves):
            ax.semilogy(t, np.maximum(curve, floor), lw=1, label=var)
        ax.axhline(metrics["tolerance"], color="k", ls=":", lw=1, label="tolerance")
        ax.set_ylim(bottom=floor)
        ax.set_title(f"layer {name}: RMS |{b} - {a}| / range({a}) per step", fontsize=10)
        ax.set_xlabel("time")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(save_figure(fig, out_dir / "error_over_time.png", dpi=110))

    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.4), squeeze=False)
    steps = np.concatenate([[0], metrics["_checkpoints"]]) * dt
    for i, (ax, name) in enumerate(zip(axes[0], names)):
        w0 = net.initial_weights(i).reshape(1, -1)
        wr = np.concatenate([w0, ref.weights[name].reshape(len(steps) - 1, -1)])
        wc = np.concatenate([w0, cand.weights[name].reshape(len(steps) - 1, -1)])
        for k in range(min(4, wr.shape[1])):
            line, = ax.plot(steps, wr[:, k], marker=".", lw=1.2, label=f"{a} w{k}")
            ax.plot(steps, wc[:, k], marker="x", ls="--", color=line.get_color(),
                    label=f"{b} w{k}")
        ax.set_title(f"weights into {name}", fontsize=10)
        ax.set_xlabel("time")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths.append(save_figure(fig, out_dir / "weights.png", dpi=110))

    curves = metrics["_series"]["loss_curve"]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        width = max(T // 100, 1)
        kernel = np.ones(width) / width
        for backend, loss in curves.items():
            ax.semilogy(t[:len(loss) - width + 1], np.convolve(loss, kernel, "valid"),
                        label=backend)
        ax.set_title(f"output loss ({net.learning.loss}, moving mean over {width} steps)",
                     fontsize=10)
        ax.set_xlabel("time")
        ax.legend()
        fig.tight_layout()
        paths.append(save_figure(fig, out_dir / "loss.png", dpi=110))
    return paths


def _drift_cell(projection: dict, backend: str) -> str:
    """``max / RMS`` transpose drift of one backend's run, or ``-`` without a backward array."""
    d = projection.get("transpose_drift_lsb", {}).get(backend)
    return "-" if d is None else f"{d['max']:.3g} / {d['rms']:.3g}"


def html_report(net: Network, metrics: dict, figure_paths: list[Path]) -> str:
    """One self-contained HTML page (figures embedded as base64 PNG)."""
    a, b, tol = metrics["reference"], metrics["candidate"], metrics["tolerance"]
    esc = html.escape
    rows = []
    for name, vars_ in metrics["layers"].items():
        for var, m in vars_.items():
            bad = m["rms_error"] > tol
            first = "-" if m["first_exceed_step"] is None else m["first_exceed_step"]
            rows.append(f"<tr class='{'bad' if bad else ''}'><td>{esc(name)}</td><td>{var}</td>"
                        f"<td>{m['rms_error']:.3g}</td><td>{m['max_error']:.3g}</td>"
                        f"<td>{m['correlation']:.4f}</td><td>{first}</td></tr>")
    verdict = metrics["verdicts"]
    diverged = "".join(f"<p class='diverged'><b>{esc(d['message'])}</b>: the comparison says "
                       "nothing about the arithmetic after that.</p>"
                       for d in metrics.get("divergence", {}).values() if d)
    if verdict:
        items = "".join(f"<li><b>{esc(v['layer'])}.{esc(v['variable'])}</b>: RMS error "
                        f"{v['rms_error']:.3g} &gt; {tol:g}. Likely cause: {esc(v['cause'])}</li>"
                        for v in verdict)
        verdict_html = f"<ul>{items}</ul>"
    else:
        verdict_html = (f"<p class='ok'>Every layer and variable of {esc(b)} stays within "
                        f"{tol:g} of {esc(a)}'s range in RMS.</p>")
    proj = "".join(
        f"<tr><td>{esc(n)}</td><td>{p['weight_diff_max']:.3g}</td><td>{p['weight_diff_rms']:.3g}"
        f"</td><td>{p['weight_angle_deg']:.3g}</td><td>{p['weight_moved_max'][a]:.3g}</td>"
        f"<td>{p['weight_moved_max'][b]:.3g}</td><td>{_drift_cell(p, a)}</td>"
        f"<td>{_drift_cell(p, b)}</td></tr>" for n, p in metrics["projections"].items())
    task = "".join(f"<tr><td>{esc(k)}</td><td>{v['loss_first']:.3g}</td>"
                   f"<td>{v['loss_final']:.3g}</td><td>{v.get('accuracy', '-')}</td></tr>"
                   for k, v in metrics["task"].items())
    sat = "".join(f"<tr><td>{esc(k)}</td><td>{esc(s)}</td><td>{c}</td></tr>"
                  for k, d in metrics["saturation"].items() for s, c in sorted(d.items()))
    figs = "".join(
        f"<figure><img alt='{p.stem}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{p.stem}</figcaption></figure>"
        for p in figure_paths)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>lava-gle compare: {esc(net.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}tr.bad{{background:#fdd}}
.ok{{color:#060}}.diverged{{color:#a00}}
img{{max-width:100%}}figcaption{{font-size:90%;color:#555}}</style></head><body>
<h1>{esc(b)} against {esc(a)}: {esc(net.describe())}</h1>
<p>{metrics['steps']} steps, batch {metrics['batch']}. Errors are normalised by the range of
{esc(a)}'s signal; tolerance {tol:g} (RMS).</p>
<h2>Verdict</h2>{diverged}{verdict_html}
<h2>Per layer and variable</h2><table><tr><th>layer</th><th>var</th><th>RMS error</th>
<th>max error</th><th>correlation</th><th>first step over tolerance</th></tr>{''.join(rows)}</table>
<h2>Projections</h2><table><tr><th>layer</th><th>final |dW| max</th><th>final |dW| RMS</th>
<th>angle W (deg)</th><th>moved {esc(a)}</th><th>moved {esc(b)}</th>
<th>|B - W<sup>T</sup>| max / RMS (LSB) {esc(a)}</th><th>same, {esc(b)}</th></tr>{proj}</table>
<p>B: the separate backward array of chip timing (<code>fixed_point.timing: chip</code>);
"-" where a run sends the error down through W itself.</p>
<h2>Task</h2><table><tr><th>backend</th><th>loss (first 10%)</th><th>loss (last 10%)</th>
<th>accuracy</th></tr>{task}</table>
<h2>Saturation and overflow counts</h2><table><tr><th>backend</th><th>what</th><th>count</th></tr>
{sat or '<tr><td colspan=3>none reported</td></tr>'}</table>
<h2>Figures</h2>{figs or '<p>No figures: install matplotlib (pip install lava-gle[plot]).</p>'}
</body></html>
"""


def write_report(out_dir: str | Path, net: Network, ref: Run, cand: Run,
                 metrics: dict) -> dict[str, Path | list[Path] | None]:
    """Write metrics.json, the figures and report.html into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = write_metrics(out_dir, metrics)
    # a diverged run's NaN and inf make the axis scaling warn; the report says it once
    diverged = any(metrics.get("divergence", {}).values())
    with np.errstate(all="ignore") if diverged else contextlib.nullcontext():
        figs = figures(out_dir, net, ref, cand, metrics)
    report = write_text(out_dir / "report.html", html_report(net, metrics, figs))
    return {"metrics": metrics_path, "figures": figs, "report": report,
            "plots_available": pyplot() is not None}
