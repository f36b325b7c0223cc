"""``lava-gle sweep NET --inputs X.npy [--targets Y.npy] --param KEY=A:B[:STEP] ... --out DIR``

Repeats the float-versus-fixed comparison over fixed-point settings. ``KEY`` is a
fixed-point option of the description (``docs/fixed-point.md``): a network option
(``input_range``...) or a layer option applied to every layer (``weight_exp``...), or
``LAYER.KEY`` for one layer. Values: ``A:B`` (integers A..B), ``A:B:STEP``, or a
comma list ``v1,v2`` (also of names, e.g. ``rounding=per_synapse,shared``). Each ``--param`` is swept on its own, the others at their
default. Writes ``DIR/sweep.json`` and one ``DIR/sweep_<KEY>.png`` per parameter.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
from tqdm.auto import tqdm

from lava_gle.commands.options import nonnegative_float, out_path
from lava_gle.commands.compare import parse_pair
from lava_gle.commands.simulate import load_array
from lava_gle.analysis.comparison import DEFAULT_TOLERANCE, compare_runs, run_backend
from lava_gle.description import (
    CHOICES, LAYER_OPTIONS, NETWORK_OPTIONS, load_network, network_from_dict, network_to_dict,
)
from lava_gle.errors import LavaGleError
from lava_gle.network import Network
from lava_gle.results import prepare_out_dir, pyplot, save_figure, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="repeat the float/fixed comparison over fixed-point settings",
                       description="Compare the two backends once per value of each --param "
                                   "(one parameter at a time, the others at their default); "
                                   "write DIR/sweep.json and DIR/sweep_<param>.png.")
    p.add_argument("net", help="network description (.json, .yaml)")
    p.add_argument("--inputs", required=True, help=".npy [T, in] or [T, batch, in]")
    p.add_argument("--targets", help=".npy targets (see lava-gle simulate)")
    p.add_argument("--param", action="append", required=True, metavar="KEY=VALUES",
                   help="e.g. weight_exp=-8:-4, hidden.u_bits=8:16:2, input_range=1,2,4")
    p.add_argument("--backends", default="numpy,numpy-fixed",
                   help="reference,candidate (default numpy,numpy-fixed)")
    p.add_argument("--tolerance", type=nonnegative_float, default=DEFAULT_TOLERANCE,
                   help="normalised RMS error above which a variable gets a verdict")
    p.add_argument("--out", type=out_path, required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=run)


def parse_param(text: str, net: Network) -> tuple[str, list[float]]:
    """``KEY=A:B[:STEP]`` or ``KEY=v1,v2`` -> (KEY, values); KEY is checked against the options."""
    if "=" not in text:
        raise LavaGleError(f"--param {text!r}: write KEY=VALUES, e.g. weight_exp=-8:-4")
    key, spec = (s.strip() for s in text.split("=", 1))
    option = key.split(".")[-1]
    if "." in key:
        layer = key.rsplit(".", 1)[0]
        if layer not in net.layer_names:
            raise LavaGleError(f"--param {text!r}: no layer {layer!r}; layers are "
                               f"{net.layer_names}")
        if option not in LAYER_OPTIONS:
            raise LavaGleError(f"--param {text!r}: {option!r} is not a layer fixed-point "
                               f"option; choose one of {sorted(LAYER_OPTIONS)}")
    elif option not in LAYER_OPTIONS and option not in NETWORK_OPTIONS:
        raise LavaGleError(f"--param {text!r}: unknown fixed-point option {option!r}; choose "
                           f"one of {sorted(set(LAYER_OPTIONS) | set(NETWORK_OPTIONS))}")
    kind = (LAYER_OPTIONS.get(option) or NETWORK_OPTIONS[option])[0]
    if kind == "choice":
        values = [v.strip() for v in spec.split(",")]
        bad = [v for v in values if v not in CHOICES[option]]
        if bad:
            raise LavaGleError(f"--param {text!r}: {bad[0]!r} is not one of "
                               f"{list(CHOICES[option])}")
        return key, values
    try:
        if ":" in spec:
            parts = [float(s) for s in spec.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1.0
            if step <= 0 or parts[1] < parts[0]:
                raise ValueError
            values = list(np.arange(parts[0], parts[1] + step / 2, step))
        else:
            values = [float(s) for s in spec.split(",")]
    except ValueError:
        raise LavaGleError(f"--param {text!r}: values must be A:B, A:B:STEP (A <= B, STEP > 0) "
                           "or a comma list of numbers") from None
    if kind == "int":
        odd = [v for v in values if not float(v).is_integer()]
        if odd:
            raise LavaGleError(f"--param {text!r}: {option} takes whole numbers, got {odd[0]:g}"
                               + (" (from the range)" if ":" in spec else ""))
        values = [int(v) for v in values]
    return key, values


def with_setting(net: Network, key: str, value) -> Network:
    """A copy of ``net`` (re-validated) with one fixed-point option set."""
    d = network_to_dict(net, explicit_parameters=True)
    option = key.split(".")[-1]
    if "." in key:
        targets = [l for l in d["layers"] if l["name"] == key.rsplit(".", 1)[0]]
    elif option in NETWORK_OPTIONS:
        d.setdefault("fixed_point", {})[option] = value
        targets = []
    else:
        targets = d["layers"]
    for layer in targets:
        layer.setdefault("fixed_point", {})[option] = value
    return network_from_dict(d, source=f"sweep {key}={value}")


def _one_setting(net: Network, key: str, value, x, y, ref, backend: str,
                 tolerance: float) -> dict:
    """Compare one setting; a setting the fixed-point formats cannot hold is recorded
    with its error message instead of stopping the sweep."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            variant = with_setting(net, key, value)
            cand = run_backend(variant, x, y, backend)
    except LavaGleError as exc:
        return {"value": value, "error": str(exc)}
    m = compare_runs(variant, ref, cand, y, tolerance)
    task = m["task"].get(backend, {})
    return {"value": value, "output_rms_error": m["output"]["rms_error"],
            "task_metric": task.get("accuracy", task.get("loss_final")),
            "task_metric_name": "accuracy" if "accuracy" in task else "loss_final",
            "verdicts": len(m["verdicts"]),
            "saturation": sum(m["saturation"][backend].values()),
            "warnings": sorted({str(w.message) for w in caught})}


def run(args: argparse.Namespace) -> int:
    net = load_network(args.net)
    x = load_array(args.inputs, "inputs")
    y = load_array(args.targets, "targets")
    a, b = parse_pair(args.backends)
    params = [parse_param(p, net) for p in args.param]
    out = prepare_out_dir(args.out)
    ref = run_backend(net, x, y, a)
    results: dict[str, list[dict]] = {}
    total = sum(len(v) for _, v in params)
    bar = tqdm(total=total, desc="sweep", unit="setting", disable=args.quiet)
    for key, values in params:
        rows = results.setdefault(key, [])
        for value in values:
            rows.append(_one_setting(net, key, value, x, y, ref, b, args.tolerance))
            bar.update()
    bar.close()
    write_json(out / "sweep.json",
               {"network": net.name, "reference": a, "candidate": b, "results": results})
    plt = pyplot()
    for key, rows in results.items():
        rows = [r for r in rows if "error" not in r]
        if plt is None or not rows:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.6))
        vals = [r["value"] for r in rows]
        ax.semilogy(vals, [max(r["output_rms_error"], 1e-12) for r in rows], "o-",
                    label="output RMS error (normalised)")
        ax.set_xlabel(key)
        ax.set_ylabel("normalised output error")
        if rows[0]["task_metric"] is not None:
            ax2 = ax.twinx()
            ax2.plot(vals, [r["task_metric"] for r in rows], "s--", color="tab:red")
            ax2.set_ylabel(f"{b} {rows[0]['task_metric_name']}", color="tab:red")
        ax.set_title(f"{net.name}: {b} vs {a} over {key}", fontsize=10)
        fig.tight_layout()
        save_figure(fig, out / f"sweep_{key.replace('.', '_')}.png", dpi=110)
    if not args.quiet:
        for key, rows in results.items():
            print(f"{key}: " + ", ".join(
                f"{r['value']}: " + (f"err {r['output_rms_error']:.3g}" if "error" not in r
                                     else "not representable") for r in rows))
            for r in rows:
                if "error" in r:
                    print(f"  {key}={r['value']}: {r['error']}")
        print(f"wrote {out / 'sweep.json'}")
        if plt is None:
            print("no figures: matplotlib is missing; `pip install lava-gle[plot]`")
    failed = [(key, r) for key, rows in results.items() for r in rows if "error" in r]
    if len(failed) == total:
        key, first = failed[0]
        raise LavaGleError(f"every setting of the sweep failed (see {out / 'sweep.json'}); "
                           f"the first, {key}={first['value']}: {first['error']}")
    return 0
